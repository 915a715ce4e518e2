//! Verdicts: a pure function of the scenario's expectations, the timeline and the
//! results of live object checks. Each assertion becomes one JUnit test case.

mod order;
mod probes;
mod prunes;

use serde::{Deserialize, Serialize};

/// Re-exported for src/runner, which is being redesigned elsewhere; new code uses [`crate::human::ms`].
pub use crate::human::ms;
use crate::scenario::{Duration, Expect, PhaseName, StepOutcome};
use crate::timeline::{ObjectTiming, Recovery, StepTiming, Timeline, kinds_ending};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Assertion {
    pub name: String,
    pub passed: bool,
    pub message: String,
    /// What the assertion measured (a recovery, the rebuild, a phase), as a test case's time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_ms: Option<u64>,
}

/// The outcome of one `expect.objects` check, evaluated against the live cluster by the runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectCheckOutcome {
    pub description: String,
    pub passed: bool,
    pub message: String,
}

pub fn evaluate(expect: &Expect, timeline: &Timeline, object_checks: &[ObjectCheckOutcome]) -> Vec<Assertion> {
    let mut out: Vec<Assertion> = timeline
        .recoveries
        .iter()
        .map(|r| recovery_within_budget(expect, timeline, r))
        .collect();
    out.extend(step_assertions(expect, timeline));

    for (phase, budget) in &expect.phases {
        out.push(phase_budget(*phase, budget, timeline));
    }

    if expect.all_ready {
        out.push(all_ready(timeline));
    }

    out.extend(object_checks.iter().map(|c| Assertion {
        measured_ms: None,
        name: c.description.clone(),
        passed: c.passed,
        message: c.message.clone(),
    }));
    out.extend(probes::probe_assertions(expect, timeline));
    if expect.order {
        out.push(order::followed(timeline));
    }
    out.extend(prunes::prune_assertions(&expect.pruned, &expect.kept, timeline));
    out
}

/// A step's recovery (or heal, or revert) within its budget or the scenario's RTO.
fn recovery_within_budget(expect: &Expect, timeline: &Timeline, r: &Recovery) -> Assertion {
    let budget_ms = r.budget_ms.unwrap_or(expect.rto.as_millis());
    let budget = r.budget_ms.map(ms).unwrap_or_else(|| expect.rto.to_string());
    let what = match r.disaster.as_str() {
        "git-revert" => "reverted to Healthy",
        "drift" => "healed",
        _ => "recovered",
    };
    let within = if r.budget_ms.is_some() {
        format!("within {budget}")
    } else {
        format!("within RTO {}", expect.rto)
    };
    let name = format!("step {} {}: {what} {within}", r.step + 1, r.disaster);
    against_budget(name, r.rto_ms, budget_ms, |took, over| match (took, over) {
        (Some(t), None) => format!("{what} in {} (budget {budget})", ms(t)),
        (Some(t), Some(o)) => format!("{what} in {}, over the budget of {budget} by {}", ms(t), ms(o)),
        (None, _) if timeline.stopped_early.is_some() => format!(
            "not {what}: stopped waiting before the budget of {budget}, the outcome being certain: {}",
            not_ready_summary(timeline)
        ),
        (None, _) => format!("not {what} within {budget}: {}", not_ready_summary(timeline)),
    })
}

/// A measured time against its budget: passed, over (by how much), or never measured.
/// `message` gets the time and, when over, by how much.
fn against_budget(
    name: String,
    measured: Option<u64>,
    budget_ms: u64,
    message: impl FnOnce(Option<u64>, Option<u64>) -> String,
) -> Assertion {
    let over = measured.filter(|t| *t > budget_ms).map(|t| t - budget_ms);
    Assertion {
        passed: measured.is_some() && over.is_none(),
        message: message(measured, over),
        measured_ms: measured,
        name,
    }
}

/// A run without damage steps: the rebuild from Git is the result, held against the RTO.
pub fn rebuild_within_budget(expect: &Expect, timeline: &Timeline) -> Assertion {
    let name = format!("rebuilt from Git within RTO {}", expect.rto);
    against_budget(name, timeline.rebuild_ms, expect.rto.as_millis(), |took, over| {
        match (took, over) {
            (Some(t), None) => format!("every object Ready {} after the run started", ms(t)),
            (Some(t), Some(o)) => format!(
                "every object Ready {} after the run started, over the budget by {}",
                ms(t),
                ms(o)
            ),
            (None, _) => format!("the initial sync did not finish: {}", not_ready_summary(timeline)),
        }
    })
}

/// Every object Ready at the end, and every image pulled.
fn all_ready(timeline: &Timeline) -> Assertion {
    let stuck = stuck_lines(timeline);
    let failed_pulls: Vec<String> = timeline
        .images
        .iter()
        .filter_map(|p| {
            p.failed
                .as_ref()
                .map(|why| format!("image {} on {}: {why}", p.image, p.node))
        })
        .collect();
    let ready = timeline.objects.len() - stuck.len();
    if timeline.objects.is_empty() {
        // Nothing watched is nothing Ready: a run that never saw the fleet must not pass it.
        Assertion {
            measured_ms: None,
            name: "all objects Ready".into(),
            passed: false,
            message: "no object of the fleet was ever observed".into(),
        }
    } else if stuck.is_empty() {
        Assertion {
            measured_ms: None,
            name: "all objects Ready".into(),
            passed: true,
            message: format!("{ready} objects Ready"),
        }
    } else {
        let mut lines = stuck;
        lines.extend(failed_pulls);
        Assertion {
            measured_ms: None,
            name: "all objects Ready".into(),
            passed: false,
            message: format!(
                "{} of {} not Ready: {}",
                timeline.objects.len() - ready,
                timeline.objects.len(),
                lines.join("; ")
            ),
        }
    }
}

/// Verdicts of the quieter steps: breakage that had to happen, drift that had to stay,
/// break-glass actions, and drift that stayed too long or was never put right.
fn step_assertions(expect: &Expect, timeline: &Timeline) -> Vec<Assertion> {
    let mut out: Vec<Assertion> = timeline.steps.iter().flat_map(one_step).collect();
    out.extend(drift_assertions(expect, timeline));
    out
}

/// What one step must end in, beyond its recovery: a degradation, expected drift kept,
/// its actions done.
fn one_step(st: &StepTiming) -> Vec<Assertion> {
    let mut out = Vec::new();
    let n = st.step + 1;
    if st.expects == StepOutcome::Degraded {
        let name = format!("step {n} {}: the app broke as expected", st.kind);
        out.push(match st.degraded_ms {
            Some(d) => Assertion {
                measured_ms: None,
                name,
                passed: true,
                message: format!("degraded {} after the step: {}", ms(d), st.degraded.join("; ")),
            },
            None => Assertion {
                measured_ms: None,
                name,
                passed: false,
                message: "nothing broke: every object stayed or became Ready".into(),
            },
        });
    }
    if st.kind == "drift" && st.expects == StepOutcome::Nothing {
        let name = format!("step {n} drift: the engine left the expected drift alone");
        out.push(if st.kept == Some(true) {
            Assertion {
                measured_ms: None,
                name,
                passed: true,
                message: "the hand edit is still live after the engine's reconcile: no finding".into(),
            }
        } else {
            Assertion {
                measured_ms: None,
                name,
                passed: false,
                message: "the engine overwrote it: this difference is noise the ignore rules should cover".into(),
            }
        });
    }
    for a in st.actions.iter().filter(|a| !a.ok) {
        out.push(Assertion {
            measured_ms: None,
            name: format!("step {n} {}: {}", st.kind, a.action),
            passed: false,
            message: a.message.clone(),
        });
    }
    if st.kind == "break-glass" && !st.actions.is_empty() && st.actions.iter().all(|a| a.ok) {
        out.push(Assertion {
            measured_ms: None,
            name: format!("step {n} break-glass: every action done, before the deadline"),
            passed: true,
            message: st
                .actions
                .iter()
                .map(|a| format!("{} at {}", a.action, ms(a.at_ms)))
                .collect::<Vec<_>>()
                .join("; "),
        });
    }
    out
}

/// Nothing left drifted, and no drift older than `expect.max-drift-age`.
fn drift_assertions(expect: &Expect, timeline: &Timeline) -> Vec<Assertion> {
    let mut out = Vec::new();
    let open: Vec<String> = timeline
        .drift
        .iter()
        .filter(|d| d.reverted_ms.is_none() && !d.kept)
        .map(|d| format!("{} (hand edit of step {})", d.object, d.step + 1))
        .collect();
    if !timeline.drift.is_empty() {
        out.push(Assertion {
            measured_ms: None,
            name: "nothing left drifted".into(),
            passed: open.is_empty(),
            message: if open.is_empty() {
                format!(
                    "{} hand edit(s), each overwritten by Git or expected",
                    timeline.drift.len()
                )
            } else {
                format!("still live and not in Git: {}", open.join("; "))
            },
        });
    }
    if let Some(max) = expect.max_drift_age {
        let old: Vec<String> = timeline
            .drift
            .iter()
            .filter(|d| !d.kept && d.age_ms > max.as_millis())
            .map(|d| format!("{} lived {}", d.object, ms(d.age_ms)))
            .collect();
        out.push(Assertion {
            measured_ms: None,
            name: format!("no drift older than {max}"),
            passed: old.is_empty(),
            message: if old.is_empty() {
                "every drift was put right in time".into()
            } else {
                old.join("; ")
            },
        });
    }
    out
}

fn phase_budget(phase: PhaseName, budget: &Duration, timeline: &Timeline) -> Assertion {
    let name = format!("phase {phase} within {budget}");
    let spans: Vec<_> = timeline.phases.iter().filter(|p| p.name == phase).collect();
    if spans.is_empty() {
        return Assertion {
            measured_ms: None,
            name,
            passed: false,
            message: format!("phase {phase} was never observed in this run"),
        };
    }
    let over: Vec<String> = spans
        .iter()
        .filter_map(|p| match p.duration_ms {
            Some(d) if d <= budget.as_millis() => None,
            Some(d) => Some(format!("took {} (started at {})", ms(d), ms(p.start_ms))),
            None => Some(format!("never finished (started at {})", ms(p.start_ms))),
        })
        .collect();
    let longest = spans.iter().filter_map(|p| p.duration_ms).max();
    if over.is_empty() {
        let longest = longest.unwrap_or(0);
        Assertion {
            measured_ms: Some(longest),
            name,
            passed: true,
            message: format!("longest {}", ms(longest)),
        }
    } else {
        Assertion {
            measured_ms: longest,
            name,
            passed: false,
            message: over.join("; "),
        }
    }
}

fn describe_not_ready(o: &ObjectTiming) -> String {
    match &o.not_ready {
        Some(why) => format!("{} ({}: {})", o.object, why.reason, why.message),
        None => format!("{} (never became Ready)", o.object),
    }
}

/// What is not Ready, failing sources first and named as such: when a source fails,
/// everything built from it waits, so the source is the finding, not the apps behind it.
fn stuck_lines(timeline: &Timeline) -> Vec<String> {
    let source_kinds = kinds_ending(PhaseName::SourceReady);
    let (sources, others): (Vec<_>, Vec<_>) = timeline
        .not_ready()
        .partition(|o| source_kinds.contains(&o.object.kind.as_str()));
    let mut lines: Vec<String> = sources
        .into_iter()
        .map(|o| format!("source failing: {}", describe_not_ready(o)))
        .collect();
    lines.extend(others.into_iter().map(describe_not_ready));
    lines
}

fn not_ready_summary(timeline: &Timeline) -> String {
    let stuck = stuck_lines(timeline);
    if stuck.is_empty() {
        "no object reported why".into()
    } else {
        stuck.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::event::ObjectRef;
    use crate::timeline::{NotReady, PhaseSpan, Recovery};

    fn expect(rto_secs: u64) -> Expect {
        Expect {
            rto: Duration(std::time::Duration::from_secs(rto_secs)),
            phases: BTreeMap::new(),
            all_ready: true,
            objects: vec![],
            max_drift_age: None,
            regression: None,
            probes: vec![],
            order: false,
            complete: true,
            pruned: vec![],
            kept: vec![],
        }
    }

    fn timeline(rto_ms: Option<u64>, stuck: bool) -> Timeline {
        Timeline {
            recoveries: vec![Recovery {
                step: 0,
                disaster: "delete-namespace".into(),
                description: String::new(),
                started_ms: 1_000,
                rto_ms,
                timed_out: rto_ms.is_none(),
                budget_ms: None,
            }],
            objects: vec![ObjectTiming {
                object: ObjectRef::new("Kustomization", "flux-system", "apps"),
                first_ready_ms: None,
                flapped: None,
                ready: !stuck,
                ready_ms: if stuck { None } else { Some(5_000) },
                api_ready_ms: None,
                revision: None,
                not_ready: stuck.then(|| NotReady {
                    reason: "HealthCheckFailed".into(),
                    message: "Deployment/users/users-api: ImagePullBackOff".into(),
                }),
                depends_on: vec![],
                wave: None,
            }],
            phases: vec![PhaseSpan {
                name: "reconcile".into(),
                step: None,
                start_ms: 0,
                duration_ms: Some(30_000),
                ok: true,
                message: None,
            }],
            ..Timeline::default()
        }
    }

    #[test]
    fn a_rebuild_without_damage_is_held_against_the_rto() {
        let mut t = timeline(None, false);
        t.rebuild_ms = Some(95_000);
        let a = rebuild_within_budget(&expect(120), &t);
        assert!(a.passed, "{a:?}");
        assert_eq!(a.name, "rebuilt from Git within RTO 2m");
        let a = rebuild_within_budget(&expect(60), &t);
        assert!(!a.passed);
        assert!(
            a.message
                .contains("1m 35s after the run started, over the budget by 35.0s"),
            "{a:?}"
        );
        t.rebuild_ms = None;
        assert!(!rebuild_within_budget(&expect(60), &t).passed);
    }

    #[test]
    fn recovery_inside_the_budget_passes() {
        let a = evaluate(&expect(60), &timeline(Some(42_000), false), &[]);
        assert!(a.iter().all(|a| a.passed), "{a:?}");
        assert_eq!(a[0].message, "recovered in 42.0s (budget 1m)");
    }

    #[test]
    fn recovery_over_the_budget_fails_and_says_by_how_much() {
        let a = evaluate(&expect(30), &timeline(Some(42_000), false), &[]);
        assert!(!a[0].passed);
        assert_eq!(a[0].message, "recovered in 42.0s, over the budget of 30s by 12.0s");
    }

    #[test]
    fn a_recovery_stopped_early_says_so_rather_than_blaming_the_budget() {
        let mut t = timeline(None, true);
        t.stopped_early = Some("Pod/ledger/store-1 cannot come back".into());
        let a = evaluate(&expect(30), &t, &[]);
        assert!(!a[0].passed);
        assert!(
            a[0].message
                .starts_with("not recovered: stopped waiting before the budget of 30s, the outcome being certain: "),
            "{}",
            a[0].message
        );
    }

    #[test]
    fn a_failing_source_is_named_first_as_the_source() {
        let mut t = timeline(None, true);
        t.objects.push(ObjectTiming {
            object: ObjectRef::new("GitRepository", "flux-system", "flux-system"),
            first_ready_ms: None,
            flapped: None,
            ready: false,
            ready_ms: None,
            api_ready_ms: None,
            revision: None,
            not_ready: Some(NotReady {
                reason: "AuthenticationFailed".into(),
                message: "secrets \"flux-system\" not found".into(),
            }),
            depends_on: vec![],
            wave: None,
        });
        let a = evaluate(&expect(30), &t, &[]);
        assert!(
            a[0].message.starts_with(
                "not recovered within 30s: source failing: GitRepository/flux-system/flux-system (AuthenticationFailed"
            ),
            "{}",
            a[0].message
        );
        assert!(
            a[0].message.contains("; Kustomization/flux-system/apps"),
            "{}",
            a[0].message
        );
    }

    #[test]
    fn a_run_that_observed_nothing_is_not_all_ready() {
        let empty = crate::timeline::build(&[]);
        let a = evaluate(&expect(30), &empty, &[]);
        let all_ready = a.iter().find(|a| a.name == "all objects Ready").unwrap();
        assert!(!all_ready.passed);
        assert_eq!(all_ready.message, "no object of the fleet was ever observed");
    }

    #[test]
    fn a_stuck_object_fails_with_its_ready_message() {
        let a = evaluate(&expect(30), &timeline(None, true), &[]);
        assert!(!a[0].passed);
        assert!(
            a[0].message.contains(
                "Kustomization/flux-system/apps (HealthCheckFailed: Deployment/users/users-api: ImagePullBackOff)"
            ),
            "{}",
            a[0].message
        );
        let all_ready = a.iter().find(|a| a.name == "all objects Ready").unwrap();
        assert!(!all_ready.passed);
        assert!(
            all_ready.message.starts_with("1 of 1 not Ready"),
            "{}",
            all_ready.message
        );
    }

    #[test]
    fn phase_budgets_are_checked_and_missing_phases_fail() {
        let mut e = expect(60);
        e.phases
            .insert(PhaseName::Reconcile, Duration(std::time::Duration::from_secs(20)));
        e.phases
            .insert(PhaseName::ImagePulls, Duration(std::time::Duration::from_secs(20)));
        let a = evaluate(&e, &timeline(Some(1_000), false), &[]);
        let by_name = |n: &str| a.iter().find(|a| a.name.starts_with(n)).unwrap().clone();
        assert!(!by_name("phase reconcile").passed);
        assert_eq!(by_name("phase reconcile").message, "took 30.0s (started at 0ms)");
        assert_eq!(
            by_name("phase image-pulls").message,
            "phase image-pulls was never observed in this run"
        );
    }

    #[test]
    fn object_checks_become_assertions() {
        let check = ObjectCheckOutcome {
            description: "ConfigMap users/users-api-env /data/DB_HOST == users-db".into(),
            passed: false,
            message: "is \"localhost\"".into(),
        };
        let a = evaluate(&expect(60), &timeline(Some(1_000), false), &[check]);
        assert_eq!(a.last().map(|a| a.passed), Some(false));
    }

    #[test]
    fn drift_that_stays_too_long_or_is_reverted_when_expected_fails() {
        use crate::event::{FieldDrift, ObjectRef};
        use crate::timeline::{ActionTiming, DriftRecord, StepTiming};
        let mut e = expect(60);
        e.max_drift_age = Some(Duration(std::time::Duration::from_secs(60)));
        let step = |kind: &str, expects| StepTiming {
            step: 0,
            kind: kind.into(),
            description: String::new(),
            started_ms: 0,
            expects,
            budget_ms: None,
            commit: None,
            fetched_ms: None,
            recovered_ms: None,
            degraded_ms: None,
            degraded: vec![],
            timed_out: false,
            detection_ms: None,
            self_heal_ms: None,
            kept: None,
            actions: vec![],
        };
        let mut glass = step("break-glass", StepOutcome::Recovered);
        glass.actions.push(ActionTiming {
            action: "deadline 1m (owner bob)".into(),
            at_ms: 90_000,
            ok: false,
            by: "bob".into(),
            message: "resume came 90.0s after the pause".into(),
        });
        let t = Timeline {
            steps: vec![
                step("drift", StepOutcome::Nothing),
                step("bad-commit", StepOutcome::Degraded),
                glass,
            ],
            drift: vec![DriftRecord {
                step: 0,
                object: ObjectRef::new("Deployment", "users", "users-db"),
                fields: vec![FieldDrift {
                    field: "/spec/replicas".into(),
                    git: "1".into(),
                    live: "2".into(),
                }],
                manager: None,
                applied_ms: 0,
                detected_ms: None,
                reverted_ms: None,
                reverted_in_step: None,
                kept: false,
                age_ms: 120_000,
            }],
            ..Timeline::default()
        };
        let out = evaluate(&e, &t, &[]);
        let failed: Vec<&str> = out.iter().filter(|a| !a.passed).map(|a| a.name.as_str()).collect();
        assert!(
            failed.contains(&"step 1 drift: the engine left the expected drift alone"),
            "{failed:?}"
        );
        assert!(
            failed.contains(&"step 1 bad-commit: the app broke as expected"),
            "{failed:?}"
        );
        assert!(
            failed.contains(&"step 1 break-glass: deadline 1m (owner bob)"),
            "{failed:?}"
        );
        assert!(failed.contains(&"nothing left drifted"), "{failed:?}");
        assert!(failed.contains(&"no drift older than 1m"), "{failed:?}");
    }
}
