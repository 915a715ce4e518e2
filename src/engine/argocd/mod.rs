//! Argo CD: install from the upstream manifest into `argocd`, restore the repository
//! secret (the credentials that live outside Git), and create the root Application of
//! the app-of-apps. Readiness is judged from watched Applications, never the CLI.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::runtime::wait::await_condition;
use kube::{Client, discovery};
use serde_json::{Value, json};

pub mod kustomize;
pub mod readiness;
pub mod self_managed;

use std::path::PathBuf;

use futures::FutureExt as _;
use futures::future::BoxFuture;

use super::Engine;
use super::apply::{apply_all, default_namespace, parse_manifest};
use super::available::{WorkloadReady, await_workloads};
use crate::event::ObjectRef;
use crate::model::{EngineKind, SyncPolicy};
use crate::observe::readiness::Observation;
use crate::observe::rules::EngineRules;
use crate::repo_auth::RepoAuth;

pub const NAMESPACE: &str = "argocd";
pub const ROOT_NAME: &str = "root";
/// The served fleet is reachable in the cluster under this stable name (a Service without
/// selector in front of drill's Git server), so Applications in Git can name it.
pub const GIT_SERVICE_NAMESPACE: &str = "drill-system";
pub const GIT_SERVICE: &str = "drill-git";

pub fn root_app() -> ObjectRef {
    ObjectRef::new("Application", NAMESPACE, ROOT_NAME)
}

/// The URL Applications in the fleet use for the served repo.
pub fn in_cluster_url(repo_name: &str) -> String {
    format!("http://{GIT_SERVICE}.{GIT_SERVICE_NAMESPACE}.svc.cluster.local/{repo_name}.git")
}

/// Applies the Argo CD install manifest into `argocd` and waits until every Deployment
/// and StatefulSet of it is available (all within `timeout`); returns each one's time.
pub async fn install(client: &Client, manifest: &Path, timeout: Duration) -> Result<Vec<WorkloadReady>> {
    let started = tokio::time::Instant::now();
    let text = std::fs::read_to_string(manifest)
        .with_context(|| format!("failed to read the Argo CD install manifest {}", manifest.display()))?;
    let mut docs = vec![json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})];
    docs.extend(parse_manifest(&text).with_context(|| format!("in {}", manifest.display()))?);
    default_namespace(&mut docs, NAMESPACE);
    apply_all(client, &docs, timeout).await?;
    await_workloads(client, NAMESPACE, &docs, started, timeout).await
}

/// The Service (no selector) and Endpoints that give drill's Git server its in-cluster name.
pub fn git_service(server: SocketAddr) -> Vec<Value> {
    vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": GIT_SERVICE_NAMESPACE}}),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": GIT_SERVICE, "namespace": GIT_SERVICE_NAMESPACE},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": server.port()}]}
        }),
        json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": GIT_SERVICE, "namespace": GIT_SERVICE_NAMESPACE,
                         "labels": {"kubernetes.io/service-name": GIT_SERVICE}},
            "addressType": if server.is_ipv4() { "IPv4" } else { "IPv6" },
            "endpoints": [{"addresses": [server.ip().to_string()]}],
            "ports": [{"name": "http", "port": server.port(), "protocol": "TCP"}]
        }),
    ]
}

/// The `default` project: argocd-server creates it at start, and the core install has no
/// argocd-server, so a rebuild must restore it (as `argocd admin` would) before any app.
pub fn default_project() -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
        "metadata": {"name": "default", "namespace": NAMESPACE},
        "spec": {
            "sourceRepos": ["*"],
            "destinations": [{"server": "*", "namespace": "*"}],
            "clusterResourceWhitelist": [{"group": "*", "kind": "*"}]
        }
    })
}

/// The repository secret Argo CD reads its repo URL (and credentials) from.
pub fn repository_secret(url: &str, auth: Option<&RepoAuth>) -> Value {
    let mut secret = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "drill-fleet-repo", "namespace": NAMESPACE,
                     "labels": {"argocd.argoproj.io/secret-type": "repository"}},
        "stringData": {"type": "git", "url": url, "name": "fleet"}
    });
    if let Some(auth) = auth {
        secret["stringData"]["username"] = json!(auth.username);
        secret["stringData"]["password"] = json!(auth.password);
    }
    secret
}

/// The root Application of the app-of-apps.
pub fn root_application(url: &str, branch: &str, path: &str, policy: SyncPolicy) -> Value {
    let mut app = json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": ROOT_NAME, "namespace": NAMESPACE},
        "spec": {
            "project": "default",
            "source": {"repoURL": url, "targetRevision": branch, "path": path},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": NAMESPACE}
        }
    });
    if policy.automated {
        app["spec"]["syncPolicy"] = json!({"automated": {"selfHeal": policy.self_heal, "prune": policy.prune}});
    }
    app
}

async fn applications(client: &Client) -> Result<(Api<DynamicObject>, kube::api::ApiResource)> {
    let group = discovery::group(client, "argoproj.io")
        .await
        .context("failed to discover Argo CD's API (is Argo CD installed?)")?;
    let (ar, _) = group
        .recommended_kind("Application")
        .context("the cluster serves no Application kind")?;
    Ok((Api::namespaced_with(client.clone(), NAMESPACE, &ar), ar))
}

/// Asks Argo CD to refresh every Application now (`argocd app get --refresh`); returns
/// each one asked, with its token.
pub async fn refresh_all(client: &Client) -> Result<Vec<(ObjectRef, String)>> {
    let (api, _) = applications(client).await?;
    let list = api
        .list(&ListParams::default())
        .await
        .context("failed to list Applications")?;
    let apps: Vec<ObjectRef> = (list.iter())
        .filter_map(|app| app.metadata.name.as_deref())
        .map(|name| ObjectRef::new("Application", NAMESPACE, name))
        .collect();
    let token = request_refreshes(client, &apps).await?;
    Ok(apps.into_iter().map(|app| (app, token.clone())).collect())
}

/// Requests a refresh of Applications; each is handled once its `status.reconciledAt` is
/// at or after the token. `reconciledAt` is truncated to the second, so the request
/// waits for the next whole second and the token is that second: a reconcile from
/// before the request then reads earlier than the token, and one that handled it never
/// does. One wait for all, so asking N apps costs at most one second, not N.
pub async fn request_refreshes(client: &Client, apps: &[ObjectRef]) -> Result<String> {
    let (api, _) = applications(client).await?;
    let (next_second, wait) = next_whole_second(jiff::Timestamp::now())?;
    tokio::time::sleep(wait).await;
    let token = next_second.to_string();
    let patch = json!({"metadata": {"annotations": {"argocd.argoproj.io/refresh": "normal"}}});
    for app in apps {
        api.patch(&app.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .with_context(|| format!("failed to refresh {app}"))?;
    }
    Ok(token)
}

/// The next whole second after `now` (or `now` itself, when whole), and how long until it.
fn next_whole_second(now: jiff::Timestamp) -> Result<(jiff::Timestamp, std::time::Duration)> {
    let next = now
        .round(
            jiff::TimestampRound::new()
                .smallest(jiff::Unit::Second)
                .mode(jiff::RoundMode::Ceil),
        )
        .context("cannot round the clock to a second")?;
    let wait = std::time::Duration::try_from(next.duration_since(now)).unwrap_or_default();
    Ok((next, wait))
}

/// An Application's sync history (`status.history`): (id, revision), oldest first, and
/// the revision its last sync operation applied.
pub struct History {
    pub entries: Vec<(i64, String)>,
    pub current: Option<String>,
}

pub async fn history(client: &Client, app: &ObjectRef) -> Result<History> {
    let (api, _) = applications(client).await?;
    let value = serde_json::to_value(
        api.get(&app.name)
            .await
            .with_context(|| format!("failed to read {app}"))?,
    )?;
    let entries = value
        .pointer("/status/history")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|h| Some((h.get("id")?.as_i64()?, h.get("revision")?.as_str()?.to_string())))
        .collect();
    let current = value
        .pointer("/status/operationState/syncResult/revision")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(History { entries, current })
}

/// Rolls an Application back to `revision`, as `argocd app rollback` does through the API
/// server (drill runs without one): a sync operation of that revision, set on the
/// Application for the controller to run. Unlike the API server, it does not refuse when
/// auto-sync is on: showing what auto-sync then does is the point of the rehearsal.
pub async fn rollback(client: &Client, app: &ObjectRef, revision: &str, history_id: i64) -> Result<()> {
    let (api, _) = applications(client).await?;
    let patch = json!({"operation": {
        "sync": {"revision": revision},
        "initiatedBy": {"username": "drill"},
        "info": [{"name": "Reason", "value": format!("Rollback to history {history_id}")}]
    }});
    api.patch(&app.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .with_context(|| format!("failed to roll back {app} to {revision}"))?;
    Ok(())
}

/// Annotations drill leaves on a paused Application: that the pause is deliberate (for
/// the readiness rules), the `automated` policy to put back, and the parent paused with it.
const PAUSED: &str = "drill.gitops.dev/paused";
const PAUSED_AUTOMATED: &str = "drill.gitops.dev/paused-automated";
const PAUSED_PARENT: &str = "drill.gitops.dev/paused-parent";

/// Argo CD's break-glass pause: take `automated` out of the sync policy (self-heal off),
/// keeping what it was to put it back on resume. An Application that a self-healing
/// parent (app-of-apps) manages would get its policy back from Git within seconds, so
/// the parent is paused first, and resumed after it. Returns the apps paused or resumed
/// besides `app`.
pub async fn set_auto_sync(client: &Client, app: &ObjectRef, on: bool) -> Result<Vec<ObjectRef>> {
    let (api, _) = applications(client).await?;
    let current = api
        .get(&app.name)
        .await
        .with_context(|| format!("failed to read {app}"))?;
    let value = serde_json::to_value(&current)?;
    let annotation = |k: &str| {
        value
            .pointer(&format!("/metadata/annotations/{}", k.replace('/', "~1")))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let mut others = Vec::new();
    if on {
        let automated = annotation(PAUSED_AUTOMATED)
            .and_then(|a| serde_json::from_str::<Value>(&a).ok())
            .filter(|a| a.is_object())
            .unwrap_or_else(|| json!({"selfHeal": true, "prune": true}));
        patch_auto_sync(&api, app, automated, None, None).await?;
        if let Some(parent) = annotation(PAUSED_PARENT) {
            let parent = ObjectRef::new("Application", NAMESPACE, &parent);
            others.extend(Box::pin(set_auto_sync(client, &parent, true)).await?);
            others.push(parent);
        }
    } else {
        let parent = readiness::manager_of(&value);
        let mut paused_parent = None;
        if let Some(parent) = parent {
            let p = api
                .get(&parent.name)
                .await
                .with_context(|| format!("failed to read {parent}"))?;
            let self_heals = serde_json::to_value(&p)?
                .pointer("/spec/syncPolicy/automated/selfHeal")
                .and_then(Value::as_bool)
                == Some(true);
            if self_heals {
                others.extend(Box::pin(set_auto_sync(client, &parent, false)).await?);
                others.push(parent.clone());
                paused_parent = Some(parent.name);
            }
        }
        let automated = value
            .pointer("/spec/syncPolicy/automated")
            .filter(|a| !a.is_null())
            .map(Value::to_string);
        patch_auto_sync(&api, app, Value::Null, automated.clone(), paused_parent.clone()).await?;
        // A sync already under way is not stopped by the pause: the parent's would put
        // the child's auto-sync back from Git, the child's would overwrite what a person
        // does next. Let them finish, then pause the child again if its parent undid it.
        let mut running: Vec<&str> = vec![app.name.as_str()];
        running.extend(paused_parent.as_deref());
        await_operations_done(&api, &running).await?;
        let again = serde_json::to_value(
            api.get(&app.name)
                .await
                .with_context(|| format!("failed to read {app}"))?,
        )?;
        if again
            .pointer("/spec/syncPolicy/automated")
            .is_some_and(|a| !a.is_null())
        {
            patch_auto_sync(&api, app, Value::Null, automated, paused_parent).await?;
        }
    }
    Ok(others)
}

/// How long a pause waits for sync operations already under way.
const OPERATIONS_DONE_WITHIN: Duration = Duration::from_secs(60);

/// Waits (watching) until none of the Applications `names` has a sync operation
/// requested or running, or OPERATIONS_DONE_WITHIN passes: the pause then goes on, and
/// the step's own checks say what happened.
async fn await_operations_done(api: &Api<DynamicObject>, names: &[&str]) -> Result<()> {
    let idle = |app: Option<&DynamicObject>| {
        let Some(v) = app.and_then(|a| serde_json::to_value(a).ok()) else {
            return true;
        };
        let requested = v.get("operation").is_some_and(|o| !o.is_null());
        let running = v.pointer("/status/operationState/phase").and_then(Value::as_str) == Some("Running");
        !requested && !running
    };
    let all = futures::future::try_join_all(names.iter().map(|name| await_condition(api.clone(), name, idle)));
    match tokio::time::timeout(OPERATIONS_DONE_WITHIN, all).await {
        Ok(done) => done
            .map(|_| ())
            .context("failed to watch the Applications' sync operations"),
        Err(_) => Ok(()),
    }
}

async fn patch_auto_sync(
    api: &Api<DynamicObject>,
    app: &ObjectRef,
    automated: Value,
    keep: Option<String>,
    parent: Option<String>,
) -> Result<()> {
    let on = !automated.is_null();
    let patch = json!({
        "metadata": {"annotations": {
            PAUSED: if on { Value::Null } else { json!("true") },
            PAUSED_AUTOMATED: keep.map_or(Value::Null, Value::String),
            PAUSED_PARENT: parent.map_or(Value::Null, Value::String),
        }},
        "spec": {"syncPolicy": {"automated": automated}}
    });
    api.patch(&app.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .with_context(|| format!("failed to {} auto-sync of {app}", if on { "restore" } else { "remove" }))?;
    Ok(())
}

/// Argo CD, as a run drives it.
#[derive(Debug, Clone)]
pub struct ArgoCd {
    /// None on an existing cluster: it runs its own Argo CD.
    install: Option<PathBuf>,
    path: String,
    policy: SyncPolicy,
    /// The root Application (namespace argocd): the one drill creates, or the existing
    /// cluster's own app-of-apps.
    root: String,
}

impl ArgoCd {
    pub fn new(install: Option<PathBuf>, path: String, policy: SyncPolicy) -> ArgoCd {
        ArgoCd {
            install,
            path,
            policy,
            root: ROOT_NAME.to_string(),
        }
    }

    /// Names the root Application (`engine.argocd.root-app`).
    pub fn with_root(mut self, root: &str) -> ArgoCd {
        self.root = root.to_string();
        self
    }
}

impl Engine for ArgoCd {
    fn kind(&self) -> EngineKind {
        EngineKind::Argocd
    }

    fn install_manifest(&self) -> Option<&Path> {
        self.install.as_deref()
    }

    fn install<'a>(&'a self, client: &'a Client) -> BoxFuture<'a, Result<Vec<WorkloadReady>>> {
        async move {
            let manifest = (self.install.as_deref())
                .context("no Argo CD install manifest: drill installs Argo CD only into clusters it creates")?;
            install(client, manifest, Duration::from_secs(300)).await
        }
        .boxed()
    }

    /// Applications in Git name a stable in-cluster URL, whatever drill's server address.
    fn repo_url(&self, _server: SocketAddr, repo_name: &str) -> String {
        in_cluster_url(repo_name)
    }

    fn own_secrets(&self, url: &str, auth: Option<&RepoAuth>) -> Vec<Value> {
        vec![repository_secret(url, auth)]
    }

    fn always_restores_secrets(&self) -> bool {
        true
    }

    fn bootstrap<'a>(
        &'a self,
        client: &'a Client,
        url: &'a str,
        served: Option<SocketAddr>,
        branch: &'a str,
    ) -> BoxFuture<'a, Result<()>> {
        let mut objects = served.map(git_service).unwrap_or_default();
        objects.push(default_project());
        let mut root = root_application(url, branch, &self.path, self.policy);
        root["metadata"]["name"] = json!(self.root);
        objects.push(root);
        async move {
            apply_all(client, &objects, Duration::from_secs(60))
                .await
                .context("failed to create the root Application")
        }
        .boxed()
    }

    fn roots(&self) -> (ObjectRef, ObjectRef) {
        let root = ObjectRef::new("Application", NAMESPACE, &self.root);
        (root.clone(), root)
    }

    fn rules(&self) -> &'static EngineRules {
        &readiness::RULES
    }

    fn reconcile_now<'a>(&'a self, client: &'a Client) -> BoxFuture<'a, Result<Vec<(ObjectRef, String)>>> {
        refresh_all(client).boxed()
    }

    fn app_ref(&self, app: &str) -> ObjectRef {
        match app.split_once('/') {
            Some((ns, name)) => ObjectRef::new("Application", ns, name),
            None => ObjectRef::new("Application", NAMESPACE, app),
        }
    }

    fn ownership_marks(&self, app: &ObjectRef, group: &str, object: &ObjectRef) -> crate::engine::Marks {
        // Argo CD 3 tracks by annotation (`<app>:<group>/<kind>:<namespace>/<name>`);
        // label tracking, still common, reads the instance label.
        let id = format!(
            "{}:{group}/{}:{}/{}",
            app.name, object.kind, object.namespace, object.name
        );
        crate::engine::Marks {
            labels: vec![("app.kubernetes.io/instance".into(), app.name.clone())],
            annotations: vec![("argocd.argoproj.io/tracking-id".into(), id)],
        }
    }

    fn set_paused<'a>(
        &'a self,
        client: &'a Client,
        app: &'a ObjectRef,
        paused: bool,
    ) -> BoxFuture<'a, Result<Vec<ObjectRef>>> {
        set_auto_sync(client, app, !paused).boxed()
    }

    fn request_reconciles<'a>(
        &'a self,
        client: &'a Client,
        apps: &'a [ObjectRef],
    ) -> BoxFuture<'a, Result<Vec<(ObjectRef, String)>>> {
        async move {
            let token = request_refreshes(client, apps).await?;
            Ok(apps.iter().map(|a| (a.clone(), token.clone())).collect())
        }
        .boxed()
    }

    fn handled(&self, o: &Observation, token: &str) -> bool {
        let Some(last) = o.last_handled.as_deref() else {
            return false;
        };
        let (Ok(last), Ok(token)) = (last.parse::<jiff::Timestamp>(), token.parse::<jiff::Timestamp>()) else {
            return false;
        };
        // The token is the whole second the request was made at (see request_refreshes),
        // so reconciledAt's truncation cannot mislead.
        last >= token
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refresh_token_is_the_next_whole_second() {
        let now: jiff::Timestamp = "2026-11-23T17:04:35.250Z".parse().unwrap();
        let (next, wait) = next_whole_second(now).unwrap();
        assert_eq!(next.to_string(), "2026-11-23T17:04:36Z");
        assert_eq!(wait, std::time::Duration::from_millis(750));
        // reconciledAt of a refresh done in the request's own second reads earlier.
        let same_second: jiff::Timestamp = "2026-11-23T17:04:35Z".parse().unwrap();
        assert!(same_second < next);
        let whole: jiff::Timestamp = "2026-11-23T17:04:36Z".parse().unwrap();
        assert_eq!(next_whole_second(whole).unwrap(), (whole, std::time::Duration::ZERO));
    }

    #[test]
    fn root_application_and_repo_secret_follow_argo_conventions() {
        let url = in_cluster_url("fleet");
        assert_eq!(url, "http://drill-git.drill-system.svc.cluster.local/fleet.git");
        let app = root_application(&url, "main", "argocd/root", SyncPolicy::default());
        assert_eq!(app["spec"]["source"]["path"], "argocd/root");
        assert_eq!(app["spec"]["syncPolicy"]["automated"]["selfHeal"], true);
        let manual = root_application(
            &url,
            "main",
            "argocd/root",
            SyncPolicy {
                automated: false,
                ..SyncPolicy::default()
            },
        );
        assert!(manual["spec"].get("syncPolicy").is_none());
        let secret = repository_secret(&url, None);
        assert_eq!(
            secret["metadata"]["labels"]["argocd.argoproj.io/secret-type"],
            "repository"
        );
        assert!(secret["stringData"].get("password").is_none());
        let auth = RepoAuth {
            username: "bot".into(),
            password: "tok".into(),
            origin: "test".into(),
        };
        let with = repository_secret(&url, Some(&auth));
        assert_eq!(with["stringData"]["username"], "bot");
        assert_eq!(with["stringData"]["password"], "tok");
        assert_eq!(with["stringData"]["url"], url.as_str());
        let svc = git_service("172.18.0.1:4567".parse().unwrap());
        assert_eq!(svc[1]["spec"]["ports"][0]["targetPort"], 4567);
        assert_eq!(svc[2]["endpoints"][0]["addresses"][0], "172.18.0.1");
        assert_eq!(svc[2]["metadata"]["labels"]["kubernetes.io/service-name"], GIT_SERVICE);
    }
}
