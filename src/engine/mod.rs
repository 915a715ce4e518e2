//! GitOps engines: install, bootstrap the root sync, request reconciles.

pub mod apply;
pub mod argocd;
pub mod flux;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use kube::Client;

use crate::event::ObjectRef;
use crate::observe::readiness::Observation;
use crate::profile::Profile;
use crate::scenario::{EngineKind, Plan, SyncPolicy};
use crate::secrets::RepoAuth;

/// The engine a run drives, with what it needs to install and bootstrap it.
#[derive(Debug, Clone)]
pub enum Engine {
    Flux {
        /// None for an existing cluster: its Flux is already there, drill installs nothing.
        install: Option<PathBuf>,
        path: String,
        interval: Duration,
        /// The repo needs credentials: the root GitRepository names their Secret, which
        /// may be missing (a rehearsal of losing it).
        credentials: bool,
    },
    Argocd {
        install: PathBuf,
        path: String,
        policy: SyncPolicy,
    },
}

impl Engine {
    /// The plan's engine, with its install manifest from the profile.
    pub fn for_plan(plan: &Plan, profile: &Profile) -> Result<Engine> {
        let existing = matches!(plan.scenario.cluster, crate::scenario::ClusterSpec::Existing(_));
        match plan.engine {
            EngineKind::Flux => {
                let spec = plan
                    .scenario
                    .engine
                    .flux
                    .as_ref()
                    .context("the scenario has no engine.flux")?;
                // An existing cluster already runs its engine: nothing to install.
                let install = match &profile.flux_install {
                    Some(p) => Some(p.clone()),
                    None if existing => None,
                    None => anyhow::bail!(
                        "no Flux install manifest: set DRILL_FLUX_INSTALL (e.g. `flux install --export > flux.yaml`) or use a profile (--profile / DRILL_PROFILE)"
                    ),
                };
                Ok(Engine::Flux {
                    install,
                    path: spec.path.as_str().to_string(),
                    interval: spec.interval.0,
                    credentials: plan.repo.credentials().is_some(),
                })
            }
            EngineKind::Argocd => {
                let spec = plan
                    .scenario
                    .engine
                    .argocd
                    .as_ref()
                    .context("the scenario has no engine.argocd")?;
                let install = profile.argocd_install.clone().context(
                    "no Argo CD install manifest: set DRILL_ARGOCD_INSTALL (Argo CD's install.yaml) or use a profile (--profile / DRILL_PROFILE)",
                )?;
                Ok(Engine::Argocd {
                    install,
                    path: spec.path.as_str().to_string(),
                    policy: spec.sync_policy,
                })
            }
        }
    }

    /// The install manifest the engine is installed from (None: drill installs nothing).
    pub fn install_manifest(&self) -> Option<&std::path::Path> {
        match self {
            Engine::Flux { install, .. } => install.as_deref(),
            Engine::Argocd { install, .. } => Some(install),
        }
    }

    pub fn kind(&self) -> EngineKind {
        match self {
            Engine::Flux { .. } => EngineKind::Flux,
            Engine::Argocd { .. } => EngineKind::Argocd,
        }
    }

    pub async fn install(&self, client: &Client) -> Result<()> {
        match self {
            Engine::Flux { install, .. } => {
                let install = install
                    .as_deref()
                    .context("no Flux install manifest: drill installs Flux only into clusters it creates")?;
                flux::install(client, install, Duration::from_secs(300)).await
            }
            Engine::Argocd { install, .. } => argocd::install(client, install, Duration::from_secs(300)).await,
        }
    }

    /// The URL the cluster fetches the served repo from. Flux reaches drill's server on
    /// the kind network directly; Argo CD's Applications in Git name a stable in-cluster URL.
    pub fn repo_url(&self, server: SocketAddr, repo_name: &str) -> String {
        match self {
            Engine::Flux { .. } => format!("http://{server}/{repo_name}.git"),
            Engine::Argocd { .. } => argocd::in_cluster_url(repo_name),
        }
    }

    /// Whether there are secrets outside Git to restore (the `secret-bootstrap` phase):
    /// the scenario's keys, the repo credentials, and Argo CD's repository secret.
    pub fn has_secret_bootstrap(&self, scenario_secrets: &[serde_json::Value], auth: Option<&RepoAuth>) -> bool {
        matches!(self, Engine::Argocd { .. }) || !scenario_secrets.is_empty() || auth.is_some()
    }

    /// Restores the secrets that live outside Git, before the root sync. Errors name the
    /// Secret, never its content.
    pub async fn secret_bootstrap(
        &self,
        client: &Client,
        url: &str,
        scenario_secrets: &[serde_json::Value],
        auth: Option<&RepoAuth>,
    ) -> Result<()> {
        let mut secrets = scenario_secrets.to_vec();
        match self {
            Engine::Argocd { .. } => secrets.push(argocd::repository_secret(url, auth)),
            Engine::Flux { .. } => secrets.extend(auth.map(flux::repo_secret)),
        }
        for s in &secrets {
            let name = s
                .pointer("/metadata/name")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("?");
            if let Some(ns) = s.pointer("/metadata/namespace").and_then(serde_json::Value::as_str) {
                let namespace = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
                apply::apply_all(client, &[namespace], Duration::from_secs(60)).await?;
            }
            apply::apply_all(client, std::slice::from_ref(s), Duration::from_secs(60))
                .await
                .with_context(|| format!("failed to restore Secret {name}"))?;
        }
        Ok(())
    }

    /// Creates the root sync: Flux's GitRepository + Kustomization, or Argo CD's root
    /// Application. `served` is drill's Git server, when drill serves the repo (Argo CD
    /// reaches it through an in-cluster Service).
    pub async fn bootstrap(&self, client: &Client, url: &str, served: Option<SocketAddr>, branch: &str) -> Result<()> {
        match self {
            Engine::Flux {
                path,
                interval,
                credentials,
                ..
            } => {
                let secret = credentials.then_some(flux::REPO_SECRET);
                flux::bootstrap(client, &flux::root_objects(url, branch, path, *interval, secret)).await
            }
            Engine::Argocd { path, policy, .. } => {
                let mut objects = served.map(argocd::git_service).unwrap_or_default();
                objects.push(argocd::default_project());
                objects.push(argocd::root_application(url, branch, path, *policy));
                apply::apply_all(client, &objects, Duration::from_secs(60))
                    .await
                    .context("failed to create the root Application")
            }
        }
    }

    /// The root of the desired state, and the object whose revision must be the served commit.
    pub fn roots(&self) -> (ObjectRef, ObjectRef) {
        match self {
            Engine::Flux { .. } => (flux::root_kustomization(), flux::root_source()),
            Engine::Argocd { .. } => (argocd::root_app(), argocd::root_app()),
        }
    }

    /// `flux reconcile` / `argocd app get --refresh` for everything.
    pub async fn reconcile_now(&self, client: &Client) -> Result<usize> {
        match self {
            Engine::Flux { .. } => flux::reconcile_now(client).await,
            Engine::Argocd { .. } => argocd::refresh_all(client).await,
        }
    }

    /// An app named in a scenario: a Flux Kustomization or an Argo CD Application.
    pub fn app_ref(&self, app: &str) -> ObjectRef {
        match self {
            Engine::Flux { .. } => flux::app_ref(app),
            Engine::Argocd { .. } => match app.split_once('/') {
                Some((ns, name)) => ObjectRef::new("Application", ns, name),
                None => ObjectRef::new("Application", argocd::NAMESPACE, app),
            },
        }
    }

    /// Pauses (Flux: suspend; Argo CD: auto-sync off) or resumes one app.
    /// Pauses or resumes one app; returns the other apps that had to be paused or
    /// resumed with it (Argo CD: a self-healing parent app-of-apps).
    pub async fn set_paused(&self, client: &Client, app: &ObjectRef, paused: bool) -> Result<Vec<ObjectRef>> {
        match self {
            Engine::Flux { .. } => flux::set_suspended(client, app, paused).await.map(|_| Vec::new()),
            Engine::Argocd { .. } => argocd::set_auto_sync(client, app, !paused).await,
        }
    }

    /// Asks one app to reconcile now; returns a token for [`Engine::handled`].
    pub async fn request_reconcile(&self, client: &Client, app: &ObjectRef) -> Result<String> {
        match self {
            Engine::Flux { .. } => flux::request_reconcile(client, app).await,
            Engine::Argocd { .. } => argocd::request_refresh(client, app).await,
        }
    }

    /// Asks several apps to reconcile now; returns each app's token.
    pub async fn request_reconciles(&self, client: &Client, apps: &[ObjectRef]) -> Result<Vec<(ObjectRef, String)>> {
        match self {
            Engine::Flux { .. } => {
                let mut tokens = Vec::new();
                for app in apps {
                    tokens.push((app.clone(), flux::request_reconcile(client, app).await?));
                }
                Ok(tokens)
            }
            Engine::Argocd { .. } => {
                let token = argocd::request_refreshes(client, apps).await?;
                Ok(apps.iter().map(|a| (a.clone(), token.clone())).collect())
            }
        }
    }

    /// Whether the app finished the reconcile `token` asked for.
    pub fn handled(&self, o: &Observation, token: &str) -> bool {
        let Some(last) = o.last_handled.as_deref() else {
            return false;
        };
        match self {
            Engine::Flux { .. } => last == token,
            Engine::Argocd { .. } => {
                let (Ok(last), Ok(token)) = (last.parse::<jiff::Timestamp>(), token.parse::<jiff::Timestamp>()) else {
                    return false;
                };
                // The token is the whole second the request was made at (see
                // argocd::request_refresh), so reconciledAt's truncation cannot mislead.
                last >= token
            }
        }
    }

    /// The kind whose Events name what a reconcile changed (drift detection by event).
    /// Argo CD shows drift as an Application going OutOfSync instead.
    pub fn event_kind(&self) -> Option<&'static str> {
        match self {
            Engine::Flux { .. } => Some("Kustomization"),
            Engine::Argocd { .. } => None,
        }
    }

    /// The engine's kinds the observer watches.
    pub fn kinds_to_watch(&self) -> &'static [(&'static str, &'static str)] {
        match self {
            Engine::Flux { .. } => &crate::observe::FLUX_KINDS,
            Engine::Argocd { .. } => &crate::observe::ARGOCD_KINDS,
        }
    }
}
