//! Drift records: each hand edit from the moment it was made to the moment Git
//! overwrote it (or the end of the run), and whether it was expected to stay.

use super::DriftRecord;
use crate::event::{EventKind, ObjectRef};

#[derive(Default)]
pub(super) struct Drifts {
    records: Vec<DriftRecord>,
}

impl Drifts {
    /// Returns the hand edit this event shows Git overwrote, for the cause findings.
    pub(super) fn apply(&mut self, now: u64, kind: &EventKind) -> Option<&DriftRecord> {
        match kind {
            EventKind::DriftApplied {
                step,
                object,
                fields,
                manager,
            } => self.records.push(DriftRecord {
                step: *step,
                object: object.clone(),
                fields: fields.clone(),
                manager: manager.clone(),
                applied_ms: now,
                detected_ms: None,
                reverted_ms: None,
                reverted_in_step: None,
                kept: false,
                age_ms: 0,
            }),
            EventKind::DriftDetected { object, .. } => {
                if let Some(d) = self.open(object) {
                    d.detected_ms.get_or_insert(now);
                }
            }
            EventKind::DriftReverted { step, object } => {
                let d = self.open(object)?;
                d.reverted_ms = Some(now);
                d.reverted_in_step = Some(*step);
                d.detected_ms.get_or_insert(now);
                return Some(d);
            }
            EventKind::DriftKept { object, .. } => {
                if let Some(d) = self.open(object) {
                    d.kept = true;
                }
            }
            _ => {}
        }
        None
    }

    /// Every record with its age: until Git overwrote it, or until `end` of the run.
    pub(super) fn finish(mut self, end: u64) -> Vec<DriftRecord> {
        for d in &mut self.records {
            d.age_ms = d.reverted_ms.unwrap_or(end).saturating_sub(d.applied_ms);
        }
        self.records
    }

    /// The latest hand edit of `object` that Git has not overwritten yet.
    fn open(&mut self, object: &ObjectRef) -> Option<&mut DriftRecord> {
        self.records
            .iter_mut()
            .rev()
            .find(|d| d.object == *object && d.reverted_ms.is_none())
    }
}

#[cfg(test)]
mod tests {
    use crate::event::{EventKind, ObjectRef};
    use crate::timeline::build;
    use crate::timeline::testkit::{at, seed_replay_events};

    #[test]
    fn a_hand_edit_is_timed_from_applied_to_overwritten() {
        let t = build(&seed_replay_events());
        let d = &t.drift[0];
        assert_eq!(
            (d.applied_ms, d.reverted_ms, d.reverted_in_step, d.age_ms),
            (10_100, Some(43_000), Some(2), 32_900)
        );
        assert!(d.kept, "kept while paused, then overwritten");
    }

    #[test]
    fn a_hand_edit_never_overwritten_ages_to_the_end_of_the_run() {
        let mut events = seed_replay_events();
        events.retain(|e| !matches!(e.kind, EventKind::DriftReverted { .. }));
        let cm = ObjectRef::new("ConfigMap", "users", "users-api-env");
        events.push(at(
            50_000,
            EventKind::DriftDetected {
                step: 2,
                object: cm,
                by: "flux".into(),
            },
        ));
        let t = build(&events);
        let d = &t.drift[0];
        assert_eq!((d.detected_ms, d.reverted_ms), (Some(50_000), None));
        assert_eq!(d.age_ms, t.finished_ms - 10_100);
    }
}
