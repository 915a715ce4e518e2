//! The timeline: a pure fold of [`DrillEvent`]s into phases, recoveries, object and
//! image timings, and the critical path. No I/O, no clocks: tests feed event lists.
//!
//! Time windows: the run starts window 0; each `DisasterStarted` opens a new window
//! and forgets readiness seen before it, so every object's `ready_ms` is measured
//! from the start of the last window (the last disaster, or the run start).
//!
//! This file holds the public types and the fold that hands each event to the folds
//! of the single concerns in the submodules.

mod critical_path;
mod drift;
mod findings;
mod images;
mod objects;
mod order;
mod phases;
mod probes;
mod prunes;
mod recoveries;
mod steps;
#[cfg(test)]
pub(crate) mod testkit;

use std::cmp::Ordering;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

pub use self::phases::kinds_ending;
pub use self::probes::{Outage, ProbeTiming};
pub use self::prunes::PruneRecord;
use crate::event::{DrillEvent, EventKind, FieldDrift, ObjectRef};
use crate::scenario::{PhaseName, StepOutcome};

/// The phase of window 0 that ends when every object is Ready for the first time.
pub const INITIAL_SYNC: &str = "initial-sync";

/// A phase's name on the timeline: a [`PhaseName`] when the phase can carry a budget,
/// else a name drill only reports ("initial-sync", "rto", or one from events recorded
/// by another version). Serialized as the bare name; equal when the names are.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum PhaseLabel {
    Named(PhaseName),
    Other(String),
}

impl PhaseLabel {
    pub fn as_str(&self) -> &str {
        match self {
            PhaseLabel::Named(name) => name.as_str(),
            PhaseLabel::Other(name) => name,
        }
    }

    /// The budgetable phase this is, if it is one.
    pub fn name(&self) -> Option<PhaseName> {
        match self {
            PhaseLabel::Named(name) => Some(*name),
            PhaseLabel::Other(_) => None,
        }
    }
}

impl From<PhaseName> for PhaseLabel {
    fn from(name: PhaseName) -> Self {
        PhaseLabel::Named(name)
    }
}

impl From<&str> for PhaseLabel {
    fn from(name: &str) -> Self {
        match PhaseName::ALL.into_iter().find(|p| p.as_str() == name) {
            Some(known) => PhaseLabel::Named(known),
            None => PhaseLabel::Other(name.to_string()),
        }
    }
}

impl From<String> for PhaseLabel {
    fn from(name: String) -> Self {
        PhaseLabel::from(name.as_str())
    }
}

impl From<PhaseLabel> for String {
    fn from(label: PhaseLabel) -> Self {
        label.as_str().to_string()
    }
}

impl std::fmt::Display for PhaseLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

// By name, so that `Other("reconcile")` built by hand still equals `Named(Reconcile)`.
impl PartialEq for PhaseLabel {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for PhaseLabel {}

impl PartialOrd for PhaseLabel {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PhaseLabel {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialEq<PhaseName> for PhaseLabel {
    fn eq(&self, other: &PhaseName) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<&str> for PhaseLabel {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseSpan {
    pub name: PhaseLabel,
    /// The step (0-based) whose window it belongs to; None before the first step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
    pub start_ms: u64,
    /// None when the phase never finished (the run failed inside it).
    pub duration_ms: Option<u64>,
    pub ok: bool,
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recovery {
    pub step: usize,
    pub disaster: String,
    pub description: String,
    pub started_ms: u64,
    /// Disaster start to everything Ready again; None if it never recovered.
    pub rto_ms: Option<u64>,
    pub timed_out: bool,
    /// The step's own budget, when it overrides the scenario's RTO.
    pub budget_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObjectTiming {
    #[serde(flatten)]
    pub object: ObjectRef,
    /// Ready at the end of the run.
    pub ready: bool,
    /// From the start of the last window to its last transition to Ready; None when it
    /// did not transition in that window (unaffected, or never Ready).
    pub ready_ms: Option<u64>,
    /// The same, to its first transition to Ready in that window: earlier than
    /// `ready_ms` when the object fell back to not Ready in between.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_ready_ms: Option<u64>,
    /// It fell back to not Ready while objects that depend on it were Ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flapped: Option<Flap>,
    /// The same, from the API server's lastTransitionTime (clock of the cluster).
    pub api_ready_ms: Option<i64>,
    pub revision: Option<String>,
    /// Why it is not Ready, when it is not.
    pub not_ready: Option<NotReady>,
    #[serde(skip)]
    pub depends_on: Vec<ObjectRef>,
    /// Argo CD sync wave.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wave: Option<i64>,
}

/// The critical path of one window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WindowPath {
    /// The step (0-based) that opened the window; None for the initial rebuild.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
    pub path: Vec<String>,
}

/// A dependency that went un-Ready again after what depends on it was Ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Flap {
    /// From the window's start, when it fell back (the first time).
    pub at_ms: u64,
    pub reason: String,
    /// The dependents that were Ready at that moment.
    pub dependents: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotReady {
    pub reason: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImagePull {
    pub image: String,
    pub node: String,
    /// The step whose window it is in; None for the initial rebuild.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
    /// The first pod's Pulling (or the first sight of the image) in the window.
    pub start_ms: u64,
    /// The real pull: the longest the kubelet reported for any pod (the others queued
    /// behind it), else the time from the first Pulling to a Pulled.
    pub pull_ms: Option<u64>,
    pub size_bytes: Option<u64>,
    /// The last error, while no pull of it on the node has succeeded.
    pub failed: Option<String>,
    /// Pods whose pull of it completed.
    pub pulled: u32,
    /// Pods that found it already on the node.
    pub present: u32,
}

impl ImagePull {
    /// Whether a pull was needed (or tried): not only pods that found it present.
    pub fn needed(&self) -> bool {
        pull_needed(self.pulled, self.present, self.failed.is_some())
    }
}

/// A row of pulls is a pull (or a try) unless every pod only found the image present.
pub fn pull_needed(pulled: u32, present: u32, failed: bool) -> bool {
    pulled > 0 || failed || present == 0
}

/// What one step did and how long each part took (all figures from the step's start).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StepTiming {
    pub step: usize,
    pub kind: String,
    pub description: String,
    pub started_ms: u64,
    pub expects: StepOutcome,
    pub budget_ms: Option<u64>,
    /// Commit steps: the commit made, and when the engine fetched it.
    pub commit: Option<String>,
    pub fetched_ms: Option<u64>,
    /// Everything Ready again (recovery steps; for git-revert this is the revert time).
    pub recovered_ms: Option<u64>,
    /// The app broke (bad-commit and other steps expected to degrade).
    pub degraded_ms: Option<u64>,
    pub degraded: Vec<String>,
    /// The step's wait ended without its outcome.
    pub timed_out: bool,
    /// Drift steps: engine reported the drift; live equals Git again.
    pub detection_ms: Option<u64>,
    pub self_heal_ms: Option<u64>,
    /// Drift steps with `expect: kept`: the hand edit survived the engine's chance.
    pub kept: Option<bool>,
    pub actions: Vec<ActionTiming>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ActionTiming {
    pub action: String,
    /// From the step's start.
    pub at_ms: u64,
    pub ok: bool,
    pub by: String,
    pub message: String,
}

/// One hand edit, from the moment it was made to the moment Git overwrote it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DriftRecord {
    pub step: usize,
    #[serde(flatten)]
    pub object: ObjectRef,
    pub fields: Vec<FieldDrift>,
    pub manager: Option<ObjectRef>,
    pub applied_ms: u64,
    pub detected_ms: Option<u64>,
    /// When Git's value was back, and in which step.
    pub reverted_ms: Option<u64>,
    pub reverted_in_step: Option<usize>,
    /// The drift was expected to stay (an ignore rule or paused self-heal) and did.
    pub kept: bool,
    /// How long the live difference stayed (to the end of the run if never reverted).
    pub age_ms: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Timeline {
    pub scenario: String,
    pub run_id: String,
    pub started_at: Option<Timestamp>,
    pub finished_ms: u64,
    /// Run start to the end of a successful initial sync: how long the rebuild from Git
    /// took (cluster, engine, secrets and every object Ready). None if it never synced.
    pub rebuild_ms: Option<u64>,
    /// Why a wait ended before its deadline, its failure being already certain.
    pub stopped_early: Option<String>,
    pub phases: Vec<PhaseSpan>,
    pub recoveries: Vec<Recovery>,
    pub objects: Vec<ObjectTiming>,
    pub images: Vec<ImagePull>,
    pub critical_path: Vec<String>,
    /// The critical path of every window: the initial rebuild's (step None), then each step's.
    pub critical_paths: Vec<WindowPath>,
    pub warnings: Vec<String>,
    pub steps: Vec<StepTiming>,
    pub drift: Vec<DriftRecord>,
    /// What the events say about causes: which change broke an app, which revert did not help.
    pub findings: Vec<String>,
    /// What the run ran with.
    pub versions: crate::event::Versions,
    /// Failure evidence saved beside the report (paths under its folder).
    pub evidence: Vec<String>,
    /// Availability probes: outages per step, attempts.
    pub probes: Vec<ProbeTiming>,
    /// Objects that became Ready before what they must follow (also findings), and how
    /// many such pairs were judged.
    pub order_breaks: Vec<String>,
    pub order_checked: u64,
    /// What prune steps found pruned or left.
    pub prunes: Vec<PruneRecord>,
}

impl Timeline {
    /// The longest recovery: what the RTO budget is held against.
    pub fn rto_ms(&self) -> Option<u64> {
        self.recoveries.iter().filter_map(|r| r.rto_ms).max()
    }

    pub fn not_ready(&self) -> impl Iterator<Item = &ObjectTiming> {
        self.objects.iter().filter(|o| !o.ready)
    }
}

/// Folds a run's events into its timeline.
pub fn build(events: &[DrillEvent]) -> Timeline {
    let mut f = Fold::default();
    for ev in events {
        f.apply(ev);
    }
    f.finish()
}

/// The window the fold is in: what readiness and derived phases are measured from.
#[derive(Debug, Clone, Copy, Default)]
struct Window {
    start_ms: u64,
    /// Wall-clock start of the run, to turn API-server timestamps into run time.
    run_started_at: Option<Timestamp>,
}

#[derive(Default)]
struct Fold {
    scenario: String,
    run_id: String,
    finished_ms: u64,
    rebuild_ms: Option<u64>,
    stopped_early: Option<String>,
    warnings: Vec<String>,
    window: Window,
    phases: phases::Phases,
    recoveries: recoveries::Recoveries,
    steps: steps::Steps,
    drift: drift::Drifts,
    objects: objects::Objects,
    images: images::Images,
    findings: findings::Findings,
    /// The step whose window is open; the paths of the windows already closed.
    window_step: Option<usize>,
    critical_paths: Vec<WindowPath>,
    versions: crate::event::Versions,
    evidence: Vec<String>,
    probes: probes::Probes,
    prunes: prunes::Prunes,
}

impl Fold {
    /// Every concern sees every event; each picks out the ones it folds.
    fn apply(&mut self, ev: &DrillEvent) {
        let now = ev.elapsed_ms;
        self.finished_ms = self.finished_ms.max(now);
        match &ev.kind {
            EventKind::RunStarted { scenario, run_id } => {
                self.scenario = scenario.clone();
                self.run_id = run_id.clone();
                self.window.run_started_at = Some(ev.at);
            }
            EventKind::Versions(v) => self.versions.merge(v),
            EventKind::EvidenceSaved { files } => self.evidence.extend(files.iter().cloned()),
            EventKind::DisasterStarted { step, .. } => self.open_window(now, *step),
            EventKind::Warning { message } => self.warnings.push(message.clone()),
            EventKind::StoppedEarly { reason } => {
                self.stopped_early.get_or_insert_with(|| reason.clone());
            }
            EventKind::PhaseFinished { phase, ok: true, .. } if phase == INITIAL_SYNC => {
                self.rebuild_ms = Some(now);
            }
            _ => {}
        }
        self.phases.apply(now, &ev.kind);
        self.recoveries.apply(now, &ev.kind, self.window);
        self.steps.apply(now, &ev.kind);
        let overwritten = self.drift.apply(now, &ev.kind);
        self.objects.apply(now, &ev.kind, self.window);
        self.images.apply(now, &ev.kind);
        self.probes.apply(now, &ev.kind);
        self.prunes.apply(&ev.kind);
        let seen = findings::Seen {
            steps: self.steps.list(),
            overwritten,
            objects: &self.objects,
        };
        self.findings.apply(now, &ev.kind, seen);
    }

    /// A disaster starts: the ending window gets its derived phases before its readiness is forgotten.
    fn open_window(&mut self, now: u64, step: usize) {
        self.phases
            .close_window(self.window.start_ms, &self.objects, self.images.window_pulls());
        let path = critical_path::critical_path(self.phases.spans(), self.objects.by_ref(), self.window.start_ms);
        self.critical_paths.push(WindowPath {
            step: self.window_step,
            path,
        });
        self.window_step = Some(step);
        self.window.start_ms = now;
        self.phases.open_window();
        self.objects.open_window();
        self.images.open_window(step);
    }

    fn finish(mut self) -> Timeline {
        let window_start = self.window.start_ms;
        self.phases
            .close_window(window_start, &self.objects, self.images.window_pulls());
        let recoveries = self.recoveries.finish();
        let phases = self.phases.finish(&recoveries);
        let critical_path = critical_path::critical_path(&phases, self.objects.by_ref(), window_start);
        let mut critical_paths = self.critical_paths;
        critical_paths.push(WindowPath {
            step: self.window_step,
            path: critical_path.clone(),
        });
        let mut findings = self.findings.finish();
        findings.extend(self.objects.flap_findings().iter().cloned());
        let (order_breaks, order_checked) = self.objects.order();
        let order_breaks = order_breaks.to_vec();
        findings.extend(order_breaks.iter().cloned());
        let prunes = self.prunes.finish();
        findings.extend(prunes.iter().map(PruneRecord::finding));
        Timeline {
            scenario: self.scenario,
            run_id: self.run_id,
            started_at: self.window.run_started_at,
            finished_ms: self.finished_ms,
            rebuild_ms: self.rebuild_ms,
            stopped_early: self.stopped_early,
            phases,
            recoveries,
            objects: self.objects.finish(),
            images: self.images.finish(),
            critical_path,
            critical_paths,
            warnings: self.warnings,
            steps: self.steps.finish(),
            drift: self.drift.finish(self.finished_ms),
            findings,
            versions: self.versions,
            evidence: self.evidence,
            probes: self.probes.finish(self.finished_ms),
            order_breaks,
            order_checked,
            prunes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::testkit::{at, rebuild_events};

    #[test]
    fn the_run_header_and_end_come_from_the_events() {
        let t = build(&rebuild_events());
        assert_eq!((t.scenario.as_str(), t.run_id.as_str()), ("rebuild", "r1"));
        assert_eq!(t.started_at, Some(Timestamp::from_second(1_700_000_000).unwrap()));
        assert_eq!(t.finished_ms, 95_200);
    }

    #[test]
    fn the_rebuild_ends_when_the_initial_sync_succeeds() {
        let phase = |ms, ok| {
            at(
                ms,
                EventKind::PhaseFinished {
                    phase: INITIAL_SYNC.into(),
                    ok,
                    message: None,
                },
            )
        };
        assert_eq!(build(&[phase(61_000, true)]).rebuild_ms, Some(61_000));
        assert_eq!(build(&[phase(61_000, false)]).rebuild_ms, None);
        assert_eq!(
            build(&rebuild_events()).rebuild_ms,
            None,
            "no initial sync in these events"
        );
    }

    #[test]
    fn warnings_are_kept_in_order() {
        let warn = |ms, m: &str| at(ms, EventKind::Warning { message: m.into() });
        let t = build(&[warn(1, "first"), warn(2, "second")]);
        assert_eq!(t.warnings, vec!["first", "second"]);
    }

    #[test]
    fn phase_labels_serialize_as_the_bare_name_and_compare_by_it() {
        let named = PhaseLabel::from("reconcile");
        assert_eq!(named.name(), Some(PhaseName::Reconcile));
        assert_eq!(named, PhaseLabel::Other("reconcile".into()));
        assert_eq!(named, PhaseName::Reconcile);
        let other = PhaseLabel::from("initial-sync");
        assert_eq!(other.name(), None);
        let json = serde_json::to_string(&[named, other]).unwrap();
        assert_eq!(json, r#"["reconcile","initial-sync"]"#);
        let back: Vec<PhaseLabel> = serde_json::from_str(&json).unwrap();
        assert_eq!(back[0].name(), Some(PhaseName::Reconcile));
    }
}
