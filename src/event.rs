//! The one event type that connects the runner to reporters. The runner stamps time
//! in exactly one place ([`EventClock::stamp`]); everything downstream is a pure
//! function of the recorded stream, so a run can be re-rendered from `events.jsonl`.

use std::time::Instant;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// A timestamped fact observed or caused during a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillEvent {
    /// Wall-clock time, for humans and for cross-checking API-server timestamps.
    pub at: Timestamp,
    /// Milliseconds since the run started, from a monotonic clock: what every duration uses.
    pub elapsed_ms: u64,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// A Kubernetes object drill follows, e.g. Kustomization flux-system/apps.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ObjectRef {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl ObjectRef {
    pub fn new(kind: &str, namespace: &str, name: &str) -> Self {
        Self {
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{}/{}", self.kind, self.name)
        } else {
            write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// What a run ran with, as far as it is known yet: each [`EventKind::Versions`] adds what
/// a stage learned (drill at the start, Kubernetes once the API answers, the engine once
/// installed), so a report says which versions its numbers belong to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Versions {
    /// drill's own version.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub drill: Option<String>,
    /// The engine and its version, e.g. "flux v2.9.5" (from its install manifest).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub engine: Option<String>,
    /// The API server's version, e.g. "v1.34.4".
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub kubernetes: Option<String>,
    /// The kind node image drill gave every node (absent: kind's default or an existing cluster).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub node_image: Option<String>,
    /// The machine drill ran on (its hostname).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub host: Option<String>,
    /// Where the engine's install came from: the repo's own (`flux bootstrap`'s
    /// gotk-components.yaml) or the profile's manifest.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub engine_from: Option<String>,
    /// What the cluster synced from: drill's served copy of the checkout, or the remote URL
    /// (with a `flux bootstrap` gotk-sync.yaml, whether its URL was kept or redirected).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub source: Option<String>,
    /// The kept cluster the run rehearsed on (`--reuse-cluster`) and the run that made it;
    /// absent when the run made its own. Its initial sync re-syncs apps that were already
    /// running, so what it shows of the order Git declares is not judged.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reused_cluster: Option<String>,
}

impl Versions {
    /// `self` with what `newer` knows.
    pub fn merge(&mut self, newer: &Versions) {
        for (mine, theirs) in [
            (&mut self.drill, &newer.drill),
            (&mut self.engine, &newer.engine),
            (&mut self.kubernetes, &newer.kubernetes),
            (&mut self.node_image, &newer.node_image),
            (&mut self.host, &newer.host),
            (&mut self.engine_from, &newer.engine_from),
            (&mut self.source, &newer.source),
            (&mut self.reused_cluster, &newer.reused_cluster),
        ] {
            if theirs.is_some() {
                mine.clone_from(theirs);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Versions::default()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum EventKind {
    /// What the run ran with (see [`Versions`]); several per run, each adding to the last.
    Versions(Versions),
    /// A failed run saved what a person would look at next (files under the report folder).
    EvidenceSaved {
        files: Vec<String>,
    },
    RunStarted {
        scenario: String,
        run_id: String,
    },
    PhaseStarted {
        phase: String,
    },
    PhaseFinished {
        phase: String,
        ok: bool,
        message: Option<String>,
    },
    /// Step `step` (0-based) starts; its recovery (or degradation) is timed from here.
    DisasterStarted {
        step: usize,
        disaster: String,
        description: String,
        /// What the step must end in (older recordings: a recovery).
        #[serde(default)]
        expects: StepOutcome,
        /// The step's own budget, when it overrides `expect.rto`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        budget_ms: Option<u64>,
    },
    /// The damage itself is done (the namespace is gone, the node is killed).
    DisasterInjected {
        step: usize,
    },
    OperatorAction {
        step: usize,
        action: String,
    },
    /// First sight of an object, with what it waits for (Flux dependsOn, sourceRef).
    ObjectObserved {
        object: ObjectRef,
        depends_on: Vec<ObjectRef>,
        /// Argo CD sync wave, when the object has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        wave: Option<i64>,
    },
    /// The object became Ready; `api_transition` is the API server's lastTransitionTime.
    ObjectReady {
        object: ObjectRef,
        revision: Option<String>,
        api_transition: Option<Timestamp>,
    },
    /// The object left Ready (or reported a failure) with the engine's reason and message.
    ObjectNotReady {
        object: ObjectRef,
        reason: String,
        message: String,
    },
    ImagePulling {
        image: String,
        node: String,
    },
    /// `kubelet_ms`: the pull time the kubelet measured itself (preferred over event spacing).
    ImagePulled {
        image: String,
        node: String,
        size_bytes: Option<u64>,
        kubelet_ms: Option<u64>,
    },
    /// A pod found the image already on its node ("already present on machine").
    ImagePresent {
        image: String,
        node: String,
    },
    ImagePullFailed {
        image: String,
        node: String,
        reason: String,
        message: String,
        /// The pod whose pull failed, to name the workload that waits on the image.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pod: Option<ObjectRef>,
    },
    /// Everything the scenario expects was Ready after damage step `step`.
    Recovered {
        step: usize,
    },
    /// Recovery of step `step` was abandoned at the RTO budget (plus grace).
    RecoveryTimedOut {
        step: usize,
    },
    /// A wait ended before its deadline because its failure was already certain.
    StoppedEarly {
        reason: String,
    },
    Warning {
        message: String,
    },
    /// A live object was hand-edited (drift). Values of Secrets are never recorded.
    DriftApplied {
        step: usize,
        object: ObjectRef,
        fields: Vec<FieldDrift>,
        /// The app (Kustomization) that manages the object, if any.
        manager: Option<ObjectRef>,
    },
    /// The engine reported the drift (a Flux event naming the object, an Argo CD OutOfSync).
    DriftDetected {
        step: usize,
        object: ObjectRef,
        by: String,
    },
    /// The live object equals Git again: the engine overwrote the hand edit.
    DriftReverted {
        step: usize,
        object: ObjectRef,
    },
    /// After the engine had its chance (a handled reconcile, or the hold), the hand edit is still live.
    DriftKept {
        step: usize,
        object: ObjectRef,
        reconciled: bool,
    },
    /// drill committed to the served repo.
    Committed {
        step: usize,
        commit: String,
        message: String,
        /// The commit this one reverts (git revert).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reverts: Option<String>,
    },
    /// The engine fetched the commit (the root source is at it).
    RevisionFetched {
        step: usize,
        commit: String,
    },
    /// The step's app broke, as it was meant to (or not): what is not Ready and why.
    Degraded {
        step: usize,
        objects: Vec<(ObjectRef, String)>,
    },
    /// The app did not degrade within the step's budget.
    DegradeTimedOut {
        step: usize,
    },
    /// Reconciliation of one app paused or resumed.
    Suspended {
        step: usize,
        object: ObjectRef,
        suspended: bool,
    },
    /// A node was lost for good (`remove-node`): its container deleted, its Node object
    /// left NotReady. Each pod that ran on it, with what becomes of it.
    NodeRemoved {
        step: usize,
        node: String,
        pods: Vec<LostPod>,
    },
    /// After a prune step's commit reached the cluster: an object that left the engines'
    /// inventories, or one made by hand, and whether the API server still has it.
    PruneChecked {
        step: usize,
        object: ObjectRef,
        /// Made by hand by the step (never in Git), labelled like the app's objects.
        by_hand: bool,
        /// Gone by the API server when checked.
        gone: bool,
        /// From the commit to the check (every engine object at the commit).
        checked_after_ms: u64,
    },
    /// One action of a break-glass or game-day step, with who did it.
    Action {
        step: usize,
        action: String,
        ok: bool,
        #[serde(default)]
        by: String,
        #[serde(default)]
        message: String,
    },
    /// A probe (`expect.probes`) starts asking its Service (after the first sync).
    ProbeStarted {
        probe: String,
        target: String,
    },
    /// A probe was not served: its first failure after an answer (or its first attempt's).
    ProbeDown {
        probe: String,
        detail: String,
    },
    /// A probe was served again (or on its first attempt).
    ProbeUp {
        probe: String,
    },
    /// How many attempts a probe made and how many were served (once, at the end).
    ProbeTotals {
        probe: String,
        attempts: u64,
        served: u64,
    },
    /// What the terminal showed between typed events (a served commit, a kept cluster,
    /// a teardown warning): recorded so `events.jsonl` holds everything that was shown.
    Note {
        message: String,
    },
    RunFinished,
}

impl EventKind {
    /// A wait that did not end as the scenario meant: a step that did not recover or
    /// degrade in time, or a run stopped early. Its verdict is already certain.
    pub fn is_failed_wait(&self) -> bool {
        matches!(
            self,
            EventKind::RecoveryTimedOut { .. } | EventKind::DegradeTimedOut { .. } | EventKind::StoppedEarly { .. }
        )
    }
}

/// A pod that ran on a removed node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostPod {
    pub pod: ObjectRef,
    /// The workload that owns it (Deployment, StatefulSet, DaemonSet, Job), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<ObjectRef>,
    pub fate: PodFate,
}

/// What becomes of a pod whose node is gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fate", rename_all = "kebab-case")]
pub enum PodFate {
    /// Its controller makes a new one elsewhere once it is evicted (after its
    /// `node.kubernetes.io/unreachable` toleration, in seconds).
    Rescheduled { toleration_s: Option<i64> },
    /// A DaemonSet's pod: it belonged to that node.
    GoesWithNode,
    /// Nothing brings it back without a person: why.
    Unrecoverable { reason: String },
}

/// How a step ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum StepOutcome {
    /// Everything back to Ready at the served revision (timed against the budget).
    #[default]
    Recovered,
    /// Some app breaks: an object stays not Ready, or the engine reports a failure.
    Degraded,
    /// Nothing to wait for (the next step's wait covers it).
    Nothing,
}

/// One drifted field: a JSON pointer, Git's value before the edit, the hand-set value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FieldDrift {
    pub field: String,
    pub git: String,
    pub live: String,
}

/// Stamps events relative to the run start. Owned by the runner only.
#[derive(Debug, Clone)]
pub struct EventClock {
    started: Instant,
}

impl EventClock {
    pub fn start() -> Self {
        Self {
            started: Instant::now(),
        }
    }

    pub fn stamp(&self, kind: EventKind) -> DrillEvent {
        DrillEvent {
            at: Timestamp::now(),
            elapsed_ms: self.elapsed_ms(),
            kind,
        }
    }

    /// Stamps an event with `at`, an instant taken earlier (when a watcher received the
    /// update the event comes from); the wall time is moved back by as much.
    pub fn stamp_at(&self, kind: EventKind, at: Instant) -> DrillEvent {
        let now = Instant::now();
        let ago = jiff::SignedDuration::try_from(now.saturating_duration_since(at)).unwrap_or_default();
        DrillEvent {
            at: Timestamp::now().checked_sub(ago).unwrap_or_else(|_| Timestamp::now()),
            elapsed_ms: self.ms_at(at),
            kind,
        }
    }

    /// Milliseconds since the run started.
    pub fn elapsed_ms(&self) -> u64 {
        self.ms_at(Instant::now())
    }

    /// Run time of an instant taken elsewhere (a watcher's, before the runner saw it).
    pub fn ms_at(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.started).as_millis()).unwrap_or(u64::MAX)
    }
}

/// Reads a recorded `events.jsonl` back.
pub fn parse_jsonl(text: &str) -> Result<Vec<DrillEvent>, serde_json::Error> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_stamped_at_an_earlier_instant_carries_that_instant() {
        let clock = EventClock::start();
        let received = Instant::now();
        std::thread::sleep(std::time::Duration::from_millis(30));
        let late = clock.stamp_at(EventKind::RunFinished, received);
        let now = clock.stamp(EventKind::RunFinished);
        assert!(now.elapsed_ms >= late.elapsed_ms + 30, "{late:?} {now:?}");
        let wall_gap = now.at.duration_since(late.at).as_millis();
        assert!(
            (29..200).contains(&wall_gap),
            "wall time moved back as much: {wall_gap} ms"
        );
    }

    #[test]
    fn events_round_trip_through_json_lines() {
        let clock = EventClock::start();
        let events = vec![
            clock.stamp(EventKind::RunStarted {
                scenario: "s".into(),
                run_id: "r".into(),
            }),
            clock.stamp(EventKind::ObjectReady {
                object: ObjectRef::new("Kustomization", "flux-system", "apps"),
                revision: Some("main@sha1:abc".into()),
                api_transition: None,
            }),
        ];
        let text: String = events
            .iter()
            .map(|e| serde_json::to_string(e).unwrap() + "\n")
            .collect();
        assert!(text.contains(r#""event":"object-ready""#), "{text}");
        assert_eq!(parse_jsonl(&text).unwrap(), events);
    }
}
