//! `drill clean`: deletes every kind cluster drill created, and their pull-through
//! caches. A cluster counts as drill's when its name starts with `drill-` and its node
//! containers carry drill's owner mark ([`crate::cluster::owner`]); a kind cluster
//! someone else named `drill-...` is reported and left alone, and so is the cluster of a
//! run still in progress (it holds its [`crate::runlock`]). Work folders no live run
//! holds are removed too. Idempotent.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use bollard::Docker;

use crate::cluster::containers;

pub const CLUSTER_PREFIX: &str = "drill-";

/// kind clusters named `drill-...`, each with the run whose mark its nodes carry (None:
/// no node carries one, so drill did not create it).
pub async fn drill_named_clusters(docker: &Docker) -> Result<BTreeMap<String, Option<String>>> {
    let label = "io.x-k8s.kind.cluster";
    let mut clusters: BTreeMap<String, Option<String>> = BTreeMap::new();
    for c in containers::labelled(docker, label, true).await? {
        let Some(name) = containers::label_of(&c, label).filter(|n| n.starts_with(CLUSTER_PREFIX)) else {
            continue;
        };
        let run = crate::cluster::owner::run_of(&c);
        let entry = clusters.entry(name).or_default();
        if entry.is_none() {
            *entry = run;
        }
    }
    Ok(clusters)
}

/// What `drill clean` found (and, unless a dry run, removed).
#[derive(Debug, Default)]
pub struct Cleaned {
    pub clusters: Vec<String>,
    /// Pull-through cache containers (`images: mirror`), by container name.
    pub mirrors: Vec<String>,
    /// Clusters named like drill's whose nodes carry no owner mark: left alone.
    pub not_drills: Vec<String>,
    /// What could not be deleted, and why: clean goes on past each and reports it.
    pub failed: Vec<(String, String)>,
    /// Clusters of runs still in progress (their run holds its lock): left alone, with
    /// the run's PID.
    pub in_use: Vec<(String, u32)>,
    /// Work folders of runs no process holds (a crash or kill -9 left them): kubeconfigs
    /// and served repos, removed.
    pub work_folders: Vec<String>,
    /// Report staging folders a run killed while writing left (`.<run id>.partial`).
    pub partial_reports: Vec<String>,
}

impl Cleaned {
    /// The answer as one JSON document (`drill clean -o json`).
    pub fn to_json(&self, dry_run: bool) -> serde_json::Value {
        let failed: Vec<_> = (self.failed.iter())
            .map(|(what, why)| serde_json::json!({"what": what, "why": why}))
            .collect();
        let in_use: Vec<_> = (self.in_use.iter())
            .map(|(cluster, pid)| serde_json::json!({"cluster": cluster, "pid": pid}))
            .collect();
        serde_json::json!({"dry_run": dry_run, "clusters": self.clusters, "mirrors": self.mirrors,
            "left_alone": self.not_drills, "in_use": in_use, "work_folders": self.work_folders,
            "partial_reports": self.partial_reports, "failed": failed})
    }

    /// The answer for people, a line per thing (failures are the caller's, on stderr).
    pub fn lines(&self, dry_run: bool) -> Vec<String> {
        let verb = if dry_run { "would delete" } else { "deleted" };
        let mut out = Vec::new();
        if self.clusters.is_empty() && self.mirrors.is_empty() && self.failed.is_empty() && self.in_use.is_empty() {
            out.push("no drill clusters found".to_string());
        }
        for (name, pid) in &self.in_use {
            out.push(format!(
                "left cluster {name} alone: its run is still in progress (drill, pid {pid})"
            ));
        }
        out.extend(
            self.work_folders
                .iter()
                .map(|d| format!("{verb} work folder {d} (no run holds it)")),
        );
        out.extend(
            self.partial_reports
                .iter()
                .map(|d| format!("{verb} half-written report {d} (its run was killed while writing)")),
        );
        out.extend(self.clusters.iter().map(|n| format!("{verb} cluster {n}")));
        out.extend(self.mirrors.iter().map(|n| format!("{verb} pull-through cache {n}")));
        out.extend(self.not_drills.iter().map(|n| {
            format!(
                "left cluster {n} alone: its nodes carry no drill owner mark, so drill did not create it \
                 (`kind delete cluster --name {n}` removes it)"
            )
        }));
        out
    }
}

/// A run's work folder, where its lock lives.
fn work_dir_of(run_id: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("drill-{run_id}"))
}

/// `drill-<run id>`, the run id as [`crate::runner::run_id`] makes it
/// (`20261204T150357Z-f36c`): nothing else in $TMPDIR is ever touched.
fn is_run_folder(name: &str) -> bool {
    let Some(id) = name.strip_prefix(CLUSTER_PREFIX) else {
        return false;
    };
    let b = id.as_bytes();
    b.len() == 21
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'T'
        && b[9..15].iter().all(u8::is_ascii_digit)
        && &b[15..17] == b"Z-"
        && b[17..].iter().all(u8::is_ascii_hexdigit)
}

/// Work folders (`$TMPDIR/drill-<run id>`) no live run holds. One without a lock file is
/// counted only after a minute: a run that is just starting makes its folder first.
fn dead_work_folders() -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return Vec::new();
    };
    let minute_old = |p: &std::path::Path| {
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > std::time::Duration::from_secs(60))
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| is_run_folder(&n.to_string_lossy())))
        // Never follow a link: only drill's own folders, made by this user.
        .filter(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir()))
        .filter(|p| crate::runlock::holder(p).is_none())
        .filter(|p| p.join(crate::runlock::LOCK_FILE).exists() || minute_old(p))
        .collect()
}

/// Report staging folders (`<report dir>/<scenario>/.<run id>.partial`) ten minutes old:
/// a run writes its reports in milliseconds, so one that old was left by a run killed
/// while writing (SIGKILL, a power cut). Nothing else in the report folder is touched.
fn dead_partial_reports(report_dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let old = |p: &std::path::Path| {
        std::fs::symlink_metadata(p)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > std::time::Duration::from_secs(600))
    };
    let scenarios = std::fs::read_dir(report_dir).into_iter().flatten().flatten();
    scenarios
        .filter(|s| s.file_type().is_ok_and(|t| t.is_dir()))
        .flat_map(|s| std::fs::read_dir(s.path()).into_iter().flatten().flatten())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            name.strip_prefix('.')
                .and_then(|n| n.strip_suffix(".partial"))
                .is_some_and(|id| is_run_folder(&format!("{CLUSTER_PREFIX}{id}")))
        })
        .map(|e| e.path())
        .filter(|p| old(p))
        .collect()
}

pub async fn clean(dry_run: bool, report_dir: &std::path::Path) -> Result<Cleaned> {
    let mut cleaned = Cleaned::default();
    // Docker down is one failure among the rest: the work folders are still cleaned.
    let docker = Docker::connect_with_local_defaults().context("failed to connect to Docker");
    let clusters = match docker {
        Ok(docker) => clean_clusters(&docker, dry_run, &mut cleaned).await,
        Err(err) => Err(err),
    };
    if let Err(err) = clusters {
        cleaned.failed.push(("clusters and caches".into(), format!("{err:#}")));
    }
    let folders = remove_folders(dead_work_folders(), dry_run, "work folder", &mut cleaned.failed);
    cleaned.work_folders = folders;
    let partial = remove_folders(
        dead_partial_reports(report_dir),
        dry_run,
        "report staging folder",
        &mut cleaned.failed,
    );
    cleaned.partial_reports = partial;
    Ok(cleaned)
}

/// Removes each folder (unless a dry run); returns those removed (or to remove), and
/// adds each failure to `failed`, going on past it.
fn remove_folders(
    dirs: Vec<std::path::PathBuf>,
    dry_run: bool,
    what: &str,
    failed: &mut Vec<(String, String)>,
) -> Vec<String> {
    let mut done = Vec::new();
    for dir in dirs {
        let shown = dir.display().to_string();
        match if dry_run { Ok(()) } else { std::fs::remove_dir_all(&dir) } {
            Ok(()) => done.push(shown),
            Err(err) => failed.push((format!("{what} {shown}"), err.to_string())),
        }
    }
    done
}

/// Deletes drill's clusters of dead runs and their pull-through caches.
async fn clean_clusters(docker: &Docker, dry_run: bool, cleaned: &mut Cleaned) -> Result<()> {
    for (name, run) in drill_named_clusters(docker).await? {
        match run {
            Some(run) => match crate::runlock::holder(&work_dir_of(&run)) {
                Some(pid) => cleaned.in_use.push((name, pid)),
                None => cleaned.clusters.push(name),
            },
            None => cleaned.not_drills.push(name),
        }
    }
    if !dry_run {
        let mut deleted = Vec::new();
        for name in std::mem::take(&mut cleaned.clusters) {
            match crate::cluster::kind::delete_cluster(&name, None).await {
                Ok(()) => deleted.push(name),
                Err(err) => cleaned.failed.push((format!("cluster {name}"), format!("{err:#}"))),
            }
        }
        cleaned.clusters = deleted;
    }
    // A cache outlives its cluster on purpose during a run; after it, it is an orphan.
    // Caches are drill's own containers (made through Docker, labelled), never kind's.
    let mirrors: Vec<String> = crate::cluster::mirror::caches(docker)
        .await?
        .into_iter()
        .filter(|cluster| cluster.starts_with(CLUSTER_PREFIX))
        .filter(|cluster| !cleaned.in_use.iter().any(|(live, _)| live == cluster))
        .collect();
    for cluster in mirrors {
        let container = crate::cluster::mirror::container_name(&cluster);
        if dry_run {
            cleaned.mirrors.push(container);
            continue;
        }
        match crate::cluster::mirror::remove(docker, &cluster).await {
            Ok(_) => cleaned.mirrors.push(container),
            Err(err) => cleaned
                .failed
                .push((format!("pull-through cache {container}"), format!("{err:#}"))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_folders_named_for_a_run_are_work_folders() {
        assert!(is_run_folder(&format!("drill-{}", crate::runner::run_id())));
        assert!(is_run_folder("drill-20261204T150357Z-f36c"));
        for other in [
            "drill-cli-engine-test",
            "drill-",
            "drill-20261204T150357Z-f36",
            "mine-20261204T150357Z-f36c",
        ] {
            assert!(!is_run_folder(other), "{other}");
        }
    }
}
