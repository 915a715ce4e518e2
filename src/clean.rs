//! `drill clean`: deletes every kind cluster drill created, found by name prefix on
//! kind's own container label. Idempotent; clusters drill did not create are never touched.

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use bollard::Docker;

pub const CLUSTER_PREFIX: &str = "drill-";

pub async fn drill_clusters(docker: &Docker) -> Result<BTreeSet<String>> {
    let label = "io.x-k8s.kind.cluster";
    Ok(crate::cluster::containers::labelled(docker, label, true)
        .await?
        .iter()
        .filter_map(|c| crate::cluster::containers::label_of(c, label))
        .filter(|name| name.starts_with(CLUSTER_PREFIX))
        .collect())
}

/// What `drill clean` found (and, unless a dry run, removed).
#[derive(Debug, Default)]
pub struct Cleaned {
    pub clusters: Vec<String>,
    /// Pull-through cache containers (`images: mirror`), by container name.
    pub mirrors: Vec<String>,
}

pub async fn clean(dry_run: bool) -> Result<Cleaned> {
    let docker = Docker::connect_with_local_defaults().context("failed to connect to Docker")?;
    let clusters = drill_clusters(&docker).await?;
    for name in clusters.iter().filter(|_| !dry_run) {
        crate::cluster::kind::delete_cluster(name, None).await?;
    }
    // A cache outlives its cluster on purpose during a run; after it, it is an orphan.
    let mirrors: Vec<String> = crate::cluster::mirror::caches(&docker)
        .await?
        .into_iter()
        .filter(|cluster| cluster.starts_with(CLUSTER_PREFIX))
        .collect();
    for cluster in mirrors.iter().filter(|_| !dry_run) {
        crate::cluster::mirror::remove(&docker, cluster).await?;
    }
    Ok(Cleaned {
        clusters: clusters.into_iter().collect(),
        mirrors: mirrors
            .iter()
            .map(|c| crate::cluster::mirror::container_name(c))
            .collect(),
    })
}
