//! Runs a plan: creates the cluster, installs and bootstraps the engine, waits for the
//! initial sync, injects each disaster, and times each recovery. The runner never
//! prints reports: it emits [`DrillEvent`]s (stamped in one place, [`Run::emit`]) and
//! the pure timeline/assert/report stages turn them into a verdict.

mod completeness;
mod context;
mod left_behind;
mod object_updates;
mod probes;
mod progress;
mod reuse;
mod settle;
mod setup;
pub mod signals;
mod steps;
mod watch;
mod watch_failures;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use bollard::Docker;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;

use crate::assert::{self, Assertion, ObjectCheckOutcome};
use crate::cluster::ClusterProvider;
use crate::engine::Engine;
use crate::event::{DrillEvent, EventClock, EventKind};
use crate::gitserve::{self, GitServer};
use crate::observe::state::ClusterState;
use crate::observe::{Observer, Received};
use crate::profile::Profile;
use crate::report::Report;
use crate::scenario::Disaster;
use crate::scenario::{ClusterSpec, OperatorAction, Plan, StepOutcome};
use crate::timeline;
pub use progress::Progress;

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub keep_cluster: bool,
    /// `--reuse-cluster`: the kept kind cluster to rehearse on (kept again at the end).
    pub reuse_cluster: Option<String>,
    pub profile: Profile,
    /// How long the first sync from Git may take before the run fails.
    pub bootstrap_timeout: Duration,
    /// Stop a wait whose failure is already certain ([`crate::observe::settled`]).
    pub fail_fast: bool,
    pub progress: bool,
    /// Game-day mode: a person goes ahead with each step (and each break-glass action).
    pub operator: Option<Operator>,
    /// Create the cluster even if it does not fit in the free memory and disk.
    pub skip_resource_check: bool,
    /// What the user allowed for `cluster: existing`.
    pub consent: crate::cluster::existing::Consent,
}

/// Who runs the game day, and whether drill waits for them (`--auto`: it does not).
#[derive(Debug, Clone)]
pub struct Operator {
    pub name: String,
    pub auto: bool,
}

/// What a run produced: the report and the raw events (written by the caller).
pub struct RunResult {
    pub report: Report,
    pub events: Vec<DrillEvent>,
    /// Failure evidence (file under the report folder, redacted bytes); empty on a pass.
    pub evidence: Vec<(String, Vec<u8>)>,
}

struct Run<'a> {
    plan: &'a Plan,
    opts: &'a RunOptions,
    clock: EventClock,
    events: Vec<DrillEvent>,
    progress: Progress,
    state: ClusterState,
    /// Assertions the runner itself decides (the initial sync).
    extra: Vec<Assertion>,
    object_checks: Vec<ObjectCheckOutcome>,
    work_dir: PathBuf,
    cluster: Option<std::sync::Arc<dyn ClusterProvider>>,
    server: Option<GitServer>,
    observer: Option<(Observer, UnboundedReceiver<Received>)>,
    /// While an update is applied: the instant its watcher received it, which the events
    /// it causes carry (not the later moment the runner got round to it).
    observed_at: Option<std::time::Instant>,
    /// Wall time of the current window's start, to ignore older kubelet events.
    window_started_at: jiff::Timestamp,
    last_wait_note: Instant,
    /// The commit the cluster must be at: the served one, then each commit drill makes.
    commit: String,
    /// Commits made by commit steps, by step index (for git-revert).
    commits_by_step: std::collections::BTreeMap<usize, String>,
    /// Hand edits still followed (until Git overwrites them or the run ends).
    drifts: Vec<crate::disaster::damage::live_edit::ActiveDrift>,
    /// The Docker connection the steps use (kind clusters only).
    docker: Option<Docker>,
    current_step: usize,
    /// Reconciles asked of the engine in this step: its recovery counts once each is handled.
    asked_reconciles: Vec<(crate::event::ObjectRef, String)>,
    engine: Option<std::sync::Arc<dyn Engine>>,
    /// Secret manifests restored in secret-bootstrap (key material: never printed).
    secrets: Vec<(crate::scenario::SecretName, serde_json::Value)>,
    /// `repo.credentials`, read at preflight; None once lost with the cluster.
    repo_auth: Option<crate::secrets::RepoAuth>,
    /// `repo.ssh-key`, for drill's own reads of an ssh:// source.
    repo_ssh: Option<crate::repo_ssh::SshIdentity>,
    /// The branch the engine follows: drill's served branch, or the remote's `ref`.
    branch: String,
    /// `images: mirror`: the pull-through cache, once started (it outlives cluster loss).
    mirror: Option<crate::cluster::mirror::PullThroughCache>,
    /// Watch failures not yet written as warnings.
    watch_failures: watch_failures::WatchFailures,
    /// The last reason said of each object not Ready.
    said: object_updates::Said,
    /// Held while the run lives: `drill clean` leaves a live run's cluster alone.
    lock: Option<crate::runlock::RunLock>,
    /// A watch panicked: every wait stops, and this is the run's error (exit 2).
    watch_panic: Option<String>,
    /// `expect.probes`: each one's state and attempts.
    probes: probes::Probes,
}

pub fn run_id() -> String {
    let now = jiff::Timestamp::now();
    let nanos = now.subsec_nanosecond().unsigned_abs();
    format!(
        "{}-{:04x}",
        now.strftime("%Y%m%dT%H%M%SZ"),
        (nanos ^ std::process::id()) & 0xffff
    )
}

/// kind cluster names become container names and hostnames: keep them short.
pub fn cluster_name(scenario: &str, run_id: &str) -> String {
    let short: String = scenario
        .chars()
        .take(20)
        .collect::<String>()
        .trim_end_matches('-')
        .to_string();
    format!("drill-{short}-{}", &run_id[run_id.len() - 4..])
}

pub async fn run(plan: &Plan, opts: &RunOptions, run_id: &str) -> RunResult {
    let work_dir = std::env::temp_dir().join(format!("drill-{run_id}"));
    let mut run = Run {
        plan,
        opts,
        clock: EventClock::start(),
        events: Vec::new(),
        progress: Progress::stderr(opts.progress),
        state: ClusterState::default(),
        extra: Vec::new(),
        object_checks: Vec::new(),
        work_dir,
        cluster: None,
        server: None,
        observer: None,
        window_started_at: jiff::Timestamp::now(),
        last_wait_note: Instant::now(),
        commit: String::new(),
        commits_by_step: Default::default(),
        drifts: Vec::new(),
        docker: None,
        observed_at: None,
        current_step: 0,
        asked_reconciles: Vec::new(),
        engine: None,
        secrets: Vec::new(),
        repo_auth: None,
        repo_ssh: None,
        branch: gitserve::BRANCH.to_string(),
        mirror: None,
        watch_failures: Default::default(),
        said: Default::default(),
        lock: None,
        watch_panic: None,
        probes: Default::default(),
    };
    run.emit(EventKind::RunStarted {
        scenario: plan.scenario.name.to_string(),
        run_id: run_id.to_string(),
    });
    run.note_start_versions();
    let outcome = run.execute_while_docker_lives(run_id).await;
    // A panicked watch made every wait stop short: that, not a verdict, is the outcome.
    let outcome = run.watch_panic.clone().map_or(outcome, |why| Err(anyhow!(why)));
    let evidence = run.save_evidence(outcome.is_err()).await;
    run.emit_probe_totals();
    run.emit(EventKind::RunFinished);
    run.teardown().await;
    let error = outcome.err().map(|e| format!("{e:#}"));
    verdict(plan, run, error, evidence)
}

impl Run<'_> {
    /// Executes the run; a kind cluster lives and dies with the Docker daemon, so the
    /// daemon's loss ends it, named as the cause.
    async fn execute_while_docker_lives(&mut self, run_id: &str) -> anyhow::Result<()> {
        // A kind cluster lives and dies with the Docker daemon: its loss ends the run.
        let docker = Docker::connect_with_local_defaults()
            .ok()
            .filter(|_| matches!(self.plan.scenario.cluster, ClusterSpec::Kind(_)));
        // Followed only when it answers now: a daemon that never ran did not go away.
        let docker = match docker {
            Some(d) if d.ping().await.is_ok() => Some(d),
            _ => None,
        };
        match docker {
            Some(docker) => {
                let lost = crate::cluster::daemon::lost(docker);
                tokio::pin!(lost);
                tokio::select! {
                    r = self.execute(run_id) => match r {
                        // A request can fail a moment before the daemon's event stream breaks
                        // (a stopping daemon removes its socket first and closes the stream
                        // when it exits): when the daemon is gone, it is the cause to name.
                        Err(e) => match tokio::time::timeout(Duration::from_secs(3), &mut lost).await {
                            Ok(message) => Err(e.context(message)),
                            Err(_) => match crate::cluster::daemon::unreachable().await {
                                Some(why) => Err(e.context(crate::cluster::daemon::message(Some("still open"), &why))),
                                None => Err(e),
                            },
                        },
                        ok => ok,
                    },
                    message = &mut lost => Err(anyhow!(message)),
                }
            }
            None => self.execute(run_id).await,
        }
    }
}

/// The finished run's events folded into its timeline, judged, and reported.
fn verdict(plan: &Plan, mut run: Run<'_>, error: Option<String>, evidence: Vec<(String, Vec<u8>)>) -> RunResult {
    let timeline = timeline::build(&run.events);
    let mut assertions = std::mem::take(&mut run.extra);
    assertions.extend(assert::evaluate(&plan.scenario.expect, &timeline, &run.object_checks));
    if plan.scenario.disasters.is_empty() {
        assertions.push(assert::rebuild_within_budget(&plan.scenario.expect, &timeline));
    }
    let report = Report::new(&timeline, assertions, plan.scenario.expect.rto.as_millis(), error);
    RunResult {
        report,
        events: run.events,
        evidence,
    }
}

impl Run<'_> {
    fn emit(&mut self, kind: EventKind) {
        // Watch failures are written as one warning per cause when the wait they
        // happened in ends.
        if matches!(
            kind,
            EventKind::PhaseFinished { .. }
                | EventKind::Recovered { .. }
                | EventKind::RecoveryTimedOut { .. }
                | EventKind::RunFinished
        ) {
            for message in self.watch_failures.take_warnings() {
                self.record(EventKind::Warning { message });
            }
        }
        self.record(kind);
    }

    /// What the terminal shows between typed events, recorded like any other event.
    fn note(&mut self, message: &str) {
        self.emit(EventKind::Note {
            message: message.to_string(),
        });
    }

    /// Stamps an event (the one place time is taken), shows it, keeps it.
    fn record(&mut self, kind: EventKind) {
        let ev = match self.observed_at {
            Some(at) => self.clock.stamp_at(kind, at),
            None => self.clock.stamp(kind),
        };
        self.progress.event(&ev);
        left_behind::record(&ev.kind);
        self.events.push(ev);
    }

    /// Runs `f` as a named phase: PhaseStarted, then PhaseFinished with its outcome.
    async fn phase<T>(&mut self, name: &str, f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        self.emit(EventKind::PhaseStarted { phase: name.into() });
        let result = f.await;
        let message = result.as_ref().err().map(|e| format!("{e:#}"));
        self.emit(EventKind::PhaseFinished {
            phase: name.into(),
            ok: result.is_ok(),
            message,
        });
        // Fault injection for the cleanup-after-panic test; not in release builds.
        #[cfg(debug_assertions)]
        if std::env::var("DRILL_FAULT_PANIC_AFTER").is_ok_and(|p| p == name) {
            panic!("DRILL_FAULT_PANIC_AFTER={name}: a deliberate panic, to test the cleanup");
        }
        result
    }

    async fn execute(&mut self, run_id: &str) -> Result<()> {
        let plan = self.plan;
        let install = setup::resolve_install(plan, &self.opts.profile).await?;
        // A manifest drill built lives in its own private folder until the run is over.
        let _built_install = install.scratch;
        let engine = setup::engine_for(plan, install.path)?;
        self.engine = Some(engine.clone());
        if let Some(origin) = install.origin {
            self.emit(EventKind::Versions(crate::event::Versions {
                engine_from: Some(origin),
                ..Default::default()
            }));
        }
        self.preflight()?;
        // Connected once the checks that need no Docker have passed: a refusal is the same
        // whether Docker runs or not.
        let docker = Docker::connect_with_local_defaults().context("failed to connect to Docker");
        // The same handle serves the steps: a reconnect would fail on its own (the socket
        // file is gone) while a restarting daemon still holds the event stream open.
        let docker = match (&plan.scenario.cluster, &self.opts.reuse_cluster) {
            (ClusterSpec::Kind(kind_spec), None) => self.create_and_bootstrap(kind_spec, docker, run_id).await?,
            (ClusterSpec::Kind(kind_spec), Some(name)) => self.reuse_and_bootstrap(kind_spec, docker, name).await?,
            (ClusterSpec::Existing(existing), None) => self.attach(existing, docker).await?,
            (ClusterSpec::Existing(existing), Some(name)) => return Err(reuse::not_for_existing(name, existing)),
        };
        self.docker = Some(docker);

        if !self.initial_sync().await {
            return Ok(());
        }
        self.start_probes().await?;
        let baseline = self.state.ready_set();
        for (step, d) in plan.scenario.disasters.iter().enumerate() {
            // Diagnostics of the step carry its number (drill.log, -v).
            let span = tracing::info_span!("step", n = step + 1);
            tracing::Instrument::instrument(self.run_step(step, d, engine.as_ref(), &baseline), span).await?;
        }
        self.settle_before_verdict().await;

        if let Some(cluster) = &self.cluster {
            let client = cluster.client().await?;
            self.object_checks = crate::runner::checks::evaluate(&client, &plan.scenario.expect.objects).await;
            if plan.scenario.expect.complete {
                let rules = engine.rules();
                let tracked = |kind: &str| {
                    rules.rule(kind).is_some()
                        || crate::observe::rules::is_managed_leaf(kind)
                        || matches!(kind, "Job" | "PersistentVolumeClaim")
                };
                let found = completeness::check(&client, &self.state.inventoried(), tracked).await;
                self.extra.push(found.assertion());
            }
        }
        Ok(())
    }

    /// Before anything exists: a key that is missing or cannot decrypt the fleet is an
    /// error now, not a timeout ten minutes into the rebuild.
    fn preflight(&mut self) -> Result<()> {
        let preflight = crate::secrets::preflight(self.plan)?;
        for restored in preflight.restored {
            self.note(&format!("secret to restore: {}", restored.description));
            self.secrets.push((restored.source, restored.manifest));
        }
        match &preflight.repo_auth {
            Some(auth) if auth.is_per_run() => {
                self.note("the served repo asks a per-run credential (restored as the source's Secret)")
            }
            Some(auth) => self.note(&format!("secret to restore: repo credentials (from {})", auth.origin)),
            None => {}
        }
        self.repo_auth = preflight.repo_auth;
        self.repo_ssh = preflight.repo_ssh;
        for message in preflight.warnings {
            self.emit(EventKind::Warning { message });
        }
        Ok(())
    }

    /// Window 0: the first sync from Git. Its failure is a verdict about the fleet, not a
    /// drill error; returns whether it synced.
    async fn initial_sync(&mut self) -> bool {
        let started = Instant::now();
        let deadline = started + self.opts.bootstrap_timeout;
        self.emit(EventKind::PhaseStarted {
            phase: crate::timeline::INITIAL_SYNC.into(),
        });
        let (synced, waiting) = self.wait_recovered(&BTreeSet::new(), deadline).await;
        let message = (!synced).then(|| format!("not Ready: {waiting}"));
        self.emit(EventKind::PhaseFinished {
            phase: crate::timeline::INITIAL_SYNC.into(),
            ok: synced,
            message: message.clone(),
        });
        let name = format!(
            "initial sync from Git within {}",
            humantime::format_duration(self.opts.bootstrap_timeout)
        );
        let (passed, message) = match message {
            Some(message) => (false, message),
            None => (true, format!("{} objects Ready", self.state.ready_set().len())),
        };
        self.extra.push(Assertion {
            measured_ms: Some(started.elapsed().as_millis() as u64),
            name,
            passed,
            message,
        });
        synced
    }

    /// One step: announce, inject, then wait for what it must end in.
    async fn run_step(
        &mut self,
        step: usize,
        d: &Disaster,
        engine: &dyn Engine,
        baseline: &BTreeSet<crate::event::ObjectRef>,
    ) -> Result<()> {
        let plan = self.plan;
        self.current_step = step;
        self.asked_reconciles.clear();
        self.window_started_at = jiff::Timestamp::now();
        let what = d.describe(&plan.scenario.disasters, plan.reverts.get(&step).copied());
        self.emit(EventKind::DisasterStarted {
            step,
            disaster: d.kind().into(),
            description: what.clone(),
            expects: d.outcome(),
            budget_ms: d.within().map(|w| w.as_millis()),
        });
        self.operator_go_ahead(step, &format!("step {}: {what}", step + 1))
            .await?;
        let client = d.as_step().inject(self, step).await?;
        if d.operator_action() == Some(OperatorAction::ReconcileNow) {
            let asked = engine.reconcile_now(&client).await?;
            self.emit(EventKind::OperatorAction {
                step,
                action: format!("reconcile-now ({} objects annotated)", asked.len()),
            });
            self.asked_reconciles.extend(asked);
        }
        let budget = d.within().unwrap_or(plan.scenario.expect.rto).0;
        // After a change to Git, the desired state is what Git now holds (its
        // inventories), not what was there before; after damage, it is both.
        let baseline = if d.as_step().changes_desired_state() {
            BTreeSet::new()
        } else {
            baseline.clone()
        };
        match d.outcome() {
            StepOutcome::Recovered => self.wait_step_recovered(step, d, &baseline, budget).await,
            StepOutcome::Degraded => {
                if !self.wait_degraded(step, Instant::now() + budget).await {
                    self.emit(EventKind::DegradeTimedOut { step });
                }
            }
            StepOutcome::Nothing => {}
        }
        Ok(())
    }

    async fn remove_mirror(&mut self, cluster: &str) {
        let docker = match Docker::connect_with_local_defaults() {
            Ok(docker) => docker,
            Err(err) => {
                self.note(&format!(
                    "warning: failed to connect to Docker: {err}; run `drill clean` to remove the pull-through cache of {cluster}"
                ));
                return;
            }
        };
        if let Some(cache) = &self.mirror {
            // What went through it, said once before it goes.
            let line = match crate::cluster::mirror::cached_repositories(&docker, cache).await {
                Ok(repos) => format!(
                    "pull-through cache {} held {} repositories: {}",
                    cache.container,
                    repos.len(),
                    repos.join(", ")
                ),
                Err(err) => format!("warning: {err:#}"),
            };
            self.note(&line);
        }
        let removed = crate::cluster::mirror::remove(&docker, cluster).await;
        if let Err(err) = removed {
            self.note(&format!(
                "warning: failed to remove the pull-through cache of {cluster}: {err:#}; run `drill clean`"
            ));
        }
        self.mirror = None;
    }

    /// When the run failed or erred with its cluster still there: the evidence of the
    /// objects not Ready (bounded to half a minute; an unanswering cluster gives none).
    async fn save_evidence(&mut self, errored: bool) -> Vec<(String, Vec<u8>)> {
        let failing = self.state.not_ready();
        // A failed wait, or a phase that failed (an install, a sync that never came).
        let timed_out = (self.events.iter())
            .any(|e| e.kind.is_failed_wait() || matches!(e.kind, EventKind::PhaseFinished { ok: false, .. }));
        let (Some(cluster), Some(engine)) = (self.cluster.clone(), self.engine.clone()) else {
            return Vec::new();
        };
        if failing.is_empty() || !(errored || timed_out) {
            return Vec::new();
        }
        let secrets: Vec<serde_json::Value> = self.secrets.iter().map(|(_, m)| m.clone()).collect();
        let redactor = evidence::Redactor::new(&secrets, self.repo_auth.as_ref().map(|a| a.password.as_str()));
        let collect = async {
            let client = cluster.client().await.ok()?;
            Some(evidence::collect(&client, engine.rules(), &failing, &redactor).await)
        };
        let files = tokio::time::timeout(Duration::from_secs(30), collect)
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        if !files.is_empty() {
            self.emit(EventKind::EvidenceSaved {
                files: files.iter().map(|(name, _)| name.clone()).collect(),
            });
        }
        files
    }

    async fn teardown(&mut self) {
        self.observer = None;
        self.server = None;
        // From here on, an interrupt must not delete a cluster the user asked to keep.
        signals::unregister_cluster();
        if let Some(cluster) = self.cluster.take() {
            if !cluster.owned() {
                self.note(&format!(
                    "left context {} as the steps left it: drill never deletes a cluster it did not create",
                    cluster.name()
                ));
                for what in left_behind::take().map(|(_, left)| left).unwrap_or_default() {
                    self.note(&format!("  still so: {what}"));
                }
                self.remove_work_dir_unless_reused();
                return;
            }
            if self.opts.keeps_cluster() {
                self.note(&format!(
                    "keeping cluster {} (kubeconfig {})",
                    cluster.name(),
                    cluster.kubeconfig().display()
                ));
                if let Some(cache) = &self.mirror {
                    self.note(&format!("keeping its pull-through cache {}", cache.container));
                }
                return;
            }
            if let Err(err) = cluster.delete().await {
                self.note(&format!(
                    "warning: failed to delete cluster {}: {err:#}; run `drill clean`",
                    cluster.name()
                ));
            }
            // The mirror may have been started before a failure left `self.mirror` unset.
            if self.plan.scenario.images == crate::scenario::ImageMode::Mirror {
                self.remove_mirror(cluster.name()).await;
            }
        }
        self.remove_work_dir_unless_reused();
    }
}

pub mod checks;
mod evidence;
pub use setup::mirror_settings;
