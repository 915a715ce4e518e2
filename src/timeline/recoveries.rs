//! Recoveries: for each step expected to recover, the time from the disaster to
//! everything Ready again (its RTO), or that it timed out.

use super::{Recovery, Window};
use crate::event::EventKind;
use crate::scenario::StepOutcome;

#[derive(Default)]
pub(super) struct Recoveries {
    list: Vec<Recovery>,
}

impl Recoveries {
    pub(super) fn apply(&mut self, now: u64, kind: &EventKind, window: Window) {
        match kind {
            EventKind::DisasterStarted {
                step,
                disaster,
                description,
                expects: StepOutcome::Recovered,
                budget_ms,
            } => self.list.push(Recovery {
                step: *step,
                disaster: disaster.clone(),
                description: description.clone(),
                started_ms: now,
                rto_ms: None,
                timed_out: false,
                budget_ms: *budget_ms,
            }),
            // The disaster opened the current window: the RTO is measured from its start.
            EventKind::Recovered { step } => {
                if let Some(r) = self.find(*step) {
                    r.rto_ms = Some(now.saturating_sub(window.start_ms));
                }
            }
            EventKind::RecoveryTimedOut { step } => {
                if let Some(r) = self.find(*step) {
                    r.timed_out = true;
                }
            }
            _ => {}
        }
    }

    pub(super) fn finish(self) -> Vec<Recovery> {
        self.list
    }

    fn find(&mut self, step: usize) -> Option<&mut Recovery> {
        self.list.iter_mut().find(|r| r.step == step)
    }
}

#[cfg(test)]
mod tests {
    use crate::event::EventKind;
    use crate::scenario::StepOutcome;
    use crate::timeline::build;
    use crate::timeline::testkit::{at, rebuild_events, run_started, seed_replay_events, started};

    #[test]
    fn rto_is_measured_from_the_disaster_to_recovery() {
        let t = build(&rebuild_events());
        assert_eq!(t.rto_ms(), Some(55_100));
        assert_eq!(t.recoveries.len(), 1);
        assert_eq!(t.finished_ms, 95_200);
    }

    #[test]
    fn only_steps_expected_to_recover_are_recoveries() {
        let t = build(&seed_replay_events());
        assert!(t.recoveries.is_empty(), "no step here expects a recovery");
    }

    #[test]
    fn a_recovery_that_timed_out_has_no_rto() {
        let t = build(&[
            run_started(0),
            started(1_000, 0, "kill-node", StepOutcome::Recovered),
            at(61_000, EventKind::RecoveryTimedOut { step: 0 }),
        ]);
        assert_eq!((t.recoveries[0].rto_ms, t.recoveries[0].timed_out), (None, true));
        assert_eq!(t.rto_ms(), None);
    }
}
