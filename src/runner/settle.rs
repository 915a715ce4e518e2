//! The fleet settles before the verdict. "All objects Ready" is judged once the steps are
//! over. A step that waits for nothing (drift kept, a suspend) can end while the engine is in
//! a routine reconcile: Flux marks a Kustomization DependencyNotReady when its dependency
//! is mid-reconcile, and keeps it so until its next retry. Judging that instant would fail a
//! fleet that is fine. So objects that exist and are not Ready are waited for, up to the
//! scenario's RTO. A run that already failed a wait, or ended degraded on purpose, is
//! judged at once.

use std::time::Duration;

use tokio::time::Instant;

use super::Run;
use crate::event::{DrillEvent, ObjectRef, StepOutcome};

/// Whether the verdict waits for the fleet: `all objects Ready` is asserted, the last step
/// is not meant to leave the fleet degraded, and no wait has failed already (its report
/// would only be delayed).
fn settles_before_verdict(all_ready_asserted: bool, last_outcome: Option<StepOutcome>, events: &[DrillEvent]) -> bool {
    let failed = events.iter().any(|e| e.kind.is_failed_wait());
    all_ready_asserted && last_outcome != Some(StepOutcome::Degraded) && !failed
}

impl Run<'_> {
    /// Objects drill follows that exist and are not Ready, except those the engine will
    /// not touch (suspended): only these can still become Ready by waiting.
    fn settling(&self) -> Vec<ObjectRef> {
        self.state
            .not_ready()
            .into_iter()
            .filter(|r| self.state.get(r).is_some_and(|o| o.present && !o.suspended))
            .collect()
    }

    /// Waits, up to the scenario's RTO, for what is not Ready when the steps are over,
    /// saying what it waits for and how long it took.
    pub(super) async fn settle_before_verdict(&mut self) {
        let scenario = &self.plan.scenario;
        let last = scenario.disasters.last().map(|d| d.outcome());
        if !settles_before_verdict(scenario.expect.all_ready, last, &self.events) || self.observer.is_none() {
            return;
        }
        let _ = self.drain_updates();
        let waiting = self.settling();
        if waiting.is_empty() {
            return;
        }
        let rto: Duration = scenario.expect.rto.0;
        let names: Vec<String> = waiting.iter().take(3).map(ToString::to_string).collect();
        self.note(&format!(
            "{} object(s) not Ready once the steps were over ({}): waiting up to the RTO of {} before the verdict",
            waiting.len(),
            names.join(", "),
            humantime::format_duration(rto)
        ));
        let started = Instant::now();
        if self.wait_until(started + rto, |run| run.settling().is_empty()).await {
            let took = crate::human::ms(started.elapsed().as_millis() as u64);
            self.note(&format!("the fleet settled {took} after the last step"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventKind;

    fn at(ms: u64, kind: EventKind) -> DrillEvent {
        DrillEvent {
            at: jiff::Timestamp::UNIX_EPOCH,
            elapsed_ms: ms,
            kind,
        }
    }

    #[test]
    fn a_quiet_last_step_settles_but_a_failed_wait_or_a_degraded_end_is_judged_at_once() {
        let none: Vec<DrillEvent> = Vec::new();
        assert!(settles_before_verdict(true, Some(StepOutcome::Nothing), &none));
        assert!(settles_before_verdict(true, Some(StepOutcome::Recovered), &none));
        assert!(settles_before_verdict(true, None, &none), "a rebuild without steps");
        assert!(
            !settles_before_verdict(false, Some(StepOutcome::Nothing), &none),
            "all-ready not asserted"
        );
        assert!(!settles_before_verdict(true, Some(StepOutcome::Degraded), &none));
        for failed in [
            EventKind::RecoveryTimedOut { step: 0 },
            EventKind::DegradeTimedOut { step: 0 },
            EventKind::StoppedEarly { reason: "x".into() },
        ] {
            let events = vec![at(10, failed)];
            assert!(!settles_before_verdict(true, Some(StepOutcome::Nothing), &events));
        }
    }
}
