//! Phase spans: the ones drill drives (timed by its own events), the ones derived from
//! readiness and pulls at the end of each window, and one "rto" span per recovery.

use std::collections::BTreeMap;

use super::objects::Objects;
use super::{ImagePull, PhaseLabel, PhaseSpan, Recovery};
use crate::event::EventKind;
use crate::scenario::PhaseName;

/// Phases drill performs itself; what the engine does is measured from the end of the last one.
const DRIVEN_PHASES: [PhaseName; 5] = [
    PhaseName::ClusterCreate,
    PhaseName::ImagePreload,
    PhaseName::ImageMirror,
    PhaseName::EngineInstall,
    PhaseName::SecretBootstrap,
];

/// Phases that end when the last object of their kinds is Ready, in the order they are reported.
const READINESS_PHASES: [PhaseName; 3] = [PhaseName::SourceReady, PhaseName::Reconcile, PhaseName::WorkloadsReady];

/// The span from a disaster to everything Ready again; not budgeted as a phase (that is `expect.rto`).
const RTO_PHASE: &str = "rto";

// engine-specific: to move behind the Engine trait
/// The object kinds whose last Ready ends `phase`: Flux sources, Flux reconcilers and
/// Argo CD Applications, and the workloads they apply. None for the other phases.
pub fn kinds_ending(phase: PhaseName) -> &'static [&'static str] {
    match phase {
        // HelmCharts are left out: helm-controller creates them late, as part of a HelmRelease.
        PhaseName::SourceReady => &["GitRepository", "OCIRepository", "HelmRepository", "Bucket"],
        // The "reconcile" phase ends when the last is Ready.
        PhaseName::Reconcile => &["Kustomization", "HelmRelease", "Application"],
        PhaseName::WorkloadsReady => &["Deployment", "StatefulSet", "DaemonSet"],
        _ => &[],
    }
}

/// Whether drill drove this phase itself (as opposed to waiting on the engine).
pub(super) fn is_driven(label: &PhaseLabel) -> bool {
    label.name().is_some_and(|name| DRIVEN_PHASES.contains(&name))
}

#[derive(Default)]
pub(super) struct Phases {
    spans: Vec<PhaseSpan>,
    /// Started and not yet finished, by name: the index of their span.
    open: BTreeMap<PhaseLabel, usize>,
    /// End of the last phase drill drove itself (cluster-create, engine-install, ...) in this window.
    driven_end: Option<u64>,
    /// The step whose window this is.
    step: Option<usize>,
}

impl Phases {
    pub(super) fn apply(&mut self, now: u64, kind: &EventKind) {
        match kind {
            // The window of the ending step was closed before this event came here.
            EventKind::DisasterStarted { step, .. } => self.step = Some(*step),
            EventKind::PhaseStarted { phase } => {
                let name = PhaseLabel::from(phase.as_str());
                self.open.insert(name.clone(), self.spans.len());
                self.spans.push(PhaseSpan {
                    name,
                    step: self.step,
                    start_ms: now,
                    duration_ms: None,
                    ok: false,
                    message: None,
                });
            }
            EventKind::PhaseFinished { phase, ok, message } => {
                let name = PhaseLabel::from(phase.as_str());
                if let Some(idx) = self.open.remove(&name) {
                    let span = &mut self.spans[idx];
                    span.duration_ms = Some(now.saturating_sub(span.start_ms));
                    span.ok = *ok;
                    span.message = message.clone();
                    if is_driven(&name) {
                        self.driven_end = Some(now);
                    }
                }
            }
            _ => {}
        }
    }

    /// The spans so far (a closing window's critical path reads its driven phases).
    pub(super) fn spans(&self) -> &[PhaseSpan] {
        &self.spans
    }

    /// A new window measures the engine from its own driven phases.
    pub(super) fn open_window(&mut self) {
        self.driven_end = None;
    }

    /// Derives the observed phases of the window that is ending.
    pub(super) fn close_window(&mut self, window_start: u64, objects: &Objects, pulls: &[ImagePull]) {
        let from = self.driven_end.unwrap_or(window_start).max(window_start);
        for phase in READINESS_PHASES {
            if let Some(end) = objects.last_ready(kinds_ending(phase)).map(|ms| ms + window_start) {
                self.spans.push(PhaseSpan {
                    name: phase.into(),
                    step: self.step,
                    start_ms: from,
                    duration_ms: Some(end.saturating_sub(from)),
                    ok: true,
                    message: None,
                });
            }
        }
        let pulls: Vec<&ImagePull> = pulls.iter().filter(|p| p.needed()).collect();
        let first = pulls.iter().map(|p| p.start_ms).min();
        let last = pulls
            .iter()
            .filter_map(|p| p.pull_ms.map(|d| p.start_ms.saturating_add(d)))
            .max();
        if let (Some(first), Some(last)) = (first, last) {
            self.spans.push(PhaseSpan {
                name: PhaseName::ImagePulls.into(),
                step: self.step,
                start_ms: first,
                duration_ms: Some(last.saturating_sub(first)),
                ok: pulls.iter().all(|p| p.failed.is_none()),
                message: None,
            });
        }
    }

    /// Every span in start order, with one "rto" span per finished recovery.
    pub(super) fn finish(mut self, recoveries: &[Recovery]) -> Vec<PhaseSpan> {
        for r in recoveries {
            if let Some(rto) = r.rto_ms {
                self.spans.push(PhaseSpan {
                    name: RTO_PHASE.into(),
                    step: Some(r.step),
                    start_ms: r.started_ms,
                    duration_ms: Some(rto),
                    ok: true,
                    message: Some(format!("step {}: {}", r.step + 1, r.disaster)),
                });
            }
        }
        self.spans.sort_by_key(|p| p.start_ms);
        self.spans
    }
}

#[cfg(test)]
mod tests {
    use crate::timeline::build;
    use crate::timeline::testkit::{obj, phase, ready, rebuild_events, run_started};

    #[test]
    fn each_phase_names_the_step_whose_window_it_is_in() {
        let t = build(&rebuild_events());
        let steps: Vec<(String, Option<usize>)> = t.phases.iter().map(|p| (p.name.to_string(), p.step)).collect();
        assert!(steps.contains(&("cluster-create".into(), None)), "{steps:?}");
        assert!(steps.contains(&("cluster-create".into(), Some(0))), "{steps:?}");
        assert!(steps.contains(&("rto".into(), Some(0))), "{steps:?}");
        let reconciles: Vec<Option<usize>> = steps
            .iter()
            .filter(|(n, _)| n == "reconcile")
            .map(|(_, s)| *s)
            .collect();
        assert_eq!(reconciles, vec![Some(0)], "the rebuild's window ends at the disaster");
    }

    #[test]
    fn derived_phases_start_after_the_last_driven_phase() {
        let t = build(&rebuild_events());
        let find = |name: &str| {
            t.phases
                .iter()
                .filter(|p| p.name == name)
                .map(|p| (p.start_ms, p.duration_ms))
                .collect::<Vec<_>>()
        };
        assert_eq!(find("cluster-create"), vec![(0, Some(15_000)), (40_000, Some(15_000))]);
        assert_eq!(find("reconcile"), vec![(70_000, Some(20_000))]);
        assert_eq!(find("workloads-ready"), vec![(70_000, Some(25_000))]);
        assert_eq!(find("image-pulls"), vec![(71_000, Some(15_000))]);
        assert_eq!(find("rto"), vec![(40_000, Some(55_100))]);
        // The first window's source-ready (before the disaster) is kept too.
        assert_eq!(
            find("source-ready"),
            vec![(15_000, Some(15_000)), (70_000, Some(5_000))]
        );
    }

    #[test]
    fn source_ready_ends_with_the_sources_not_with_helm_charts() {
        let mut events = rebuild_events();
        let finished = events.pop().unwrap();
        events.push(ready(93_000, obj("HelmChart", "reports-reports")));
        events.push(finished);
        let t = build(&events);
        let last = t.phases.iter().rfind(|p| p.name == "source-ready").unwrap();
        assert_eq!((last.start_ms, last.duration_ms), (70_000, Some(5_000)), "{last:?}");
    }

    #[test]
    fn a_phase_that_never_finished_has_no_duration_and_other_names_are_kept() {
        let t = build(&[
            run_started(0),
            phase(0, "initial-sync", true),
            phase(1_000, "initial-sync", false),
            phase(2_000, "engine-install", true),
        ]);
        let spans: Vec<(String, Option<u64>)> = t.phases.iter().map(|p| (p.name.to_string(), p.duration_ms)).collect();
        assert_eq!(
            spans,
            vec![("initial-sync".into(), Some(1_000)), ("engine-install".into(), None)]
        );
        assert!(!t.phases[1].ok);
    }
}
