//! The damage itself, as small functions the steps call: they only do the damage and
//! return when it is complete (the namespace is gone, the node is down).

pub mod by_hand;
pub mod live_edit;
mod node_loss;
mod pods;

pub use node_loss::{NodeLoss, assess as assess_node_loss, await_rescheduled, remove_node};
pub use pods::{DeletedPods, PodsOnNode, await_replaced, await_restarted, delete_pods, pods_on_node};

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
