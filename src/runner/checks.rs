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
    let description = describe(c, &target);
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
                let (passed, message) = compare(c, field, want, value.as_ref());
                if passed { passed_msg(&message) } else { fail(message) }
            }
            _ => passed_msg("exists"),
        },
    }
}

/// Secret values are never rendered: reports, JUnit, tables and logs are read widely.
fn is_secret(c: &ObjectCheck) -> bool {
    c.kind == "Secret" && c.api_version == "v1"
}

/// What drill writes where a secret value would be (checks, failure evidence).
pub(super) const REDACTED: &str = "<redacted>";

fn describe(c: &ObjectCheck, target: &str) -> String {
    match (&c.field, &c.equals, c.exists) {
        (Some(f), Some(_), _) if is_secret(c) => format!("{target} {f} == {REDACTED}"),
        (Some(f), Some(v), _) => format!("{target} {f} == {v:?}"),
        (_, _, true) => format!("{target} exists"),
        (_, _, false) => format!("{target} is absent"),
    }
}

/// Whether the live value equals the expected one, and what to say about it.
fn compare(c: &ObjectCheck, field: &str, want: &str, value: Option<&serde_json::Value>) -> (bool, String) {
    let got = match value {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => return (false, format!("has no field {field}")),
    };
    let passed = got == want;
    let message = match (is_secret(c), passed) {
        (true, true) => "equals the expected value (not shown: a Secret)".to_string(),
        (true, false) => "differs from the expected value (not shown: a Secret)".to_string(),
        (false, _) => format!("is {got:?}"),
    };
    (passed, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(kind: &str, api_version: &str) -> ObjectCheck {
        ObjectCheck {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: Some("users".into()),
            name: "x".into(),
            exists: true,
            field: Some("/data/password".into()),
            equals: Some("c2VjcmV0".into()),
        }
    }

    #[test]
    fn secret_values_are_compared_but_never_rendered() {
        let secret = check("Secret", "v1");
        let live = serde_json::json!("c2VjcmV0");
        let other = serde_json::json!("b3RoZXI=");
        let texts = [
            describe(&secret, "Secret users/x"),
            compare(&secret, "/data/password", "c2VjcmV0", Some(&live)).1,
            compare(&secret, "/data/password", "c2VjcmV0", Some(&other)).1,
        ];
        assert!(compare(&secret, "/data/password", "c2VjcmV0", Some(&live)).0);
        assert!(!compare(&secret, "/data/password", "c2VjcmV0", Some(&other)).0);
        for t in &texts {
            for needle in ["c2VjcmV0", "secret", "b3RoZXI=", "other"] {
                assert!(!t.contains(needle), "{t:?} shows {needle}");
            }
        }
        let config = check("ConfigMap", "v1");
        assert_eq!(
            compare(&config, "/data/password", "c2VjcmV0", Some(&other)).1,
            "is \"b3RoZXI=\""
        );
    }
}
