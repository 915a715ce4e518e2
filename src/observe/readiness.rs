//! Readiness rules, as pure functions of an object's JSON. One [`Observation`] per
//! object; the watchers feed them into [`super::state::ClusterState`].
//!
//! This file holds the rules that do not depend on the engine (workloads, add-on
//! objects) and the helpers engines' rules share; each engine's own kinds are judged by
//! its [`EngineRules`] (`engine/<name>/readiness.rs`).
//! Workloads: every replica updated and available at the current generation.

use jiff::Timestamp;
use serde_json::Value;

pub use super::observation::{Observation, SyncOperation};
use super::rules::EngineRules;
pub use super::rules::{ADDON_KINDS, WORKLOAD_KINDS, is_managed_leaf};
use crate::event::ObjectRef;

pub fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

pub fn int_at(v: &Value, pointer: &str) -> Option<i64> {
    v.pointer(pointer).and_then(Value::as_i64)
}

pub fn condition<'a>(v: &'a Value, type_: &str) -> Option<&'a Value> {
    v.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
}

pub fn transition(c: Option<&Value>) -> Option<Timestamp> {
    c.and_then(|c| c.get("lastTransitionTime"))
        .and_then(Value::as_str)
        .and_then(|t| t.parse().ok())
}

/// Reads one object (as the API server returns it) of kind `kind`, judged by the
/// engine's rules where the kind is the engine's.
pub fn observe(rules: &EngineRules, kind: &str, v: &Value) -> Observation {
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
        rechecking: false,
    };
    if WORKLOAD_KINDS.contains(&kind) {
        workload(kind, v, &mut o);
        o.depends_on.extend((rules.manager_of)(v));
    } else if kind == "SealedSecret" {
        sealed_secret(v, &mut o);
        o.depends_on.extend((rules.manager_of)(v));
    } else if let Some(rule) = rules.rule(kind) {
        (rule.judge)(v, &mut o);
    }
    o
}

/// Whether a workload (Deployment, StatefulSet, DaemonSet) is ready by drill's rule;
/// engines use it to wait for their own controllers.
pub fn workload_ready(kind: &str, v: &Value) -> bool {
    let mut o = Observation::deleted(ObjectRef::new(kind, "", ""));
    workload(kind, v, &mut o);
    o.ready
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
}

/// How many holders a reason names.
const HOLDERS_NAMED: usize = 3;

/// An engine object's own reason, followed by the objects inside it that hold it
/// (unless its reason already names them).
pub fn with_holders(own: String, holders: Vec<String>) -> String {
    if holders.is_empty() || own.contains("; held by ") {
        return own;
    }
    let more = holders.len().saturating_sub(HOLDERS_NAMED);
    let mut named = holders.into_iter().take(HOLDERS_NAMED).collect::<Vec<_>>().join("; ");
    if more > 0 {
        named.push_str(&format!("; and {more} more"));
    }
    format!("{own}; held by {named}")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_deployment_from_an_old_generation_is_not_ready() {
        let d = json!({"metadata": {"name": "a", "namespace": "n", "generation": 5},
                       "spec": {}, "status": {"observedGeneration": 4, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}});
        assert!(!workload_ready("Deployment", &d));
        let current = json!({"metadata": {"name": "a", "namespace": "n", "generation": 4},
                       "spec": {}, "status": {"observedGeneration": 4, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}});
        assert!(workload_ready("Deployment", &current));
    }
}
