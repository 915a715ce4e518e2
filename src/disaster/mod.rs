//! Damage, one small function per kind. The runner times them; these only do the damage
//! and return when it is complete (the namespace is gone, the node is down).

pub mod drift;

use std::time::Duration;

use anyhow::{Context, Result};
use bollard::Docker;
use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, DeleteParams};
use kube::runtime::wait::{await_condition, conditions};

/// Deletes namespaces and waits until they are gone (their finalizers done), so the
/// engine recreates them rather than racing a Terminating namespace.
pub async fn delete_namespaces(client: &Client, names: &[String], timeout: Duration) -> Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    for name in names {
        let uid = match api
            .get_opt(name)
            .await
            .with_context(|| format!("failed to read namespace {name}"))?
        {
            Some(ns) => ns.metadata.uid.unwrap_or_default(),
            None => {
                anyhow::bail!("namespace {name} does not exist: nothing to delete (is the scenario's namespace right?)")
            }
        };
        api.delete(name, &DeleteParams::foreground())
            .await
            .with_context(|| format!("failed to delete namespace {name}"))?;
        tokio::time::timeout(
            timeout,
            await_condition(api.clone(), name, conditions::is_deleted(&uid)),
        )
        .await
        .with_context(|| format!("namespace {name} was still terminating after {timeout:?}"))?
        .with_context(|| format!("failed to watch namespace {name}"))?;
    }
    Ok(())
}

/// Kills a node container abruptly (SIGKILL, like a power cut), then starts it again
/// as a rebooted machine would come back.
pub async fn kill_node(docker: &Docker, container: &str) -> Result<()> {
    docker
        .kill_container(
            container,
            Some(
                bollard::query_parameters::KillContainerOptionsBuilder::default()
                    .signal("SIGKILL")
                    .build(),
            ),
        )
        .await
        .with_context(|| format!("failed to kill node container {container}"))?;
    docker
        .start_container(container, None::<bollard::query_parameters::StartContainerOptions>)
        .await
        .with_context(|| format!("failed to start node container {container} again"))
}

/// The pods a `delete-pods` step deleted: names for the log, uids to tell them from
/// their replacements.
#[derive(Debug, Clone, Default)]
pub struct DeletedPods {
    pub names: Vec<String>,
    pub uids: std::collections::BTreeSet<String>,
    pub labels: String,
}

/// Deletes the pods in `namespace` that carry every label of `selector`. None matching
/// is an error: the step would rehearse nothing.
pub async fn delete_pods(
    client: &Client,
    namespace: &str,
    selector: &std::collections::BTreeMap<String, String>,
) -> Result<DeletedPods> {
    let api: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), namespace);
    let labels = selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let pods = api
        .list(&kube::api::ListParams::default().labels(&labels))
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
/// same labels, none of the deleted ones) are Ready, or at `deadline` (false). The
/// workloads' own status lags the pods: without this, a recovery could be judged on a
/// status from before the deletion.
pub async fn await_replaced(
    client: &Client,
    namespace: &str,
    deleted: &DeletedPods,
    deadline: tokio::time::Instant,
) -> bool {
    use futures::StreamExt as _;
    use kube::runtime::watcher::{self, Event};
    let api: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), namespace);
    let stream = watcher::watcher(api, watcher::Config::default().labels(&deleted.labels));
    futures::pin_mut!(stream);
    // uid -> Ready, for the pods the watch currently lists.
    let mut pods: std::collections::BTreeMap<String, bool> = Default::default();
    let mut listing: std::collections::BTreeMap<String, bool> = Default::default();
    let is_ready = |p: &k8s_openapi::api::core::v1::Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            && p.metadata.deletion_timestamp.is_none()
    };
    loop {
        let next = tokio::time::timeout_at(deadline, stream.next()).await;
        match next {
            Err(_) | Ok(None) => return false,
            // A dropped watch re-lists; the watcher retries with its own backoff.
            Ok(Some(Err(_))) => tokio::time::sleep(Duration::from_secs(1)).await,
            Ok(Some(Ok(event))) => match event {
                Event::Init => listing.clear(),
                Event::InitApply(p) => {
                    if let Some(uid) = p.metadata.uid.clone() {
                        listing.insert(uid, is_ready(&p));
                    }
                }
                Event::InitDone => pods = std::mem::take(&mut listing),
                Event::Apply(p) => {
                    if let Some(uid) = p.metadata.uid.clone() {
                        pods.insert(uid, is_ready(&p));
                    }
                }
                Event::Delete(p) => {
                    if let Some(uid) = p.metadata.uid.as_ref() {
                        pods.remove(uid);
                    }
                }
            },
        }
        let old_gone = !pods.keys().any(|uid| deleted.uids.contains(uid));
        let ready_new = pods
            .iter()
            .filter(|(uid, ready)| **ready && !deleted.uids.contains(*uid))
            .count();
        if old_gone && ready_new >= deleted.uids.len() {
            return true;
        }
    }
}
