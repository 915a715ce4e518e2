//! The fleet's files as they sit in the checkout drill serves: which YAML files there
//! are, and which of them the scenario's entry folder reaches. Used for warnings, the
//! secrets preflight and the image list; never to decide what the engine applies.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Every YAML file of the fleet with its text, sorted by path; hidden files and folders
/// (`.git`, `.sops.yaml`) and unreadable files are skipped.
pub fn fleet_yaml_files(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else if matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
                && let Ok(text) = std::fs::read_to_string(&path)
            {
                out.push((path, text));
            }
        }
    }
    out.sort();
    out
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
