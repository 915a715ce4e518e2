//! kind clusters through the kind CLI (create/delete) and Docker (node containers).
//! [`provider::KindProvider`] is a cluster drill created, behind [`super::ClusterProvider`].

mod failure;
pub mod kept;
pub mod provider;

use std::path::Path;
use std::process::Stdio;

use anyhow::{Context, Result, bail};
use bollard::Docker;
use serde_json::{Value, json};
use tokio::process::Command;

use crate::profile::Profile;

/// Writes the kind config drill will use: the scenario's config with the profile's node
/// image (or the scenario's override) on every node, the profile's kubeadm patches, and
/// run `run_id`'s owner mark (a mount of `mark_source`) on every node.
pub fn effective_config(
    config: &Path,
    node_image: Option<&str>,
    profile: &Profile,
    (run_id, mark_source): (&str, &Path),
    out: &Path,
) -> Result<()> {
    let text =
        std::fs::read_to_string(config).with_context(|| format!("failed to read kind config {}", config.display()))?;
    let mut doc: Value = serde_saphyr::from_str(&text)
        .map_err(|e| anyhow::anyhow!("kind config {} is not valid YAML: {e}", config.display()))?;
    let image = node_image.map(str::to_string).or_else(|| profile.node_image.clone());
    if let Some(image) = image {
        if doc.get("nodes").and_then(Value::as_array).is_none_or(|n| n.is_empty()) {
            doc["nodes"] = json!([{"role": "control-plane"}]);
        }
        for node in doc["nodes"].as_array_mut().into_iter().flatten() {
            node["image"] = json!(image);
        }
    }
    if let Some(tag) = &profile.kubeadm_dns_tag {
        let patch = format!("kind: ClusterConfiguration\ndns:\n  imageTag: {tag}\n");
        let patches = doc
            .as_object_mut()
            .context("kind config must be a mapping")?
            .entry("kubeadmConfigPatches")
            .or_insert(json!([]));
        let already = patches
            .as_array()
            .is_some_and(|p| p.iter().any(|x| x.as_str().is_some_and(|s| s.contains("imageTag"))));
        if !already {
            patches
                .as_array_mut()
                .context("kubeadmConfigPatches must be a list")?
                .push(json!(patch));
        }
    }
    super::owner::mark_config(&mut doc, run_id, mark_source)?;
    // kind reads YAML, and JSON is YAML.
    std::fs::write(out, serde_json::to_string_pretty(&doc)?)
        .with_context(|| format!("failed to write {}", out.display()))
}

pub(super) async fn kind(args: &[&str]) -> Result<String> {
    tracing::debug!(?args, "running kind");
    let started = std::time::Instant::now();
    let output = Command::new("kind")
        .args(args)
        .stdin(Stdio::null())
        // An interrupted run drops this future: a `kind create` left running would make
        // nodes after the cleanup has deleted the cluster.
        .kill_on_drop(true)
        .output()
        .await
        .context("failed to run kind (is it on PATH? `drill doctor` checks)")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    tracing::debug!(?args, status = %output.status, took = ?started.elapsed(), "kind finished");
    if !output.status.success() {
        bail!("kind {} failed:\n{}", args.join(" "), failure::summary(&text));
    }
    Ok(text)
}

/// Writes the kubeconfig of cluster `name` to `path` (for a kept cluster taken up again).
pub async fn export_kubeconfig(name: &str, path: &Path) -> Result<()> {
    let kc = path.to_string_lossy();
    kind(&["export", "kubeconfig", "--name", name, "--kubeconfig", &kc])
        .await
        .with_context(|| format!("failed to write the kubeconfig of kind cluster {name}"))?;
    Ok(())
}

/// How often a cluster delete is tried before it is an error, and the pause between tries.
const DELETE_ATTEMPTS: u32 = 3;
const DELETE_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(3);

/// Deletes a kind cluster by name; returns when kind has removed its nodes. The one
/// place drill deletes clusters (runs, `drill clean`, interrupts).
///
/// Docker can fail to remove a node ("tried to kill container, but did not receive an
/// exit event"): on a cgroup v1 host the node's own runc can leave a pod's cgroup frozen,
/// so nothing in it ever exits, and a busy daemon can see the exit late. So every attempt
/// first thaws the cluster's frozen cgroups ([`super::freezer`]), and a failed delete is
/// tried again, up to [`DELETE_ATTEMPTS`] times, before its error is returned.
pub async fn delete_cluster(name: &str, kubeconfig: Option<&Path>) -> Result<()> {
    let kc = kubeconfig.map(|p| p.to_string_lossy().into_owned());
    let mut args = vec!["delete", "cluster", "--name", name];
    if let Some(kc) = kc.as_deref() {
        args.extend(["--kubeconfig", kc]);
    }
    let mut attempt = 1;
    loop {
        let thawed = thaw_nodes(name).await;
        if thawed > 0 {
            tracing::debug!("thawed {thawed} frozen cgroup(s) of cluster {name}");
        }
        match kind(&args).await {
            Ok(_) => return Ok(()),
            Err(err) if attempt < DELETE_ATTEMPTS => {
                tracing::debug!("delete of cluster {name} failed (attempt {attempt}): {err:#}");
                tokio::time::sleep(DELETE_RETRY_AFTER).await;
                attempt += 1;
            }
            Err(err) => return Err(err.context(format!("cluster {name} not deleted after {attempt} attempts"))),
        }
    }
}

/// Thaws the frozen cgroups of cluster `name`'s node containers; how many. Best effort:
/// without Docker nothing is thawed.
async fn thaw_nodes(name: &str) -> usize {
    let Ok(docker) = Docker::connect_with_local_defaults() else {
        return 0;
    };
    let label = format!("io.x-k8s.kind.cluster={name}");
    let ids: Vec<String> = super::containers::labelled(&docker, &label, true)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| c.id)
        .collect();
    super::freezer::thaw_containers(&ids)
}

/// Containers (running or not) that carry kind's label for cluster `name`.
pub async fn containers_of(docker: &Docker, name: &str) -> Result<Vec<String>> {
    let label = format!("io.x-k8s.kind.cluster={name}");
    Ok(super::containers::labelled(docker, &label, true)
        .await?
        .iter()
        .filter_map(super::containers::name_of)
        .collect())
}

/// Deletes cluster `name` until Docker lists none of its containers: after an interrupt
/// a `kind create` that was killed may still have a container creation in flight.
pub async fn delete_cluster_fully(name: &str, kubeconfig: Option<&Path>) -> Result<()> {
    let docker = Docker::connect_with_local_defaults().context("failed to connect to Docker")?;
    let mut last = Vec::new();
    for attempt in 0..3 {
        if attempt > 0 {
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        }
        delete_cluster(name, kubeconfig).await?;
        last = containers_of(&docker, name).await?;
        if last.is_empty() {
            return Ok(());
        }
    }
    bail!(
        "containers of cluster {name} are still there after three deletes: {}",
        last.join(", ")
    )
}

/// The gateway of kind's Docker network: the address pods reach this host at.
pub async fn kind_network_gateway(docker: &Docker) -> Result<std::net::IpAddr> {
    let network = docker
        .inspect_network("kind", None::<bollard::query_parameters::InspectNetworkOptions>)
        .await
        .context("failed to inspect Docker network `kind` (kind creates it with the first cluster)")?;
    network
        .ipam
        .and_then(|ipam| ipam.config)
        .into_iter()
        .flatten()
        .filter_map(|c| c.gateway)
        .filter_map(|g| g.parse().ok())
        .find(|ip: &std::net::IpAddr| ip.is_ipv4())
        .context("Docker network `kind` has no IPv4 gateway")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark() -> (&'static str, &'static Path) {
        ("r1", Path::new("/state/mark"))
    }

    #[test]
    fn the_profile_sets_node_images_and_the_coredns_tag() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("kind.yaml");
        std::fs::write(
            &config,
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n  - role: control-plane\n  - role: worker\n",
        )
        .unwrap();
        let profile = Profile {
            node_image: Some("offline/node:1".into()),
            kubeadm_dns_tag: Some("v1.14.3".into()),
            ..Profile::default()
        };
        let out = dir.path().join("effective.json");
        effective_config(&config, None, &profile, mark(), &out).unwrap();
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        assert_eq!(doc["nodes"][1]["image"], "offline/node:1");
        assert!(
            doc["kubeadmConfigPatches"][0]
                .as_str()
                .unwrap()
                .contains("imageTag: v1.14.3")
        );
        // The scenario's own override wins over the profile.
        effective_config(&config, Some("mine:2"), &profile, mark(), &out).unwrap();
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        assert_eq!(doc["nodes"][0]["image"], "mine:2");
    }

    #[test]
    fn online_runs_get_only_the_owner_mark() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("kind.yaml");
        std::fs::write(&config, "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n").unwrap();
        let out = dir.path().join("effective.json");
        effective_config(&config, None, &Profile::default(), mark(), &out).unwrap();
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        assert!(doc.get("kubeadmConfigPatches").is_none(), "{doc}");
        assert!(doc["nodes"][0].get("image").is_none(), "kind's default image: {doc}");
        assert_eq!(
            doc["nodes"][0]["extraMounts"],
            json!([{"hostPath": "/state/mark", "containerPath": "/gitops-drill/run/r1", "readOnly": true}])
        );
    }
}
