//! After the last step: every object the engines' inventories list (Flux
//! `status.inventory`, Argo CD `status.resources`) exists by the API server, a Job has
//! completed and a PersistentVolumeClaim is Bound. Kinds drill follows with a readiness
//! rule were judged Ready already; every other kind is checked for existence only, and
//! the verdict names those kinds, so a rebuild that lost a ConfigMap, a Service or a
//! custom resource Git declares no longer passes.

use std::collections::{BTreeMap, BTreeSet};

use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::discovery::{ApiCapabilities, Discovery, Scope};
use serde_json::Value;

use crate::assert::Assertion;
use crate::event::ObjectRef;

/// What the check found.
#[derive(Debug, Default, PartialEq)]
pub struct Completeness {
    pub checked: usize,
    /// Each object missing or not done, with why.
    pub missing: Vec<String>,
    /// Kinds without a readiness rule of drill's: checked for existence only.
    pub existence_only: BTreeSet<String>,
}

impl Completeness {
    pub fn assertion(&self) -> Assertion {
        let only = if self.existence_only.is_empty() {
            String::new()
        } else {
            let kinds: Vec<&str> = self.existence_only.iter().map(String::as_str).collect();
            format!("; checked for existence only: {}", kinds.join(", "))
        };
        let (passed, message) = if self.missing.is_empty() {
            (
                true,
                format!(
                    "{} object(s) of the engines' inventories exist (Jobs complete, claims Bound){only}",
                    self.checked
                ),
            )
        } else {
            (false, format!("{}{only}", self.missing.join("; ")))
        };
        Assertion {
            name: "every object Git declares exists".into(),
            passed,
            message,
            measured_ms: None,
        }
    }
}

/// Checks `objects` against the API server; `tracked(kind)` says which kinds drill
/// judges by a readiness rule of its own.
pub async fn check(client: &Client, objects: &BTreeSet<ObjectRef>, tracked: impl Fn(&str) -> bool) -> Completeness {
    let mut found = Completeness::default();
    let resources = match Discovery::new(client.clone()).run().await {
        Ok(discovery) => by_kind(&discovery),
        Err(err) => {
            found.missing.push(format!("API discovery failed: {err}"));
            return found;
        }
    };
    for object in objects {
        found.checked += 1;
        if !tracked(&object.kind) {
            found.existence_only.insert(object.kind.clone());
        }
        let Some((ar, caps)) = resources.get(object.kind.as_str()) else {
            found
                .missing
                .push(format!("{object}: the cluster serves no kind {}", object.kind));
            continue;
        };
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Namespaced if !object.namespace.is_empty() => {
                Api::namespaced_with(client.clone(), &object.namespace, ar)
            }
            _ => Api::all_with(client.clone(), ar),
        };
        match api.get_opt(&object.name).await {
            Ok(Some(live)) => {
                let value = serde_json::to_value(&live).unwrap_or(Value::Null);
                if let Some(why) = not_done(&object.kind, &value) {
                    found.missing.push(format!("{object}: {why}"));
                }
            }
            Ok(None) => found.missing.push(format!("{object}: missing")),
            Err(err) => found.missing.push(format!("{object}: cannot read it: {err}")),
        }
    }
    found
}

/// Each kind's preferred resource; a kind two groups serve (Event) takes the first.
fn by_kind(discovery: &Discovery) -> BTreeMap<String, (ApiResource, ApiCapabilities)> {
    let mut out = BTreeMap::new();
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            out.entry(ar.kind.clone()).or_insert((ar, caps));
        }
    }
    out
}

/// Why an object that exists is not done: a Job not complete, a claim not Bound.
pub fn not_done(kind: &str, v: &Value) -> Option<String> {
    match kind {
        "Job" => {
            let complete = v
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Complete" && c["status"] == "True");
            (!complete).then(|| "not complete".to_string())
        }
        "PersistentVolumeClaim" => {
            let phase = v.pointer("/status/phase").and_then(Value::as_str).unwrap_or("no phase");
            (phase != "Bound").then(|| format!("not Bound ({phase})"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_job_must_be_complete_and_a_claim_bound() {
        let job = |status: &str| json!({"status": {"conditions": [{"type": "Complete", "status": status}]}});
        assert_eq!(not_done("Job", &job("True")), None);
        assert_eq!(not_done("Job", &job("False")).as_deref(), Some("not complete"));
        assert_eq!(not_done("Job", &json!({})).as_deref(), Some("not complete"));
        let pvc = |phase: &str| json!({"status": {"phase": phase}});
        assert_eq!(not_done("PersistentVolumeClaim", &pvc("Bound")), None);
        assert_eq!(
            not_done("PersistentVolumeClaim", &pvc("Pending")).as_deref(),
            Some("not Bound (Pending)")
        );
        assert_eq!(not_done("ConfigMap", &json!({})), None);
    }

    #[test]
    fn the_verdict_names_what_is_missing_and_the_kinds_checked_for_existence_only() {
        let mut c = Completeness {
            checked: 12,
            missing: vec![],
            existence_only: ["ConfigMap".to_string(), "Service".to_string()].into(),
        };
        let ok = c.assertion();
        assert!(ok.passed, "{ok:?}");
        assert_eq!(
            ok.message,
            "12 object(s) of the engines' inventories exist (Jobs complete, claims Bound); checked for existence only: ConfigMap, Service"
        );
        c.missing.push("ConfigMap/users/users-api-env: missing".into());
        let failed = c.assertion();
        assert!(!failed.passed && failed.message.starts_with("ConfigMap/users/users-api-env: missing"));
    }
}
