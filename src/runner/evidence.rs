//! Failure evidence: when a run fails or errs while its cluster still answers, what a
//! person would look at next is saved beside the report (`evidence/`), so a failed
//! nightly run can be understood after its cluster is gone:
//! - `events-<namespace>.txt`: the Events of each namespace a failing object lives in;
//! - `status.json`: the live `.status` of each failing object;
//! - `logs/<namespace>/<pod>/<container>[.previous].log`: the last 200 lines of each
//!   container of the not-Ready pods there (the previous container's too).
//!
//! Everything is redacted like the rest of the report: the values of the secrets drill
//! restored (raw and base64) and the repo credentials never appear. Collection is best
//! effort and bounded: an object or log that cannot be read is left out.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Event as KubeEvent, Pod};
use kube::api::{Api, ApiResource, DynamicObject, ListParams, LogParams};
use kube::{Client, discovery};
use serde_json::Value;

use crate::event::ObjectRef;
use crate::observe::rules::EngineRules;

/// At most this many namespaces, objects and pods are looked at.
const MAX_NAMESPACES: usize = 8;
const MAX_OBJECTS: usize = 40;
const MAX_PODS: usize = 20;
const LOG_LINES: i64 = 200;

/// Replaces known secret values in text.
pub(super) struct Redactor {
    needles: Vec<String>,
}

impl Redactor {
    /// From the Secret manifests drill restored (every `data` value, raw and decoded;
    /// every `stringData` value, raw and encoded) and the repo password. Values shorter
    /// than 6 characters are left: they would redact ordinary words.
    pub(super) fn new(secrets: &[Value], repo_password: Option<&str>) -> Redactor {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut needles = BTreeSet::new();
        for manifest in secrets {
            for (_, v) in manifest["data"].as_object().into_iter().flatten() {
                if let Some(encoded) = v.as_str() {
                    needles.insert(encoded.to_string());
                    if let Ok(raw) = b64.decode(encoded)
                        && let Ok(text) = String::from_utf8(raw)
                    {
                        needles.insert(text);
                    }
                }
            }
            for (_, v) in manifest["stringData"].as_object().into_iter().flatten() {
                if let Some(raw) = v.as_str() {
                    needles.insert(raw.to_string());
                    needles.insert(b64.encode(raw));
                }
            }
        }
        needles.extend(repo_password.map(str::to_string));
        // Multi-line keys are also matched line by line: a log may print one line of them.
        let lines: Vec<String> = needles
            .iter()
            .flat_map(|n| n.lines().map(str::trim).map(str::to_string).collect::<Vec<_>>())
            .collect();
        needles.extend(lines);
        let mut needles: Vec<String> = needles.into_iter().filter(|n| n.len() >= 6).collect();
        // Longest first, so a value is never half-replaced by a shorter one inside it.
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        Redactor { needles }
    }

    pub(super) fn apply(&self, text: &str) -> String {
        let mut out = text.to_string();
        for needle in &self.needles {
            if out.contains(needle.as_str()) {
                out = out.replace(needle.as_str(), super::checks::REDACTED);
            }
        }
        out
    }
}

/// Collects the evidence of `failing` objects; returns (file under the report folder, bytes).
pub(super) async fn collect(
    client: &Client,
    rules: &EngineRules,
    failing: &[ObjectRef],
    redact: &Redactor,
) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let failing: Vec<&ObjectRef> = failing.iter().take(MAX_OBJECTS).collect();
    let namespaces: BTreeSet<&str> = failing
        .iter()
        .map(|o| o.namespace.as_str())
        .filter(|ns| !ns.is_empty())
        .take(MAX_NAMESPACES)
        .collect();
    for ns in &namespaces {
        if let Some(text) = namespace_events(client, ns).await {
            files.push((format!("evidence/events-{ns}.txt"), redact.apply(&text).into_bytes()));
        }
    }
    let mut statuses = serde_json::Map::new();
    for object in &failing {
        if let Some(status) = live_status(client, rules, object).await {
            statuses.insert(object.to_string(), status);
        }
    }
    if !statuses.is_empty() {
        let text = serde_json::to_string_pretty(&Value::Object(statuses)).unwrap_or_default();
        files.push(("evidence/status.json".into(), redact.apply(&text).into_bytes()));
    }
    for ns in &namespaces {
        for (name, text) in pod_logs(client, ns).await {
            files.push((format!("evidence/logs/{ns}/{name}"), redact.apply(&text).into_bytes()));
        }
    }
    files
}

/// One line per Event, oldest first: when, type, reason, object, message.
async fn namespace_events(client: &Client, ns: &str) -> Option<String> {
    let api: Api<KubeEvent> = Api::namespaced(client.clone(), ns);
    let mut events = api.list(&ListParams::default()).await.ok()?.items;
    let when = |e: &KubeEvent| {
        e.last_timestamp
            .as_ref()
            .map(|t| t.0.to_string())
            .or_else(|| e.event_time.as_ref().map(|t| t.0.to_string()))
            .unwrap_or_default()
    };
    events.sort_by_key(when);
    let lines: Vec<String> = events
        .iter()
        .map(|e| {
            format!(
                "{} {} {} {}/{} (x{}): {}",
                when(e),
                e.type_.as_deref().unwrap_or("-"),
                e.reason.as_deref().unwrap_or("-"),
                e.involved_object.kind.as_deref().unwrap_or("?"),
                e.involved_object.name.as_deref().unwrap_or("?"),
                e.count.unwrap_or(1),
                e.message.as_deref().unwrap_or("").trim()
            )
        })
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n") + "\n")
}

/// The object's live `.status`, found through the engine's kinds or the workload kinds.
async fn live_status(client: &Client, rules: &EngineRules, object: &ObjectRef) -> Option<Value> {
    let group = rules
        .kinds
        .iter()
        .find(|k| k.kind == object.kind)
        .map(|k| k.group)
        .or(match object.kind.as_str() {
            "Deployment" | "StatefulSet" | "DaemonSet" => Some("apps"),
            "SealedSecret" => Some("bitnami.com"),
            _ => None,
        })?;
    let (ar, _): (ApiResource, _) = discovery::group(client, group)
        .await
        .ok()?
        .recommended_kind(&object.kind)?;
    let api: Api<DynamicObject> = if object.namespace.is_empty() {
        Api::all_with(client.clone(), &ar)
    } else {
        Api::namespaced_with(client.clone(), &object.namespace, &ar)
    };
    let live = api.get(&object.name).await.ok()?;
    live.data.get("status").cloned()
}

/// The last lines of each container of the namespace's pods that are not Ready.
async fn pod_logs(client: &Client, ns: &str) -> Vec<(String, String)> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let Ok(pods) = api.list(&ListParams::default()).await else {
        return Vec::new();
    };
    let not_ready = pods.items.into_iter().filter(|p| {
        !p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    });
    let mut out = Vec::new();
    for pod in not_ready.take(MAX_PODS) {
        let Some(name) = pod.metadata.name.clone() else {
            continue;
        };
        let containers = pod.spec.map(|s| s.containers).unwrap_or_default();
        for c in containers {
            for previous in [false, true] {
                let params = LogParams {
                    container: Some(c.name.clone()),
                    tail_lines: Some(LOG_LINES),
                    previous,
                    ..Default::default()
                };
                if let Ok(text) = api.logs(&name, &params).await
                    && !text.is_empty()
                {
                    let suffix = if previous { ".previous" } else { "" };
                    out.push((format!("{name}/{}{suffix}.log", c.name), text));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restored_secret_values_are_redacted_raw_encoded_and_line_by_line() {
        let secret = serde_json::json!({
            "kind": "Secret",
            "data": {"age.agekey": "QUdFLVNFQ1JFVC1LRVktMVhZWg=="},
            "stringData": {"token": "ghp_supersecret", "key.pem": "-----BEGIN KEY-----\nMIIBVwIBADANBgkqhkiG9w0BAQEFAASCAUEwggE9\n-----END KEY-----"}
        });
        let r = Redactor::new(&[secret], Some("hunter2-password"));
        let text = "decrypt with AGE-SECRET-KEY-1XYZ (QUdFLVNFQ1JFVC1LRVktMVhZWg==), token ghp_supersecret, \
                    Z2hwX3N1cGVyc2VjcmV0, pw hunter2-password, a line MIIBVwIBADANBgkqhkiG9w0BAQEFAASCAUEwggE9";
        let out = r.apply(text);
        for leaked in [
            "AGE-SECRET-KEY-1XYZ",
            "QUdFLVNF",
            "ghp_supersecret",
            "Z2hwX3N1cGVy",
            "hunter2",
            "MIIBVwIBADAN",
        ] {
            assert!(!out.contains(leaked), "{leaked} in {out}");
        }
        assert!(out.starts_with("decrypt with <redacted>"), "{out}");
        // Ordinary short words are not needles.
        assert_eq!(
            Redactor::new(&[serde_json::json!({"data": {"a": "eWVz"}})], None).apply("yes"),
            "yes"
        );
    }
}
