//! Watches the cluster and turns what it sees into typed updates. Watch-based (kube-rs
//! `watcher` with backoff; it resumes after dropped connections), never sleep-and-poll.
//!
//! The readiness rules and the recovery judgement are pure ([`readiness`], [`state`]);
//! this module only connects them to the API server.

pub mod kubelet;
pub mod observation;
pub mod probe;
pub mod readiness;
pub mod rules;
pub mod settled;
pub mod state;

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use futures::StreamExt as _;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Event as KubeEvent;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event};
use kube::{Client, discovery};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;

use crate::event::ObjectRef;
use readiness::{Observation, observe};
use rules::EngineRules;

/// What the watchers report.
#[derive(Debug, Clone)]
pub enum Update {
    Object(Box<Observation>),
    Pull {
        fact: kubelet::PullFact,
        node: String,
        /// The pod the kubelet pulled for.
        pod: Option<ObjectRef>,
        at: Option<Timestamp>,
    },
    /// Watch `watch` failed at `at` with `cause` (a status code and reason, or the
    /// client's error); it retries with backoff, the runner records a warning.
    WatchError {
        watch: String,
        cause: String,
        message: String,
        at: std::time::Instant,
    },
    /// The live state of an object drill follows closely (a drift target); None once deleted.
    Live {
        object: ObjectRef,
        value: Option<serde_json::Value>,
    },
    /// An event the engine recorded on one of its objects (Flux: on a Kustomization).
    EngineEvent {
        object: ObjectRef,
        reason: String,
        message: String,
        at: Option<Timestamp>,
    },
    /// One attempt of an availability probe: whether the Service served it, and why not.
    Probe {
        probe: String,
        served: bool,
        detail: String,
    },
    /// The watch `watch` panicked (a bug in drill) and stopped: what it followed is no
    /// longer seen, so the run cannot judge and must end as an error.
    WatchPanicked {
        watch: String,
        message: String,
    },
}

/// Spawns one watch task; a panic in it is sent as [`Update::WatchPanicked`] naming the
/// watch, instead of ending the task in silence (the run would wait out its timeout).
fn spawn_watch(
    watch: String,
    tx: Updates,
    task: impl std::future::Future<Output = ()> + Send + 'static,
) -> JoinHandle<()> {
    use futures::FutureExt as _;
    tokio::spawn(async move {
        if let Err(panic) = std::panic::AssertUnwindSafe(task).catch_unwind().await {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into());
            tx.send(Update::WatchPanicked { watch, message });
        }
    })
}

/// Fault injection for the watch-panic test (debug builds only): the watch named in
/// DRILL_FAULT_WATCH_PANIC panics on its first object.
#[cfg(debug_assertions)]
fn fault_watch_panic(watch: &str) {
    if std::env::var("DRILL_FAULT_WATCH_PANIC").is_ok_and(|w| w == watch) {
        panic!("DRILL_FAULT_WATCH_PANIC={watch}: a deliberate panic, to test it ends the run");
    }
}

/// An update with the instant its watcher received it: the time drill reports for it,
/// however long the runner takes to read it (a step may be busy for a minute).
#[derive(Debug)]
pub struct Received {
    pub at: std::time::Instant,
    pub update: Update,
}

/// The watchers' side of the update channel: stamps each update as it is sent, in the
/// watcher's own task.
#[derive(Debug, Clone)]
pub struct Updates(UnboundedSender<Received>);

impl Updates {
    /// A channel for one [`Observer`]: the sender its watchers share, and the receiver.
    pub fn channel() -> (Updates, UnboundedReceiver<Received>) {
        let (tx, rx) = unbounded_channel();
        (Updates(tx), rx)
    }

    /// Sends an update stamped now; a closed channel (the run ended) drops it.
    pub fn send(&self, update: Update) {
        self.send_at(update, std::time::Instant::now());
    }

    /// Sends an update stamped with an earlier instant (when what it reports began).
    pub fn send_at(&self, update: Update, at: std::time::Instant) {
        let _ = self.0.send(Received { at, update });
    }
}

/// Running watchers; dropping it stops them.
pub struct Observer {
    tasks: Vec<JoinHandle<()>>,
    tx: Updates,
}

impl Drop for Observer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Observer {
    /// Starts one watcher per kind the engine names, plus workloads, add-on objects,
    /// kubelet Events for image pulls and, where the engine records them, the engine's
    /// Events. Kinds whose CRDs are not installed are skipped.
    pub async fn start(client: Client, rules: &'static EngineRules, tx: Updates) -> Result<Observer> {
        let mut tasks = Vec::new();
        let mut groups = std::collections::BTreeMap::new();
        for rule in rules.kinds {
            let (group, kind) = (rule.group, rule.kind);
            if !groups.contains_key(group) {
                let g = discovery::group(&client, group)
                    .await
                    .with_context(|| format!("failed to discover API group {group} (is the engine installed?)"))?;
                groups.insert(group, g);
            }
            if let Some((ar, _)) = groups[group].recommended_kind(kind) {
                tasks.push(watch_kind(client.clone(), ar, kind, rules, tx.clone(), false));
            }
        }
        for (kind, ar) in [
            (
                "Deployment",
                ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&()),
            ),
            (
                "StatefulSet",
                ApiResource::erase::<k8s_openapi::api::apps::v1::StatefulSet>(&()),
            ),
            (
                "DaemonSet",
                ApiResource::erase::<k8s_openapi::api::apps::v1::DaemonSet>(&()),
            ),
        ] {
            tasks.push(watch_kind(client.clone(), ar, kind, rules, tx.clone(), true));
        }
        for addon in ADDON_CRDS {
            tasks.push(watch_addon_kind(client.clone(), addon, rules, tx.clone()));
        }
        tasks.push(watch_events(client.clone(), "Pod", pull_event, tx.clone()));
        if let Some(kind) = rules.event_kind {
            tasks.push(watch_events(client, kind, engine_event, tx.clone()));
        }
        // One watch per kind across all namespaces: the count does not grow with the fleet
        // (hack/bench-fleet reads this line).
        tracing::debug!(watches = tasks.len(), "observer started");
        Ok(Observer { tasks, tx })
    }

    /// Follows one object closely (every change, as [`Update::Live`]).
    /// Starts one availability probe per target; they stop with the observer.
    pub fn probe(&mut self, client: &Client, targets: &[probe::ProbeTarget]) {
        for target in targets {
            let watch = format!("probe {}", target.name);
            let task = probe::run(client.clone(), target.clone(), self.tx.clone());
            self.tasks.push(spawn_watch(watch, self.tx.clone(), task));
        }
    }

    pub fn watch_object(&mut self, api: Api<DynamicObject>, object: ObjectRef) {
        tracing::debug!(%object, "watching one object");
        let tx = self.tx.clone();
        let watch = object.to_string();
        self.tasks.push(spawn_watch(watch, tx.clone(), async move {
            let config = watcher::Config::default().fields(&format!("metadata.name={}", object.name));
            let mut stream = watcher::watcher(api, config).default_backoff().boxed();
            while let Some(item) = stream.next().await {
                let value = match item {
                    Ok(Event::Apply(obj) | Event::InitApply(obj)) => serde_json::to_value(&obj).ok(),
                    Ok(Event::Delete(_)) => None,
                    Ok(_) => continue,
                    Err(err) => {
                        report_watch_error(&tx, &object.to_string(), &err);
                        continue;
                    }
                };
                tx.send(Update::Live {
                    object: object.clone(),
                    value,
                });
            }
        }));
    }
}

/// Events an engine records on its objects (Flux on Kustomizations): they name what a
/// reconcile changed ("ConfigMap/users/users-api-env configured"), which is how drift shows up.
fn engine_event(ev: &KubeEvent) -> Option<Update> {
    let involved = &ev.involved_object;
    Some(Update::EngineEvent {
        object: ObjectRef::new(
            involved.kind.as_deref().unwrap_or_default(),
            involved.namespace.as_deref().unwrap_or_default(),
            involved.name.as_deref().unwrap_or_default(),
        ),
        reason: ev.reason.clone().unwrap_or_default(),
        message: ev.message.clone().unwrap_or_default(),
        at: event_time(ev),
    })
}

/// Image pulls from the kubelet's Events on Pods.
fn pull_event(ev: &KubeEvent) -> Option<Update> {
    let fact = kubelet::parse(ev.reason.as_deref()?, ev.message.as_deref()?)?;
    let node = ev
        .source
        .as_ref()
        .and_then(|s| s.host.clone())
        .or_else(|| ev.reporting_instance.clone())
        .unwrap_or_default();
    let involved = &ev.involved_object;
    let pod = involved
        .name
        .as_ref()
        .map(|name| ObjectRef::new("Pod", involved.namespace.as_deref().unwrap_or_default(), name));
    Some(Update::Pull {
        fact,
        node,
        pod,
        at: event_time(ev),
    })
}

/// When an Event happened: the newest of its timestamps that is set (events.k8s.io
/// writers set `eventTime`, older ones `lastTimestamp`/`firstTimestamp`).
fn event_time(ev: &KubeEvent) -> Option<Timestamp> {
    ev.event_time
        .as_ref()
        .map(|t| t.0)
        .or_else(|| ev.last_timestamp.as_ref().map(|t| t.0))
        .or_else(|| ev.first_timestamp.as_ref().map(|t| t.0))
}

/// Watches the Events about objects of one kind and sends what `parse` makes of each,
/// once: an Event object is updated in place when it repeats, so (uid, count) is its key.
fn watch_events(
    client: Client,
    involved_kind: &'static str,
    parse: fn(&KubeEvent) -> Option<Update>,
    tx: Updates,
) -> JoinHandle<()> {
    spawn_watch(format!("{involved_kind} events"), tx.clone(), async move {
        let api: Api<KubeEvent> = Api::all(client);
        let config = watcher::Config::default().fields(&format!("involvedObject.kind={involved_kind}"));
        let mut stream = watcher::watcher(api, config).default_backoff().boxed();
        let mut seen: BTreeSet<(String, i32)> = BTreeSet::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(Event::Apply(ev) | Event::InitApply(ev)) => {
                    let key = (ev.metadata.uid.clone().unwrap_or_default(), ev.count.unwrap_or(1));
                    if seen.insert(key)
                        && let Some(update) = parse(&ev)
                    {
                        tx.send(update);
                    }
                }
                Ok(_) => {}
                Err(err) => report_watch_error(&tx, &format!("{involved_kind} events"), &err),
            }
        }
    })
}

/// Sends a watch failure as a warning, except a 410 Gone ("too old resource version"):
/// that one is routine on long watches and the watcher recovers by listing again.
fn report_watch_error(tx: &Updates, what: &str, err: &watcher::Error) {
    tracing::debug!(watch = what, "watch failed: {err}");
    if let watcher::Error::WatchError(status) = err
        && status.code == 410
    {
        return;
    }
    let client_cause = |e: &kube::Error| match e {
        kube::Error::Api(status) => format!("{} {}", status.code, status.reason),
        other => other.to_string(),
    };
    let cause = match err {
        watcher::Error::InitialListFailed(e) | watcher::Error::WatchStartFailed(e) | watcher::Error::WatchFailed(e) => {
            client_cause(e)
        }
        watcher::Error::WatchError(status) => format!("{} {}", status.code, status.reason),
        watcher::Error::NoResourceVersion => err.to_string(),
    };
    tx.send(Update::WatchError {
        watch: what.to_string(),
        cause,
        message: err.to_string(),
        at: std::time::Instant::now(),
    });
}

/// Watches all objects of one kind. `managed_only`: objects count only when an engine
/// object manages them (Git's workloads, not the cluster's own).
fn watch_kind(
    client: Client,
    ar: ApiResource,
    kind: &'static str,
    rules: &'static EngineRules,
    tx: Updates,
    managed_only: bool,
) -> JoinHandle<()> {
    spawn_watch(
        kind.to_string(),
        tx.clone(),
        follow_kind(client, ar, kind, rules, tx, managed_only),
    )
}

/// Add-ons whose objects drill judges, watched once their CRD exists (often only after
/// the engine applied it from Git): (CRD name, group, version, kind, plural).
const ADDON_CRDS: [(&str, &str, &str, &str, &str); 1] = [(
    "sealedsecrets.bitnami.com",
    "bitnami.com",
    "v1alpha1",
    "SealedSecret",
    "sealedsecrets",
)];

/// Waits (by watching CRDs) until the add-on's CRD exists, then follows its objects
/// that an engine manages.
fn watch_addon_kind(
    client: Client,
    addon: (&'static str, &'static str, &'static str, &'static str, &'static str),
    rules: &'static EngineRules,
    tx: Updates,
) -> JoinHandle<()> {
    let (crd, group, version, kind, plural) = addon;
    spawn_watch(kind.to_string(), tx.clone(), async move {
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        let config = watcher::Config::default().fields(&format!("metadata.name={crd}"));
        let mut stream = watcher::watcher(crds, config).default_backoff().boxed();
        loop {
            match stream.next().await {
                Some(Ok(Event::Apply(_) | Event::InitApply(_))) => break,
                Some(Ok(_)) => {}
                Some(Err(err)) => report_watch_error(&tx, crd, &err),
                None => return,
            }
        }
        drop(stream);
        let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
        let ar = ApiResource::from_gvk_with_plural(&gvk, plural);
        follow_kind(client, ar, kind, rules, tx, true).await;
    })
}

async fn follow_kind(
    client: Client,
    ar: ApiResource,
    kind: &'static str,
    rules: &'static EngineRules,
    tx: Updates,
    managed_only: bool,
) {
    let api: Api<DynamicObject> = Api::all_with(client, &ar);
    let mut stream = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    // Objects seen since the last (re)list, to report those that vanished while disconnected.
    let mut known: BTreeSet<ObjectRef> = BTreeSet::new();
    let mut relist: BTreeSet<ObjectRef> = BTreeSet::new();
    while let Some(item) = stream.next().await {
        let send = |o: Observation| {
            tx.send(Update::Object(Box::new(o)));
        };
        match item {
            Ok(Event::Apply(obj) | Event::InitApply(obj)) => {
                #[cfg(debug_assertions)]
                fault_watch_panic(kind);
                let Ok(value) = serde_json::to_value(&obj) else {
                    continue;
                };
                let o = observe(rules, kind, &value);
                if managed_only && o.depends_on.is_empty() {
                    continue;
                }
                known.insert(o.object.clone());
                relist.insert(o.object.clone());
                send(o);
            }
            Ok(Event::Delete(obj)) => {
                let Ok(value) = serde_json::to_value(&obj) else {
                    continue;
                };
                let o = observe(rules, kind, &value);
                if known.remove(&o.object) {
                    send(Observation::deleted(o.object));
                }
            }
            Ok(Event::Init) => relist.clear(),
            Ok(Event::InitDone) => {
                for gone in known.difference(&relist).cloned().collect::<Vec<_>>() {
                    known.remove(&gone);
                    send(Observation::deleted(gone));
                }
            }
            Err(err) => report_watch_error(&tx, kind, &err),
        }
    }
}

#[cfg(test)]
mod spawn_tests {
    use super::*;

    #[tokio::test]
    async fn a_watch_that_panics_says_so_naming_itself() {
        let (tx, mut rx) = Updates::channel();
        let task = spawn_watch("Deployment".into(), tx.clone(), async { panic!("index out of bounds") });
        task.await.unwrap();
        let received = rx.recv().await.unwrap();
        match received.update {
            Update::WatchPanicked { watch, message } => {
                assert_eq!(watch, "Deployment");
                assert_eq!(message, "index out of bounds");
            }
            other => panic!("expected WatchPanicked, got {other:?}"),
        }
        // A watch that ends without panicking sends nothing.
        spawn_watch("Pod events".into(), tx, async {}).await.unwrap();
        assert!(rx.try_recv().is_err());
    }
}
