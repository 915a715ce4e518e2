//! Server-side apply of multi-document manifests, in dependency order: CRDs and
//! Namespaces first, then (once the CRDs are Established) everything else.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::{Discovery, Scope};
use kube::runtime::wait::{await_condition, conditions};
use serde_json::Value;

pub const FIELD_MANAGER: &str = "gitops-drill";

/// Parses a multi-document YAML manifest into objects (empty documents skipped).
pub fn parse_manifest(text: &str) -> Result<Vec<Value>> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| anyhow::anyhow!("invalid manifest: {e}"))?;
    Ok(docs
        .into_iter()
        .filter(|d| d.is_object() && d.get("kind").is_some())
        .collect())
}

fn is_first_pass(doc: &Value) -> bool {
    matches!(
        doc.get("kind").and_then(Value::as_str),
        Some("CustomResourceDefinition" | "Namespace")
    )
}

/// Marks every object that names no namespace to go into `namespace` (as `kubectl apply
/// -n` does). The mark is resolved at apply time, when discovery says whether the kind is
/// namespaced, and removed before the object is sent.
pub fn default_namespace(docs: &mut [Value], namespace: &str) {
    for doc in docs {
        if doc.pointer("/metadata/namespace").is_none()
            && let Some(meta) = doc.get_mut("metadata").and_then(Value::as_object_mut)
        {
            meta.insert("x-drill-default-namespace".into(), Value::String(namespace.into()));
        }
    }
}

/// Applies `docs` and waits up to `crd_timeout` for every CRD among them to be Established.
pub async fn apply_all(client: &Client, docs: &[Value], crd_timeout: Duration) -> Result<()> {
    tracing::debug!(objects = docs.len(), "applying manifests (server-side)");
    let (first, rest): (Vec<&Value>, Vec<&Value>) = docs.iter().partition(|d| is_first_pass(d));
    apply_batch(client, &first).await?;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for doc in first
        .iter()
        .filter(|d| d.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition"))
    {
        let name = doc
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        tokio::time::timeout(
            crd_timeout,
            await_condition(crds.clone(), name, conditions::is_crd_established()),
        )
        .await
        .with_context(|| format!("CRD {name} was not Established within {crd_timeout:?}"))?
        .with_context(|| format!("failed to watch CRD {name}"))?;
    }
    apply_batch(client, &rest).await
}

async fn apply_batch(client: &Client, docs: &[&Value]) -> Result<()> {
    if docs.is_empty() {
        return Ok(());
    }
    let discovery = discover(client, docs).await?;
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for doc in docs {
        let api_version = doc.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
        let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default();
        let name = doc
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .context("object without metadata.name")?;
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = kube::core::GroupVersionKind::gvk(group, version, kind);
        let Some((ar, caps)) = discovery.resolve_gvk(&gvk) else {
            bail!("the cluster does not serve {api_version} {kind} (object {name})");
        };
        // The default namespace rides along as a marker field that never reaches the API server.
        let mut doc = (*doc).clone();
        let default_ns = doc
            .get_mut("metadata")
            .and_then(Value::as_object_mut)
            .and_then(|m| m.remove("x-drill-default-namespace"))
            .and_then(|v| v.as_str().map(str::to_string));
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Namespaced => {
                let ns = doc
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or(default_ns)
                    .unwrap_or_else(|| "default".into());
                if let Some(meta) = doc.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.insert("namespace".into(), Value::String(ns.clone()));
                }
                Api::namespaced_with(client.clone(), &ns, &ar)
            }
            Scope::Cluster => Api::all_with(client.clone(), &ar),
        };
        api.patch(name, &params, &Patch::Apply(&doc))
            .await
            .with_context(|| format!("failed to apply {kind} {name}"))?;
    }
    Ok(())
}

/// How long discovery may keep answering 404/503, or keep missing a kind a just-applied CRD
/// declares, before the apply fails. A freshly started API server (a rebuilt cluster) lists
/// groups whose version endpoints answer 404 for a second or two, and its discovery of a
/// newly Established CRD lags the CRD's condition.
const DISCOVERY_SETTLE: Duration = Duration::from_secs(20);
const DISCOVERY_RETRY: Duration = Duration::from_millis(500);

/// Runs API discovery until it answers and resolves every kind in `docs`, or until
/// [`DISCOVERY_SETTLE`] has passed (then the last answer is returned, and an unresolved kind
/// is reported by the caller with its object's name).
async fn discover(client: &Client, docs: &[&Value]) -> Result<Discovery> {
    let deadline = tokio::time::Instant::now() + DISCOVERY_SETTLE;
    loop {
        let late = tokio::time::Instant::now() >= deadline;
        match Discovery::new(client.clone()).run().await {
            Ok(discovery) if late || docs.iter().all(|d| resolves(&discovery, d)) => return Ok(discovery),
            Ok(_) => tracing::debug!("discovery does not yet list every kind to apply; retrying"),
            Err(kube::Error::Api(status)) if !late && matches!(status.code, 404 | 503) => {
                tracing::debug!(code = status.code, "API discovery answered {}; retrying", status.code);
            }
            Err(e) => return Err(e).context("API discovery failed"),
        }
        tokio::time::sleep(DISCOVERY_RETRY).await;
    }
}

fn resolves(discovery: &Discovery, doc: &Value) -> bool {
    let api_version = doc.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    discovery
        .resolve_gvk(&kube::core::GroupVersionKind::gvk(group, version, kind))
        .is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_split_into_objects_and_crds_go_first() {
        let docs = parse_manifest("---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n# only a comment\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: a}\n").unwrap();
        assert_eq!(docs.len(), 2);
        assert!(is_first_pass(&docs[0]));
        assert!(!is_first_pass(&docs[1]));
    }
}
