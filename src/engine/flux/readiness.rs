//! Flux's readiness rules: the kinds drill watches and how each is judged.

use serde_json::Value;

use crate::event::ObjectRef;
use crate::observe::readiness::{Observation, condition, int_at, str_at, transition};
use crate::observe::rules::{EngineRules, KindRule};

/// Flux's sources: their artifact revision is what the reconcilers apply.
pub const SOURCE_KINDS: [&str; 4] = ["GitRepository", "HelmRepository", "HelmChart", "OCIRepository"];

const fn rule(group: &'static str, kind: &'static str) -> KindRule {
    KindRule { group, kind, judge }
}

/// The kinds drill follows, with their API groups.
pub const KINDS: [KindRule; 6] = [
    rule("source.toolkit.fluxcd.io", "GitRepository"),
    rule("source.toolkit.fluxcd.io", "HelmRepository"),
    rule("source.toolkit.fluxcd.io", "HelmChart"),
    rule("source.toolkit.fluxcd.io", "OCIRepository"),
    rule("kustomize.toolkit.fluxcd.io", "Kustomization"),
    rule("helm.toolkit.fluxcd.io", "HelmRelease"),
];

pub const RULES: EngineRules = EngineRules {
    kinds: &KINDS,
    manager_of,
    // Flux records what a reconcile changed as Events on the Kustomization.
    event_kind: Some("Kustomization"),
    always_required: &[],
    behind,
    saw_drift: |_| false,
    // kstatus and the Kustomization's own health check.
    health_reasons: &["Progressing", "HealthCheckFailed"],
};

/// A Kustomization is only done when it applied what its source currently holds.
fn behind(o: &Observation, source: Option<&Observation>, _commit: &str) -> Option<String> {
    if o.object.kind != "Kustomization" {
        return None;
    }
    let source_rev = source.and_then(|s| s.revision.as_deref());
    match (o.revision.as_deref(), source_rev) {
        (Some(applied), Some(source_rev)) if applied != source_rev => {
            Some(format!("applied {applied}, source is at {source_rev}"))
        }
        _ => None,
    }
}

/// Flux objects (checked in kustomize-, helm- and source-controller): Ready when the
/// `Ready` condition is True *and* `status.observedGeneration == metadata.generation`
/// (a Ready from the previous generation says nothing about the current spec).
fn judge(v: &Value, o: &mut Observation) {
    let kind = o.object.kind.clone();
    let kind = kind.as_str();
    let namespace = o.object.namespace.clone();
    let namespace = namespace.as_str();
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
    let ready_status = ready.and_then(|c| c.get("status")).and_then(Value::as_str);
    o.rechecking = ready_status == Some("Unknown") && o.reason == "Progressing" && current;
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

    links(v, kind, namespace, o);
}

/// What a Flux object waits for (its source, its dependsOn) and what it applied (its
/// inventory).
fn links(v: &Value, kind: &str, namespace: &str, o: &mut Observation) {
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

/// Flux inventory ids are `<namespace>_<name>_<group>_<kind>` (namespace and group may be empty).
pub fn parse_inventory_id(id: &str) -> Option<ObjectRef> {
    let parts: Vec<&str> = id.split('_').collect();
    match parts.as_slice() {
        [ns, name, _group, kind] if !name.is_empty() && !kind.is_empty() => Some(ObjectRef::new(kind, ns, name)),
        _ => None,
    }
}

/// The Kustomization or HelmRelease that applied an object, from the labels kustomize-
/// and helm-controller set.
pub fn manager_of(v: &Value) -> Option<ObjectRef> {
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
    None
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::observe::readiness::observe;

    #[test]
    fn a_sealed_secret_is_ready_once_unsealed_and_names_the_controllers_complaint() {
        let labels = json!({"kustomize.toolkit.fluxcd.io/name": "users-sealed",
                            "kustomize.toolkit.fluxcd.io/namespace": "flux-system"});
        let unsealed = json!({"metadata": {"name": "pw", "namespace": "users", "generation": 1, "labels": labels},
            "status": {"observedGeneration": 1, "conditions": [{"type": "Synced", "status": "True"}]}});
        let o = observe(&RULES, "SealedSecret", &unsealed);
        assert!(o.ready, "{o:?}");
        assert_eq!(
            o.depends_on,
            [ObjectRef::new("Kustomization", "flux-system", "users-sealed")]
        );

        let sealed = json!({"metadata": {"name": "pw", "namespace": "users", "generation": 1, "labels": labels},
            "status": {"conditions": [{"type": "Synced", "status": "False",
                "message": "no key could decrypt secret (password)"}]}});
        let o = observe(&RULES, "SealedSecret", &sealed);
        assert!(!o.ready);
        assert_eq!(o.reason, "UnsealFailed");
        assert_eq!(o.message, "no key could decrypt secret (password)");

        let fresh = json!({"metadata": {"name": "pw", "namespace": "users", "generation": 2}});
        let o = observe(&RULES, "SealedSecret", &fresh);
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
        let o = observe(&RULES, "Kustomization", &kustomization(2, 2, "True"));
        assert!(o.ready);
        assert_eq!(o.revision.as_deref(), Some("main@sha1:abc"));
        assert_eq!(o.api_transition, Some("2026-11-23T10:00:05Z".parse().unwrap()));
        let stale = observe(&RULES, "Kustomization", &kustomization(3, 2, "True"));
        assert!(!stale.ready);
        assert_eq!(stale.reason, "StaleGeneration");
        assert!(!observe(&RULES, "Kustomization", &kustomization(2, 2, "False")).ready);
    }

    #[test]
    fn flux_dependencies_and_inventory_are_read() {
        let o = observe(&RULES, "Kustomization", &kustomization(1, 1, "True"));
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
        let o = observe(&RULES, "Deployment", &d);
        assert!(o.ready, "{o:?}");
        assert_eq!(
            o.depends_on,
            vec![ObjectRef::new("Kustomization", "flux-system", "apps")]
        );
        d["status"]["availableReplicas"] = json!(1);
        d["status"]["conditions"] = json!([{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet has timed out progressing."}]);
        let o = observe(&RULES, "Deployment", &d);
        assert!(!o.ready);
        assert_eq!(o.reason, "ProgressDeadlineExceeded");
        assert_eq!(o.message, "1/2 available: ReplicaSet has timed out progressing.");
    }

    #[test]
    fn helm_releases_point_at_their_chart_source() {
        let hr = json!({"metadata": {"name": "podinfo", "namespace": "apps", "generation": 1,
                                     "labels": {"kustomize.toolkit.fluxcd.io/name": "releases", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}},
                        "spec": {"chart": {"spec": {"sourceRef": {"kind": "GitRepository", "name": "flux-system", "namespace": "flux-system"}}}},
                        "status": {"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "True", "reason": "InstallSucceeded", "message": "ok"}]}});
        let o = observe(&RULES, "HelmRelease", &hr);
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
    fn the_managing_kustomization_comes_from_flux_labels() {
        let obj = json!({"metadata": {"labels": {
            "kustomize.toolkit.fluxcd.io/name": "users-api",
            "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}}});
        assert_eq!(
            manager_of(&obj),
            Some(ObjectRef::new("Kustomization", "flux-system", "users-api"))
        );
        assert_eq!(manager_of(&json!({"metadata": {}})), None);
    }
}
