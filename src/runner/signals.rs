//! Cleanup when the run is interrupted (Ctrl-C, CI cancel = SIGTERM): the cluster of
//! the run in progress is deleted; a second signal skips cleanup and says how to finish it.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

static CURRENT: Mutex<Option<(String, PathBuf)>> = Mutex::new(None);

pub fn register_cluster(name: &str, kubeconfig: &Path) {
    if let Ok(mut c) = CURRENT.lock() {
        *c = Some((name.to_string(), kubeconfig.to_path_buf()));
    }
}

pub fn unregister_cluster() {
    if let Ok(mut c) = CURRENT.lock() {
        *c = None;
    }
}

/// Waits for SIGINT or SIGTERM, deletes the registered cluster, and returns. A second
/// signal during cleanup exits at once.
pub async fn wait_and_clean_up() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    let current = CURRENT.lock().ok().and_then(|c| c.clone());
    let Some((name, kubeconfig)) = current else { return };
    eprintln!("interrupted: deleting cluster {name} (interrupt again to skip; then run `drill clean`)");
    let delete = tokio::process::Command::new("kind")
        .args(["delete", "cluster", "--name", &name, "--kubeconfig"])
        .arg(&kubeconfig)
        .output();
    tokio::select! {
        _ = delete => {}
        _ = tokio::signal::ctrl_c() => eprintln!("cleanup skipped: run `drill clean` to remove {name}"),
        _ = term.recv() => eprintln!("cleanup skipped: run `drill clean` to remove {name}"),
    }
}
