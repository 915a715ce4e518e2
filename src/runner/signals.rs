//! Cleanup when the run stops without its own teardown: interrupted (Ctrl-C, CI cancel
//! = SIGTERM) or panicked. The caller first cancels the run (drops its future, so
//! nothing else tears down concurrently), then calls [`clean_up_after`]: the run's
//! cluster, pull-through cache and work folder are deleted, and drill exits only when
//! the deletion has finished. A second signal during cleanup skips it and says how to
//! finish (`drill clean`).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

struct Current {
    cluster: String,
    kubeconfig: PathBuf,
    work_dir: PathBuf,
    /// `images: mirror`: the cluster's pull-through cache container is running too.
    mirror: bool,
}

static CURRENT: Mutex<Option<Current>> = Mutex::new(None);

pub fn register_cluster(name: &str, kubeconfig: &Path, work_dir: &Path) {
    if let Ok(mut c) = CURRENT.lock() {
        *c = Some(Current {
            cluster: name.to_string(),
            kubeconfig: kubeconfig.to_path_buf(),
            work_dir: work_dir.to_path_buf(),
            mirror: false,
        });
    }
}

/// The registered cluster has a pull-through cache to remove with it.
pub fn register_mirror(cluster: &str) {
    if let Ok(mut c) = CURRENT.lock()
        && let Some(current) = c.as_mut().filter(|c| c.cluster == cluster)
    {
        current.mirror = true;
    }
}

pub fn unregister_cluster() {
    if let Ok(mut c) = CURRENT.lock() {
        *c = None;
    }
}

/// The signals that stop a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Interrupt,
    Terminate,
}

impl Signal {
    /// The exit code after cleanup: 128 + the signal's number, as a shell reports it.
    pub fn exit(self) -> crate::exit::Exit {
        match self {
            Signal::Interrupt => crate::exit::Exit::Interrupted,
            Signal::Terminate => crate::exit::Exit::Terminated,
        }
    }
}

/// Resolves on the first SIGINT or SIGTERM, saying which.
pub async fn interrupted() -> Signal {
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => Signal::Interrupt,
        _ = term.recv() => Signal::Terminate,
    }
}

/// Deletes the run's registered cluster (waiting for kind to finish), its pull-through
/// cache and work folder, after the run stopped without its own teardown: interrupted,
/// or panicked. `why` starts the line that says so.
pub async fn clean_up_after(why: &str) {
    let current = CURRENT.lock().ok().and_then(|mut c| c.take());
    let Some(current) = current else { return };
    eprintln!(
        "{why}: deleting cluster {} (interrupt again to skip; then run `drill clean`)",
        current.cluster
    );
    let delete = crate::cluster::kind::delete_cluster_fully(&current.cluster, Some(&current.kubeconfig));
    let skipped = tokio::select! {
        result = delete => {
            if let Err(err) = result {
                eprintln!("failed to delete cluster {}: {err:#}; run `drill clean`", current.cluster);
            }
            false
        }
        _ = interrupted() => {
            eprintln!("cleanup skipped: run `drill clean` to remove {}", current.cluster);
            true
        }
    };
    if current.mirror && !skipped {
        let removed = match bollard::Docker::connect_with_local_defaults() {
            Ok(docker) => crate::cluster::mirror::remove(&docker, &current.cluster).await,
            Err(e) => Err(e.into()),
        };
        if let Err(err) = removed {
            eprintln!("{err:#}; run `drill clean`");
        }
    }
    let _ = std::fs::remove_dir_all(&current.work_dir);
}
