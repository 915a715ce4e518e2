//! Property tests of the fleet walker (issue 20: hostile fleets). Random trees of
//! folders, YAML and other files, hidden entries, invalid UTF-8 and symbolic links
//! (into the tree, out of it, to themselves, in cycles): the walk never panics, returns
//! only regular, visible YAML files inside the tree and never through a link, and what
//! an entry folder reaches is a subset of it. Bounded cases (PROPTEST_CASES overrides).

use std::path::{Path, PathBuf};

use gitops_drill::fleet::{fleet_yaml_files, reachable_files};
use proptest::prelude::*;

/// One entry of a generated tree: where (a folder depth path of short names) and what.
#[derive(Debug, Clone)]
enum Node {
    Folder(Vec<String>),
    File(Vec<String>, String, Vec<u8>),
    /// A link at a path, to a target relative to the tree ("" is the tree itself,
    /// "../outside" leaves it, the link's own path makes a loop).
    Link(Vec<String>, String, String),
}

fn name() -> impl Strategy<Value = String> + Clone {
    prop::sample::select(vec!["apps", "a", "b", ".git", ".hidden", "users-api", "x y", "ünï"]).prop_map(String::from)
}

fn file_name() -> impl Strategy<Value = String> + Clone {
    prop::sample::select(vec![
        "k.yaml",
        "v.yml",
        "README.md",
        ".sops.yaml",
        "x.yaml.bak",
        "z.YAML",
        "kustomization.yaml",
    ])
    .prop_map(String::from)
}

fn contents() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"resources: [./apps/a]\n".to_vec()),
        Just(b"path: ./b\nchart: ./users-api\n".to_vec()),
        Just(vec![0xff, 0xfe, 0x00, b'\n']),
        prop::collection::vec(any::<u8>(), 0..64),
    ]
}

fn node() -> impl Strategy<Value = Node> {
    let at = prop::collection::vec(name(), 0..4);
    prop_oneof![
        at.clone().prop_map(Node::Folder),
        (at.clone(), file_name(), contents()).prop_map(|(a, n, c)| Node::File(a, n, c)),
        (
            at,
            name(),
            prop::sample::select(vec!["", "..", "../outside", "apps", "/", "a/b/c", "self"])
        )
            .prop_map(|(a, n, t)| Node::Link(a, n, t.to_string())),
    ]
}

/// Makes the tree. A generated path may run through a link made earlier (to `/`, out of
/// the tree): such a node is skipped, so the test never writes outside its own folder.
/// Creation may also fail where a path runs through a file: the tree is what could be made.
fn build(root: &Path, nodes: &[Node]) {
    for node in nodes {
        let at = match node {
            Node::Folder(at) | Node::File(at, ..) | Node::Link(at, ..) => at,
        };
        let Some(dir) = folder_without_links(root, at) else {
            continue;
        };
        match node {
            Node::Folder(_) => {}
            Node::File(_, name, bytes) => {
                let file = dir.join(name);
                // Never through a link (nor over one): a new regular file only.
                if std::fs::symlink_metadata(&file).is_err() {
                    let _ = std::fs::write(file, bytes);
                }
            }
            Node::Link(_, name, target) => {
                let link = dir.join(name);
                let target = match target.as_str() {
                    "self" => link.clone(),
                    "" => root.to_path_buf(),
                    "/" => PathBuf::from("/"),
                    t => root.join(t),
                };
                let _ = std::os::unix::fs::symlink(target, link);
            }
        }
    }
}

/// `root/at...`, made folder by folder; None when a component is a link or not a folder.
fn folder_without_links(root: &Path, at: &[String]) -> Option<PathBuf> {
    let mut dir = root.to_path_buf();
    for part in at {
        dir.push(part);
        match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return None,
            Err(_) => std::fs::create_dir(&dir).ok()?,
        }
    }
    Some(dir)
}

/// No component of `path` under `root` is a symbolic link or hidden.
fn plain_path(root: &Path, path: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(root) else {
        return false;
    };
    let mut at = root.to_path_buf();
    rel.components().all(|c| {
        at.push(c);
        let visible = !c.as_os_str().to_string_lossy().starts_with('.');
        visible && std::fs::symlink_metadata(&at).is_ok_and(|m| !m.file_type().is_symlink())
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(128),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_walk_returns_only_plain_yaml_files_inside_the_tree(
        nodes in prop::collection::vec(node(), 0..24),
        entry in prop::sample::select(vec!["", ".", "./apps", "apps/", "a/b", "../", "/etc"]),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("fleet");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(dir.path().join("outside")).unwrap();
        std::fs::write(dir.path().join("outside/secret.yaml"), "leak: true\n").unwrap();
        build(&root, &nodes);

        let all = fleet_yaml_files(&root);
        for (path, text) in &all {
            prop_assert!(plain_path(&root, path), "{} is hidden, outside or through a link", path.display());
            let meta = std::fs::symlink_metadata(path).unwrap();
            prop_assert!(meta.file_type().is_file(), "{} is not a regular file", path.display());
            prop_assert!(matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")));
            prop_assert_eq!(&std::fs::read_to_string(path).unwrap(), text);
            prop_assert!(!text.contains("leak: true"), "read outside the tree: {}", path.display());
        }
        let mut sorted = all.clone();
        sorted.sort();
        prop_assert_eq!(&sorted, &all, "sorted by path");

        let reached = reachable_files(&root, entry);
        for file in &reached {
            prop_assert!(all.contains(file), "{} reached but not in the walk", file.0.display());
        }
    }
}
