//! `expect.order`: the recovery followed the order Git declares (Flux dependsOn and
//! sources, Argo CD sync waves under one parent).

use super::Assertion;
use crate::timeline::Timeline;

pub(super) fn followed(timeline: &Timeline) -> Assertion {
    let name = "recovery followed the order Git declares (dependsOn, sync waves)".to_string();
    let (passed, message) = match timeline.order_breaks.as_slice() {
        [] if timeline.order_checked == 0 => (
            true,
            "no object with a dependsOn or a sync wave became Ready: nothing to judge".to_string(),
        ),
        [] => (
            true,
            format!(
                "{} Ready transition(s) judged against what they follow: none came first",
                timeline.order_checked
            ),
        ),
        breaks => (false, breaks.join("; ")),
    };
    Assertion {
        name,
        passed,
        message,
        measured_ms: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_break_fails_and_is_named_and_nothing_to_judge_is_said() {
        let mut t = Timeline {
            order_checked: 4,
            ..Timeline::default()
        };
        let ok = followed(&t);
        assert!(ok.passed && ok.message.starts_with("4 Ready transition(s)"), "{ok:?}");
        t.order_breaks = vec!["Kustomization/flux-system/users-api became Ready before ...".into()];
        let broke = followed(&t);
        assert!(!broke.passed && broke.message.contains("users-api"), "{broke:?}");
        let none = followed(&Timeline::default());
        assert!(none.passed && none.message.contains("nothing to judge"));
    }
}
