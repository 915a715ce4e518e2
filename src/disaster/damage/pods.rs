//! Pod-level damage, and the waits that keep a recovery from being judged on workload
//! statuses from before the damage: after `delete-pods` the replacements must be Ready;
//! after `kill-node` every pod that was Ready on the node must be Ready again with its
//! containers started after the kill. Until the kubelet and the controllers catch up,
//! a Deployment still reports the availability it had before.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams};
use kube::runtime::watcher;
use tokio::time::Instant;

/// The pods a `delete-pods` step deleted: names for the log, uids to tell them from
/// their replacements.
#[derive(Debug, Clone, Default)]
pub struct DeletedPods {
    pub names: Vec<String>,
    pub uids: BTreeSet<String>,
    pub labels: String,
}

/// Deletes the pods in `namespace` that carry every label of `selector`. None matching
/// is an error: the step would rehearse nothing.
pub async fn delete_pods(client: &Client, namespace: &str, selector: &BTreeMap<String, String>) -> Result<DeletedPods> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let labels = selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let pods = api
        .list(&ListParams::default().labels(&labels))
        .await
        .with_context(|| format!("failed to list pods {labels} in {namespace}"))?;
    let mut deleted = DeletedPods {
        labels: labels.clone(),
        ..Default::default()
    };
    for pod in pods.items {
        if let (Some(name), Some(uid)) = (pod.metadata.name, pod.metadata.uid) {
            deleted.names.push(name);
            deleted.uids.insert(uid);
        }
    }
    if deleted.names.is_empty() {
        anyhow::bail!("delete-pods: no pod in namespace {namespace} matches {labels}");
    }
    for name in &deleted.names {
        api.delete(name, &DeleteParams::default())
            .await
            .with_context(|| format!("failed to delete pod {namespace}/{name}"))?;
    }
    Ok(deleted)
}

/// Resolves once every deleted pod is gone and as many replacements (pods matching the
/// same labels, none of the deleted ones) are Ready, or at `deadline` (false).
pub async fn await_replaced(client: &Client, namespace: &str, deleted: &DeletedPods, deadline: Instant) -> bool {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let config = watcher::Config::default().labels(&deleted.labels);
    watch_pods_until(api, config, deadline, |pods| {
        let old_gone = !pods.keys().any(|uid| deleted.uids.contains(uid));
        let ready_new = pods
            .iter()
            .filter(|(uid, p)| is_ready(p) && !deleted.uids.contains(*uid))
            .count();
        old_gone && ready_new >= deleted.uids.len()
    })
    .await
}

/// The pods that were Ready on a node just before it was killed (uid → namespace/name).
#[derive(Debug, Clone, Default)]
pub struct PodsOnNode {
    pub node: String,
    pub pods: BTreeMap<String, String>,
}

/// Lists the Ready pods on Kubernetes node `node`: the ones a kill must bring back.
pub async fn pods_on_node(client: &Client, node: &str) -> Result<PodsOnNode> {
    let api: Api<Pod> = Api::all(client.clone());
    let listed = api
        .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
        .await
        .with_context(|| format!("failed to list the pods on node {node}"))?;
    let pods = listed
        .items
        .iter()
        .filter(|p| is_ready(p))
        .filter_map(|p| {
            let m = &p.metadata;
            Some((
                m.uid.clone()?,
                format!("{}/{}", m.namespace.as_deref()?, m.name.as_deref()?),
            ))
        })
        .collect();
    Ok(PodsOnNode {
        node: node.to_string(),
        pods,
    })
}

/// Resolves once every pod of `before` is gone or Ready with every container started
/// at or after `killed_at` (whole seconds, as the API reports them), or at `deadline`
/// (false). While the node's API server is down the watch fails and retries.
pub async fn await_restarted(
    client: &Client,
    before: &PodsOnNode,
    killed_at: jiff::Timestamp,
    deadline: Instant,
) -> bool {
    let api: Api<Pod> = Api::all(client.clone());
    let config = watcher::Config::default().fields(&format!("spec.nodeName={}", before.node));
    let since = jiff::Timestamp::from_second(killed_at.as_second()).unwrap_or(killed_at);
    watch_pods_until(api, config, deadline, |pods| {
        before
            .pods
            .keys()
            .all(|uid| pods.get(uid).is_none_or(|p| is_ready(p) && started_since(p, since)))
    })
    .await
}

pub(super) fn is_ready(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none()
        && p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Every container of the pod runs, started at or after `since`.
fn started_since(p: &Pod, since: jiff::Timestamp) -> bool {
    let statuses = p
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_deref())
        .unwrap_or(&[]);
    !statuses.is_empty()
        && statuses.iter().all(|c| {
            c.state
                .as_ref()
                .and_then(|s| s.running.as_ref())
                .and_then(|r| r.started_at.as_ref())
                .is_some_and(|t| t.0 >= since)
        })
}

/// Watches the pods `config` selects until `done` holds for those listed (by uid), or
/// until `deadline` (false). `done` is first asked once the initial listing is complete,
/// so an empty map means none is left, never "not listed yet".
pub(super) async fn watch_pods_until(
    api: Api<Pod>,
    config: watcher::Config,
    deadline: Instant,
    done: impl Fn(&BTreeMap<String, Pod>) -> bool,
) -> bool {
    use futures::StreamExt as _;
    use watcher::Event;
    let stream = watcher::watcher(api, config);
    futures::pin_mut!(stream);
    let mut pods: BTreeMap<String, Pod> = BTreeMap::new();
    let mut listing: BTreeMap<String, Pod> = BTreeMap::new();
    let mut listed = false;
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) | Ok(None) => return false,
            // A dropped watch re-lists; pace the retries (the API server may be restarting).
            Ok(Some(Err(_))) => tokio::time::sleep(Duration::from_secs(1)).await,
            Ok(Some(Ok(event))) => match event {
                Event::Init => listing.clear(),
                Event::InitApply(p) => {
                    if let Some(uid) = p.metadata.uid.clone() {
                        listing.insert(uid, p);
                    }
                }
                Event::InitDone => {
                    pods = std::mem::take(&mut listing);
                    listed = true;
                }
                Event::Apply(p) => {
                    if let Some(uid) = p.metadata.uid.clone() {
                        pods.insert(uid, p);
                    }
                }
                Event::Delete(p) => {
                    if let Some(uid) = p.metadata.uid.as_ref() {
                        pods.remove(uid);
                    }
                }
            },
        }
        if listed && done(&pods) {
            return true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerState, ContainerStateRunning, ContainerStatus, PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn pod(ready: bool, started: &[&str]) -> Pod {
        Pod {
            status: Some(PodStatus {
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                container_statuses: Some(
                    started
                        .iter()
                        .map(|t| ContainerStatus {
                            state: Some(ContainerState {
                                running: Some(ContainerStateRunning {
                                    started_at: Some(Time(t.parse().unwrap())),
                                }),
                                ..Default::default()
                            }),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_pod_is_back_only_when_ready_with_every_container_started_after_the_kill() {
        let kill: jiff::Timestamp = "2026-12-02T10:00:00Z".parse().unwrap();
        // The status from before the kill still says Ready: not back.
        assert!(!started_since(&pod(true, &["2026-12-02T09:00:00Z"]), kill));
        // One container restarted, the other not yet.
        assert!(!started_since(
            &pod(true, &["2026-12-02T10:00:20Z", "2026-12-02T09:00:00Z"]),
            kill
        ));
        assert!(started_since(
            &pod(true, &["2026-12-02T10:00:20Z", "2026-12-02T10:00:00Z"]),
            kill
        ));
        // No container status at all says nothing.
        assert!(!started_since(&pod(true, &[]), kill));
        assert!(!is_ready(&pod(false, &["2026-12-02T10:00:20Z"])));
    }
}
