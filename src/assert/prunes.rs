//! `expect.pruned` / `expect.kept`: what the engine did with the objects a prune step
//! checked.

use super::Assertion;
use crate::human::ms;
use crate::model::ObjectName;
use crate::timeline::Timeline;

/// One assertion per object named; `pruned` says which list it came from.
pub(super) fn prune_assertions(pruned: &[ObjectName], kept: &[ObjectName], timeline: &Timeline) -> Vec<Assertion> {
    let one = |name: &ObjectName, want_pruned: bool| {
        let object = name.to_ref();
        let verb = if want_pruned { "pruned" } else { "kept" };
        let record = timeline.prunes.iter().rev().find(|r| r.object == object);
        let (passed, message) = match record {
            Some(r) if r.pruned == want_pruned => (
                true,
                format!(
                    "{verb}: {} by the API server {} after the commit",
                    if r.pruned { "gone" } else { "still there" },
                    ms(r.checked_after_ms)
                ),
            ),
            Some(r) => (
                false,
                format!(
                    "not {verb}: {} by the API server {} after the commit",
                    if r.pruned { "gone" } else { "still there" },
                    ms(r.checked_after_ms)
                ),
            ),
            None => (
                false,
                "no prune step checked it: it neither left the engines' inventories nor was made by hand".into(),
            ),
        };
        Assertion {
            name: format!("{object} {verb}"),
            passed,
            message,
            measured_ms: None,
        }
    };
    pruned
        .iter()
        .map(|n| one(n, true))
        .chain(kept.iter().map(|n| one(n, false)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ObjectRef;
    use crate::timeline::PruneRecord;

    fn name(kind: &str, n: &str) -> ObjectName {
        ObjectName {
            kind: kind.into(),
            namespace: Some("users".into()),
            name: n.into(),
        }
    }

    #[test]
    fn each_object_is_judged_by_what_the_api_server_showed_and_an_unchecked_one_fails() {
        let t = Timeline {
            prunes: vec![
                PruneRecord {
                    step: 0,
                    object: ObjectRef::new("HorizontalPodAutoscaler", "users", "users-api"),
                    by_hand: false,
                    pruned: true,
                    checked_after_ms: 9_000,
                },
                PruneRecord {
                    step: 0,
                    object: ObjectRef::new("ConfigMap", "users", "flags"),
                    by_hand: true,
                    pruned: false,
                    checked_after_ms: 9_000,
                },
            ],
            ..Timeline::default()
        };
        let hpa = name("HorizontalPodAutoscaler", "users-api");
        let flags = name("ConfigMap", "flags");
        let a = prune_assertions(std::slice::from_ref(&hpa), std::slice::from_ref(&flags), &t);
        assert!(a.iter().all(|a| a.passed), "{a:?}");
        assert_eq!(a[0].name, "HorizontalPodAutoscaler/users/users-api pruned");
        assert_eq!(a[0].message, "pruned: gone by the API server 9.0s after the commit");
        // The other way round: both fail, saying what was seen.
        let a = prune_assertions(&[flags], &[hpa], &t);
        assert!(a.iter().all(|a| !a.passed), "{a:?}");
        assert!(a[0].message.starts_with("not pruned: still there"), "{}", a[0].message);
        let a = prune_assertions(&[name("Service", "users-api")], &[], &t);
        assert!(!a[0].passed && a[0].message.starts_with("no prune step checked it"));
    }
}
