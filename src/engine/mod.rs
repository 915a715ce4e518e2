//! GitOps engines behind one trait: install, restore the secrets outside Git, bootstrap
//! the root sync, name what to watch and how to judge it, reconcile and pause apps.
//!
//! Each engine lives in its own folder with the same file names (`mod.rs`: what it
//! does to a cluster; `readiness.rs`: its kinds and rules). Adding an engine is its
//! folder, its `EngineKind` in the scenario model, and one arm where the runner picks
//! the plan's engine (`runner/setup.rs`).
//!
//! The async methods return boxed futures so the runner can hold a `dyn Engine`
//! (native async trait methods are not object-safe; a boxed future per call is what
//! the `async-trait` crate would generate, without the extra dependency).

pub mod apply;
pub mod argocd;
pub mod available;
pub mod flux;
pub mod release;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use futures::future::BoxFuture;
use kube::Client;
use serde_json::Value;

use crate::event::ObjectRef;
use crate::model::EngineKind;
use crate::observe::readiness::Observation;
use crate::observe::rules::EngineRules;
use crate::repo_auth::RepoAuth;

/// The engine's version as its install manifest states it: the standard
/// `app.kubernetes.io/version` label (Flux sets it on every object), else the tag of the
/// engine's own image (`quay.io/argoproj/argocd:v3.2.11` for Argo CD, whose manifests
/// carry no such label). A plain text scan: the manifest may be many megabytes.
pub fn manifest_version(manifest: &str, kind: EngineKind) -> Option<String> {
    let clean = |v: &str| v.trim().trim_matches(['"', '\'']).to_string();
    let labelled = manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("app.kubernetes.io/version:"))
        .map(clean);
    labelled.filter(|v| !v.is_empty()).or_else(|| {
        manifest.lines().find_map(|l| {
            let line = l.trim();
            let image = clean(line.strip_prefix("- ").unwrap_or(line).strip_prefix("image:")?);
            let (repo, tag) = image.rsplit_once(':')?;
            (repo.rsplit('/').next() == Some(kind.as_str()) && !tag.contains('/')).then(|| tag.to_string())
        })
    })
}

/// Labels and annotations, as (key, value).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Marks {
    pub labels: Vec<(String, String)>,
    pub annotations: Vec<(String, String)>,
}

/// A GitOps engine a run drives.
pub trait Engine: Send + Sync + std::fmt::Debug {
    fn kind(&self) -> EngineKind;

    /// The install manifest the engine is installed from (None: drill installs nothing).
    fn install_manifest(&self) -> Option<&Path>;

    /// Installs the engine and waits until its controllers are available; returns each
    /// one's time to ready, in the order they became ready.
    fn install<'a>(&'a self, client: &'a Client) -> BoxFuture<'a, Result<Vec<available::WorkloadReady>>>;

    /// The URL the cluster fetches the served repo from.
    fn repo_url(&self, server: SocketAddr, repo_name: &str) -> String;

    /// Secrets of the engine's own that live outside Git (repository credentials), to
    /// restore with the scenario's in the `secret-bootstrap` phase.
    fn own_secrets(&self, url: &str, auth: Option<&RepoAuth>) -> Vec<Value>;

    /// Whether the engine always restores a secret of its own, even without credentials.
    fn always_restores_secrets(&self) -> bool;

    /// Creates the root sync. `served` is drill's Git server when drill serves the repo.
    fn bootstrap<'a>(
        &'a self,
        client: &'a Client,
        url: &'a str,
        served: Option<SocketAddr>,
        branch: &'a str,
    ) -> BoxFuture<'a, Result<()>>;

    /// Files of drill's served copy to rewrite before the root sync, as (path in the repo,
    /// content); the runner commits them. Flux: a `flux bootstrap` gotk-sync.yaml pointed
    /// at the served copy, since the root Kustomization re-applies it from Git.
    fn served_rewrites(&self, _url: &str, _branch: &str) -> Result<Vec<(String, String)>> {
        Ok(Vec::new())
    }

    /// The root of the desired state, and the object whose revision must be the served commit.
    fn roots(&self) -> (ObjectRef, ObjectRef);

    /// The kinds to watch, how to judge them, and the engine's own recovery checks.
    fn rules(&self) -> &'static EngineRules;

    /// `flux reconcile` / `argocd app get --refresh` for everything; returns each object
    /// asked, with its token for [`Engine::handled`].
    fn reconcile_now<'a>(&'a self, client: &'a Client) -> BoxFuture<'a, Result<Vec<(ObjectRef, String)>>>;

    /// An app named in a scenario: a Flux Kustomization or an Argo CD Application.
    fn app_ref(&self, app: &str) -> ObjectRef;

    /// The labels and annotations the engine puts on an object `app` applies (what a
    /// person copies when making one by hand "like the others"); `group` is the object's
    /// API group ("" for the core group).
    fn ownership_marks(&self, app: &ObjectRef, group: &str, object: &ObjectRef) -> Marks;

    /// Pauses (Flux: suspend; Argo CD: auto-sync off) or resumes one app; returns the
    /// other apps that had to be paused or resumed with it (a self-healing parent).
    fn set_paused<'a>(
        &'a self,
        client: &'a Client,
        app: &'a ObjectRef,
        paused: bool,
    ) -> BoxFuture<'a, Result<Vec<ObjectRef>>>;

    /// Asks several apps to reconcile now; returns each app's token for [`Engine::handled`].
    fn request_reconciles<'a>(
        &'a self,
        client: &'a Client,
        apps: &'a [ObjectRef],
    ) -> BoxFuture<'a, Result<Vec<(ObjectRef, String)>>>;

    /// Whether the app finished the reconcile `token` asked for.
    fn handled(&self, o: &Observation, token: &str) -> bool;
}

/// Whether there are secrets outside Git to restore (the `secret-bootstrap` phase):
/// the scenario's keys, the repo credentials, and the engine's own.
pub fn has_secret_bootstrap(engine: &dyn Engine, scenario_secrets: &[Value], auth: Option<&RepoAuth>) -> bool {
    engine.always_restores_secrets() || !scenario_secrets.is_empty() || auth.is_some()
}

/// Restores the secrets that live outside Git, before the root sync. Errors name the
/// Secret, never its content.
pub async fn secret_bootstrap(
    engine: &dyn Engine,
    client: &Client,
    url: &str,
    scenario_secrets: &[Value],
    auth: Option<&RepoAuth>,
) -> Result<()> {
    let mut secrets = scenario_secrets.to_vec();
    secrets.extend(engine.own_secrets(url, auth));
    for s in &secrets {
        let name = s.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("?");
        if let Some(ns) = s.pointer("/metadata/namespace").and_then(Value::as_str) {
            let namespace = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            apply::apply_all(client, &[namespace], Duration::from_secs(60)).await?;
        }
        apply::apply_all(client, std::slice::from_ref(s), Duration::from_secs(60))
            .await
            .with_context(|| format!("failed to restore Secret {name}"))?;
    }
    Ok(())
}

/// Asks one app to reconcile now; returns its token for [`Engine::handled`].
pub async fn request_reconcile(engine: &dyn Engine, client: &Client, app: &ObjectRef) -> Result<String> {
    let tokens = engine.request_reconciles(client, std::slice::from_ref(app)).await?;
    tokens
        .into_iter()
        .next()
        .map(|(_, token)| token)
        .context("the engine returned no reconcile token")
}

#[cfg(test)]
mod version_tests {
    use super::*;

    #[test]
    fn the_version_is_the_label_or_the_engines_own_image_tag() {
        let flux = "kind: Namespace\nmetadata:\n  labels:\n    app.kubernetes.io/part-of: flux\n    app.kubernetes.io/version: v2.9.5\n";
        assert_eq!(manifest_version(flux, EngineKind::Flux).as_deref(), Some("v2.9.5"));
        let argo = "containers:\n  - image: public.ecr.aws/docker/library/redis:7.0.15\n  - image: quay.io/argoproj/argocd:v3.2.11\n";
        assert_eq!(manifest_version(argo, EngineKind::Argocd).as_deref(), Some("v3.2.11"));
        // A registry with a port is not a tag; no version is None, not a guess.
        assert_eq!(
            manifest_version("image: localhost:5000/argocd\n", EngineKind::Argocd),
            None
        );
        assert_eq!(manifest_version("kind: List\n", EngineKind::Flux), None);
    }
}
