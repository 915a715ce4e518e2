//! A kind cluster an earlier run made and kept (`--keep-cluster`), taken up again by
//! `--reuse-cluster`: found and checked from Docker alone, before any request reaches it.

use std::collections::BTreeSet;

use anyhow::{Result, bail};
use bollard::Docker;

use crate::cluster::containers;

/// What Docker says of a kept cluster drill may rehearse on again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptCluster {
    /// The run whose owner mark every node carries (its work folder holds the cluster's
    /// kubeconfig and kind config).
    pub run_id: String,
    pub nodes: usize,
}

/// Cluster `name`, when every node is running and carries one drill run's owner mark: a
/// cluster someone else made, or one half stopped, is refused with what to do instead.
pub async fn find(docker: &Docker, name: &str) -> Result<KeptCluster> {
    let label = format!("{}={name}", crate::cluster::existing::KIND_CLUSTER_LABEL);
    let all = containers::labelled(docker, &label, true).await?;
    let running = containers::labelled(docker, &label, false).await?;
    let marks: Vec<(String, Option<String>)> = all
        .iter()
        .map(|c| {
            (
                containers::name_of(c).unwrap_or_default(),
                crate::cluster::owner::run_of(c),
            )
        })
        .collect();
    judge(name, &marks, running.len())
}

/// The decision, from each node's (container name, owner mark) and how many run.
fn judge(name: &str, marks: &[(String, Option<String>)], running: usize) -> Result<KeptCluster> {
    if marks.is_empty() {
        bail!("--reuse-cluster {name}: there is no kind cluster by that name (`kind get clusters` lists them)");
    }
    if let Some((node, _)) = marks.iter().find(|(_, run)| run.is_none()) {
        bail!(
            "--reuse-cluster {name}: node {node} carries no drill owner mark, so drill did not make this cluster; \
             rehearse on a cluster of your own with `cluster: existing`"
        );
    }
    let runs: BTreeSet<&str> = marks.iter().filter_map(|(_, run)| run.as_deref()).collect();
    let mut runs = runs.into_iter();
    let (Some(run_id), None) = (runs.next(), runs.next()) else {
        bail!("--reuse-cluster {name}: its nodes carry the marks of different drill runs; delete it (`drill clean`)");
    };
    if running != marks.len() {
        bail!(
            "--reuse-cluster {name}: {} of its {} node(s) are not running; delete it (`drill clean`) and keep a new one",
            marks.len() - running,
            marks.len()
        );
    }
    Ok(KeptCluster {
        run_id: run_id.to_string(),
        nodes: marks.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, run: Option<&str>) -> (String, Option<String>) {
        (name.to_string(), run.map(str::to_string))
    }

    #[test]
    fn a_running_cluster_with_one_runs_mark_is_taken_up() {
        let nodes = [node("c-control-plane", Some("r1")), node("c-worker", Some("r1"))];
        assert_eq!(
            judge("c", &nodes, 2).unwrap(),
            KeptCluster {
                run_id: "r1".into(),
                nodes: 2
            }
        );
    }

    #[test]
    fn missing_unmarked_mixed_or_stopped_clusters_are_refused_with_what_to_do() {
        let err =
            |nodes: &[(String, Option<String>)], running| format!("{:#}", judge("c", nodes, running).unwrap_err());
        assert!(err(&[], 0).contains("no kind cluster by that name"));
        let unmarked = err(&[node("c-control-plane", None)], 1);
        assert!(
            unmarked.contains("c-control-plane carries no drill owner mark"),
            "{unmarked}"
        );
        assert!(unmarked.contains("cluster: existing"), "{unmarked}");
        let mixed = err(&[node("a", Some("r1")), node("b", Some("r2"))], 2);
        assert!(mixed.contains("different drill runs"), "{mixed}");
        let stopped = err(&[node("a", Some("r1")), node("b", Some("r1"))], 1);
        assert!(stopped.contains("1 of its 2 node(s) are not running"), "{stopped}");
    }
}
