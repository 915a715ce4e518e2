//! `drill clean`: deletes every kind cluster drill created, and their pull-through
//! caches. A cluster counts as drill's when its name starts with `drill-` and its node
//! containers carry drill's owner mark ([`crate::cluster::owner`]); a kind cluster
//! someone else named `drill-...` is reported and left alone. Idempotent.

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
}

pub async fn clean(dry_run: bool) -> Result<Cleaned> {
    let docker = Docker::connect_with_local_defaults().context("failed to connect to Docker")?;
    let mut cleaned = Cleaned::default();
    for (name, run) in drill_named_clusters(&docker).await? {
        match run {
            Some(_) => cleaned.clusters.push(name),
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
    let mirrors: Vec<String> = crate::cluster::mirror::caches(&docker)
        .await?
        .into_iter()
        .filter(|cluster| cluster.starts_with(CLUSTER_PREFIX))
        .collect();
    for cluster in mirrors {
        let container = crate::cluster::mirror::container_name(&cluster);
        if dry_run {
            cleaned.mirrors.push(container);
            continue;
        }
        match crate::cluster::mirror::remove(&docker, &cluster).await {
            Ok(_) => cleaned.mirrors.push(container),
            Err(err) => cleaned
                .failed
                .push((format!("pull-through cache {container}"), format!("{err:#}"))),
        }
    }
    Ok(cleaned)
}
