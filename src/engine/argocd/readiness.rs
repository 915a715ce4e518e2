//! Argo CD's readiness rules: Applications, judged one by one.

use serde_json::Value;

use super::NAMESPACE;
use crate::event::ObjectRef;
use crate::observe::readiness::{Observation, SyncOperation, str_at, with_holders};
use crate::observe::rules::{EngineRules, KindRule};

pub const KINDS: [KindRule; 2] = [
    KindRule {
        group: "argoproj.io",
        kind: "Application",
        judge,
    },
    // Watched so the Applications it generates link to the app-of-apps that applied it.
    KindRule {
        group: "argoproj.io",
        kind: "ApplicationSet",
        judge: judge_application_set,
    },
];

pub const RULES: EngineRules = EngineRules {
    kinds: &KINDS,
    manager_of,
    // Argo CD shows drift as an Application going OutOfSync, not as Events.
    event_kind: None,
    // Every Application is required: those an ApplicationSet generates are in no inventory.
    always_required: &["Application"],
    behind,
    saw_drift: |o| o.reason == "OutOfSync",
    health_reasons: &["Progressing", "Degraded"],
};

/// An Application synced from the served repo must be at the pinned commit (Helm chart
/// versions and other sources are not commits: left alone).
fn behind(o: &Observation, _source: Option<&Observation>, commit: &str) -> Option<String> {
    let rev = o.revision.as_deref()?;
    let is_commit = rev.len() == 40 && rev.bytes().all(|b| b.is_ascii_hexdigit());
    (o.object.kind == "Application" && is_commit && !commit.is_empty() && rev != commit).then(|| {
        format!(
            "synced to {}, expected commit {}",
            &rev[..12],
            &commit[..12.min(commit.len())]
        )
    })
}

/// The Application that applied an object: Argo CD's annotation tracking,
/// "<app>:<group>/<kind>:<namespace>/<name>".
pub fn manager_of(v: &Value) -> Option<ObjectRef> {
    v.pointer("/metadata/annotations/argocd.argoproj.io~1tracking-id")
        .and_then(Value::as_str)
        .and_then(|t| t.split(':').next())
        .filter(|a| !a.is_empty())
        .map(|app| ObjectRef::new("Application", NAMESPACE, app))
}

/// Argo CD Application: Ready when sync is Synced, health Healthy, and the last sync
/// operation did not fail. The revision is `status.sync.revision` (the runner checks it
/// against the served commit); the managed resources are its inventory, so child
/// Applications and workloads are judged one by one (a parent's Healthy hides nothing).
fn judge(v: &Value, o: &mut Observation) {
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
        let own = str_at(v, "/status/health/message")
            .map(str::to_string)
            .unwrap_or_else(|| format!("health {health}, sync {sync}"));
        (health.to_string(), with_holders(own, unhealthy_resources(v)))
    } else if sync != "Synced" {
        (
            sync.to_string(),
            with_holders(format!("sync status {sync}"), out_of_sync_resources(v)),
        )
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
    o.wave = sync_wave(v);
    for r in resources(v) {
        let field = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default();
        if !field("kind").is_empty() && !field("name").is_empty() {
            o.inventory
                .push(ObjectRef::new(field("kind"), field("namespace"), field("name")));
        }
    }
    if let Some(parent) = manager_of(v) {
        o.depends_on.push(parent);
    }
    o.depends_on.extend(application_set_owner(v));
}

/// The ApplicationSet that generated an Application (its owner reference).
fn application_set_owner(v: &Value) -> Option<ObjectRef> {
    let owners = v.pointer("/metadata/ownerReferences")?.as_array()?;
    let owner = owners
        .iter()
        .find(|o| o.get("kind").and_then(Value::as_str) == Some("ApplicationSet"))?;
    let name = owner.get("name").and_then(Value::as_str)?;
    let namespace = str_at(v, "/metadata/namespace").unwrap_or(NAMESPACE);
    Some(ObjectRef::new("ApplicationSet", namespace, name))
}

/// ApplicationSet: Ready once its controller has generated its Applications without an
/// error (the Applications themselves are judged on their own). Its parent is the
/// Application that applied it; its inventory the Applications it generated.
fn judge_application_set(v: &Value, o: &mut Observation) {
    let condition = |kind: &str| {
        v.pointer("/status/conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
    };
    let status = |c: &Value| c.get("status").and_then(Value::as_str).unwrap_or_default().to_string();
    let error = condition("ErrorOccurred").map(status);
    let up_to_date = condition("ResourcesUpToDate").map(status);
    // Generated: an explicit "up to date", or the error condition present and False
    // ("ApplicationSetUpToDate"), as controllers without the other condition report it.
    let generated = match up_to_date.as_deref() {
        Some(s) => s == "True",
        None => error.as_deref() == Some("False"),
    };
    o.ready = error.as_deref() != Some("True") && generated;
    (o.reason, o.message) = if error.as_deref() == Some("True") {
        let message = condition("ErrorOccurred")
            .and_then(|c| c.get("message"))
            .and_then(Value::as_str);
        ("ErrorOccurred".into(), message.unwrap_or_default().to_string())
    } else if generated {
        (String::new(), String::new())
    } else {
        ("NotGenerated".into(), "its Applications are not generated yet".into())
    };
    o.wave = sync_wave(v);
    for r in resources(v) {
        if let Some(name) = r.get("name").and_then(Value::as_str) {
            let namespace = r.get("namespace").and_then(Value::as_str).unwrap_or(NAMESPACE);
            o.inventory.push(ObjectRef::new("Application", namespace, name));
        }
    }
    if let Some(parent) = manager_of(v) {
        o.depends_on.push(parent);
    }
}

/// The object's Argo CD sync wave (annotation), when it has one.
fn sync_wave(v: &Value) -> Option<i64> {
    v.pointer("/metadata/annotations/argocd.argoproj.io~1sync-wave")
        .and_then(Value::as_str)
        .and_then(|w| w.trim().parse().ok())
}

/// The entries of an Application's or ApplicationSet's `status.resources`.
fn resources(v: &Value) -> impl Iterator<Item = &Value> {
    v.pointer("/status/resources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn resource_name(r: &Value) -> String {
    let field = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default();
    match field("namespace") {
        "" => format!("{}/{}", field("kind"), field("name")),
        ns => format!("{}/{ns}/{}", field("kind"), field("name")),
    }
}

/// The resources of the Application's tree whose health is known and not Healthy,
/// with Argo CD's health message for each.
fn unhealthy_resources(v: &Value) -> Vec<String> {
    resources(v)
        .filter_map(|r| {
            let status = r.pointer("/health/status").and_then(Value::as_str)?;
            (status != "Healthy").then(|| match r.pointer("/health/message").and_then(Value::as_str) {
                Some(message) => format!("{} {status} ({message})", resource_name(r)),
                None => format!("{} {status}", resource_name(r)),
            })
        })
        .collect()
}

fn out_of_sync_resources(v: &Value) -> Vec<String> {
    resources(v)
        .filter(|r| r.get("status").and_then(Value::as_str) == Some("OutOfSync"))
        .map(|r| format!("{} OutOfSync", resource_name(r)))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::observe::readiness::observe;

    #[test]
    fn argo_applications_are_judged_one_by_one_parent_health_hides_nothing() {
        let parent = json!({
            "metadata": {"name": "root", "namespace": "argocd"},
            "status": {"sync": {"status": "Synced", "revision": "a".repeat(40)},
                       "health": {"status": "Healthy"},
                       "reconciledAt": "2026-11-23T10:00:00Z",
                       "resources": [{"group": "argoproj.io", "kind": "Application", "namespace": "argocd", "name": "users-api"}]}
        });
        let p = observe(&RULES, "Application", &parent);
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
        let c = observe(&RULES, "Application", &child);
        assert!(!c.ready);
        assert_eq!(c.reason, "Degraded");
        assert!(c.message.contains("progress deadline"), "{c:?}");
        assert_eq!(c.wave, Some(2));
        assert_eq!(c.depends_on, [ObjectRef::new("Application", "argocd", "root")]);
        let failed = json!({"metadata": {"name": "x", "namespace": "argocd"},
            "status": {"sync": {"status": "Synced"}, "health": {"status": "Healthy"},
                       "operationState": {"phase": "Failed", "message": "one or more objects failed to apply"}}});
        let f = observe(&RULES, "Application", &failed);
        assert!(!f.ready);
        assert_eq!(f.reason, "SyncFailed");
    }

    #[test]
    fn an_application_held_progressing_names_the_resource_inside_that_holds_it() {
        // The CRD Application of a new user's fleet stayed Progressing for minutes after
        // its CRD was Established; "health Progressing, sync Synced" said nothing of why.
        let app = json!({
            "metadata": {"name": "crds", "namespace": "argocd"},
            "status": {"sync": {"status": "Synced"}, "health": {"status": "Progressing"},
                       "resources": [
                           {"group": "apiextensions.k8s.io", "kind": "CustomResourceDefinition",
                            "name": "backups.demo.gitops.dev", "status": "Synced",
                            "health": {"status": "Progressing", "message": "Waiting for CRD to be established"}},
                           {"kind": "ConfigMap", "namespace": "users", "name": "env", "status": "Synced",
                            "health": {"status": "Healthy"}},
                           {"kind": "Service", "namespace": "users", "name": "db", "status": "Synced"}]}
        });
        let o = observe(&RULES, "Application", &app);
        assert_eq!(o.reason, "Progressing");
        assert_eq!(
            o.message,
            "health Progressing, sync Synced; held by CustomResourceDefinition/backups.demo.gitops.dev \
             Progressing (Waiting for CRD to be established)"
        );
        let out_of_sync = json!({
            "metadata": {"name": "users-api", "namespace": "argocd"},
            "status": {"sync": {"status": "OutOfSync"}, "health": {"status": "Healthy"},
                       "resources": (0..5).map(|i| json!({"kind": "ConfigMap", "namespace": "users",
                           "name": format!("c{i}"), "status": "OutOfSync"})).collect::<Vec<_>>()}
        });
        let o = observe(&RULES, "Application", &out_of_sync);
        assert_eq!(
            o.message,
            "sync status OutOfSync; held by ConfigMap/users/c0 OutOfSync; ConfigMap/users/c1 OutOfSync; \
             ConfigMap/users/c2 OutOfSync; and 2 more"
        );
    }

    #[test]
    fn a_generated_application_links_through_its_application_set_to_the_app_of_apps() {
        let set = json!({
            "metadata": {"name": "environments", "namespace": "argocd",
                         "annotations": {"argocd.argoproj.io/sync-wave": "1",
                                         "argocd.argoproj.io/tracking-id": "root:argoproj.io/ApplicationSet:argocd/environments"}},
            "status": {"conditions": [
                {"type": "ErrorOccurred", "status": "False"},
                {"type": "ResourcesUpToDate", "status": "True"}],
                "resources": [{"name": "env-staging", "namespace": "argocd"}]}
        });
        let s = observe(&RULES, "ApplicationSet", &set);
        assert!(s.ready, "{s:?}");
        assert_eq!(s.wave, Some(1));
        assert_eq!(s.depends_on, [ObjectRef::new("Application", "argocd", "root")]);
        assert_eq!(s.inventory, [ObjectRef::new("Application", "argocd", "env-staging")]);
        let app = json!({
            "metadata": {"name": "env-staging", "namespace": "argocd",
                         "ownerReferences": [{"kind": "ApplicationSet", "name": "environments"}]},
            "status": {"sync": {"status": "Synced"}, "health": {"status": "Healthy"}}
        });
        let a = observe(&RULES, "Application", &app);
        assert_eq!(
            a.depends_on,
            [ObjectRef::new("ApplicationSet", "argocd", "environments")]
        );
        let failing = json!({"metadata": {"name": "e", "namespace": "argocd"},
            "status": {"conditions": [{"type": "ErrorOccurred", "status": "True", "message": "repo not found"}]}});
        let f = observe(&RULES, "ApplicationSet", &failing);
        assert!(!f.ready);
        assert_eq!(
            (f.reason.as_str(), f.message.as_str()),
            ("ErrorOccurred", "repo not found")
        );
        let fresh = observe(
            &RULES,
            "ApplicationSet",
            &json!({"metadata": {"name": "e", "namespace": "argocd"}}),
        );
        assert!(!fresh.ready);
        let older = json!({"metadata": {"name": "e", "namespace": "argocd"},
            "status": {"conditions": [{"type": "ErrorOccurred", "status": "False", "reason": "ApplicationSetUpToDate"}]}});
        assert!(observe(&RULES, "ApplicationSet", &older).ready);
    }

    #[test]
    fn the_managing_application_comes_from_the_tracking_annotation() {
        let argo = json!({"metadata": {"annotations": {
            "argocd.argoproj.io/tracking-id": "users-api:apps/Deployment:users/users-api"}}});
        assert_eq!(
            manager_of(&argo),
            Some(ObjectRef::new("Application", "argocd", "users-api"))
        );
        assert_eq!(manager_of(&json!({"metadata": {}})), None);
    }
}
