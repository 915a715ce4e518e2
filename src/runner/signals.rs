//! Cleanup when the run stops without its own teardown: interrupted (Ctrl-C, CI cancel
//! = SIGTERM) or panicked. The caller first cancels the run (drops its future, so
//! nothing else tears down concurrently), then calls [`clean_up_after`]: the run's
//! cluster, pull-through cache and work folder are deleted, and drill exits only when
//! the deletion has finished. A second signal does not stop it: CI cancels send two
//! (GitHub Actions: SIGINT, then SIGTERM some seconds later), and a cluster left by a
//! cancelled nightly job would stay forever. A third skips the cleanup and says how to
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
    if let Some((context, left)) = super::left_behind::take() {
        eprintln!("{why}: context {context} is not drill's to delete; the run leaves there:");
        for what in left {
            eprintln!("  {what}");
        }
    }
    let current = CURRENT.lock().ok().and_then(|mut c| c.take());
    let Some(current) = current else { return };
    // Listen before saying so: a signal sent on reading the line must not fall between
    // the line and the listener (a new tokio listener does not see earlier signals).
    let listeners = CleanupSignals::listen();
    eprintln!(
        "{why}: deleting cluster {} (two more interrupts skip this; then run `drill clean`)",
        current.cluster
    );
    let skipped = delete_unless_interrupted_twice(&current.cluster, &current.kubeconfig, listeners).await;
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

/// SIGINT and SIGTERM listeners for the cleanup.
struct CleanupSignals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl CleanupSignals {
    /// None when the signals cannot be listened to (the cleanup then just runs).
    fn listen() -> Option<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Some(Self {
            int: signal(SignalKind::interrupt()).ok()?,
            term: signal(SignalKind::terminate()).ok()?,
        })
    }
}

/// Deletes the cluster; the first signal meanwhile is said and ignored, the second
/// stops waiting. Returns whether the deletion was skipped.
async fn delete_unless_interrupted_twice(cluster: &str, kubeconfig: &Path, listeners: Option<CleanupSignals>) -> bool {
    let Some(CleanupSignals { mut int, mut term }) = listeners else {
        // No signal handling: just delete.
        if let Err(err) = crate::cluster::kind::delete_cluster_fully(cluster, Some(kubeconfig)).await {
            eprintln!("failed to delete cluster {cluster}: {err:#}; run `drill clean`");
        }
        return false;
    };
    let delete = crate::cluster::kind::delete_cluster_fully(cluster, Some(kubeconfig));
    tokio::pin!(delete);
    let mut ignored = false;
    loop {
        tokio::select! {
            result = &mut delete => {
                if let Err(err) = result {
                    eprintln!("failed to delete cluster {cluster}: {err:#}; run `drill clean`");
                }
                return false;
            }
            _ = async { tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} } } => {
                if ignored {
                    eprintln!("cleanup skipped: run `drill clean` to remove {cluster}");
                    return true;
                }
                ignored = true;
                eprintln!("still deleting cluster {cluster} (one more interrupt skips it)");
            }
        }
    }
}
