//! The fleet's files as they sit in the checkout drill serves: which YAML files there
//! are, and which of them the scenario's entry folder reaches. Used for warnings, the
//! secrets preflight and the image list; never to decide what the engine applies.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// A YAML file larger than this is skipped: fleet manifests are kilobytes, and a hostile
/// or broken checkout must not make drill read gigabytes.
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;
/// At most this many entries are looked at in a walk.
pub const MAX_ENTRIES: usize = 100_000;

/// Every YAML file of the fleet with its text, sorted by path; hidden files and folders
/// (`.git`, `.sops.yaml`) and unreadable files are skipped. Only regular files and real
/// folders count: a symbolic link is never followed (a link cycle or a link to a device
/// would never end), and files over [`MAX_FILE_BYTES`] are skipped.
pub fn fleet_yaml_files(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    let mut seen = 0usize;
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            seen += 1;
            if seen > MAX_ENTRIES {
                return sorted(out);
            }
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            // The entry's own type: a symbolic link is neither a folder nor a file here.
            let Ok(kind) = entry.file_type() else { continue };
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file()
                && matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
                && entry.metadata().is_ok_and(|m| m.len() <= MAX_FILE_BYTES)
                && let Ok(text) = std::fs::read_to_string(&path)
            {
                out.push((path, text));
            }
        }
    }
    sorted(out)
}

fn sorted(mut files: Vec<(PathBuf, String)>) -> Vec<(PathBuf, String)> {
    files.sort();
    files
}

/// The fleet's YAML files reachable from the entry folder: the entry's own files, then
/// every folder a reached file names by its path (`path: ./apps/users-api`,
/// `chart: ./charts/reports`), until nothing new is named.
pub fn reachable_files(fleet: &Path, entry: &str) -> Vec<(PathBuf, String)> {
    let all = fleet_yaml_files(fleet);
    let folder_of = |p: &Path| {
        p.parent()
            .and_then(|d| d.strip_prefix(fleet).ok())
            .map(|d| d.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let folders: BTreeSet<String> = all
        .iter()
        .map(|(p, _)| folder_of(p))
        .filter(|f| !f.is_empty())
        .collect();
    let entry = entry.trim_start_matches("./").trim_end_matches('/').to_string();
    let mut reached: BTreeSet<String> = BTreeSet::new();
    let mut queue = vec![entry];
    while let Some(folder) = queue.pop() {
        if !reached.insert(folder.clone()) {
            continue;
        }
        for (_, text) in all.iter().filter(|(p, _)| folder_of(p) == folder) {
            for other in &folders {
                if !reached.contains(other) && names_folder(text, other) {
                    queue.push(other.clone());
                }
            }
        }
    }
    all.into_iter()
        .filter(|(p, _)| reached.contains(&folder_of(p)))
        .collect()
}

/// Whether a file's text names a folder as a path (so `apps/users-api` does not match
/// inside `apps/users-api-v2`).
fn names_folder(text: &str, folder: &str) -> bool {
    text.match_indices(folder).any(|(at, _)| {
        let after = text[at + folder.len()..].chars().next();
        let before = text[..at].chars().next_back();
        matches!(after, None | Some('/' | '"' | '\'' | '\n' | '\r' | ' ' | ','))
            && matches!(before, None | Some('/' | '"' | '\'' | ' ' | '.' | ':'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hostile_checkout_is_walked_without_following_links_or_reading_huge_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("apps")).unwrap();
        std::fs::write(root.join("apps/app.yaml"), "kind: ConfigMap\n").unwrap();
        // A cycle, a link out of the checkout, a device, and a file too big to read.
        std::os::unix::fs::symlink(root, root.join("apps/loop")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("etc")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", root.join("zero.yaml")).unwrap();
        let big = std::fs::File::create(root.join("big.yaml")).unwrap();
        big.set_len(MAX_FILE_BYTES + 1).unwrap();
        let files = fleet_yaml_files(root);
        let names: Vec<String> = files
            .iter()
            .map(|(p, _)| p.strip_prefix(root).unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["apps/app.yaml"]);
    }

    #[test]
    fn a_folder_is_named_as_a_path_not_as_a_prefix() {
        assert!(names_folder("path: ./apps/users-api\n", "apps/users-api"));
        assert!(!names_folder("path: ./apps/users-api-v2\n", "apps/users-api"));
    }

    #[test]
    fn the_entry_reaches_what_it_names_and_what_that_names() {
        let fleet = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fleet");
        let files: Vec<String> = reachable_files(&fleet, "clusters/demo")
            .into_iter()
            .map(|(p, _)| p.strip_prefix(&fleet).unwrap().display().to_string())
            .collect();
        assert!(
            files.contains(&"apps/users-api/deployment.yaml".to_string()),
            "{files:?}"
        );
        // clusters/demo -> releases/reports.yaml -> ./charts/reports
        assert!(files.contains(&"charts/reports/values.yaml".to_string()), "{files:?}");
        assert!(!files.iter().any(|f| f.starts_with("apps/ghost")), "{files:?}");
    }
}
