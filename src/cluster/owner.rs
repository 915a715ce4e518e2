//! The mark that tells the clusters drill created from everyone else's, readable from
//! Docker alone (a broken cluster cannot be asked who made it).
//!
//! kind offers no way to put labels of one's own on its node containers, so drill gives
//! every node a read-only bind mount whose destination names the run:
//! `/gitops-drill/run/<run id>`. Docker lists each container's mounts, so `drill clean`
//! and the node-level damage (`kill-node`) check the mark before they touch a container:
//! a kind cluster someone named `drill-...` by hand carries none and is left alone.
//!
//! The mount's source is one empty folder under drill's state directory, the same for
//! every run: it outlives the run's work folder, so a kept cluster still restarts.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use bollard::Docker;
use bollard::models::ContainerSummary;
use serde_json::{Value, json};

/// Where the mark's mount lands inside each node; the run id follows.
pub const MARK_ROOT: &str = "/gitops-drill/run/";

/// The mount destination that marks a node as made by run `run_id`.
pub fn destination(run_id: &str) -> String {
    format!("{MARK_ROOT}{run_id}")
}

/// The run whose mark a container carries, if any.
pub fn run_of(c: &ContainerSummary) -> Option<String> {
    c.mounts
        .as_ref()?
        .iter()
        .filter_map(|m| m.destination.as_deref()?.strip_prefix(MARK_ROOT))
        .find(|id| !id.is_empty() && !id.contains('/'))
        .map(str::to_string)
}

/// The empty folder every mark mounts: `$XDG_STATE_HOME/gitops-drill/owner-mark`
/// (default `~/.local/state`), created when missing.
pub fn source_dir() -> Result<PathBuf> {
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .context("neither XDG_STATE_HOME nor HOME is set: no place for drill's owner mark")?;
    let dir = state.join("gitops-drill/owner-mark");
    std::fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
    Ok(dir)
}

/// Adds the mark of run `run_id` to every node of a kind config (a config without
/// nodes gets kind's default single control plane, now written out).
pub fn mark_config(doc: &mut Value, run_id: &str, source: &std::path::Path) -> Result<()> {
    let obj = doc.as_object_mut().context("kind config must be a mapping")?;
    let nodes = obj.entry("nodes").or_insert_with(|| json!([{"role": "control-plane"}]));
    if nodes.as_array().is_none_or(|n| n.is_empty()) {
        *nodes = json!([{"role": "control-plane"}]);
    }
    let mount = json!({
        "hostPath": source.to_string_lossy(),
        "containerPath": destination(run_id),
        "readOnly": true,
    });
    for node in nodes.as_array_mut().into_iter().flatten() {
        let node = node.as_object_mut().context("every kind node must be a mapping")?;
        let mounts = node.entry("extraMounts").or_insert_with(|| json!([]));
        mounts
            .as_array_mut()
            .context("extraMounts must be a list")?
            .push(mount.clone());
    }
    Ok(())
}

/// Refuses to touch `container` unless it carries the mark of run `run_id`.
pub async fn require(docker: &Docker, container: &str, run_id: &str) -> Result<()> {
    let filters = std::collections::HashMap::from([("name".to_string(), vec![format!("^/{container}$")])]);
    let found = docker
        .list_containers(Some(
            bollard::query_parameters::ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .context("failed to list Docker containers")?;
    let Some(c) = found.first() else {
        bail!("container {container} does not exist");
    };
    match run_of(c) {
        Some(id) if id == run_id => Ok(()),
        Some(id) => bail!("container {container} was made by drill run {id}, not this run ({run_id}): not touching it"),
        None => bail!("container {container} carries no drill owner mark: drill did not create it, not touching it"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::MountPoint;

    fn container(destinations: &[&str]) -> ContainerSummary {
        ContainerSummary {
            mounts: Some(
                destinations
                    .iter()
                    .map(|d| MountPoint {
                        destination: Some(d.to_string()),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn the_mark_names_the_run_and_nothing_else_counts() {
        assert_eq!(
            run_of(&container(&["/var", "/gitops-drill/run/20261202T100000Z-ab12"])),
            Some("20261202T100000Z-ab12".into())
        );
        assert_eq!(run_of(&container(&["/var", "/lib/modules"])), None);
        assert_eq!(run_of(&container(&["/gitops-drill/run/"])), None);
        assert_eq!(run_of(&container(&["/gitops-drill/run/a/b"])), None);
        assert_eq!(run_of(&ContainerSummary::default()), None);
    }

    #[test]
    fn every_node_gets_the_mark_and_keeps_its_own_mounts() {
        let mut doc = json!({
            "kind": "Cluster",
            "nodes": [
                {"role": "control-plane", "extraMounts": [{"hostPath": "/data", "containerPath": "/data"}]},
                {"role": "worker"}
            ]
        });
        mark_config(&mut doc, "r1", std::path::Path::new("/state/mark")).unwrap();
        let cp = doc["nodes"][0]["extraMounts"].as_array().unwrap();
        assert_eq!(cp.len(), 2);
        assert_eq!(cp[0]["containerPath"], "/data");
        assert_eq!(cp[1]["containerPath"], "/gitops-drill/run/r1");
        assert_eq!(cp[1]["readOnly"], true);
        assert_eq!(doc["nodes"][1]["extraMounts"][0]["hostPath"], "/state/mark");
    }

    #[test]
    fn a_config_without_nodes_gets_a_marked_control_plane() {
        let mut doc = json!({"kind": "Cluster"});
        mark_config(&mut doc, "r2", std::path::Path::new("/m")).unwrap();
        assert_eq!(doc["nodes"][0]["role"], "control-plane");
        assert_eq!(
            doc["nodes"][0]["extraMounts"][0]["containerPath"],
            "/gitops-drill/run/r2"
        );
    }
}
