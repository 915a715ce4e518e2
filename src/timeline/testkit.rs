//! Event lists for the timeline's tests: helpers, and two runs every concern is checked against.

use jiff::Timestamp;

use crate::event::{DrillEvent, EventKind, FieldDrift, ObjectRef};
use crate::scenario::StepOutcome;

pub fn at(ms: u64, kind: EventKind) -> DrillEvent {
    let base = Timestamp::from_second(1_700_000_000).unwrap();
    DrillEvent {
        at: base + std::time::Duration::from_millis(ms),
        elapsed_ms: ms,
        kind,
    }
}

pub fn run_started(ms: u64) -> DrillEvent {
    at(
        ms,
        EventKind::RunStarted {
            scenario: "s".into(),
            run_id: "r".into(),
        },
    )
}

pub fn obj(kind: &str, name: &str) -> ObjectRef {
    ObjectRef::new(kind, "flux-system", name)
}

pub fn ready(ms: u64, o: ObjectRef) -> DrillEvent {
    at(
        ms,
        EventKind::ObjectReady {
            object: o,
            revision: Some("main@sha1:1".into()),
            api_transition: None,
        },
    )
}

pub fn phase(ms: u64, name: &str, started: bool) -> DrillEvent {
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

pub fn started(ms: u64, step: usize, kind: &str, expects: StepOutcome) -> DrillEvent {
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

/// A whole-cluster rebuild: recovery measured from the disaster, critical path through dependsOn.
pub fn rebuild_events() -> Vec<DrillEvent> {
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

/// The seed replay in miniature: a hand edit kept while paused, Git overwrites it on
/// resume and the app breaks, reverting the release does not help.
pub fn seed_replay_events() -> Vec<DrillEvent> {
    let cm = ObjectRef::new("ConfigMap", "users", "users-api-env");
    let api = ObjectRef::new("Deployment", "users", "users-api");
    vec![
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
    ]
}
