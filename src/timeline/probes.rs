//! Availability probes: each probe's outages (first attempt not served to the next one
//! served), the step each began in, and its attempts. Probe events are stamped when
//! their attempt came back, which can be earlier than an event recorded just before
//! them, so they are put in time order before folding.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::EventKind;

/// One probe over the whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProbeTiming {
    pub name: String,
    /// `namespace/service:port/path`.
    pub target: String,
    /// Run time probing began (after the first sync).
    pub started_ms: u64,
    pub attempts: u64,
    /// Attempts the Service answered 2xx/3xx in time.
    pub served: u64,
    /// Every stretch it was not served, in order.
    pub outages: Vec<Outage>,
    /// Whether its last attempt was served: users are served again.
    pub served_at_end: bool,
    /// Whether any attempt was ever served.
    pub ever_served: bool,
}

impl ProbeTiming {
    /// Served attempts over all attempts, in percent (None before any attempt).
    pub fn success_percent(&self) -> Option<f64> {
        (self.attempts > 0).then(|| self.served as f64 * 100.0 / self.attempts as f64)
    }

    /// The total time not served.
    pub fn downtime_ms(&self) -> u64 {
        self.outages.iter().map(|o| o.duration_ms).sum()
    }

    /// The longest outage.
    pub fn longest(&self) -> Option<&Outage> {
        self.outages.iter().max_by_key(|o| o.duration_ms)
    }
}

/// A stretch of time a probe was not served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Outage {
    /// The step (0-based) whose window it began in; None before the first step.
    pub step: Option<usize>,
    pub from_ms: u64,
    /// When it was served again; None: not by the end of the run.
    pub to_ms: Option<u64>,
    /// To `to_ms`, or to the run's end when it never ended.
    pub duration_ms: u64,
    /// Why its first attempt was not served.
    pub reason: String,
}

#[derive(Default)]
pub(super) struct Probes {
    started: BTreeMap<String, (String, u64)>,
    totals: BTreeMap<String, (u64, u64)>,
    /// (time, probe, None when served / Some(reason) when not).
    transitions: Vec<(u64, String, Option<String>)>,
    step_starts: Vec<(u64, usize)>,
}

impl Probes {
    pub(super) fn apply(&mut self, now: u64, kind: &EventKind) {
        match kind {
            EventKind::ProbeStarted { probe, target } => {
                self.started.insert(probe.clone(), (target.clone(), now));
            }
            EventKind::ProbeDown { probe, detail } => {
                self.transitions.push((now, probe.clone(), Some(detail.clone())));
            }
            EventKind::ProbeUp { probe } => self.transitions.push((now, probe.clone(), None)),
            EventKind::ProbeTotals {
                probe,
                attempts,
                served,
            } => {
                self.totals.insert(probe.clone(), (*attempts, *served));
            }
            EventKind::DisasterStarted { step, .. } => self.step_starts.push((now, *step)),
            _ => {}
        }
    }

    pub(super) fn finish(mut self, end_ms: u64) -> Vec<ProbeTiming> {
        self.transitions.sort_by_key(|(at, ..)| *at);
        let step_at = |ms: u64| {
            self.step_starts
                .iter()
                .filter(|(start, _)| *start <= ms)
                .max_by_key(|(start, _)| *start)
                .map(|(_, step)| *step)
        };
        let mut out = Vec::new();
        for (name, (target, started_ms)) in &self.started {
            let (attempts, served) = self.totals.get(name).copied().unwrap_or_default();
            let mut probe = ProbeTiming {
                name: name.clone(),
                target: target.clone(),
                started_ms: *started_ms,
                attempts,
                served,
                outages: Vec::new(),
                served_at_end: false,
                ever_served: false,
            };
            for (at, _, down) in self.transitions.iter().filter(|(_, p, _)| p == name) {
                let open = probe.outages.last_mut().filter(|o| o.to_ms.is_none());
                match (down, open) {
                    (Some(reason), None) => probe.outages.push(Outage {
                        step: step_at(*at),
                        from_ms: *at,
                        to_ms: None,
                        duration_ms: end_ms.saturating_sub(*at),
                        reason: reason.clone(),
                    }),
                    (None, Some(outage)) => {
                        outage.to_ms = Some(*at);
                        outage.duration_ms = at.saturating_sub(outage.from_ms);
                    }
                    // Down while down, or served while served: no change.
                    _ => {}
                }
                probe.served_at_end = down.is_none();
                probe.ever_served |= down.is_none();
            }
            out.push(probe);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fold(events: &[(u64, EventKind)], end: u64) -> Vec<ProbeTiming> {
        let mut p = Probes::default();
        for (at, kind) in events {
            p.apply(*at, kind);
        }
        p.finish(end)
    }

    fn started(at: u64) -> (u64, EventKind) {
        let kind = EventKind::ProbeStarted {
            probe: "api".into(),
            target: "users/users-api:8080/readyz".into(),
        };
        (at, kind)
    }
    fn up(at: u64) -> (u64, EventKind) {
        (at, EventKind::ProbeUp { probe: "api".into() })
    }
    fn down(at: u64, why: &str) -> (u64, EventKind) {
        let kind = EventKind::ProbeDown {
            probe: "api".into(),
            detail: why.into(),
        };
        (at, kind)
    }
    fn step(at: u64, step: usize) -> (u64, EventKind) {
        let kind = EventKind::DisasterStarted {
            step,
            disaster: "delete-namespace".into(),
            description: String::new(),
            expects: crate::event::StepOutcome::Recovered,
            budget_ms: None,
        };
        (at, kind)
    }

    #[test]
    fn an_outage_runs_from_the_first_failure_to_the_next_answer_in_its_step() {
        let totals = (
            99_000,
            EventKind::ProbeTotals {
                probe: "api".into(),
                attempts: 90,
                served: 60,
            },
        );
        // The down event was recorded after the step started but stamped before the
        // next one: time order, not record order, decides.
        let events = [
            started(1_000),
            up(1_100),
            step(10_000, 0),
            down(12_000, "HTTP 503: no endpoints available"),
            step(50_000, 1),
            up(45_000),
            down(52_000, "the cluster was deleted"),
            totals,
        ];
        let t = fold(&events, 100_000);
        assert_eq!(t.len(), 1);
        let p = &t[0];
        assert_eq!(p.outages.len(), 2);
        assert_eq!(
            p.outages[0],
            Outage {
                step: Some(0),
                from_ms: 12_000,
                to_ms: Some(45_000),
                duration_ms: 33_000,
                reason: "HTTP 503: no endpoints available".into()
            }
        );
        let last = &p.outages[1];
        assert_eq!((last.step, last.to_ms, last.duration_ms), (Some(1), None, 48_000));
        assert!(!p.served_at_end && p.ever_served);
        assert_eq!(p.downtime_ms(), 81_000);
        assert_eq!(p.longest().map(|o| o.from_ms), Some(52_000));
        assert_eq!((p.attempts, p.served), (90, 60));
        assert!((p.success_percent().unwrap() - 66.666).abs() < 0.01);
    }

    #[test]
    fn a_probe_never_served_has_one_open_outage_before_any_step() {
        let t = fold(
            &[started(1_000), down(1_500, "HTTP 404"), down(2_500, "HTTP 404")],
            9_500,
        );
        let p = &t[0];
        assert_eq!(p.outages.len(), 1);
        assert_eq!((p.outages[0].step, p.outages[0].duration_ms), (None, 8_000));
        assert!(!p.ever_served && !p.served_at_end);
        assert_eq!(p.success_percent(), None, "no totals: no attempts known");
    }
}
