//! Flux: install from a manifest, bootstrap the root GitRepository + Kustomization the
//! way `flux bootstrap` names them (`flux-system/flux-system`), and request reconciles.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Client, discovery};
use serde_json::{Value, json};

pub mod layout;
pub mod readiness;

use std::net::SocketAddr;
use std::path::PathBuf;

use futures::FutureExt as _;
use futures::future::BoxFuture;

use super::Engine;
use super::apply::{apply_all, parse_manifest};
use super::available::{WorkloadReady, await_workloads};
use crate::event::ObjectRef;
use crate::model::EngineKind;
use crate::observe::readiness::Observation;
use crate::observe::rules::EngineRules;
use crate::repo_auth::RepoAuth;

pub const NAMESPACE: &str = "flux-system";
pub const ROOT_NAME: &str = "flux-system";

pub fn root_kustomization() -> ObjectRef {
    ObjectRef::new("Kustomization", NAMESPACE, ROOT_NAME)
}

pub fn root_source() -> ObjectRef {
    ObjectRef::new("GitRepository", NAMESPACE, ROOT_NAME)
}

/// Applies the Flux install manifest and waits until every controller Deployment in
/// flux-system is Available (all within `timeout`); returns each one's time to Available.
pub async fn install(client: &Client, manifest: &Path, timeout: Duration) -> Result<Vec<WorkloadReady>> {
    let started = tokio::time::Instant::now();
    let text = std::fs::read_to_string(manifest)
        .with_context(|| format!("failed to read the Flux install manifest {}", manifest.display()))?;
    let docs = parse_manifest(&text).with_context(|| format!("in {}", manifest.display()))?;
    apply_all(client, &docs, timeout).await?;
    await_workloads(client, NAMESPACE, &docs, started, timeout).await
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
/// `flux reconcile` does): a new `reconcile.fluxcd.io/requestedAt` token. Returns each
/// object asked, with the token.
pub async fn reconcile_now(client: &Client) -> Result<Vec<(ObjectRef, String)>> {
    let token = jiff::Timestamp::now().to_string();
    let patch = json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}});
    let mut asked = Vec::new();
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
            asked.push((ObjectRef::new(kind, &ns, &name), token.clone()));
        }
    }
    Ok(asked)
}

/// Flux, as a run drives it.
#[derive(Debug, Clone)]
pub struct Flux {
    /// None for an existing cluster: its Flux is already there, drill installs nothing.
    install: Option<PathBuf>,
    path: String,
    interval: Duration,
    /// The repo needs credentials: the root GitRepository names their Secret, which
    /// may be missing (a rehearsal of losing it).
    credentials: bool,
    /// A fleet made by `flux bootstrap`: its gotk-sync.yaml is the root sync.
    layout: Option<layout::BootstrapLayout>,
}

impl Flux {
    /// `install`: None for an existing cluster (its Flux is already there); `credentials`:
    /// the repo needs them, so the root GitRepository names their Secret.
    pub fn new(install: Option<PathBuf>, path: String, interval: Duration, credentials: bool) -> Flux {
        Flux {
            install,
            path,
            interval,
            credentials,
            layout: None,
        }
    }

    /// Follows a `flux bootstrap` layout: installed from its gotk-components.yaml, synced
    /// by its gotk-sync.yaml.
    pub fn with_layout(mut self, layout: layout::BootstrapLayout) -> Flux {
        self.install = Some(layout.components.clone());
        self.layout = Some(layout);
        self
    }

    /// The root sync objects: drill's own, or the layout's gotk-sync.yaml (pointed at
    /// drill's served copy when drill serves the repo, as Git holds it otherwise).
    fn root_sync(&self, url: &str, served: bool, branch: &str) -> Result<Vec<Value>> {
        let secret = self.credentials.then_some(REPO_SECRET);
        match &self.layout {
            None => Ok(root_objects(url, branch, &self.path, self.interval, secret)),
            Some(layout) if served => parse_manifest(&layout::redirect(layout, url, branch, secret)?),
            Some(layout) => layout::sync_objects(layout),
        }
    }
}

impl Engine for Flux {
    fn kind(&self) -> EngineKind {
        EngineKind::Flux
    }

    fn install_manifest(&self) -> Option<&Path> {
        self.install.as_deref()
    }

    fn install<'a>(&'a self, client: &'a Client) -> BoxFuture<'a, Result<Vec<WorkloadReady>>> {
        async move {
            let manifest = self
                .install
                .as_deref()
                .context("no Flux install manifest: drill installs Flux only into clusters it creates")?;
            install(client, manifest, Duration::from_secs(300)).await
        }
        .boxed()
    }

    /// Flux reaches drill's server on the kind network directly.
    fn repo_url(&self, server: SocketAddr, repo_name: &str) -> String {
        format!("http://{server}/{repo_name}.git")
    }

    fn own_secrets(&self, _url: &str, auth: Option<&RepoAuth>) -> Vec<Value> {
        auth.map(repo_secret).into_iter().collect()
    }

    fn always_restores_secrets(&self) -> bool {
        false
    }

    fn bootstrap<'a>(
        &'a self,
        client: &'a Client,
        url: &'a str,
        served: Option<SocketAddr>,
        branch: &'a str,
    ) -> BoxFuture<'a, Result<()>> {
        async move { bootstrap(client, &self.root_sync(url, served.is_some(), branch)?).await }.boxed()
    }

    fn served_rewrites(&self, url: &str, branch: &str) -> Result<Vec<(String, String)>> {
        let Some(layout) = &self.layout else {
            return Ok(Vec::new());
        };
        let secret = self.credentials.then_some(REPO_SECRET);
        Ok(vec![(
            layout.sync_in_repo.clone(),
            layout::redirect(layout, url, branch, secret)?,
        )])
    }

    fn roots(&self) -> (ObjectRef, ObjectRef) {
        (root_kustomization(), root_source())
    }

    fn rules(&self) -> &'static EngineRules {
        &readiness::RULES
    }

    fn reconcile_now<'a>(&'a self, client: &'a Client) -> BoxFuture<'a, Result<Vec<(ObjectRef, String)>>> {
        reconcile_now(client).boxed()
    }

    fn app_ref(&self, app: &str) -> ObjectRef {
        app_ref(app)
    }

    fn ownership_marks(&self, app: &ObjectRef, _group: &str, _object: &ObjectRef) -> crate::engine::Marks {
        crate::engine::Marks {
            labels: vec![
                ("kustomize.toolkit.fluxcd.io/name".into(), app.name.clone()),
                ("kustomize.toolkit.fluxcd.io/namespace".into(), app.namespace.clone()),
            ],
            annotations: Vec::new(),
        }
    }

    fn set_paused<'a>(
        &'a self,
        client: &'a Client,
        app: &'a ObjectRef,
        paused: bool,
    ) -> BoxFuture<'a, Result<Vec<ObjectRef>>> {
        async move { set_suspended(client, app, paused).await.map(|_| Vec::new()) }.boxed()
    }

    fn request_reconciles<'a>(
        &'a self,
        client: &'a Client,
        apps: &'a [ObjectRef],
    ) -> BoxFuture<'a, Result<Vec<(ObjectRef, String)>>> {
        async move {
            let mut tokens = Vec::new();
            for app in apps {
                tokens.push((app.clone(), request_reconcile(client, app).await?));
            }
            Ok(tokens)
        }
        .boxed()
    }

    fn handled(&self, o: &Observation, token: &str) -> bool {
        o.last_handled.as_deref() == Some(token)
    }
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
