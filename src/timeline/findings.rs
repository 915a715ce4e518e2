//! Cause findings: the changes made since the apps were last healthy, named when an app
//! breaks; a git-revert that did not help rules the reverted commit out.

use super::objects::Objects;
use super::{DriftRecord, StepTiming};
use crate::event::{EventKind, FieldDrift, PodFate};
use crate::human::{ms, short_commit};

/// What the other concerns folded from the same event and before it.
pub(super) struct Seen<'a> {
    pub steps: &'a [StepTiming],
    /// The hand edit this event shows Git overwrote.
    pub overwritten: Option<&'a DriftRecord>,
    pub objects: &'a Objects,
}

/// A change to the cluster that could have broken an app.
#[derive(Debug, Clone)]
struct Change {
    step: usize,
    text: String,
    commit: Option<String>,
}

#[derive(Default)]
pub(super) struct Findings {
    /// Since the apps were last healthy.
    changes: Vec<Change>,
    found: Vec<String>,
}

impl Findings {
    pub(super) fn apply(&mut self, now: u64, kind: &EventKind, seen: Seen<'_>) {
        match kind {
            EventKind::DisasterStarted {
                step,
                disaster,
                description,
                ..
            } if matches!(
                disaster.as_str(),
                "delete-namespace" | "delete-cluster" | "kill-node" | "remove-node"
            ) =>
            {
                self.change(*step, description.clone(), None);
            }
            EventKind::DriftApplied {
                step, object, fields, ..
            } => {
                self.change(*step, format!("hand edit of {object} ({})", field_list(fields)), None);
            }
            EventKind::DriftReverted { step, object } => {
                if let Some(d) = seen.overwritten {
                    let text = format!(
                        "Git overwrote the hand edit of {object} ({}), live for {}",
                        field_list(&d.fields),
                        ms(now.saturating_sub(d.applied_ms))
                    );
                    self.change(*step, text, None);
                }
            }
            EventKind::Committed {
                step,
                commit,
                message,
                reverts,
            } => {
                let text = match reverts {
                    Some(r) => format!("revert of {} ({message:?})", short_commit(r)),
                    None => format!("commit {} {message:?}", short_commit(commit)),
                };
                self.change(*step, text, Some(commit.clone()));
            }
            EventKind::Degraded { step, objects } => {
                let what: Vec<String> = objects.iter().map(|(o, why)| format!("{o}: {why}")).collect();
                self.degraded(*step, &what, seen.steps);
            }
            // A pod nothing brings back is a finding whatever the verdict.
            EventKind::NodeRemoved { step, node, pods } => {
                for p in pods {
                    if let PodFate::Unrecoverable { reason } = &p.fate {
                        let of = p.workload.as_ref().map(|w| format!(" ({w})")).unwrap_or_default();
                        self.found.push(format!(
                            "step {} (remove-node {node}): {}{of} cannot come back: {reason}",
                            step + 1,
                            p.pod
                        ));
                    }
                }
            }
            // Healthy again: later breakage is judged against later changes.
            EventKind::Recovered { .. } => self.changes.clear(),
            EventKind::RecoveryTimedOut { step } => {
                self.degraded(*step, &seen.objects.not_ready_names(), seen.steps);
            }
            _ => {}
        }
    }

    pub(super) fn finish(self) -> Vec<String> {
        self.found
    }

    fn change(&mut self, step: usize, text: String, commit: Option<String>) {
        self.changes.push(Change { step, text, commit });
    }

    /// An app is broken after `step`: name the changes since it was last healthy, and
    /// when the step was a revert, rule the reverted commit out as the cause.
    fn degraded(&mut self, step: usize, what: &[String], steps: &[StepTiming]) {
        let Some(st) = steps.iter().rev().find(|s| s.step == step) else {
            return;
        };
        let what = if what.is_empty() {
            "an app".to_string()
        } else {
            what.join("; ")
        };
        if st.kind == "git-revert" {
            let reverted = self.changes.iter().rev().find(|c| c.step == step && c.commit.is_some());
            if let Some(c) = reverted {
                self.found.push(format!(
                    "step {} ({}): still broken after the {}: the reverted commit did not cause it",
                    step + 1,
                    st.kind,
                    c.text
                ));
            }
            return;
        }
        let changes: Vec<String> = self
            .changes
            .iter()
            .map(|c| format!("step {}: {}", c.step + 1, c.text))
            .collect();
        self.found.push(format!(
            "step {} ({}) left {what} broken; changes since it was last healthy: {}",
            step + 1,
            st.kind,
            if changes.is_empty() {
                "none recorded".to_string()
            } else {
                changes.join("; ")
            }
        ));
        if let Some(c) = self
            .changes
            .iter()
            .find(|c| c.step == step && c.text.starts_with("Git overwrote the hand edit"))
        {
            self.found.push(format!(
                "step {}: the app broke when {}: the hand-edited value was what kept it running, and Git still holds the broken one",
                step + 1,
                c.text
            ));
        }
    }
}

fn field_list(fields: &[FieldDrift]) -> String {
    fields
        .iter()
        .map(|f| format!("{} {} → {}", f.field, f.git, f.live))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use crate::event::EventKind;
    use crate::scenario::StepOutcome;
    use crate::timeline::build;
    use crate::timeline::testkit::{at, obj, run_started, seed_replay_events, started};

    #[test]
    fn a_break_names_the_changes_and_a_revert_that_did_not_help() {
        let t = build(&seed_replay_events());
        let findings = t.findings.join("\n");
        assert!(
            findings.contains("step 3 (resume) left Deployment/users/users-api: 0/1 available broken"),
            "{findings}"
        );
        assert!(
            findings.contains("step 2: commit c1c1c1c1c1c1 \"release 1.1\""),
            "{findings}"
        );
        assert!(
            findings
                .contains("step 3: the app broke when Git overwrote the hand edit of ConfigMap/users/users-api-env"),
            "{findings}"
        );
        assert!(
            findings.contains("step 4 (git-revert): still broken after the revert of c1c1c1c1c1c1"),
            "{findings}"
        );
    }

    #[test]
    fn a_timed_out_recovery_names_what_is_stuck_and_a_recovery_forgets_old_changes() {
        let t = build(&[
            run_started(0),
            started(1_000, 0, "delete-namespace", StepOutcome::Recovered),
            at(5_000, EventKind::Recovered { step: 0 }),
            started(6_000, 1, "kill-node", StepOutcome::Recovered),
            at(
                7_000,
                EventKind::ObjectNotReady {
                    object: obj("Kustomization", "apps"),
                    reason: "HealthCheckFailed".into(),
                    message: String::new(),
                },
            ),
            at(9_000, EventKind::RecoveryTimedOut { step: 1 }),
        ]);
        assert_eq!(
            t.findings,
            vec![
                "step 2 (kill-node) left Kustomization/flux-system/apps broken; changes since it was last healthy: step 2: kill-node"
            ]
        );
    }
}
