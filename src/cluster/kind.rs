//! kind clusters through the kind CLI (create/delete) and Docker (node containers).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result, bail};
use bollard::Docker;
use serde_json::{Value, json};
use tokio::process::Command;

use crate::profile::Profile;

/// The cluster a run acts on: a kind cluster drill created (owned: drill deletes it at
/// the end), or an existing one let through the guard (`cluster::existing`), which
/// drill never deletes.
#[derive(Debug, Clone)]
pub struct KindCluster {
    /// The kind cluster name, or the existing cluster's context.
    pub name: String,
    pub kubeconfig: PathBuf,
    /// The kubeconfig context to use (None: the file's current context).
    pub context: Option<String>,
    /// The run whose owner mark ([`super::owner`]) drill put on the nodes; None for an
    /// existing cluster, which drill never deletes and whose containers it never touches.
    pub owner_run: Option<String>,
}

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

async fn kind(args: &[&str]) -> Result<String> {
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
    if !output.status.success() {
        let tail: Vec<&str> = text
            .lines()
            .rev()
            .take(15)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        bail!("kind {} failed:\n{}", args.join(" "), tail.join("\n"));
    }
    Ok(text)
}

impl KindCluster {
    /// Creates cluster `name` from a config [`effective_config`] wrote for run `run_id`.
    pub async fn create(name: &str, config: &Path, kubeconfig: &Path, run_id: &str) -> Result<KindCluster> {
        let config = config.to_string_lossy();
        let kc = kubeconfig.to_string_lossy();
        kind(&[
            "create",
            "cluster",
            "--name",
            name,
            "--config",
            &config,
            "--kubeconfig",
            &kc,
            "--wait",
            "0s",
        ])
        .await
        .with_context(|| format!("failed to create kind cluster {name}"))?;
        Ok(KindCluster {
            name: name.to_string(),
            kubeconfig: kubeconfig.to_path_buf(),
            context: None,
            owner_run: Some(run_id.to_string()),
        })
    }

    /// An existing cluster, by context; only `cluster::existing::guard` makes one.
    pub(crate) fn existing(context: &str, kubeconfig: &Path) -> KindCluster {
        KindCluster {
            name: context.to_string(),
            kubeconfig: kubeconfig.to_path_buf(),
            context: Some(context.to_string()),
            owner_run: None,
        }
    }

    pub async fn delete(&self) -> Result<()> {
        if !self.owned() {
            bail!("drill did not create cluster {}: it is never deleted", self.name);
        }
        delete_cluster(&self.name, Some(&self.kubeconfig)).await
    }

    pub async fn client(&self) -> Result<kube::Client> {
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig)
            .with_context(|| format!("failed to read kubeconfig {}", self.kubeconfig.display()))?;
        let options = kube::config::KubeConfigOptions {
            context: self.context.clone(),
            ..Default::default()
        };
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .with_context(|| format!("invalid kubeconfig {}", self.kubeconfig.display()))?;
        kube::Client::try_from(config).context("failed to build a Kubernetes client")
    }

    pub fn owned(&self) -> bool {
        self.owner_run.is_some()
    }

    pub fn node_container(&self, node: &str) -> String {
        format!("{}-{node}", self.name)
    }
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
