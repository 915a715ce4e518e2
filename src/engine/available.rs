//! The engine's own workloads after its install, waited for together with each one's time
//! kept: a slow install then says which controller it waited for, and one that times out
//! names every workload still not ready, not only the first in the manifest's order.

use std::fmt::Debug;
use std::time::Duration;

use anyhow::{Result, bail};
use futures::FutureExt as _;
use futures::future::{BoxFuture, join_all};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use kube::api::Api;
use kube::runtime::wait::await_condition;
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::time::Instant;

use crate::observe::readiness::workload_ready;

/// One of the engine's workloads and how long after the install began it was ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadReady {
    /// `Deployment` or `StatefulSet`.
    pub kind: &'static str,
    pub name: String,
    pub after: Duration,
}

/// The Deployments and StatefulSets among `docs`, waited for in `namespace` until each is
/// ready (available, rolled out), all up to one deadline `timeout` from now. Returns them in
/// the order they became ready, each timed from `started` (when the install began, so the
/// slowest one's time is the install's); an error names each one that was not.
pub async fn await_workloads(
    client: &Client,
    namespace: &str,
    docs: &[Value],
    started: Instant,
    timeout: Duration,
) -> Result<Vec<WorkloadReady>> {
    let deadline = Instant::now() + timeout;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), namespace);
    let mut waits: Vec<BoxFuture<'_, Result<WorkloadReady, String>>> = Vec::new();
    for name in names(docs, "Deployment") {
        waits.push(ready_after(deployments.clone(), "Deployment", name, started, deadline).boxed());
    }
    for name in names(docs, "StatefulSet") {
        waits.push(ready_after(sets.clone(), "StatefulSet", name, started, deadline).boxed());
    }
    let results = join_all(waits).await;
    let not_ready: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    if !not_ready.is_empty() {
        let names: Vec<&str> = not_ready.iter().map(|n| n.as_str()).collect();
        bail!(
            "{} of the engine's workloads in namespace {namespace} not ready within {}: {}",
            names.len(),
            humantime::format_duration(timeout),
            names.join(", ")
        );
    }
    let mut ready: Vec<WorkloadReady> = results.into_iter().filter_map(Result::ok).collect();
    ready.sort_by_key(|w| w.after);
    Ok(ready)
}

/// The names of the objects of `kind` among `docs`.
fn names(docs: &[Value], kind: &str) -> Vec<String> {
    docs.iter()
        .filter(|d| d.get("kind").and_then(Value::as_str) == Some(kind))
        .filter_map(|d| d.pointer("/metadata/name").and_then(Value::as_str).map(str::to_string))
        .collect()
}

/// Waits until the workload is ready or the deadline passes; the error is its name and why.
async fn ready_after<K>(
    api: Api<K>,
    kind: &'static str,
    name: String,
    started: Instant,
    deadline: Instant,
) -> Result<WorkloadReady, String>
where
    K: Resource + Clone + Debug + Send + DeserializeOwned + Serialize + 'static,
{
    let ready = move |o: Option<&K>| {
        o.and_then(|o| serde_json::to_value(o).ok())
            .is_some_and(|v| workload_ready(kind, &v))
    };
    match tokio::time::timeout_at(deadline, await_condition(api, &name, ready)).await {
        Ok(Ok(_)) => Ok(WorkloadReady {
            kind,
            name,
            after: started.elapsed(),
        }),
        Ok(Err(e)) => Err(format!("{kind}/{name} (its watch failed: {e})")),
        Err(_) => Err(format!("{kind}/{name}")),
    }
}

/// What the install note says: the workloads, slowest last, as `name 12s`.
pub fn summary(ready: &[WorkloadReady]) -> String {
    let parts: Vec<String> = (ready.iter())
        .map(|w| format!("{} {}", w.name, crate::human::ms(w.after.as_millis() as u64)))
        .collect();
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_deployments_and_statefulsets_are_waited_for_by_name() {
        let docs = vec![
            json!({"kind": "Deployment", "metadata": {"name": "source-controller"}}),
            json!({"kind": "Service", "metadata": {"name": "source-controller"}}),
            json!({"kind": "StatefulSet", "metadata": {"name": "argocd-application-controller"}}),
            json!({"kind": "Deployment", "metadata": {}}),
        ];
        assert_eq!(names(&docs, "Deployment"), vec!["source-controller"]);
        assert_eq!(names(&docs, "StatefulSet"), vec!["argocd-application-controller"]);
    }

    #[test]
    fn the_summary_lists_each_workload_with_its_time_in_order() {
        let ready = vec![
            WorkloadReady {
                kind: "Deployment",
                name: "source-controller".into(),
                after: Duration::from_millis(12_400),
            },
            WorkloadReady {
                kind: "StatefulSet",
                name: "argocd-application-controller".into(),
                after: Duration::from_secs(95),
            },
        ];
        assert_eq!(
            summary(&ready),
            format!(
                "source-controller {}, argocd-application-controller {}",
                crate::human::ms(12_400),
                crate::human::ms(95_000)
            )
        );
    }
}
