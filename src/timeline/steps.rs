//! Step timings: what each step did (commit, fetch, drift detected and healed, breakage,
//! actions) and when, from the step's start; and those figures as one phrase.

use super::{ActionTiming, StepTiming};
use crate::event::EventKind;
use crate::human::{ms, short_commit};

#[derive(Default)]
pub(super) struct Steps {
    list: Vec<StepTiming>,
}

impl Steps {
    pub(super) fn apply(&mut self, now: u64, kind: &EventKind) {
        match kind {
            EventKind::DisasterStarted {
                step,
                disaster,
                description,
                expects,
                budget_ms,
            } => self.list.push(StepTiming {
                step: *step,
                kind: disaster.clone(),
                description: description.clone(),
                started_ms: now,
                expects: *expects,
                budget_ms: *budget_ms,
                commit: None,
                fetched_ms: None,
                recovered_ms: None,
                degraded_ms: None,
                degraded: Vec::new(),
                timed_out: false,
                detection_ms: None,
                self_heal_ms: None,
                kept: None,
                actions: Vec::new(),
            }),
            EventKind::DriftDetected { step, .. } => self.at(*step, now, |st, since| {
                st.detection_ms.get_or_insert(since);
            }),
            EventKind::DriftReverted { step, .. } => self.at(*step, now, |st, since| {
                st.self_heal_ms.get_or_insert(since);
                st.detection_ms.get_or_insert(since);
            }),
            EventKind::DriftKept { step, .. } => self.at(*step, now, |st, _| st.kept = Some(true)),
            EventKind::Committed { step, commit, .. } => self.at(*step, now, |st, _| st.commit = Some(commit.clone())),
            EventKind::RevisionFetched { step, .. } => self.at(*step, now, |st, since| {
                st.fetched_ms.get_or_insert(since);
            }),
            EventKind::Degraded { step, objects } => self.at(*step, now, |st, since| {
                st.degraded_ms = Some(since);
                st.degraded = objects.iter().map(|(o, why)| format!("{o}: {why}")).collect();
            }),
            EventKind::DegradeTimedOut { step } | EventKind::RecoveryTimedOut { step } => {
                self.at(*step, now, |st, _| st.timed_out = true)
            }
            EventKind::Action {
                step,
                action,
                ok,
                by,
                message,
            } => self.at(*step, now, |st, since| {
                st.actions.push(ActionTiming {
                    action: action.clone(),
                    at_ms: since,
                    ok: *ok,
                    by: by.clone(),
                    message: message.clone(),
                })
            }),
            EventKind::Recovered { step } => self.at(*step, now, |st, since| st.recovered_ms = Some(since)),
            _ => {}
        }
    }

    pub(super) fn list(&self) -> &[StepTiming] {
        &self.list
    }

    pub(super) fn finish(self) -> Vec<StepTiming> {
        self.list
    }

    /// Updates the latest step numbered `step` (if it started), given the time since its start.
    fn at(&mut self, step: usize, now: u64, update: impl FnOnce(&mut StepTiming, u64)) {
        if let Some(st) = self.list.iter_mut().rev().find(|s| s.step == step) {
            let since = now.saturating_sub(st.started_ms);
            update(st, since);
        }
    }
}

impl StepTiming {
    /// The step's figures as one phrase, e.g. "fetched 4.1s · degraded 25.0s".
    pub fn figures(&self) -> String {
        let mut parts = Vec::new();
        if let Some(c) = &self.commit {
            parts.push(format!("commit {}", short_commit(c)));
        }
        let figures = [
            ("fetched", self.fetched_ms),
            ("drift detected", self.detection_ms),
            ("self-healed", self.self_heal_ms),
            ("degraded", self.degraded_ms),
            (
                if self.kind == "git-revert" {
                    "revert → Healthy"
                } else {
                    "recovered"
                },
                self.recovered_ms,
            ),
        ];
        parts.extend(
            figures
                .iter()
                .filter_map(|(name, v)| v.map(|v| format!("{name} {}", ms(v)))),
        );
        if self.kept == Some(true) {
            parts.push("hand edit kept".into());
        }
        if self.timed_out {
            parts.push("timed out".into());
        }
        for a in &self.actions {
            parts.push(format!(
                "{}{} at {}",
                if a.ok { "" } else { "✗ " },
                a.action,
                ms(a.at_ms)
            ));
        }
        parts.join(" · ")
    }
}

#[cfg(test)]
mod tests {
    use crate::event::EventKind;
    use crate::scenario::StepOutcome;
    use crate::timeline::build;
    use crate::timeline::testkit::{at, run_started, seed_replay_events, started};

    #[test]
    fn quiet_steps_get_their_figures_from_the_steps_start() {
        let t = build(&seed_replay_events());
        let resume = &t.steps[2];
        assert_eq!(resume.fetched_ms, Some(4_000));
        assert_eq!(resume.degraded_ms, Some(29_000));
        assert_eq!(resume.self_heal_ms, Some(2_000));
        assert_eq!(t.steps[0].kept, Some(true));
        assert!(resume.figures().contains("degraded 29.0s"), "{}", resume.figures());
    }

    #[test]
    fn figures_name_the_commit_the_revert_and_the_actions() {
        let t = build(&[
            run_started(0),
            started(1_000, 0, "git-revert", StepOutcome::Recovered),
            at(
                1_500,
                EventKind::Committed {
                    step: 0,
                    commit: "c2".repeat(20),
                    message: "Revert".into(),
                    reverts: Some("c1".repeat(20)),
                },
            ),
            at(
                2_000,
                EventKind::Action {
                    step: 0,
                    action: "pause".into(),
                    ok: false,
                    by: "bob".into(),
                    message: String::new(),
                },
            ),
            at(31_000, EventKind::Recovered { step: 0 }),
        ]);
        assert_eq!(
            t.steps[0].figures(),
            "commit c2c2c2c2c2c2 · revert → Healthy 30.0s · ✗ pause at 1.0s"
        );
    }
}
