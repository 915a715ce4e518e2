//! The timeline: a pure fold of [`DrillEvent`]s into phases, recoveries, object and
//! image timings, and the critical path. No I/O, no clocks: tests feed event lists.
//!
//! Time windows: the run starts window 0; each `DisasterStarted` opens a new window
//! and forgets readiness seen before it, so every object's `ready_ms` is measured
//! from the start of the last window (the last disaster, or the run start).

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::event::{DrillEvent, EventKind, FieldDrift, ObjectRef};
use crate::human::{ms, short_commit};
use crate::scenario::StepOutcome;

/// HelmCharts are left out: helm-controller creates them late, as part of a HelmRelease.
const SOURCE_KINDS: [&str; 4] = ["GitRepository", "OCIRepository", "HelmRepository", "Bucket"];
/// Flux reconcilers and Argo CD Applications: the "reconcile" phase ends when the last is Ready.
const RECONCILER_KINDS: [&str; 3] = ["Kustomization", "HelmRelease", "Application"];
const WORKLOAD_KINDS: [&str; 3] = ["Deployment", "StatefulSet", "DaemonSet"];
/// Phases drill performs itself; what the engine does is measured from the end of the last one.
const DRIVEN_PHASES: [&str; 5] = [
    "cluster-create",
    "image-preload",
    "image-mirror",
    "engine-install",
    "secret-bootstrap",
];

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseSpan {
    pub name: String,
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotReady {
    pub reason: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImagePull {
    pub image: String,
    pub node: String,
    pub start_ms: u64,
    pub pull_ms: Option<u64>,
    pub size_bytes: Option<u64>,
    pub failed: Option<String>,
}

/// What one step did and how long each part took (all figures from the step's start).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionTiming {
    pub action: String,
    /// From the step's start.
    pub at_ms: u64,
    pub ok: bool,
    pub by: String,
    pub message: String,
}

/// One hand edit, from the moment it was made to the moment Git overwrote it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    pub phases: Vec<PhaseSpan>,
    pub recoveries: Vec<Recovery>,
    pub objects: Vec<ObjectTiming>,
    pub images: Vec<ImagePull>,
    pub critical_path: Vec<String>,
    pub warnings: Vec<String>,
    pub steps: Vec<StepTiming>,
    pub drift: Vec<DriftRecord>,
    /// What the events say about causes: which change broke an app, which revert did not help.
    pub findings: Vec<String>,
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

/// A change to the cluster that could have broken an app, for the cause findings.
#[derive(Debug, Clone)]
struct Change {
    step: usize,
    text: String,
    commit: Option<String>,
}

#[derive(Default)]
struct Fold {
    changes: Vec<Change>,
    /// Commits reverted by a git-revert step that still ended degraded.
    ruled_out: Vec<(usize, String)>,
    t: Timeline,
    window_start: u64,
    /// End of the last phase drill drove itself (cluster-create, engine-install, ...) in this window.
    driven_end: Option<u64>,
    open_phases: BTreeMap<String, usize>,
    objects: BTreeMap<ObjectRef, ObjectTiming>,
    pulls: BTreeMap<(String, String), usize>,
    window_first_pull: usize,
}

/// Folds a run's events into its timeline.
pub fn build(events: &[DrillEvent]) -> Timeline {
    let mut f = Fold::default();
    for ev in events {
        f.apply(ev);
    }
    f.finish()
}

impl Fold {
    fn apply(&mut self, ev: &DrillEvent) {
        let now = ev.elapsed_ms;
        self.t.finished_ms = self.t.finished_ms.max(now);
        match &ev.kind {
            EventKind::RunStarted { scenario, run_id } => {
                self.t.scenario = scenario.clone();
                self.t.run_id = run_id.clone();
                self.t.started_at = Some(ev.at);
            }
            EventKind::PhaseStarted { phase } => {
                self.open_phases.insert(phase.clone(), self.t.phases.len());
                self.t.phases.push(PhaseSpan {
                    name: phase.clone(),
                    start_ms: now,
                    duration_ms: None,
                    ok: false,
                    message: None,
                });
            }
            EventKind::PhaseFinished { phase, ok, message } => {
                if let Some(idx) = self.open_phases.remove(phase) {
                    let span = &mut self.t.phases[idx];
                    span.duration_ms = Some(now.saturating_sub(span.start_ms));
                    span.ok = *ok;
                    span.message = message.clone();
                    if DRIVEN_PHASES.contains(&phase.as_str()) {
                        self.driven_end = Some(now);
                    }
                }
            }
            EventKind::DisasterStarted {
                step,
                disaster,
                description,
                expects,
                budget_ms,
            } => {
                self.close_window();
                self.window_start = now;
                self.driven_end = None;
                self.window_first_pull = self.t.images.len();
                for o in self.objects.values_mut() {
                    o.ready_ms = None;
                    o.api_ready_ms = None;
                }
                if *expects == StepOutcome::Recovered {
                    self.t.recoveries.push(Recovery {
                        step: *step,
                        disaster: disaster.clone(),
                        description: description.clone(),
                        started_ms: now,
                        rto_ms: None,
                        timed_out: false,
                        budget_ms: *budget_ms,
                    });
                }
                if matches!(disaster.as_str(), "delete-namespace" | "delete-cluster" | "kill-node") {
                    self.changes.push(Change {
                        step: *step,
                        text: description.clone(),
                        commit: None,
                    });
                }
                self.t.steps.push(StepTiming {
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
                });
            }
            EventKind::DriftApplied {
                step,
                object,
                fields,
                manager,
            } => {
                self.changes.push(Change {
                    step: *step,
                    text: format!("hand edit of {object} ({})", field_list(fields)),
                    commit: None,
                });
                self.t.drift.push(DriftRecord {
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
                });
            }
            EventKind::DriftDetected { step, object, .. } => {
                if let Some(d) = self.open_drift(object) {
                    d.detected_ms.get_or_insert(now);
                }
                if let Some(st) = self.step(*step) {
                    let from = st.started_ms;
                    st.detection_ms.get_or_insert(now.saturating_sub(from));
                }
            }
            EventKind::DriftReverted { step, object } => {
                let mut overwritten = None;
                if let Some(d) = self.open_drift(object) {
                    d.reverted_ms = Some(now);
                    d.reverted_in_step = Some(*step);
                    d.detected_ms.get_or_insert(now);
                    overwritten = Some(format!(
                        "Git overwrote the hand edit of {object} ({}), live for {}",
                        field_list(&d.fields),
                        ms(now.saturating_sub(d.applied_ms))
                    ));
                }
                if let Some(text) = overwritten {
                    self.changes.push(Change {
                        step: *step,
                        text,
                        commit: None,
                    });
                }
                if let Some(st) = self.step(*step) {
                    let from = st.started_ms;
                    st.self_heal_ms.get_or_insert(now.saturating_sub(from));
                    st.detection_ms.get_or_insert(now.saturating_sub(from));
                }
            }
            EventKind::DriftKept { step, object, .. } => {
                if let Some(d) = self.open_drift(object) {
                    d.kept = true;
                }
                if let Some(st) = self.step(*step) {
                    st.kept = Some(true);
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
                self.changes.push(Change {
                    step: *step,
                    text,
                    commit: Some(commit.clone()),
                });
                if let Some(st) = self.step(*step) {
                    st.commit = Some(commit.clone());
                }
            }
            EventKind::RevisionFetched { step, .. } => {
                if let Some(st) = self.step(*step) {
                    let from = st.started_ms;
                    st.fetched_ms.get_or_insert(now.saturating_sub(from));
                }
            }
            EventKind::Degraded { step, objects } => {
                let mut degraded = Vec::new();
                if let Some(st) = self.step(*step) {
                    let from = st.started_ms;
                    st.degraded_ms = Some(now.saturating_sub(from));
                    st.degraded = objects.iter().map(|(o, why)| format!("{o}: {why}")).collect();
                    degraded = st.degraded.clone();
                }
                self.degraded(*step, &degraded);
            }
            EventKind::DegradeTimedOut { step } => {
                if let Some(st) = self.step(*step) {
                    st.timed_out = true;
                }
            }
            EventKind::Suspended { .. } => {}
            EventKind::Action {
                step,
                action,
                ok,
                by,
                message,
            } => {
                if let Some(st) = self.step(*step) {
                    let from = st.started_ms;
                    st.actions.push(ActionTiming {
                        action: action.clone(),
                        at_ms: now.saturating_sub(from),
                        ok: *ok,
                        by: by.clone(),
                        message: message.clone(),
                    });
                }
            }
            EventKind::DisasterInjected { .. } | EventKind::OperatorAction { .. } | EventKind::RunFinished => {}
            EventKind::ObjectObserved {
                object,
                depends_on,
                wave,
            } => {
                let o = self.object(object);
                o.depends_on = depends_on.clone();
                o.wave = *wave;
            }
            EventKind::ObjectReady {
                object,
                revision,
                api_transition,
            } => {
                let window = self.window_start;
                let started_at = self.t.started_at;
                let o = self.object(object);
                if !o.ready {
                    o.ready = true;
                    o.ready_ms = Some(now.saturating_sub(window));
                    o.api_ready_ms = match (api_transition, started_at) {
                        (Some(api), Some(start)) => {
                            let since_start = api.duration_since(start).as_millis() as i64;
                            Some(since_start - window as i64)
                        }
                        _ => None,
                    };
                }
                o.revision = revision.clone().or(o.revision.take());
                o.not_ready = None;
            }
            EventKind::ObjectNotReady {
                object,
                reason,
                message,
            } => {
                let o = self.object(object);
                o.ready = false;
                o.ready_ms = None;
                o.not_ready = Some(NotReady {
                    reason: reason.clone(),
                    message: message.clone(),
                });
            }
            EventKind::ImagePulling { image, node } => {
                // A retry of a failing pull (the kubelet's back-off) stays on the failed row.
                let key = (image.clone(), node.clone());
                if let Some(&idx) = self.pulls.get(&key)
                    && idx >= self.window_first_pull
                    && self.t.images[idx].failed.is_some()
                {
                    return;
                }
                self.pulls.insert(key, self.t.images.len());
                self.t.images.push(ImagePull {
                    image: image.clone(),
                    node: node.clone(),
                    start_ms: now,
                    pull_ms: None,
                    size_bytes: None,
                    failed: None,
                });
            }
            EventKind::ImagePulled {
                image,
                node,
                size_bytes,
                kubelet_ms,
            } => {
                let idx = match self.pulls.get(&(image.clone(), node.clone())) {
                    Some(&idx) => idx,
                    None => {
                        // Pulling was missed (seen before the window): the kubelet's own figure still counts.
                        let start = now.saturating_sub(kubelet_ms.unwrap_or(0));
                        self.pulls.insert((image.clone(), node.clone()), self.t.images.len());
                        self.t.images.push(ImagePull {
                            image: image.clone(),
                            node: node.clone(),
                            start_ms: start,
                            pull_ms: None,
                            size_bytes: None,
                            failed: None,
                        });
                        self.t.images.len() - 1
                    }
                };
                let pull = &mut self.t.images[idx];
                pull.pull_ms = Some(kubelet_ms.unwrap_or(now.saturating_sub(pull.start_ms)));
                pull.size_bytes = *size_bytes;
            }
            EventKind::ImagePullFailed {
                image,
                node,
                reason,
                message,
            } => {
                // Back-offs repeat the same failure: one row per image and node.
                let idx = match self.pulls.get(&(image.clone(), node.clone())) {
                    Some(&idx) => idx,
                    None => {
                        self.pulls.insert((image.clone(), node.clone()), self.t.images.len());
                        self.t.images.push(ImagePull {
                            image: image.clone(),
                            node: node.clone(),
                            start_ms: now,
                            pull_ms: None,
                            size_bytes: None,
                            failed: None,
                        });
                        self.t.images.len() - 1
                    }
                };
                self.t.images[idx].failed = Some(format!("{reason}: {message}"));
            }
            EventKind::Recovered { step } => {
                let window = self.window_start;
                if let Some(r) = self.t.recoveries.iter_mut().find(|r| r.step == *step) {
                    r.rto_ms = Some(now.saturating_sub(window));
                }
                if let Some(st) = self.step(*step) {
                    let from = st.started_ms;
                    st.recovered_ms = Some(now.saturating_sub(from));
                }
                // Healthy again: later breakage is judged against later changes.
                self.changes.clear();
            }
            EventKind::RecoveryTimedOut { step } => {
                if let Some(r) = self.t.recoveries.iter_mut().find(|r| r.step == *step) {
                    r.timed_out = true;
                }
                if let Some(st) = self.step(*step) {
                    st.timed_out = true;
                }
                let stuck: Vec<String> = self
                    .objects
                    .values()
                    .filter(|o| !o.ready)
                    .map(|o| o.object.to_string())
                    .collect();
                self.degraded(*step, &stuck);
            }
            EventKind::Warning { message } => self.t.warnings.push(message.clone()),
        }
    }

    fn step(&mut self, step: usize) -> Option<&mut StepTiming> {
        self.t.steps.iter_mut().rev().find(|s| s.step == step)
    }

    fn open_drift(&mut self, object: &ObjectRef) -> Option<&mut DriftRecord> {
        self.t
            .drift
            .iter_mut()
            .rev()
            .find(|d| d.object == *object && d.reverted_ms.is_none())
    }

    /// An app is broken after `step`: name the changes since it was last healthy, and
    /// when the step was a revert, rule the reverted commit out as the cause.
    fn degraded(&mut self, step: usize, what: &[String]) {
        let Some(st) = self.t.steps.iter().rev().find(|s| s.step == step).cloned() else {
            return;
        };
        let what = if what.is_empty() {
            "an app".to_string()
        } else {
            what.join("; ")
        };
        if st.kind == "git-revert" {
            let reverted = self
                .changes
                .iter()
                .rev()
                .find(|c| c.step == step && c.commit.is_some())
                .map(|c| c.text.clone());
            if let Some(text) = reverted {
                self.ruled_out.push((step, text.clone()));
                self.t.findings.push(format!(
                    "step {} ({}): still broken after the {text}: the reverted commit did not cause it",
                    step + 1,
                    st.kind
                ));
            }
            return;
        }
        let changes: Vec<String> = self
            .changes
            .iter()
            .map(|c| format!("step {}: {}", c.step + 1, c.text))
            .collect();
        self.t.findings.push(format!(
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
            self.t.findings.push(format!(
                "step {}: the app broke when {}: the hand-edited value was what kept it running, and Git still holds the broken one",
                step + 1,
                c.text
            ));
        }
    }

    fn object(&mut self, object: &ObjectRef) -> &mut ObjectTiming {
        self.objects.entry(object.clone()).or_insert_with(|| ObjectTiming {
            object: object.clone(),
            ready: false,
            ready_ms: None,
            api_ready_ms: None,
            revision: None,
            not_ready: None,
            depends_on: Vec::new(),
            wave: None,
        })
    }

    /// Derives the observed phases of the window that is ending.
    fn close_window(&mut self) {
        let from = self.driven_end.unwrap_or(self.window_start).max(self.window_start);
        let last_ready = |kinds: &[&str]| {
            self.objects
                .values()
                .filter(|o| kinds.contains(&o.object.kind.as_str()))
                .filter_map(|o| o.ready_ms.map(|ms| ms + self.window_start))
                .max()
        };
        let derived = [
            ("source-ready", last_ready(&SOURCE_KINDS)),
            ("reconcile", last_ready(&RECONCILER_KINDS)),
            ("workloads-ready", last_ready(&WORKLOAD_KINDS)),
        ];
        for (name, end) in derived {
            if let Some(end) = end {
                self.t.phases.push(PhaseSpan {
                    name: name.into(),
                    start_ms: from,
                    duration_ms: Some(end.saturating_sub(from)),
                    ok: true,
                    message: None,
                });
            }
        }
        let pulls = &self.t.images[self.window_first_pull..];
        let first = pulls.iter().map(|p| p.start_ms).min();
        let last = pulls.iter().filter_map(|p| p.pull_ms.map(|d| p.start_ms + d)).max();
        if let (Some(first), Some(last)) = (first, last) {
            self.t.phases.push(PhaseSpan {
                name: "image-pulls".into(),
                start_ms: first,
                duration_ms: Some(last.saturating_sub(first)),
                ok: pulls.iter().all(|p| p.failed.is_none()),
                message: None,
            });
        }
    }

    fn finish(mut self) -> Timeline {
        self.close_window();
        let end = self.t.finished_ms;
        for d in &mut self.t.drift {
            d.age_ms = d.reverted_ms.unwrap_or(end).saturating_sub(d.applied_ms);
        }
        for r in &self.t.recoveries {
            if let Some(rto) = r.rto_ms {
                self.t.phases.push(PhaseSpan {
                    name: "rto".into(),
                    start_ms: r.started_ms,
                    duration_ms: Some(rto),
                    ok: true,
                    message: Some(format!("step {}: {}", r.step + 1, r.disaster)),
                });
            }
        }
        self.t.phases.sort_by_key(|p| p.start_ms);
        self.t.critical_path = critical_path(&self.t.phases, &self.objects, self.window_start);
        let mut objects: Vec<ObjectTiming> = self.objects.into_values().collect();
        objects.sort_by(|a, b| {
            (a.ready_ms.is_none(), a.ready_ms, &a.object).cmp(&(b.ready_ms.is_none(), b.ready_ms, &b.object))
        });
        self.t.objects = objects;
        let mut images = std::mem::take(&mut self.t.images);
        images.sort_by(|a, b| b.pull_ms.cmp(&a.pull_ms).then_with(|| a.image.cmp(&b.image)));
        self.t.images = images;
        self.t
    }
}

fn field_list(fields: &[FieldDrift]) -> String {
    fields
        .iter()
        .map(|f| format!("{} {} → {}", f.field, f.git, f.live))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The chain that set the total of the last window: the phases drill drove in that window,
/// then, from the object that became Ready last, each dependency that became Ready last.
fn critical_path(phases: &[PhaseSpan], objects: &BTreeMap<ObjectRef, ObjectTiming>, window_start: u64) -> Vec<String> {
    let mut path: Vec<String> = phases
        .iter()
        .filter(|p| p.start_ms >= window_start && DRIVEN_PHASES.contains(&p.name.as_str()))
        .map(|p| p.name.clone())
        .collect();

    let Some(mut current) = objects
        .values()
        .filter(|o| o.ready_ms.is_some())
        .max_by_key(|o| (o.ready_ms, &o.object))
    else {
        return path;
    };
    let label = |o: &ObjectTiming| match o.wave {
        Some(w) => format!("{} (wave {w})", o.object),
        None => o.object.to_string(),
    };
    let mut chain = vec![label(current)];
    // Bounded by the object count, so a dependency cycle cannot loop forever.
    for _ in 0..objects.len() {
        let next = current
            .depends_on
            .iter()
            .filter_map(|d| objects.get(d))
            .filter(|d| d.ready_ms.is_some())
            .max_by_key(|d| (d.ready_ms, &d.object));
        match next {
            Some(dep) if !chain.contains(&label(dep)) => {
                chain.push(label(dep));
                current = dep;
            }
            _ => break,
        }
    }
    chain.reverse();
    path.extend(chain);
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64, kind: EventKind) -> DrillEvent {
        let base = Timestamp::from_second(1_700_000_000).unwrap();
        DrillEvent {
            at: base + std::time::Duration::from_millis(ms),
            elapsed_ms: ms,
            kind,
        }
    }

    fn obj(kind: &str, name: &str) -> ObjectRef {
        ObjectRef::new(kind, "flux-system", name)
    }

    fn ready(ms: u64, o: ObjectRef) -> DrillEvent {
        at(
            ms,
            EventKind::ObjectReady {
                object: o,
                revision: Some("main@sha1:1".into()),
                api_transition: None,
            },
        )
    }

    fn phase(ms: u64, name: &str, started: bool) -> DrillEvent {
        at(
            ms,
            if started {
                EventKind::PhaseStarted { phase: name.into() }
            } else {
                EventKind::PhaseFinished {
                    phase: name.into(),
                    ok: true,
                    message: None,
                }
            },
        )
    }

    /// A whole-cluster rebuild: recovery measured from the disaster, critical path through dependsOn.
    fn rebuild_events() -> Vec<DrillEvent> {
        let src = obj("GitRepository", "flux-system");
        let infra = obj("Kustomization", "infrastructure");
        let apps = obj("Kustomization", "apps");
        let deploy = ObjectRef::new("Deployment", "users", "users-api");
        vec![
            at(
                0,
                EventKind::RunStarted {
                    scenario: "rebuild".into(),
                    run_id: "r1".into(),
                },
            ),
            phase(0, "cluster-create", true),
            phase(15_000, "cluster-create", false),
            ready(30_000, src.clone()),
            at(
                40_000,
                EventKind::DisasterStarted {
                    step: 0,
                    disaster: "delete-cluster".into(),
                    description: "destroy".into(),
                    expects: StepOutcome::Recovered,
                    budget_ms: None,
                },
            ),
            at(
                40_500,
                EventKind::ObjectNotReady {
                    object: src.clone(),
                    reason: "Deleted".into(),
                    message: "the cluster was deleted".into(),
                },
            ),
            phase(40_000, "cluster-create", true),
            phase(55_000, "cluster-create", false),
            phase(55_000, "engine-install", true),
            phase(70_000, "engine-install", false),
            at(
                70_000,
                EventKind::ObjectObserved {
                    object: infra.clone(),
                    depends_on: vec![src.clone()],
                    wave: None,
                },
            ),
            at(
                70_000,
                EventKind::ObjectObserved {
                    object: apps.clone(),
                    depends_on: vec![src.clone(), infra.clone()],
                    wave: None,
                },
            ),
            at(
                70_000,
                EventKind::ObjectObserved {
                    object: deploy.clone(),
                    depends_on: vec![apps.clone()],
                    wave: None,
                },
            ),
            at(
                71_000,
                EventKind::ImagePulling {
                    image: "users-api:1".into(),
                    node: "n1".into(),
                },
            ),
            ready(75_000, src),
            ready(80_000, infra),
            at(
                86_000,
                EventKind::ImagePulled {
                    image: "users-api:1".into(),
                    node: "n1".into(),
                    size_bytes: Some(5_000_000),
                    kubelet_ms: None,
                },
            ),
            ready(90_000, apps),
            ready(95_000, deploy),
            at(95_100, EventKind::Recovered { step: 0 }),
            at(95_200, EventKind::RunFinished),
        ]
    }

    #[test]
    fn rto_is_measured_from_the_disaster_to_recovery() {
        let t = build(&rebuild_events());
        assert_eq!(t.rto_ms(), Some(55_100));
        assert_eq!(t.recoveries.len(), 1);
        assert_eq!(t.finished_ms, 95_200);
    }

    #[test]
    fn object_ready_times_are_relative_to_the_last_window() {
        let t = build(&rebuild_events());
        let ready: Vec<(String, Option<u64>)> = t.objects.iter().map(|o| (o.object.to_string(), o.ready_ms)).collect();
        assert_eq!(
            ready,
            vec![
                ("GitRepository/flux-system/flux-system".into(), Some(35_000)),
                ("Kustomization/flux-system/infrastructure".into(), Some(40_000)),
                ("Kustomization/flux-system/apps".into(), Some(50_000)),
                ("Deployment/users/users-api".into(), Some(55_000)),
            ]
        );
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
    fn critical_path_follows_the_latest_dependency() {
        let t = build(&rebuild_events());
        assert_eq!(
            t.critical_path,
            vec![
                "cluster-create",
                "engine-install",
                "GitRepository/flux-system/flux-system",
                "Kustomization/flux-system/infrastructure",
                "Kustomization/flux-system/apps",
                "Deployment/users/users-api",
            ]
        );
    }

    #[test]
    fn an_object_that_falls_back_to_not_ready_has_no_ready_time_and_keeps_the_reason() {
        let apps = obj("Kustomization", "apps");
        let t = build(&[
            at(
                0,
                EventKind::RunStarted {
                    scenario: "s".into(),
                    run_id: "r".into(),
                },
            ),
            ready(1_000, apps.clone()),
            at(
                2_000,
                EventKind::ObjectNotReady {
                    object: apps,
                    reason: "HealthCheckFailed".into(),
                    message: "users-api not ready".into(),
                },
            ),
            at(9_000, EventKind::RecoveryTimedOut { step: 0 }),
        ]);
        let o = &t.objects[0];
        assert_eq!(o.ready_ms, None);
        assert_eq!(
            o.not_ready.as_ref().map(|n| n.reason.as_str()),
            Some("HealthCheckFailed")
        );
        assert_eq!(t.not_ready().count(), 1);
    }

    #[test]
    fn objects_untouched_by_the_damage_stay_ready_without_a_new_ready_time() {
        let src = obj("GitRepository", "flux-system");
        let t = build(&[
            at(
                0,
                EventKind::RunStarted {
                    scenario: "s".into(),
                    run_id: "r".into(),
                },
            ),
            ready(1_000, src),
            at(
                2_000,
                EventKind::DisasterStarted {
                    step: 0,
                    disaster: "delete-namespace".into(),
                    description: String::new(),
                    expects: StepOutcome::Recovered,
                    budget_ms: None,
                },
            ),
            at(9_000, EventKind::Recovered { step: 0 }),
        ]);
        assert!(t.objects[0].ready);
        assert_eq!(t.objects[0].ready_ms, None);
        assert_eq!(t.not_ready().count(), 0);
    }

    #[test]
    fn api_transition_times_are_reported_beside_drills_own() {
        let k = obj("Kustomization", "apps");
        let base = Timestamp::from_second(1_700_000_000).unwrap();
        let t = build(&[
            at(
                0,
                EventKind::RunStarted {
                    scenario: "s".into(),
                    run_id: "r".into(),
                },
            ),
            at(
                5_000,
                EventKind::ObjectReady {
                    object: k,
                    revision: None,
                    api_transition: Some(base + std::time::Duration::from_secs(4)),
                },
            ),
        ]);
        assert_eq!(t.objects[0].ready_ms, Some(5_000));
        assert_eq!(t.objects[0].api_ready_ms, Some(4_000));
    }

    #[test]
    fn the_kubelets_own_pull_time_wins_over_event_spacing() {
        let t = build(&[
            at(
                0,
                EventKind::RunStarted {
                    scenario: "s".into(),
                    run_id: "r".into(),
                },
            ),
            at(
                1_000,
                EventKind::ImagePulling {
                    image: "big:1".into(),
                    node: "n".into(),
                },
            ),
            at(
                9_000,
                EventKind::ImagePulled {
                    image: "big:1".into(),
                    node: "n".into(),
                    size_bytes: Some(2),
                    kubelet_ms: Some(7_400),
                },
            ),
            at(
                9_500,
                EventKind::ImagePulled {
                    image: "small:1".into(),
                    node: "n".into(),
                    size_bytes: None,
                    kubelet_ms: Some(300),
                },
            ),
        ]);
        let pulls: Vec<(String, Option<u64>)> = t.images.iter().map(|p| (p.image.clone(), p.pull_ms)).collect();
        assert_eq!(
            pulls,
            vec![("big:1".into(), Some(7_400)), ("small:1".into(), Some(300))]
        );
    }

    #[test]
    fn failed_pulls_are_listed_with_their_reason() {
        let t = build(&[
            at(
                0,
                EventKind::RunStarted {
                    scenario: "s".into(),
                    run_id: "r".into(),
                },
            ),
            at(
                10,
                EventKind::ImagePullFailed {
                    image: "ghost:1".into(),
                    node: "n".into(),
                    reason: "ErrImagePull".into(),
                    message: "not found".into(),
                },
            ),
        ]);
        assert_eq!(t.images[0].failed.as_deref(), Some("ErrImagePull: not found"));
    }

    fn started(ms: u64, step: usize, kind: &str, expects: StepOutcome) -> DrillEvent {
        at(
            ms,
            EventKind::DisasterStarted {
                step,
                disaster: kind.into(),
                description: kind.into(),
                expects,
                budget_ms: None,
            },
        )
    }

    /// The seed replay in miniature: a hand edit kept while paused, Git overwrites it on
    /// resume and the app breaks, reverting the release does not help.
    #[test]
    fn quiet_steps_give_figures_a_drift_record_and_the_cause() {
        let cm = ObjectRef::new("ConfigMap", "users", "users-api-env");
        let api = ObjectRef::new("Deployment", "users", "users-api");
        let events = vec![
            at(
                0,
                EventKind::RunStarted {
                    scenario: "seed".into(),
                    run_id: "r".into(),
                },
            ),
            started(10_000, 0, "drift", StepOutcome::Nothing),
            at(
                10_100,
                EventKind::DriftApplied {
                    step: 0,
                    object: cm.clone(),
                    fields: vec![FieldDrift {
                        field: "/data/DB_HOST".into(),
                        git: "db".into(),
                        live: "pooler".into(),
                    }],
                    manager: None,
                },
            ),
            at(
                40_000,
                EventKind::DriftKept {
                    step: 0,
                    object: cm.clone(),
                    reconciled: false,
                },
            ),
            started(40_000, 1, "commit", StepOutcome::Nothing),
            at(
                40_500,
                EventKind::Committed {
                    step: 1,
                    commit: "c1".repeat(20),
                    message: "release 1.1".into(),
                    reverts: None,
                },
            ),
            started(41_000, 2, "resume", StepOutcome::Degraded),
            at(
                43_000,
                EventKind::DriftReverted {
                    step: 2,
                    object: cm.clone(),
                },
            ),
            at(
                45_000,
                EventKind::RevisionFetched {
                    step: 2,
                    commit: "c1".repeat(20),
                },
            ),
            at(
                70_000,
                EventKind::Degraded {
                    step: 2,
                    objects: vec![(api.clone(), "0/1 available".into())],
                },
            ),
            started(70_000, 3, "git-revert", StepOutcome::Degraded),
            at(
                70_500,
                EventKind::Committed {
                    step: 3,
                    commit: "c2".repeat(20),
                    message: "Revert".into(),
                    reverts: Some("c1".repeat(20)),
                },
            ),
            at(
                95_000,
                EventKind::Degraded {
                    step: 3,
                    objects: vec![(api, "0/1 available".into())],
                },
            ),
        ];
        let t = build(&events);
        assert!(t.recoveries.is_empty(), "no step here expects a recovery");
        let resume = &t.steps[2];
        assert_eq!(resume.fetched_ms, Some(4_000));
        assert_eq!(resume.degraded_ms, Some(29_000));
        assert_eq!(resume.self_heal_ms, Some(2_000));
        assert_eq!(t.steps[0].kept, Some(true));
        let d = &t.drift[0];
        assert_eq!(
            (d.applied_ms, d.reverted_ms, d.reverted_in_step, d.age_ms),
            (10_100, Some(43_000), Some(2), 32_900)
        );
        assert!(d.kept, "kept while paused, then overwritten");
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
        assert!(resume.figures().contains("degraded 29.0s"), "{}", resume.figures());
    }

    #[test]
    fn a_pull_retried_by_back_off_is_one_failed_row() {
        let pulling = |ms| {
            at(
                ms,
                EventKind::ImagePulling {
                    image: "x:9".into(),
                    node: "n".into(),
                },
            )
        };
        let failed = |ms| {
            at(
                ms,
                EventKind::ImagePullFailed {
                    image: "x:9".into(),
                    node: "n".into(),
                    reason: "Failed".into(),
                    message: "not found".into(),
                },
            )
        };
        let t = build(&[
            pulling(0),
            failed(100),
            pulling(10_000),
            failed(10_100),
            pulling(30_000),
            failed(30_100),
        ]);
        assert_eq!(t.images.len(), 1, "{:?}", t.images);
        assert!(t.images[0].failed.is_some());
    }
}
