//! Flux: install from a manifest, bootstrap the root GitRepository + Kustomization the
//! way `flux bootstrap` names them (`flux-system/flux-system`), and request reconciles.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::runtime::wait::await_condition;
use kube::{Client, discovery};
use serde_json::{Value, json};

use super::apply::{apply_all, parse_manifest};
use crate::event::ObjectRef;
use crate::observe::readiness::observe;
use crate::secrets::RepoAuth;

pub const NAMESPACE: &str = "flux-system";
pub const ROOT_NAME: &str = "flux-system";

pub fn root_kustomization() -> ObjectRef {
    ObjectRef::new("Kustomization", NAMESPACE, ROOT_NAME)
}

pub fn root_source() -> ObjectRef {
    ObjectRef::new("GitRepository", NAMESPACE, ROOT_NAME)
}

/// Applies the Flux install manifest and waits until every controller Deployment in
/// flux-system is Available (bounded by `timeout`).
pub async fn install(client: &Client, manifest: &Path, timeout: Duration) -> Result<()> {
    let text = std::fs::read_to_string(manifest)
        .with_context(|| format!("failed to read the Flux install manifest {}", manifest.display()))?;
    let docs = parse_manifest(&text).with_context(|| format!("in {}", manifest.display()))?;
    apply_all(client, &docs, timeout).await?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let names: Vec<String> = docs
        .iter()
        .filter(|d| d.get("kind").and_then(Value::as_str) == Some("Deployment"))
        .filter_map(|d| d.pointer("/metadata/name").and_then(Value::as_str).map(str::to_string))
        .collect();
    for name in &names {
        let available = |d: Option<&Deployment>| {
            d.and_then(|d| serde_json::to_value(d).ok())
                .is_some_and(|v| observe("Deployment", &v).ready)
        };
        tokio::time::timeout(timeout, await_condition(deployments.clone(), name, available))
            .await
            .with_context(|| format!("Flux controller {name} was not Available within {timeout:?}"))?
            .with_context(|| format!("failed to watch Deployment {NAMESPACE}/{name}"))?;
    }
    Ok(())
}

/// The repo credentials Secret, named as `flux bootstrap` names it.
pub const REPO_SECRET: &str = "flux-system";

/// The Secret a GitRepository's `secretRef` reads basic-auth credentials from.
pub fn repo_secret(auth: &RepoAuth) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": REPO_SECRET, "namespace": NAMESPACE},
        "type": "Opaque",
        "stringData": {"username": auth.username, "password": auth.password}
    })
}

/// The root sync: a GitRepository on the served URL and a Kustomization for `path`.
pub fn root_objects(url: &str, branch: &str, path: &str, interval: Duration, secret: Option<&str>) -> Vec<Value> {
    let interval = format!("{}s", interval.as_secs().max(1));
    let mut source = json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": ROOT_NAME, "namespace": NAMESPACE},
        "spec": {"url": url, "ref": {"branch": branch}, "interval": interval, "timeout": "60s"}
    });
    if let Some(secret) = secret {
        source["spec"]["secretRef"] = json!({"name": secret});
    }
    let kustomization = json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": ROOT_NAME, "namespace": NAMESPACE},
        "spec": {
            "interval": interval,
            "path": format!("./{}", path.trim_start_matches("./")),
            "prune": true,
            "sourceRef": {"kind": "GitRepository", "name": ROOT_NAME}
        }
    });
    vec![source, kustomization]
}

pub async fn bootstrap(client: &Client, objects: &[Value]) -> Result<()> {
    apply_all(client, objects, Duration::from_secs(60))
        .await
        .context("failed to apply the root GitRepository and Kustomization")
}

/// An app named in a scenario: `name` (a Kustomization in flux-system) or `namespace/name`.
pub fn app_ref(app: &str) -> ObjectRef {
    match app.split_once('/') {
        Some((ns, name)) => ObjectRef::new("Kustomization", ns, name),
        None => ObjectRef::new("Kustomization", NAMESPACE, app),
    }
}

async fn kustomizations(client: &Client, namespace: &str) -> Result<Api<DynamicObject>> {
    let group = discovery::group(client, "kustomize.toolkit.fluxcd.io")
        .await
        .context("failed to discover Flux's Kustomization API (is Flux installed?)")?;
    let (ar, _) = group
        .recommended_kind("Kustomization")
        .context("the cluster serves no Kustomization kind")?;
    Ok(Api::namespaced_with(client.clone(), namespace, &ar))
}

/// Pauses or resumes one Kustomization (`flux suspend` / `flux resume`). A resume also
/// requests a reconcile, as `flux resume` does; returns that request's token.
pub async fn set_suspended(client: &Client, app: &ObjectRef, suspend: bool) -> Result<Option<String>> {
    let api = kustomizations(client, &app.namespace).await?;
    let mut patch = json!({"spec": {"suspend": suspend}});
    let token = (!suspend).then(|| jiff::Timestamp::now().to_string());
    if let Some(token) = &token {
        patch["metadata"] = json!({"annotations": {"reconcile.fluxcd.io/requestedAt": token}});
    }
    api.patch(&app.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .with_context(|| format!("failed to {} {app}", if suspend { "suspend" } else { "resume" }))?;
    Ok(token)
}

/// Requests a reconcile of one Kustomization; the token comes back in its
/// `status.lastHandledReconcileAt` once the controller handled it.
pub async fn request_reconcile(client: &Client, app: &ObjectRef) -> Result<String> {
    let api = kustomizations(client, &app.namespace).await?;
    let token = jiff::Timestamp::now().to_string();
    let patch = json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}});
    api.patch(&app.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .with_context(|| format!("failed to request a reconcile of {app}"))?;
    Ok(token)
}

/// Asks every Flux source, Kustomization and HelmRelease to reconcile now (what
/// `flux reconcile` does): a new `reconcile.fluxcd.io/requestedAt` token.
pub async fn reconcile_now(client: &Client) -> Result<usize> {
    let token = jiff::Timestamp::now().to_string();
    let patch = json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}});
    let mut count = 0;
    for (group, kind) in [
        ("source.toolkit.fluxcd.io", "GitRepository"),
        ("kustomize.toolkit.fluxcd.io", "Kustomization"),
        ("helm.toolkit.fluxcd.io", "HelmRelease"),
    ] {
        let Ok(g) = discovery::group(client, group).await else {
            continue;
        };
        let Some((ar, _)) = g.recommended_kind(kind) else {
            continue;
        };
        let all: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        for obj in all
            .list(&ListParams::default())
            .await
            .with_context(|| format!("failed to list {kind}"))?
        {
            let ns = obj.metadata.namespace.clone().unwrap_or_default();
            let name = obj.metadata.name.clone().unwrap_or_default();
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .with_context(|| format!("failed to request a reconcile of {kind} {ns}/{name}"))?;
            count += 1;
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_objects_follow_flux_bootstrap_naming() {
        let objs = root_objects(
            "http://172.18.0.1:4000/fleet.git",
            "main",
            "clusters/demo",
            Duration::from_secs(60),
            None,
        );
        assert_eq!(objs[0]["kind"], "GitRepository");
        assert_eq!(objs[0]["spec"]["url"], "http://172.18.0.1:4000/fleet.git");
        assert_eq!(objs[0]["spec"]["ref"]["branch"], "main");
        assert_eq!(objs[1]["spec"]["path"], "./clusters/demo");
        assert_eq!(objs[1]["spec"]["sourceRef"]["name"], "flux-system");
        assert_eq!(objs[1]["spec"]["interval"], "60s");
    }
}
