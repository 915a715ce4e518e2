//! Readiness rules, as pure functions of an object's JSON. One [`Observation`] per
//! object; the watchers feed them into [`super::state::ClusterState`].
//!
//! Flux objects (checked in kustomize-, helm- and source-controller): Ready when the
//! `Ready` condition is True *and* `status.observedGeneration == metadata.generation`
//! (a Ready from the previous generation says nothing about the current spec).
//! Workloads: every replica updated and available at the current generation.

use jiff::Timestamp;
use serde_json::Value;

use crate::event::ObjectRef;

/// Kinds drill follows, by API group.
pub const FLUX_SOURCE_KINDS: [&str; 4] = ["GitRepository", "HelmRepository", "HelmChart", "OCIRepository"];
pub const FLUX_RECONCILER_KINDS: [&str; 2] = ["Kustomization", "HelmRelease"];
pub const WORKLOAD_KINDS: [&str; 3] = ["Deployment", "StatefulSet", "DaemonSet"];
/// Objects of add-ons (not workloads) whose readiness says whether Git's state works.
pub const ADDON_KINDS: [&str; 1] = ["SealedSecret"];

/// Objects an engine applied that are judged on their own (they point at their manager,
/// which is not a requirement of theirs).
pub fn is_managed_leaf(kind: &str) -> bool {
    WORKLOAD_KINDS.contains(&kind) || ADDON_KINDS.contains(&kind)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub object: ObjectRef,
    /// False once the object is deleted.
    pub present: bool,
    pub ready: bool,
    pub reason: String,
    pub message: String,
    /// Sources: the artifact revision. Kustomization: lastAppliedRevision. HelmRelease: lastAttemptedRevision.
    pub revision: Option<String>,
    /// The source a Kustomization or HelmRelease reads from.
    pub source: Option<ObjectRef>,
    /// Objects a Kustomization applied (status.inventory).
    pub inventory: Vec<ObjectRef>,
    /// What this object waits for: dependsOn, its source, or the Kustomization/HelmRelease that manages it.
    pub depends_on: Vec<ObjectRef>,
    /// The API server's lastTransitionTime of the readiness condition.
    pub api_transition: Option<Timestamp>,
    /// Reconciliation paused (Flux `spec.suspend: true`).
    pub suspended: bool,
    /// The last `reconcile.fluxcd.io/requestedAt` token the controller handled
    /// (Argo CD: `status.reconciledAt`).
    pub last_handled: Option<String>,
    /// Argo CD sync wave (`argocd.argoproj.io/sync-wave`).
    pub wave: Option<i64>,
    /// Argo CD: the last sync operation (`status.operationState`), if any.
    pub operation: Option<SyncOperation>,
}

/// An Argo CD sync operation as the Application's status reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncOperation {
    /// Running, Succeeded, Failed, Error, Terminating.
    pub phase: String,
    /// The revision it syncs (`syncResult.revision`, or the requested one while running).
    pub revision: Option<String>,
    pub started_at: Option<Timestamp>,
}

impl Observation {
    pub fn deleted(object: ObjectRef) -> Self {
        Observation {
            object,
            present: false,
            ready: false,
            reason: "Deleted".into(),
            message: "the object does not exist".into(),
            revision: None,
            source: None,
            inventory: vec![],
            depends_on: vec![],
            api_transition: None,
            suspended: false,
            last_handled: None,
            wave: None,
            operation: None,
        }
    }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn int_at(v: &Value, pointer: &str) -> Option<i64> {
    v.pointer(pointer).and_then(Value::as_i64)
}

fn condition<'a>(v: &'a Value, type_: &str) -> Option<&'a Value> {
    v.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
}

fn transition(c: Option<&Value>) -> Option<Timestamp> {
    c.and_then(|c| c.get("lastTransitionTime"))
        .and_then(Value::as_str)
        .and_then(|t| t.parse().ok())
}

/// Reads one object (as the API server returns it) of kind `kind`.
pub fn observe(kind: &str, v: &Value) -> Observation {
    let namespace = str_at(v, "/metadata/namespace").unwrap_or_default().to_string();
    let object = ObjectRef::new(kind, &namespace, str_at(v, "/metadata/name").unwrap_or_default());
    let mut o = Observation {
        object,
        present: true,
        ready: false,
        reason: String::new(),
        message: String::new(),
        revision: None,
        source: None,
        inventory: vec![],
        depends_on: vec![],
        api_transition: None,
        suspended: false,
        last_handled: None,
        wave: None,
        operation: None,
    };
    if WORKLOAD_KINDS.contains(&kind) {
        workload(kind, v, &mut o);
    } else if kind == "Application" {
        argo_application(v, &mut o);
    } else if kind == "SealedSecret" {
        sealed_secret(v, &mut o);
    } else {
        flux(kind, v, &namespace, &mut o);
    }
    o
}

fn flux(kind: &str, v: &Value, namespace: &str, o: &mut Observation) {
    let ready = condition(v, "Ready");
    let generation = int_at(v, "/metadata/generation");
    let observed = int_at(v, "/status/observedGeneration");
    let ready_true = ready.and_then(|c| c.get("status")).and_then(Value::as_str) == Some("True");
    let current = generation.is_some() && generation == observed;
    o.ready = ready_true && current;
    o.api_transition = transition(ready);
    o.reason = ready
        .and_then(|c| c.get("reason"))
        .and_then(Value::as_str)
        .unwrap_or("Progressing")
        .to_string();
    o.message = ready
        .and_then(|c| c.get("message"))
        .and_then(Value::as_str)
        .unwrap_or("no Ready condition yet")
        .to_string();
    if ready_true && !current {
        o.reason = "StaleGeneration".into();
        o.message = format!(
            "Ready is from generation {}, the object is at {}",
            observed.unwrap_or(0),
            generation.unwrap_or(0)
        );
    }
    o.last_handled = str_at(v, "/status/lastHandledReconcileAt").map(str::to_string);
    o.suspended = v.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true);
    if o.suspended {
        o.ready = false;
        o.reason = "Suspended".into();
        o.message = "reconciliation is paused (spec.suspend: true)".into();
    }
    o.revision = match kind {
        "Kustomization" => str_at(v, "/status/lastAppliedRevision"),
        "HelmRelease" => str_at(v, "/status/lastAttemptedRevision"),
        _ => str_at(v, "/status/artifact/revision"),
    }
    .map(str::to_string);

    let source_ref = match kind {
        "Kustomization" => v.pointer("/spec/sourceRef"),
        "HelmRelease" => v
            .pointer("/spec/chart/spec/sourceRef")
            .or_else(|| v.pointer("/spec/chartRef")),
        "HelmChart" => v.pointer("/spec/sourceRef"),
        _ => None,
    };
    if let Some(r) = source_ref {
        let ns = r.get("namespace").and_then(Value::as_str).unwrap_or(namespace);
        let src = ObjectRef::new(
            r.get("kind").and_then(Value::as_str).unwrap_or("GitRepository"),
            ns,
            r.get("name").and_then(Value::as_str).unwrap_or_default(),
        );
        o.depends_on.push(src.clone());
        o.source = Some(src);
    }
    for dep in v
        .pointer("/spec/dependsOn")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let ns = dep.get("namespace").and_then(Value::as_str).unwrap_or(namespace);
        o.depends_on.push(ObjectRef::new(
            kind,
            ns,
            dep.get("name").and_then(Value::as_str).unwrap_or_default(),
        ));
    }
    for entry in v
        .pointer("/status/inventory/entries")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(r) = entry.get("id").and_then(Value::as_str).and_then(parse_inventory_id) {
            o.inventory.push(r);
        }
    }
}

/// Argo CD Application: Ready when sync is Synced, health Healthy, and the last sync
/// operation did not fail. The revision is `status.sync.revision` (the runner checks it
/// against the served commit); the managed resources are its inventory, so child
/// Applications and workloads are judged one by one (a parent's Healthy hides nothing).
fn argo_application(v: &Value, o: &mut Observation) {
    let sync = str_at(v, "/status/sync/status").unwrap_or("Unknown");
    let health = str_at(v, "/status/health/status").unwrap_or("Unknown");
    let phase = str_at(v, "/status/operationState/phase");
    let failed = matches!(phase, Some("Failed" | "Error"));
    o.ready = sync == "Synced" && health == "Healthy" && !failed;
    (o.reason, o.message) = if failed {
        (
            format!("Sync{}", phase.unwrap_or_default()),
            str_at(v, "/status/operationState/message")
                .unwrap_or("sync failed")
                .to_string(),
        )
    } else if let Some(c) = v
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter().find(|c| {
                c.get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.ends_with("Error"))
            })
        })
    {
        (
            c.get("type").and_then(Value::as_str).unwrap_or("Error").to_string(),
            c.get("message").and_then(Value::as_str).unwrap_or_default().to_string(),
        )
    } else if health != "Healthy" {
        (
            health.to_string(),
            str_at(v, "/status/health/message")
                .map(str::to_string)
                .unwrap_or_else(|| format!("health {health}, sync {sync}")),
        )
    } else if sync != "Synced" {
        (sync.to_string(), format!("sync status {sync}"))
    } else {
        (String::new(), String::new())
    };
    o.revision = str_at(v, "/status/sync/revision").map(str::to_string);
    o.operation = str_at(v, "/status/operationState/phase").map(|phase| SyncOperation {
        phase: phase.to_string(),
        revision: str_at(v, "/status/operationState/syncResult/revision")
            .or_else(|| str_at(v, "/status/operationState/operation/sync/revision"))
            .map(str::to_string),
        started_at: str_at(v, "/status/operationState/startedAt").and_then(|t| t.parse().ok()),
    });
    o.last_handled = str_at(v, "/status/reconciledAt").map(str::to_string);
    o.api_transition = str_at(v, "/status/operationState/finishedAt").and_then(|t| t.parse().ok());
    o.suspended = v.pointer("/spec/syncPolicy/automated").is_none_or(Value::is_null)
        && v.pointer("/metadata/annotations/drill.gitops.dev~1paused").is_some();
    o.wave = v
        .pointer("/metadata/annotations/argocd.argoproj.io~1sync-wave")
        .and_then(Value::as_str)
        .and_then(|w| w.trim().parse().ok());
    for r in v
        .pointer("/status/resources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let field = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default();
        if !field("kind").is_empty() && !field("name").is_empty() {
            o.inventory
                .push(ObjectRef::new(field("kind"), field("namespace"), field("name")));
        }
    }
    if let Some(parent) = managed_by(v) {
        o.depends_on.push(parent);
    }
}

/// Flux inventory ids are `<namespace>_<name>_<group>_<kind>` (namespace and group may be empty).
pub fn parse_inventory_id(id: &str) -> Option<ObjectRef> {
    let parts: Vec<&str> = id.split('_').collect();
    match parts.as_slice() {
        [ns, name, _group, kind] if !name.is_empty() && !kind.is_empty() => Some(ObjectRef::new(kind, ns, name)),
        _ => None,
    }
}

fn workload(kind: &str, v: &Value, o: &mut Observation) {
    let generation = int_at(v, "/metadata/generation").unwrap_or(0);
    let observed = int_at(v, "/status/observedGeneration").unwrap_or(0);
    let n = |p: &str| int_at(v, p).unwrap_or(0);
    let (ready, progress) = match kind {
        "DaemonSet" => {
            let desired = n("/status/desiredNumberScheduled");
            let ok = desired > 0
                && n("/status/numberAvailable") == desired
                && n("/status/updatedNumberScheduled") == desired;
            (ok, format!("{}/{desired} available", n("/status/numberAvailable")))
        }
        "StatefulSet" => {
            let want = int_at(v, "/spec/replicas").unwrap_or(1);
            let ok = n("/status/readyReplicas") == want && n("/status/updatedReplicas") == want;
            (ok, format!("{}/{want} ready", n("/status/readyReplicas")))
        }
        _ => {
            let want = int_at(v, "/spec/replicas").unwrap_or(1);
            let ok = n("/status/updatedReplicas") == want
                && n("/status/availableReplicas") == want
                && n("/status/replicas") == want;
            (ok, format!("{}/{want} available", n("/status/availableReplicas")))
        }
    };
    o.ready = ready && observed >= generation;
    let available = condition(v, "Available");
    o.api_transition = transition(available);
    if !o.ready {
        let progressing = condition(v, "Progressing");
        o.reason = progressing
            .and_then(|c| c.get("reason"))
            .and_then(Value::as_str)
            .unwrap_or("NotAvailable")
            .to_string();
        o.message = progress;
        if let Some(m) = progressing.and_then(|c| c.get("message")).and_then(Value::as_str) {
            o.message = format!("{}: {m}", o.message);
        }
    }
    if let Some(manager) = managed_by(v) {
        o.depends_on.push(manager);
    }
}

/// Bitnami SealedSecret: Ready when the controller unsealed it into its Secret
/// (condition `Synced` True at the current generation). Without the controller's key it
/// stays Synced=False, "no key could decrypt secret".
fn sealed_secret(v: &Value, o: &mut Observation) {
    let synced = condition(v, "Synced");
    let status = synced.and_then(|c| c.get("status")).and_then(Value::as_str);
    let generation = int_at(v, "/metadata/generation");
    let observed = int_at(v, "/status/observedGeneration");
    let current = observed.is_none() || generation == observed;
    o.ready = status == Some("True") && current;
    o.api_transition = transition(synced);
    if !o.ready {
        (o.reason, o.message) = match synced {
            None => ("NotUnsealed".into(), "not unsealed yet (no Synced condition)".into()),
            Some(_) if status == Some("True") => (
                "StaleGeneration".into(),
                format!(
                    "unsealed at generation {}, the object is at {}",
                    observed.unwrap_or(0),
                    generation.unwrap_or(0)
                ),
            ),
            Some(c) => (
                c.get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or("UnsealFailed")
                    .to_string(),
                c.get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("the controller could not unseal it")
                    .to_string(),
            ),
        };
    }
    if let Some(manager) = managed_by(v) {
        o.depends_on.push(manager);
    }
}

/// The engine object that applied this one: from the labels kustomize- and helm-controller
/// set, or Argo CD's tracking annotation.
pub fn managed_by(v: &Value) -> Option<ObjectRef> {
    let label = |k: &str| {
        v.pointer("/metadata/labels")
            .and_then(|l| l.get(k))
            .and_then(Value::as_str)
    };
    if let (Some(name), Some(ns)) = (
        label("kustomize.toolkit.fluxcd.io/name"),
        label("kustomize.toolkit.fluxcd.io/namespace"),
    ) {
        return Some(ObjectRef::new("Kustomization", ns, name));
    }
    if let (Some(name), Some(ns)) = (
        label("helm.toolkit.fluxcd.io/name"),
        label("helm.toolkit.fluxcd.io/namespace"),
    ) {
        return Some(ObjectRef::new("HelmRelease", ns, name));
    }
    // Argo CD's annotation tracking: "<app>:<group>/<kind>:<namespace>/<name>".
    if let Some(app) = v
        .pointer("/metadata/annotations/argocd.argoproj.io~1tracking-id")
        .and_then(Value::as_str)
        .and_then(|t| t.split(':').next())
        .filter(|a| !a.is_empty())
    {
        return Some(ObjectRef::new("Application", crate::engine::argocd::NAMESPACE, app));
    }
    None
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_sealed_secret_is_ready_once_unsealed_and_names_the_controllers_complaint() {
        let labels = json!({"kustomize.toolkit.fluxcd.io/name": "users-sealed",
                            "kustomize.toolkit.fluxcd.io/namespace": "flux-system"});
        let unsealed = json!({"metadata": {"name": "pw", "namespace": "users", "generation": 1, "labels": labels},
            "status": {"observedGeneration": 1, "conditions": [{"type": "Synced", "status": "True"}]}});
        let o = observe("SealedSecret", &unsealed);
        assert!(o.ready, "{o:?}");
        assert_eq!(
            o.depends_on,
            [ObjectRef::new("Kustomization", "flux-system", "users-sealed")]
        );

        let sealed = json!({"metadata": {"name": "pw", "namespace": "users", "generation": 1, "labels": labels},
            "status": {"conditions": [{"type": "Synced", "status": "False",
                "message": "no key could decrypt secret (password)"}]}});
        let o = observe("SealedSecret", &sealed);
        assert!(!o.ready);
        assert_eq!(o.reason, "UnsealFailed");
        assert_eq!(o.message, "no key could decrypt secret (password)");

        let fresh = json!({"metadata": {"name": "pw", "namespace": "users", "generation": 2}});
        let o = observe("SealedSecret", &fresh);
        assert!(!o.ready);
        assert_eq!(o.reason, "NotUnsealed");
    }

    fn kustomization(generation: i64, observed: i64, ready: &str) -> Value {
        json!({
            "metadata": {"name": "apps", "namespace": "flux-system", "generation": generation},
            "spec": {"sourceRef": {"kind": "GitRepository", "name": "flux-system"}, "dependsOn": [{"name": "infrastructure"}]},
            "status": {
                "observedGeneration": observed,
                "lastAppliedRevision": "main@sha1:abc",
                "conditions": [{"type": "Ready", "status": ready, "reason": "ReconciliationSucceeded", "message": "Applied revision: main@sha1:abc", "lastTransitionTime": "2026-11-23T10:00:05Z"}],
                "inventory": {"entries": [{"id": "users_users-api_apps_Deployment", "v": "v1"}, {"id": "_users__Namespace", "v": "v1"}]}
            }
        })
    }

    #[test]
    fn flux_ready_needs_the_current_generation() {
        let o = observe("Kustomization", &kustomization(2, 2, "True"));
        assert!(o.ready);
        assert_eq!(o.revision.as_deref(), Some("main@sha1:abc"));
        assert_eq!(o.api_transition, Some("2026-11-23T10:00:05Z".parse().unwrap()));
        let stale = observe("Kustomization", &kustomization(3, 2, "True"));
        assert!(!stale.ready);
        assert_eq!(stale.reason, "StaleGeneration");
        assert!(!observe("Kustomization", &kustomization(2, 2, "False")).ready);
    }

    #[test]
    fn flux_dependencies_and_inventory_are_read() {
        let o = observe("Kustomization", &kustomization(1, 1, "True"));
        assert_eq!(
            o.source,
            Some(ObjectRef::new("GitRepository", "flux-system", "flux-system"))
        );
        assert_eq!(
            o.depends_on,
            vec![
                ObjectRef::new("GitRepository", "flux-system", "flux-system"),
                ObjectRef::new("Kustomization", "flux-system", "infrastructure")
            ]
        );
        assert_eq!(
            o.inventory,
            vec![
                ObjectRef::new("Deployment", "users", "users-api"),
                ObjectRef::new("Namespace", "", "users")
            ]
        );
    }

    #[test]
    fn deployments_are_ready_when_every_replica_is_updated_and_available() {
        let mut d = json!({
            "metadata": {"name": "users-api", "namespace": "users", "generation": 4,
                         "labels": {"kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}},
            "spec": {"replicas": 2},
            "status": {"observedGeneration": 4, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2,
                       "conditions": [{"type": "Available", "status": "True", "lastTransitionTime": "2026-11-23T10:01:00Z"}]}
        });
        let o = observe("Deployment", &d);
        assert!(o.ready, "{o:?}");
        assert_eq!(
            o.depends_on,
            vec![ObjectRef::new("Kustomization", "flux-system", "apps")]
        );
        d["status"]["availableReplicas"] = json!(1);
        d["status"]["conditions"] = json!([{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet has timed out progressing."}]);
        let o = observe("Deployment", &d);
        assert!(!o.ready);
        assert_eq!(o.reason, "ProgressDeadlineExceeded");
        assert_eq!(o.message, "1/2 available: ReplicaSet has timed out progressing.");
    }

    #[test]
    fn a_deployment_from_an_old_generation_is_not_ready() {
        let d = json!({"metadata": {"name": "a", "namespace": "n", "generation": 5},
                       "spec": {}, "status": {"observedGeneration": 4, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}});
        assert!(!observe("Deployment", &d).ready);
    }

    #[test]
    fn helm_releases_point_at_their_chart_source() {
        let hr = json!({"metadata": {"name": "podinfo", "namespace": "apps", "generation": 1,
                                     "labels": {"kustomize.toolkit.fluxcd.io/name": "releases", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}},
                        "spec": {"chart": {"spec": {"sourceRef": {"kind": "GitRepository", "name": "flux-system", "namespace": "flux-system"}}}},
                        "status": {"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "True", "reason": "InstallSucceeded", "message": "ok"}]}});
        let o = observe("HelmRelease", &hr);
        assert!(o.ready);
        assert_eq!(
            o.source,
            Some(ObjectRef::new("GitRepository", "flux-system", "flux-system"))
        );
    }

    #[test]
    fn inventory_ids_parse_with_empty_parts() {
        assert_eq!(
            parse_inventory_id("_users__Namespace"),
            Some(ObjectRef::new("Namespace", "", "users"))
        );
        assert_eq!(parse_inventory_id("garbage"), None);
    }

    #[test]
    fn argo_applications_are_judged_one_by_one_parent_health_hides_nothing() {
        let parent = json!({
            "metadata": {"name": "root", "namespace": "argocd"},
            "status": {"sync": {"status": "Synced", "revision": "a".repeat(40)},
                       "health": {"status": "Healthy"},
                       "reconciledAt": "2026-11-23T10:00:00Z",
                       "resources": [{"group": "argoproj.io", "kind": "Application", "namespace": "argocd", "name": "users-api"}]}
        });
        let p = observe("Application", &parent);
        assert!(p.ready, "{p:?}");
        assert_eq!(p.inventory, [ObjectRef::new("Application", "argocd", "users-api")]);
        let child = json!({
            "metadata": {"name": "users-api", "namespace": "argocd",
                         "annotations": {"argocd.argoproj.io/sync-wave": "2",
                                         "argocd.argoproj.io/tracking-id": "root:argoproj.io/Application:argocd/users-api"}},
            "status": {"sync": {"status": "Synced", "revision": "a".repeat(40)},
                       "health": {"status": "Degraded", "message": "Deployment users-api exceeded its progress deadline"},
                       "operationState": {"phase": "Succeeded"}}
        });
        let c = observe("Application", &child);
        assert!(!c.ready);
        assert_eq!(c.reason, "Degraded");
        assert!(c.message.contains("progress deadline"), "{c:?}");
        assert_eq!(c.wave, Some(2));
        assert_eq!(c.depends_on, [ObjectRef::new("Application", "argocd", "root")]);
        let failed = json!({"metadata": {"name": "x", "namespace": "argocd"},
            "status": {"sync": {"status": "Synced"}, "health": {"status": "Healthy"},
                       "operationState": {"phase": "Failed", "message": "one or more objects failed to apply"}}});
        let f = observe("Application", &failed);
        assert!(!f.ready);
        assert_eq!(f.reason, "SyncFailed");
    }
}
