//! `images: preloaded`: pulls the images a rebuild needs into every node of a fresh kind
//! cluster before the engine starts, the way nodes built with the images baked in would
//! have them, so the rebuild itself pulls nothing. Done with containerd's `ctr` inside
//! each node container, in the namespace the kubelet's images live in (k8s.io) and with
//! the node's registry settings (`--hosts-dir`, where kind nodes keep their mirrors),
//! through Docker's exec API. `ctr` rather than `crictl`: every kind node has it, and
//! a node image built without cri-tools (the offline test bed's) does not have crictl.

use anyhow::{Context, Result};
use bollard::Docker;
use futures::StreamExt as _;

/// How many pulls run at once (per cluster): enough to overlap registry round trips
/// without starving the node's containerd on a 2-core machine.
const PARALLEL_PULLS: usize = 4;

/// An image that could not be preloaded into a node, with the end of ctr's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreloadFailure {
    pub image: String,
    pub node: String,
    pub output: String,
}

/// The running node containers of kind cluster `cluster`, by kind's own label.
pub async fn node_containers(docker: &Docker, cluster: &str) -> Result<Vec<String>> {
    let label = format!("io.x-k8s.kind.cluster={cluster}");
    let mut names: Vec<String> = super::containers::labelled(docker, &label, false)
        .await
        .context("failed to list the cluster's node containers")?
        .iter()
        .filter_map(super::containers::name_of)
        .collect();
    names.sort();
    Ok(names)
}

/// Pulls every image into every node of the cluster. An image that cannot be pulled is
/// returned as a failure, not an error: the rebuild then shows what that costs.
pub async fn preload(docker: &Docker, cluster: &str, images: &[String]) -> Result<Vec<PreloadFailure>> {
    let nodes = node_containers(docker, cluster).await?;
    if nodes.is_empty() {
        anyhow::bail!("kind cluster {cluster} has no running node containers");
    }
    let pulls = nodes
        .iter()
        .flat_map(|node| images.iter().map(move |image| (node.clone(), image.clone())));
    let results: Vec<Result<Option<PreloadFailure>>> = futures::stream::iter(pulls)
        .map(|(node, image)| async move { ctr_pull(docker, &node, &image).await })
        .buffer_unordered(PARALLEL_PULLS)
        .collect()
        .await;
    let mut failures = Vec::new();
    for r in results {
        if let Some(f) = r? {
            failures.push(f);
        }
    }
    failures.sort_by(|a, b| (&a.image, &a.node).cmp(&(&b.image, &b.node)));
    Ok(failures)
}

/// Where kind nodes keep per-registry settings (mirrors); containerd's CRI reads the same.
pub(crate) const HOSTS_DIR: &str = "/etc/containerd/certs.d";

async fn ctr_pull(docker: &Docker, node: &str, image: &str) -> Result<Option<PreloadFailure>> {
    let cmd = vec![
        "ctr",
        "--namespace",
        "k8s.io",
        "images",
        "pull",
        "--hosts-dir",
        HOSTS_DIR,
        image,
    ];
    let out = super::exec::in_node(docker, node, cmd).await?;
    if out.success() {
        return Ok(None);
    }
    Ok(Some(PreloadFailure {
        image: image.to_string(),
        node: node.to_string(),
        output: out.last_line().to_string(),
    }))
}
