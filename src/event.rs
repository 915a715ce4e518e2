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
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum EventKind {
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
    /// Damage step `step` (0-based) starts; its recovery is timed from here.
    DisasterStarted {
        step: usize,
        disaster: String,
        description: String,
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
    ImagePullFailed {
        image: String,
        node: String,
        reason: String,
        message: String,
    },
    /// Everything the scenario expects was Ready after damage step `step`.
    Recovered {
        step: usize,
    },
    /// Recovery of step `step` was abandoned at the RTO budget (plus grace).
    RecoveryTimedOut {
        step: usize,
    },
    Warning {
        message: String,
    },
    RunFinished,
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
        let elapsed_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        DrillEvent {
            at: Timestamp::now(),
            elapsed_ms,
            kind,
        }
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
