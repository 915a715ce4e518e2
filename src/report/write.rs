//! Writes a run's reports under `<report-dir>/<scenario>/<UTC timestamp>/`.
//!
//! Nothing half-written is ever visible: files go into a hidden staging folder,
//! which is renamed into place only when every file is complete. Report files are
//! readable by the user only (0600): they name cluster objects and images.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::markdown::{self, HistoryEntry};
use super::{Report, incident, junit, table};
use crate::event::DrillEvent;

#[derive(Debug)]
pub struct Written {
    pub dir: PathBuf,
}

/// Writes report.json, junit.xml, summary.md, report.html, table.txt and events.jsonl, then
/// appends history.
/// `extra`: more files for the run's folder (drill.log, failure evidence under
/// `evidence/`), each a relative path without `..`.
pub fn write_run(
    report_root: &Path,
    report: &Report,
    events: &[DrillEvent],
    extra: &[(String, Vec<u8>)],
) -> Result<Written> {
    let scenario_dir = report_root.join(&report.scenario);
    fs::create_dir_all(&scenario_dir)
        .with_context(|| format!("failed to create report folder {}", scenario_dir.display()))?;
    let history_path = scenario_dir.join("history.jsonl");
    let past = read_history(&history_path);

    let stamp = report
        .started_at
        .map(|t| t.strftime("%Y%m%dT%H%M%SZ").to_string())
        .unwrap_or_else(|| report.run_id.clone());
    let events_text: String = events
        .iter()
        .map(|e| serde_json::to_string(e).map(|line| line + "\n"))
        .collect::<Result<_, _>>()
        .context("failed to encode events")?;
    let mut files: Vec<(&str, Vec<u8>)> = vec![
        ("report.json", report.to_json().into_bytes()),
        ("junit.xml", junit::render(std::slice::from_ref(report)).into_bytes()),
        ("summary.md", markdown::render(report, &past).into_bytes()),
        (
            "report.html",
            super::html::render_with_history(report, &past).into_bytes(),
        ),
        ("table.txt", table::render(report).into_bytes()),
        ("events.jsonl", events_text.into_bytes()),
    ];
    for (name, bytes) in extra {
        if Path::new(name)
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            anyhow::bail!("report file {name} is not a plain relative path");
        }
        files.push((name.as_str(), bytes.clone()));
    }
    if incident::applies(events) {
        files.push(("incident.md", incident::render(report, events).into_bytes()));
    }
    let final_dir = publish(&scenario_dir, &stamp, &report.run_id, &files)?;

    let line = serde_json::to_string(&HistoryEntry::of(report)).context("failed to encode history entry")? + "\n";
    let mut history = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&history_path)
        .with_context(|| format!("failed to open {}", history_path.display()))?;
    history
        .write_all(line.as_bytes())
        .with_context(|| format!("failed to append to {}", history_path.display()))?;
    Ok(Written { dir: final_dir })
}

/// Writes one file atomically: a hidden sibling first, renamed into place, so a reader
/// (or a full disk) never sees half of it.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("{} names no file", path.display()))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let staging = dir.join(format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id()));
    let written = fs::write(&staging, bytes).and_then(|()| fs::rename(&staging, path));
    if let Err(err) = written {
        let _ = fs::remove_file(&staging);
        return Err(err).with_context(|| format!("failed to write {}", path.display()));
    }
    Ok(())
}

/// Past runs of a scenario, oldest first; unreadable lines are skipped, not fatal.
pub fn read_history(path: &Path) -> Vec<HistoryEntry> {
    super::history::read(path)
}

/// Writes `files` into a hidden staging folder of run `run_id` in `parent`, then renames
/// it to `parent/<stamp>` (or `<stamp>-2`, ... when taken); returns that folder. On any
/// failure the staging folder is removed and no report folder appears.
///
/// Two runs that started in the same second share a stamp: each stages under its own
/// run id, and a rename that finds the name taken tries the next, so neither can
/// overwrite or remove the other's files.
fn publish(parent: &Path, stamp: &str, run_id: &str, files: &[(&str, Vec<u8>)]) -> Result<PathBuf> {
    let staging = parent.join(format!(".{run_id}.partial"));
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir_all(&staging).with_context(|| format!("failed to create {}", staging.display()))?;
    let result = files
        .iter()
        .try_for_each(|(file, bytes)| {
            let path = staging.join(file);
            if let Some(folder) = path.parent().filter(|f| *f != staging) {
                use std::os::unix::fs::DirBuilderExt as _;
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(folder)
                    .with_context(|| format!("failed to create {}", folder.display()))?;
            }
            write_private(&path, bytes)
        })
        .and_then(|()| rename_to_free_name(&staging, parent, stamp));
    if result.is_err() {
        let _ = fs::remove_dir_all(&staging);
    }
    result
}

fn rename_to_free_name(staging: &Path, parent: &Path, stamp: &str) -> Result<PathBuf> {
    for n in 1..1000 {
        let target = match n {
            1 => parent.join(stamp),
            n => parent.join(format!("{stamp}-{n}")),
        };
        // A report folder is never empty, so renaming onto one fails (ENOTEMPTY) rather
        // than replacing it.
        match fs::rename(staging, &target) {
            Ok(()) => return Ok(target),
            Err(_) if target.exists() => continue,
            Err(e) => return Err(e).with_context(|| format!("failed to move reports into {}", target.display())),
        }
    }
    anyhow::bail!("no free report folder name for {stamp} in {}", parent.display())
}

/// Writes a file readable only by its owner, flushing it to disk before it is renamed.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("failed to create {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("failed to write {}", path.display()))?;
    file.sync_all()
        .with_context(|| format!("failed to flush {}", path.display()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;
    use crate::report::fixtures::failed_report;

    #[test]
    fn a_single_file_is_written_whole_and_leaves_no_staging_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ci/junit.xml");
        write_file(&path, b"<testsuites/>").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "<testsuites/>");
        let names: Vec<_> = fs::read_dir(dir.path().join("ci"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert!(
            write_file(dir.path(), b"x").is_err(),
            "a folder is not a file to replace"
        );
    }

    #[test]
    fn a_run_is_written_whole_with_private_files_and_history() {
        let root = tempfile::tempdir().unwrap();
        let report = failed_report();
        let first = write_run(root.path(), &report, &[], &[]).unwrap();
        let second = write_run(root.path(), &report, &[], &[]).unwrap();
        assert_ne!(
            first.dir, second.dir,
            "a second run in the same second gets its own folder"
        );
        for name in [
            "report.json",
            "junit.xml",
            "summary.md",
            "report.html",
            "table.txt",
            "events.jsonl",
        ] {
            let meta = fs::metadata(first.dir.join(name)).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{name}");
        }
        let parsed: Report = serde_json::from_str(&fs::read_to_string(first.dir.join("report.json")).unwrap()).unwrap();
        assert_eq!(parsed, report);
        let history = read_history(&root.path().join("flux-namespace-loss/history.jsonl"));
        assert_eq!(history.len(), 2);
        let leftovers: Vec<_> = fs::read_dir(root.path().join("flux-namespace-loss"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn extra_files_land_in_private_subfolders_and_a_path_out_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let report = failed_report();
        let extra = vec![
            ("drill.log".to_string(), b"log\n".to_vec()),
            ("evidence/logs/users/ghost/app.log".to_string(), b"line\n".to_vec()),
        ];
        let written = write_run(root.path(), &report, &[], &extra).unwrap();
        let log = written.dir.join("evidence/logs/users/ghost/app.log");
        assert_eq!(fs::read_to_string(&log).unwrap(), "line\n");
        assert_eq!(fs::metadata(&log).unwrap().permissions().mode() & 0o777, 0o600);
        let folder = fs::metadata(written.dir.join("evidence")).unwrap();
        assert_eq!(folder.permissions().mode() & 0o777, 0o700);
        for bad in ["../escape.txt", "/etc/x", "evidence/../../x"] {
            let err = write_run(root.path(), &report, &[], &[(bad.to_string(), vec![])]).unwrap_err();
            assert!(err.to_string().contains("not a plain relative path"), "{bad}: {err}");
        }
        assert!(!root.path().join("escape.txt").exists());
    }

    #[test]
    fn a_write_that_fails_midway_leaves_nothing_behind() {
        let root = tempfile::tempdir().unwrap();
        // The second file cannot be created (its folder would be the first file): the
        // first is already written.
        let files = vec![
            ("report.json", b"{}".to_vec()),
            ("report.json/junit.xml", b"<x/>".to_vec()),
        ];
        let err = publish(root.path(), "20261123T100000Z", "run-1", &files).unwrap_err();
        assert!(format!("{err:#}").contains("failed to create"), "{err:#}");
        assert_eq!(
            fs::read_dir(root.path()).unwrap().count(),
            0,
            "no staging folder and no report folder"
        );
    }

    #[test]
    fn runs_that_share_a_second_get_their_own_folders() {
        let root = tempfile::tempdir().unwrap();
        let files = |n: &str| vec![("report.json", n.as_bytes().to_vec())];
        let a = publish(root.path(), "20261202T100000Z", "20261202T100000Z-aaaa", &files("a")).unwrap();
        let b = publish(root.path(), "20261202T100000Z", "20261202T100000Z-bbbb", &files("b")).unwrap();
        assert_eq!(a, root.path().join("20261202T100000Z"));
        assert_eq!(b, root.path().join("20261202T100000Z-2"));
        assert_eq!(fs::read_to_string(a.join("report.json")).unwrap(), "a");
        assert_eq!(fs::read_to_string(b.join("report.json")).unwrap(), "b");
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 2, "no staging left");
    }
}
