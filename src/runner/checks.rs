//! `expect.objects`: checks on live objects after the last recovery.

use kube::Client;
use kube::api::{Api, DynamicObject};
use kube::discovery;

use crate::assert::ObjectCheckOutcome;
use crate::scenario::ObjectCheck;

pub async fn evaluate(client: &Client, checks: &[ObjectCheck]) -> Vec<ObjectCheckOutcome> {
    let mut out = Vec::new();
    for check in checks {
        out.push(one(client, check).await);
    }
    out
}

async fn one(client: &Client, c: &ObjectCheck) -> ObjectCheckOutcome {
    let target = format!(
        "{} {}{}",
        c.kind,
        c.namespace.as_ref().map(|n| format!("{n}/")).unwrap_or_default(),
        c.name
    );
    let description = match (&c.field, &c.equals, c.exists) {
        (Some(f), Some(v), _) => format!("{target} {f} == {v:?}"),
        (_, _, true) => format!("{target} exists"),
        (_, _, false) => format!("{target} is absent"),
    };
    let fail = |message: String| ObjectCheckOutcome {
        description: description.clone(),
        passed: false,
        message,
    };
    let (group, version) = c.api_version.split_once('/').unwrap_or(("", &c.api_version));
    let gvk = kube::core::GroupVersionKind::gvk(group, version, &c.kind);
    let (ar, caps) = match discovery::pinned_kind(client, &gvk).await {
        Ok(found) => found,
        Err(err) => {
            return fail(format!(
                "the cluster does not serve {} {}: {err}",
                c.api_version, c.kind
            ));
        }
    };
    let api: Api<DynamicObject> = match (&c.namespace, caps.scope) {
        (Some(ns), discovery::Scope::Namespaced) => Api::namespaced_with(client.clone(), ns, &ar),
        _ => Api::all_with(client.clone(), &ar),
    };
    let obj = match api.get_opt(&c.name).await {
        Ok(o) => o,
        Err(err) => return fail(format!("failed to read {target}: {err}")),
    };
    let passed_msg = |m: &str| ObjectCheckOutcome {
        description: description.clone(),
        passed: true,
        message: m.to_string(),
    };
    match (obj, c.exists) {
        (None, false) => passed_msg("absent"),
        (None, true) => fail("does not exist".into()),
        (Some(_), false) => fail("exists".into()),
        (Some(obj), true) => match (&c.field, &c.equals) {
            (Some(field), Some(want)) => {
                let value = serde_json::to_value(&obj).ok().and_then(|v| v.pointer(field).cloned());
                let got = match &value {
                    Some(serde_json::Value::String(s)) => Some(s.clone()),
                    Some(other) => Some(other.to_string()),
                    None => None,
                };
                match got {
                    Some(g) if &g == want => passed_msg(&format!("is {g:?}")),
                    Some(g) => fail(format!("is {g:?}")),
                    None => fail(format!("has no field {field}")),
                }
            }
            _ => passed_msg("exists"),
        },
    }
}
