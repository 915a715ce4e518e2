//! Drift: a hand edit of a live object, done as `kubectl edit` would (a JSON merge patch
//! under kubectl's field manager), and the pure helpers that say which fields it changed
//! and whether the live object still carries it.

use anyhow::{Context, Result, bail};
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{self, Scope};
use serde_json::Value;

use crate::event::{FieldDrift, ObjectRef};
use crate::model::{DriftExpect, Target};

/// `kubectl edit` records its changes under this field manager.
const FIELD_MANAGER: &str = "kubectl-edit";

/// JSON pointers of a merge patch's leaves: `{data: {A: x}}` → `/data/A`.
pub fn leaf_pointers(patch: &Value) -> Vec<String> {
    fn walk(v: &Value, prefix: String, out: &mut Vec<String>) {
        match v {
            Value::Object(map) if !map.is_empty() => {
                for (k, child) in map {
                    let key = k.replace('~', "~0").replace('/', "~1");
                    walk(child, format!("{prefix}/{key}"), out);
                }
            }
            _ if !prefix.is_empty() => out.push(prefix),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(patch, String::new(), &mut out);
    out
}

/// A field's value as text for the report: strings bare, anything else as JSON, absent as `<none>`.
pub fn show(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "<none>".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// A hand edit drill made and still follows.
#[derive(Debug, Clone)]
pub struct ActiveDrift {
    pub step: usize,
    pub applied: AppliedDrift,
    pub expect: DriftExpect,
    pub reverted: bool,
    pub detected: bool,
    /// The hand edit is now what Git holds too (a break-glass backport).
    pub backported: bool,
}

/// The hand edit as applied: each field with Git's (previous) value and the new one.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedDrift {
    pub object: ObjectRef,
    pub fields: Vec<(String, Option<Value>, Option<Value>)>,
    /// The engine object that applied it (Flux labels, Argo CD tracking annotation).
    pub manager: Option<ObjectRef>,
}

impl AppliedDrift {
    pub fn report_fields(&self) -> Vec<FieldDrift> {
        self.fields
            .iter()
            .map(|(field, git, live)| FieldDrift {
                field: field.clone(),
                git: show(git.as_ref()),
                live: show(live.as_ref()),
            })
            .collect()
    }

    /// Whether `live` (the object as the API returns it) still carries every hand-set value.
    pub fn still_drifted(&self, live: &Value) -> bool {
        self.fields
            .iter()
            .all(|(field, _, drifted)| value_at(live, field) == drifted.as_ref())
    }

    /// Whether `live` is back to Git's value in every drifted field.
    pub fn reverted(&self, live: &Value) -> bool {
        self.fields.iter().all(|(field, git, drifted)| {
            let now = value_at(live, field);
            now != drifted.as_ref() && now == git.as_ref()
        })
    }
}

fn value_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a Value> {
    v.pointer(pointer).filter(|v| !v.is_null())
}

/// Finds the API resource of a target and an Api handle for it.
pub async fn api_for(client: &Client, target: &Target) -> Result<(Api<DynamicObject>, ApiResource)> {
    let (group, version) = match target.api_version.split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), target.api_version.clone()),
    };
    let gvk = GroupVersionKind::gvk(&group, &version, &target.kind);
    let (ar, caps) = discovery::pinned_kind(client, &gvk)
        .await
        .with_context(|| format!("the cluster does not serve {} {}", target.api_version, target.kind))?;
    let api = match (caps.scope, &target.namespace) {
        (Scope::Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), ns, &ar),
        (Scope::Namespaced, None) => bail!("{target}: {} is namespaced: give `namespace:`", target.kind),
        (Scope::Cluster, _) => Api::all_with(client.clone(), &ar),
    };
    Ok((api, ar))
}

pub fn object_ref(target: &Target) -> ObjectRef {
    ObjectRef::new(&target.kind, target.namespace.as_deref().unwrap_or(""), &target.name)
}

/// Applies the hand edit (as `field_manager`, default kubectl's) and returns what it changed.
pub async fn apply(
    client: &Client,
    target: &Target,
    patch: &Value,
    field_manager: Option<&str>,
    manager_of: fn(&Value) -> Option<ObjectRef>,
) -> Result<AppliedDrift> {
    let (api, _) = api_for(client, target).await?;
    let before = api
        .get(&target.name)
        .await
        .with_context(|| format!("cannot edit {target}: failed to read it"))?;
    let before = serde_json::to_value(&before).context("object is not JSON")?;
    let params = PatchParams {
        field_manager: Some(field_manager.unwrap_or(FIELD_MANAGER).into()),
        ..PatchParams::default()
    };
    let after = api
        .patch(&target.name, &params, &Patch::Merge(patch))
        .await
        .with_context(|| format!("failed to edit {target}"))?;
    let after = serde_json::to_value(&after).context("object is not JSON")?;
    let fields = leaf_pointers(patch)
        .into_iter()
        .map(|f| {
            let git = value_at(&before, &f).cloned();
            let live = value_at(&after, &f).cloned();
            (f, git, live)
        })
        .collect();
    Ok(AppliedDrift {
        object: object_ref(target),
        fields,
        manager: manager_of(&after),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn leaves_of_a_merge_patch_are_json_pointers() {
        let patch = json!({"data": {"DB_HOST": "x", "a/b": "y"}, "spec": {"replicas": 3}});
        assert_eq!(leaf_pointers(&patch), ["/data/DB_HOST", "/data/a~1b", "/spec/replicas"]);
        assert!(leaf_pointers(&json!({})).is_empty());
    }

    #[test]
    fn drift_is_judged_per_field_against_git_and_the_hand_set_value() {
        let d = AppliedDrift {
            object: ObjectRef::new("ConfigMap", "users", "users-api-env"),
            fields: vec![("/data/DB_HOST".into(), Some(json!("db")), Some(json!("db-old")))],
            manager: None,
        };
        assert!(d.still_drifted(&json!({"data": {"DB_HOST": "db-old"}})));
        assert!(!d.reverted(&json!({"data": {"DB_HOST": "db-old"}})));
        assert!(d.reverted(&json!({"data": {"DB_HOST": "db"}})));
        // A third value is neither the hand edit nor Git: not healed, not drifted as set.
        let other = json!({"data": {"DB_HOST": "db-new"}});
        assert!(!d.reverted(&other) && !d.still_drifted(&other));
        assert_eq!(d.report_fields()[0].git, "db");
        assert_eq!(show(Some(&json!(3))), "3");
        assert_eq!(show(None), "<none>");
    }
}
