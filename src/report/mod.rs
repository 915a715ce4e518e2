//! Reports: one [`Report`] value (the `report.json` contract) and pure renderers
//! for it. Writing to disk is in [`write`], atomically.

pub mod compare;
pub mod history;
pub mod html;
pub mod incident;
pub mod junit;
pub mod markdown;
pub mod probes;
pub mod table;
pub mod trend;
pub mod write;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::assert::Assertion;
use crate::human::ms;
use crate::timeline::{
    DriftRecord, Flap, ImagePull, ObjectTiming, PhaseLabel, PhaseSpan, StepTiming, Timeline, WindowPath,
};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    Error,
}

impl Outcome {
    /// The documented exit codes: 0 pass, 1 an assertion failed, 2 error.
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Pass => 0,
            Outcome::Fail => 1,
            Outcome::Error => 2,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Error => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Phase {
    #[schemars(with = "String")]
    pub name: PhaseLabel,
    /// The step (0-based) whose window it belongs to; absent before the first step.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub step: Option<usize>,
    pub start_ms: u64,
    pub duration_ms: Option<u64>,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub message: Option<String>,
}

impl From<&PhaseSpan> for Phase {
    fn from(p: &PhaseSpan) -> Self {
        Phase {
            name: p.name.clone(),
            step: p.step,
            start_ms: p.start_ms,
            duration_ms: p.duration_ms,
            ok: p.ok,
            message: p.message.clone(),
        }
    }
}

impl From<&ObjectTiming> for App {
    fn from(o: &ObjectTiming) -> Self {
        App {
            kind: o.object.kind.clone(),
            namespace: o.object.namespace.clone(),
            name: o.object.name.clone(),
            ready: o.ready,
            ready_ms: o.ready_ms,
            first_ready_ms: o.first_ready_ms,
            flapped: o.flapped.clone(),
            api_ready_ms: o.api_ready_ms,
            revision: o.revision.clone(),
            not_ready_reason: o.not_ready.as_ref().map(|n| n.reason.clone()),
            not_ready_message: o.not_ready.as_ref().map(|n| n.message.clone()),
        }
    }
}

impl From<&ImagePull> for Image {
    fn from(i: &ImagePull) -> Self {
        Image {
            image: i.image.clone(),
            node: i.node.clone(),
            step: i.step,
            pull_ms: i.pull_ms,
            size_bytes: i.size_bytes,
            failed: i.failed.clone(),
            pulled: i.pulled,
            present: i.present,
        }
    }
}

impl Phase {
    /// Its name, with the step it belongs to when it is not the initial rebuild.
    pub fn label(&self) -> String {
        match self.step {
            Some(step) => format!("{} (step {})", self.name, step + 1),
            None => self.name.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct App {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// Ready at the end of the run.
    pub ready: bool,
    /// From the start of the last disaster (or the run) to Ready; null if it did not
    /// change in that window (unaffected by the damage) or never became Ready.
    pub ready_ms: Option<u64>,
    /// Its first Ready in that window; earlier than `ready_ms` (its last) when it fell
    /// back to not Ready in between.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub first_ready_ms: Option<u64>,
    /// It fell back to not Ready while objects that depend on it were Ready.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub flapped: Option<Flap>,
    /// The same from the API server's lastTransitionTime, to cross-check drill's clock.
    pub api_ready_ms: Option<i64>,
    pub revision: Option<String>,
    pub not_ready_reason: Option<String>,
    pub not_ready_message: Option<String>,
}

impl App {
    /// `Kind namespace/name` (no namespace part for cluster-scoped objects).
    pub fn label(&self) -> String {
        if self.namespace.is_empty() {
            format!("{} {}", self.kind, self.name)
        } else {
            format!("{} {}/{}", self.kind, self.namespace, self.name)
        }
    }

    /// The ready-time cell: its last Ready, and its first when that was earlier.
    pub fn ready_text(&self) -> String {
        match (self.first_ready_ms, self.ready_ms) {
            (Some(first), Some(last)) if first < last => format!("{} (first {})", ms(last), ms(first)),
            (_, Some(last)) => ms(last),
            _ => "—".into(),
        }
    }

    /// One phrase for the object's state at the end of the run.
    pub fn status(&self) -> String {
        match (&self.not_ready_reason, &self.not_ready_message) {
            (Some(reason), Some(message)) => format!("{reason}: {message}"),
            _ if self.ready && self.flapped.is_some() => {
                let flap = self.flapped.as_ref().map(|f| (ms(f.at_ms), f.reason.as_str()));
                let (at, why) = flap.unwrap_or_default();
                format!("Ready (fell back at {at}: {why}, after its dependents were Ready)")
            }
            _ if self.ready && self.ready_ms.is_some() => "Ready".into(),
            _ if self.ready => "Ready (unaffected)".into(),
            _ => "never Ready".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Image {
    pub image: String,
    pub node: String,
    /// The step whose window it is in; absent for the initial rebuild.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub step: Option<usize>,
    /// The real pull on that node: the longest any pod's pull took (others queued behind it).
    pub pull_ms: Option<u64>,
    pub size_bytes: Option<u64>,
    pub failed: Option<String>,
    /// Pods whose pull completed, and pods that found the image already on the node.
    #[serde(default)]
    pub pulled: u32,
    #[serde(default)]
    pub present: u32,
}

impl Image {
    /// Whether a pull was needed (or tried), not only pods that found it present:
    /// the rows the table and summary list.
    pub fn needed(&self) -> bool {
        crate::timeline::pull_needed(self.pulled, self.present, self.failed.is_some())
    }

    /// The pull cell: its time (and how many pods shared it), why it failed, or that
    /// no pull was needed.
    pub fn pull_text(&self) -> String {
        let pods = match (self.pulled, self.present) {
            (0 | 1, 0) => String::new(),
            (pulled, 0) => format!(" ({pulled} pods)"),
            (pulled, present) => format!(" ({pulled} pods, {present} found it present)"),
        };
        match (&self.failed, self.pull_ms) {
            (Some(why), _) => format!("failed: {why}"),
            (None, Some(d)) => format!("{}{pods}", crate::human::ms(d)),
            (None, None) if self.present > 0 => format!("already present ({} pods)", self.present),
            (None, None) => "unfinished".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RecoveryReport {
    pub step: usize,
    pub disaster: String,
    pub description: String,
    pub rto_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Report {
    pub schema_version: u32,
    pub scenario: String,
    pub run_id: String,
    pub result: Outcome,
    #[schemars(with = "Option<String>")]
    pub started_at: Option<Timestamp>,
    pub duration_ms: u64,
    /// The longest recovery of the run (disaster start to everything Ready).
    pub rto_ms: Option<u64>,
    /// Run start to every object Ready for the first time: the rebuild from Git.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rebuild_ms: Option<u64>,
    /// Why the run stopped waiting before its deadline (its failure being certain).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub stopped_early: Option<String>,
    pub rto_budget_ms: u64,
    pub recoveries: Vec<RecoveryReport>,
    pub phases: Vec<Phase>,
    pub apps: Vec<App>,
    pub images: Vec<Image>,
    pub critical_path: Vec<String>,
    /// Every window's critical path: the initial rebuild's, then each step's.
    #[serde(default)]
    pub critical_paths: Vec<WindowPath>,
    pub assertions: Vec<Assertion>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Every step with its figures (detection, self-heal, revert time, break-glass actions).
    #[serde(default)]
    pub steps: Vec<StepTiming>,
    /// Every hand edit: when made, detected, overwritten, and its age.
    #[serde(default)]
    pub drift: Vec<DriftRecord>,
    /// What broke an app, which revert did not help.
    #[serde(default)]
    pub findings: Vec<String>,
    /// What the run ran with: drill, the engine, Kubernetes, the node image.
    #[serde(skip_serializing_if = "crate::event::Versions::is_empty", default)]
    pub versions: crate::event::Versions,
    /// Failure evidence saved beside this report (paths under its folder): Events of the
    /// failing objects' namespaces, their live status, logs of their not-Ready pods.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub evidence: Vec<String>,
    /// Availability probes (`expect.probes`): each one's outages, the step each began
    /// in, and its attempts.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub probes: Vec<crate::timeline::ProbeTiming>,
    /// What prune steps found: each object dropped from Git or made by hand, pruned or left.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub prunes: Vec<crate::timeline::PruneRecord>,
}

impl Report {
    /// Adds an assertion decided outside the run (against its history); a failed one
    /// makes a passing run fail.
    pub fn add_assertion(&mut self, a: Assertion) {
        if !a.passed && self.result == Outcome::Pass {
            self.result = Outcome::Fail;
        }
        self.assertions.push(a);
    }

    /// "drill 0.1.0 · flux v2.9.5 · Kubernetes v1.34.4 · node image …", what is known of it.
    pub fn versions_line(&self) -> Option<String> {
        let v = &self.versions;
        let parts: Vec<String> = [
            v.drill.as_ref().map(|d| format!("drill {d}")),
            v.engine.clone(),
            v.kubernetes.as_ref().map(|k| format!("Kubernetes {k}")),
            v.node_image.as_ref().map(|i| format!("node image {i}")),
            v.engine_from.as_ref().map(|f| format!("engine from {f}")),
            v.source.as_ref().map(|s| format!("source {s}")),
            v.reused_cluster.as_ref().map(|c| format!("reused cluster {c}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        (!parts.is_empty()).then(|| parts.join(" · "))
    }

    /// Builds the report; `error` is set when the run could not finish (exit 2).
    pub fn new(timeline: &Timeline, assertions: Vec<Assertion>, rto_budget_ms: u64, error: Option<String>) -> Self {
        let result = if error.is_some() {
            Outcome::Error
        } else if assertions.iter().all(|a| a.passed) {
            Outcome::Pass
        } else {
            Outcome::Fail
        };
        Report {
            schema_version: SCHEMA_VERSION,
            scenario: timeline.scenario.clone(),
            run_id: timeline.run_id.clone(),
            result,
            started_at: timeline.started_at,
            duration_ms: timeline.finished_ms,
            rto_ms: timeline.rto_ms(),
            rebuild_ms: timeline.rebuild_ms,
            stopped_early: timeline.stopped_early.clone(),
            rto_budget_ms,
            recoveries: timeline
                .recoveries
                .iter()
                .map(|r| RecoveryReport {
                    step: r.step,
                    disaster: r.disaster.clone(),
                    description: r.description.clone(),
                    rto_ms: r.rto_ms,
                })
                .collect(),
            phases: timeline.phases.iter().map(Phase::from).collect(),
            apps: timeline.objects.iter().map(App::from).collect(),
            images: timeline.images.iter().map(Image::from).collect(),
            critical_path: timeline.critical_path.clone(),
            critical_paths: timeline.critical_paths.clone(),
            assertions,
            error,
            warnings: timeline.warnings.clone(),
            steps: timeline.steps.clone(),
            drift: timeline.drift.clone(),
            findings: timeline.findings.clone(),
            versions: timeline.versions.clone(),
            evidence: timeline.evidence.clone(),
            probes: timeline.probes.clone(),
            prunes: timeline.prunes.clone(),
        }
    }

    /// The run's figure for a header: the RTO when a step had to recover, else the
    /// rebuild from Git (held against the budget when the run had no step at all).
    pub fn headline(&self) -> String {
        let budget = ms(self.rto_budget_ms);
        match (self.recoveries.is_empty(), self.rto_ms, self.rebuild_ms) {
            (false, Some(rto), _) => format!("RTO {} (budget {budget})", ms(rto)),
            (false, None, _) => format!("RTO not recovered (budget {budget})"),
            (true, _, Some(rebuild)) if self.steps.is_empty() => {
                format!("rebuilt from Git in {} (budget {budget})", ms(rebuild))
            }
            (true, _, Some(rebuild)) => format!("rebuilt from Git in {}", ms(rebuild)),
            (true, _, None) => "not rebuilt from Git: the initial sync did not finish".into(),
        }
    }

    pub fn to_json(&self) -> String {
        // A Report holds only strings, numbers and options: serializing cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_else(|err| format!("{{\"error\": \"{err}\"}}")) + "\n"
    }
}

/// The image rows a person reads (pulls and failures), and how many rows were only
/// "already present" (not listed, counted).
pub fn listed_images(report: &Report) -> (Vec<&Image>, usize) {
    let (listed, present): (Vec<&Image>, Vec<&Image>) = report.images.iter().partition(|i| i.needed());
    (listed, present.len())
}

/// The critical paths to show, each with a label: " (initial sync)" and " (step N)" when
/// the run had steps, none when there is one window (or a report from before they were kept).
pub fn critical_path_lines(report: &Report) -> Vec<(String, &[String])> {
    if report.critical_paths.len() <= 1 {
        return match report.critical_path.is_empty() {
            true => Vec::new(),
            false => vec![(String::new(), report.critical_path.as_slice())],
        };
    }
    report
        .critical_paths
        .iter()
        .filter(|w| !w.path.is_empty())
        .map(|w| {
            let label = match w.step {
                Some(step) => format!(" (step {})", step + 1),
                None => " (initial sync)".to_string(),
            };
            (label, w.path.as_slice())
        })
        .collect()
}

/// A drift row for the table and the summary: object, fields, detected, overwritten, age.
pub fn drift_row(d: &DriftRecord) -> [String; 5] {
    let since = |t: Option<u64>| {
        t.map(|t| format!("{} after", ms(t.saturating_sub(d.applied_ms))))
            .unwrap_or_else(|| "—".into())
    };
    let overwritten = match (d.reverted_ms, d.kept) {
        (Some(_), _) => format!(
            "{} (step {})",
            since(d.reverted_ms),
            d.reverted_in_step.map(|s| s + 1).unwrap_or(d.step + 1)
        ),
        (None, true) => "kept (expected)".into(),
        (None, false) => "still live".into(),
    };
    [
        format!("step {}: {}", d.step + 1, d.object),
        d.fields
            .iter()
            .map(|f| format!("{}: {} → {}", f.field, f.git, f.live))
            .collect::<Vec<_>>()
            .join(", "),
        since(d.detected_ms),
        overwritten,
        ms(d.age_ms),
    ]
}

#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;
    use crate::assert::Assertion;
    use crate::event::ObjectRef;
    use crate::timeline::{ImagePull, NotReady, ObjectTiming, PhaseSpan, Recovery};

    /// A failed namespace-loss run, with every kind of row filled in.
    pub fn failed_report() -> Report {
        let timeline = Timeline {
            scenario: "flux-namespace-loss".into(),
            run_id: "20261123T100000Z-ab12".into(),
            started_at: Some("2026-11-23T10:00:00Z".parse().unwrap()),
            finished_ms: 95_000,
            rebuild_ms: Some(30_000),
            stopped_early: None,
            phases: vec![
                PhaseSpan {
                    name: "cluster-create".into(),
                    step: None,
                    start_ms: 0,
                    duration_ms: Some(16_200),
                    ok: true,
                    message: None,
                },
                PhaseSpan {
                    name: "engine-install".into(),
                    step: None,
                    start_ms: 16_200,
                    duration_ms: Some(21_000),
                    ok: true,
                    message: None,
                },
                PhaseSpan {
                    name: "reconcile".into(),
                    step: Some(0),
                    start_ms: 50_000,
                    duration_ms: Some(30_000),
                    ok: true,
                    message: None,
                },
            ],
            recoveries: vec![Recovery {
                step: 0,
                disaster: "delete-namespace".into(),
                description: "delete namespaces users".into(),
                started_ms: 50_000,
                rto_ms: None,
                timed_out: true,
                budget_ms: None,
            }],
            objects: vec![
                ObjectTiming {
                    object: ObjectRef::new("Kustomization", "flux-system", "infrastructure"),
                    first_ready_ms: Some(1_900),
                    flapped: Some(crate::timeline::Flap {
                        at_ms: 2_400,
                        reason: "ReconciliationFailed".into(),
                        dependents: vec!["Kustomization/flux-system/apps".into()],
                    }),
                    ready: true,
                    ready_ms: Some(3_100),
                    api_ready_ms: Some(2_000),
                    revision: Some("main@sha1:0123abcd".into()),
                    not_ready: None,
                    depends_on: vec![],
                    wave: None,
                },
                ObjectTiming {
                    object: ObjectRef::new("Kustomization", "flux-system", "apps"),
                    first_ready_ms: None,
                    flapped: None,
                    ready: false,
                    ready_ms: None,
                    api_ready_ms: None,
                    revision: None,
                    not_ready: Some(NotReady {
                        reason: "HealthCheckFailed".into(),
                        message: "timeout waiting for: [Deployment/users/users-api status: 'InProgress']".into(),
                    }),
                    depends_on: vec![],
                    wave: None,
                },
            ],
            images: vec![
                ImagePull {
                    image: "docker.io/gitops-drill/demo-big:1".into(),
                    node: "drill-control-plane".into(),
                    step: None,
                    start_ms: 60_000,
                    pull_ms: Some(8_400),
                    size_bytes: Some(201_000_000),
                    failed: None,
                    pulled: 12,
                    present: 0,
                },
                ImagePull {
                    image: "docker.io/gitops-drill/missing:1".into(),
                    node: "drill-control-plane".into(),
                    step: None,
                    start_ms: 60_000,
                    pull_ms: None,
                    size_bytes: None,
                    failed: Some("ErrImagePull: not found".into()),
                    pulled: 0,
                    present: 0,
                },
            ],
            critical_path: vec![
                "GitRepository/flux-system/flux-system".into(),
                "Kustomization/flux-system/apps".into(),
            ],
            critical_paths: vec![
                WindowPath {
                    step: None,
                    path: vec!["cluster-create".into(), "engine-install".into()],
                },
                WindowPath {
                    step: Some(0),
                    path: vec![
                        "GitRepository/flux-system/flux-system".into(),
                        "Kustomization/flux-system/apps".into(),
                    ],
                },
            ],
            warnings: vec![],
            steps: vec![],
            drift: vec![],
            findings: vec![],
            versions: Default::default(),
            evidence: Vec::new(),
            probes: vec![crate::timeline::ProbeTiming {
                name: "users-api".into(),
                target: "users/users-api:8080/readyz".into(),
                started_ms: 30_000,
                attempts: 64,
                served: 52,
                outages: vec![crate::timeline::Outage {
                    step: Some(0),
                    from_ms: 60_400,
                    to_ms: Some(72_900),
                    duration_ms: 12_500,
                    reason: "HTTP 503: no endpoints available for service \"users-api\"".into(),
                }],
                served_at_end: true,
                ever_served: true,
            }],
            order_breaks: Vec::new(),
            order_checked: 0,
            prunes: vec![],
        };
        let assertions = vec![
            Assertion {
                measured_ms: None,
                name: "step 1 delete-namespace: recovered within RTO 1m".into(),
                passed: false,
                message: "did not recover within 1m: Kustomization/flux-system/apps (HealthCheckFailed: timeout)"
                    .into(),
            },
            Assertion {
                measured_ms: None,
                name: "all objects Ready".into(),
                passed: false,
                message: "1 of 2 not Ready: <apps> & \"quotes\"".into(),
            },
            Assertion {
                measured_ms: Some(21_000),
                name: "phase engine-install within 1m".into(),
                passed: true,
                message: "longest 21.0s".into(),
            },
        ];
        Report::new(&timeline, assertions, 60_000, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_learned_at_each_stage_are_merged_and_shown() {
        use crate::event::{EventKind, Versions};
        use crate::timeline::testkit::{at, run_started};
        let events = vec![
            run_started(0),
            at(
                1,
                EventKind::Versions(Versions {
                    drill: Some("0.1.0".into()),
                    node_image: Some("kindest/node:v1.34.4".into()),
                    ..Default::default()
                }),
            ),
            at(
                9_000,
                EventKind::Versions(Versions {
                    engine: Some("flux v2.9.5".into()),
                    kubernetes: Some("v1.34.4".into()),
                    ..Default::default()
                }),
            ),
        ];
        let report = Report::new(&crate::timeline::build(&events), vec![], 60_000, None);
        assert_eq!(
            report.versions_line().as_deref(),
            Some("drill 0.1.0 · flux v2.9.5 · Kubernetes v1.34.4 · node image kindest/node:v1.34.4")
        );
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(json["versions"]["engine"], "flux v2.9.5");
        assert!(table::render(&report).contains("\nran with drill 0.1.0 · flux v2.9.5"));
        assert!(markdown::render(&report, &[]).contains("Ran with drill 0.1.0"));
        // A report recorded before versions were kept has none, and says nothing of them.
        assert_eq!(fixtures::failed_report().versions_line(), None);
    }

    #[test]
    fn report_json_keeps_the_contract_names() {
        let json: serde_json::Value = serde_json::from_str(&fixtures::failed_report().to_json()).unwrap();
        for key in [
            "schema_version",
            "scenario",
            "result",
            "started_at",
            "rto_ms",
            "phases",
            "apps",
            "images",
            "critical_path",
            "assertions",
        ] {
            assert!(json.get(key).is_some(), "report.json lacks {key}");
        }
        assert_eq!(json["schema_version"], 1);
        assert_eq!(json["result"], "fail");
        assert_eq!(json["phases"][0]["name"], "cluster-create");
        assert_eq!(json["phases"][0]["duration_ms"], 16_200);
        assert_eq!(json["apps"][0]["ready_ms"], 3_100);
        assert_eq!(json["images"][0]["pull_ms"], 8_400);
        assert_eq!(json["assertions"][0]["passed"], false);
    }

    #[test]
    fn outcome_follows_assertions_and_errors() {
        let t = Timeline::default();
        let pass = Assertion {
            measured_ms: None,
            name: "a".into(),
            passed: true,
            message: String::new(),
        };
        let fail = Assertion {
            measured_ms: None,
            name: "b".into(),
            passed: false,
            message: String::new(),
        };
        assert_eq!(Report::new(&t, vec![pass.clone()], 1, None).result, Outcome::Pass);
        assert_eq!(Report::new(&t, vec![pass.clone(), fail], 1, None).result, Outcome::Fail);
        assert_eq!(
            Report::new(&t, vec![pass], 1, Some("docker down".into())).result,
            Outcome::Error
        );
        assert_eq!(Outcome::Error.exit_code(), 2);
    }
}
