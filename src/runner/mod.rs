//! Runs a plan: creates the cluster, installs and bootstraps the engine, waits for the
//! initial sync, injects each disaster, and times each recovery. The runner never
//! prints reports: it emits [`DrillEvent`]s (stamped in one place, [`Run::emit`]) and
//! the pure timeline/assert/report stages turn them into a verdict.

mod context;
mod progress;
pub mod signals;
mod steps;
mod watch_failures;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use bollard::Docker;
use kube::Client;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio::time::Instant;

use crate::assert::{self, Assertion, ObjectCheckOutcome};
use crate::cluster::ClusterProvider;
use crate::cluster::kind::provider::KindProvider;
use crate::cluster::kind::{effective_config, kind_network_gateway};
use crate::engine::{self, Engine};
use crate::event::{DrillEvent, EventClock, EventKind, ObjectRef};
use crate::gitserve::{self, GitServer, ServedRepo};
use crate::observe::kubelet::PullFact;
use crate::observe::state::ClusterState;
use crate::observe::{Observer, Update};
use crate::profile::Profile;
use crate::report::Report;
use crate::scenario::{ClusterSpec, ExistingCluster, OperatorAction, Plan, RepoSource, StepOutcome};
use crate::timeline;
pub use progress::Progress;

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub keep_cluster: bool,
    pub profile: Profile,
    /// How long the first sync from Git may take before the run fails.
    pub bootstrap_timeout: Duration,
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
    observer: Option<(Observer, UnboundedReceiver<Update>)>,
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
    engine: Option<std::sync::Arc<dyn Engine>>,
    /// Secret manifests restored in secret-bootstrap (key material: never printed).
    secrets: Vec<(crate::scenario::SecretName, serde_json::Value)>,
    /// `repo.credentials`, read at preflight; None once lost with the cluster.
    repo_auth: Option<crate::secrets::RepoAuth>,
    /// The branch the engine follows: drill's served branch, or the remote's `ref`.
    branch: String,
    /// `images: mirror`: the pull-through cache, once started (it outlives cluster loss).
    mirror: Option<crate::cluster::mirror::PullThroughCache>,
    /// Watch failures not yet written as warnings.
    watch_failures: watch_failures::WatchFailures,
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
        current_step: 0,
        engine: None,
        secrets: Vec::new(),
        repo_auth: None,
        branch: gitserve::BRANCH.to_string(),
        mirror: None,
        watch_failures: Default::default(),
    };
    run.emit(EventKind::RunStarted {
        scenario: plan.scenario.name.to_string(),
        run_id: run_id.to_string(),
    });
    // A kind cluster lives and dies with the Docker daemon: its loss ends the run.
    let docker = Docker::connect_with_local_defaults()
        .ok()
        .filter(|_| matches!(plan.scenario.cluster, ClusterSpec::Kind(_)));
    // Followed only when it answers now: a daemon that never ran did not go away.
    let docker = match docker {
        Some(d) if d.ping().await.is_ok() => Some(d),
        _ => None,
    };
    let outcome = match docker {
        Some(docker) => {
            let lost = crate::cluster::daemon::lost(docker);
            tokio::pin!(lost);
            tokio::select! {
                r = run.execute(run_id) => match r {
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
        None => run.execute(run_id).await,
    };
    run.emit(EventKind::RunFinished);
    run.teardown().await;

    let timeline = timeline::build(&run.events);
    let mut assertions = std::mem::take(&mut run.extra);
    assertions.extend(assert::evaluate(&plan.scenario.expect, &timeline, &run.object_checks));
    let error = outcome.err().map(|e| format!("{e:#}"));
    let report = Report::new(&timeline, assertions, plan.scenario.expect.rto.as_millis(), error);
    RunResult {
        report,
        events: run.events,
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
        let ev = self.clock.stamp(kind);
        self.progress.event(&ev);
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
        let engine = engine::for_plan(plan, &self.opts.profile)?;
        self.engine = Some(engine.clone());
        // Before anything exists: a key that is missing or cannot decrypt the fleet is an
        // error now, not a timeout ten minutes into the rebuild.
        let preflight = crate::secrets::preflight(plan)?;
        for restored in preflight.restored {
            self.note(&format!("secret to restore: {}", restored.description));
            self.secrets.push((restored.source, restored.manifest));
        }
        if let Some(auth) = &preflight.repo_auth {
            self.note(&format!("secret to restore: repo credentials (from {})", auth.origin));
        }
        self.repo_auth = preflight.repo_auth;
        for message in preflight.warnings {
            self.emit(EventKind::Warning { message });
        }
        // Connected once the checks that need no Docker have passed: a refusal is the same
        // whether Docker runs or not.
        let docker = Docker::connect_with_local_defaults().context("failed to connect to Docker");
        // The same handle serves the steps: a reconnect would fail on its own (the socket
        // file is gone) while a restarting daemon still holds the event stream open.
        let docker = match &plan.scenario.cluster {
            ClusterSpec::Kind(kind_spec) => self.create_and_bootstrap(kind_spec, docker, run_id).await?,
            ClusterSpec::Existing(existing) => self.attach(existing, docker).await?,
        };
        self.docker = Some(docker);

        // Window 0: the first sync from Git. Its failure is a verdict about the fleet, not a drill error.
        let deadline = Instant::now() + self.opts.bootstrap_timeout;
        self.emit(EventKind::PhaseStarted {
            phase: "initial-sync".into(),
        });
        let (synced, waiting) = self.wait_recovered(&BTreeSet::new(), deadline).await;
        let message = (!synced).then(|| format!("not Ready: {waiting}"));
        self.emit(EventKind::PhaseFinished {
            phase: "initial-sync".into(),
            ok: synced,
            message: message.clone(),
        });
        let name_initial = format!(
            "initial sync from Git within {}",
            humantime::format_duration(self.opts.bootstrap_timeout)
        );
        if let Some(message) = message {
            self.extra.push(Assertion {
                name: name_initial,
                passed: false,
                message,
            });
            return Ok(());
        }
        self.extra.push(Assertion {
            name: name_initial,
            passed: true,
            message: format!("{} objects Ready", self.state.ready_set().len()),
        });
        let baseline = self.state.ready_set();

        for (step, d) in plan.scenario.disasters.iter().enumerate() {
            self.current_step = step;
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
                let n = engine.reconcile_now(&client).await?;
                self.emit(EventKind::OperatorAction {
                    step,
                    action: format!("reconcile-now ({n} objects annotated)"),
                });
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
                StepOutcome::Recovered => {
                    // Keep watching past the budget, so an over-budget recovery is still measured.
                    let deadline = Instant::now() + budget + budget.min(Duration::from_secs(600));
                    let (done, _) = self.wait_recovered(&baseline, deadline).await;
                    self.emit(if done {
                        EventKind::Recovered { step }
                    } else {
                        EventKind::RecoveryTimedOut { step }
                    });
                    if done {
                        d.as_step().after_recovery(self, step).await;
                    }
                }
                StepOutcome::Degraded => {
                    if !self.wait_degraded(step, Instant::now() + budget).await {
                        self.emit(EventKind::DegradeTimedOut { step });
                    }
                }
                StepOutcome::Nothing => {}
            }
        }

        if let Some(cluster) = &self.cluster {
            let client = cluster.client().await?;
            self.object_checks = crate::runner::checks::evaluate(&client, &plan.scenario.expect.objects).await;
        }
        Ok(())
    }

    /// A kind cluster of drill's own: create it, serve the repo, install the engine,
    /// restore the secrets, bootstrap the root sync, start watching.
    async fn create_and_bootstrap(
        &mut self,
        kind_spec: &crate::scenario::KindCluster,
        docker: Result<Docker>,
        run_id: &str,
    ) -> Result<Docker> {
        let plan = self.plan;
        let kind_config = plan.kind_config.clone().context("no kind config")?;
        if plan.scenario.images == crate::scenario::ImageMode::Mirror {
            mirror_settings(&self.opts.profile)?;
        }
        if !self.opts.skip_resource_check {
            fits_on_this_machine(docker.as_ref().ok(), &plan.kind_nodes).await?;
        }
        let docker = &docker?;
        std::fs::create_dir_all(&self.work_dir)
            .with_context(|| format!("failed to create {}", self.work_dir.display()))?;

        // The repo the cluster syncs from, pinned before anything else can change it.
        let (served, commit) = match &plan.repo {
            RepoSource::Local { dir, git_ref, .. } => {
                let served = ServedRepo::prepare(dir, git_ref, &self.work_dir.join("git")).await?;
                served.require_folder(&plan.entry_path().unwrap_or_default()).await?;
                let commit = served.served_commit.clone();
                self.note(&format!(
                    "serving {} at {} (served as commit {})",
                    dir.display(),
                    &served.source_commit[..12],
                    &commit[..12]
                ));
                (Some(served), commit)
            }
            RepoSource::Remote { url, git_ref, .. } => {
                // Also the preflight of the credentials: a wrong token fails here, not
                // ten minutes into a wait.
                let commit = gitserve::remote_commit(url, git_ref, self.repo_auth.as_ref())
                    .await
                    .context("repo.url")?;
                self.note(&format!(
                    "syncing from {url} branch {git_ref} at {}",
                    &commit[..12.min(commit.len())]
                ));
                self.branch = git_ref.clone();
                (None, commit)
            }
        };

        let name = cluster_name(plan.scenario.name.as_str(), run_id);
        let effective = self.work_dir.join("kind-config.json");
        effective_config(
            &kind_config,
            kind_spec.node_image.as_deref(),
            &self.opts.profile,
            (run_id, &crate::cluster::owner::source_dir()?),
            &effective,
        )?;
        let kubeconfig = self.work_dir.join("kubeconfig");
        // Another run's cluster by the same name (the run suffix is short) must not
        // become this run's to delete on an interrupt.
        let taken = crate::cluster::kind::containers_of(docker, &name).await?;
        if !taken.is_empty() {
            bail!(
                "a kind cluster named {name} already exists ({}): another run's; not touching it, run again for a new name",
                taken.join(", ")
            );
        }
        // Kept clusters stay after an interrupt or a panic too.
        if !self.opts.keep_cluster {
            signals::register_cluster(&name, &kubeconfig, &self.work_dir);
        }
        let cluster = self
            .phase(
                "cluster-create",
                KindProvider::create(&name, &effective, &kubeconfig, run_id),
            )
            .await?;
        let cluster: std::sync::Arc<dyn ClusterProvider> = std::sync::Arc::new(cluster);
        self.cluster = Some(cluster.clone());

        if let Some(served) = served {
            let gateway = kind_network_gateway(docker).await?;
            let bind = std::net::SocketAddr::new(gateway, 0);
            let server = GitServer::start(served, bind, self.repo_auth.clone()).await?;
            self.note(&format!("  Git server {} on the kind network", server.url()));
            self.server = Some(server);
        }

        let client = self.install_engine(cluster.as_ref()).await?;
        self.start_observer(client).await?;
        self.commit = commit;
        Ok(docker.clone())
    }

    /// An existing cluster, let through the blast-radius guard: nothing is created or
    /// installed; its engine already syncs from its own source, at whatever revision.
    async fn attach(&mut self, existing: &ExistingCluster, docker: Result<Docker>) -> Result<Docker> {
        let plan = self.plan;
        let base = plan.file.parent().map(std::path::Path::to_path_buf).unwrap_or_default();
        let kubeconfig = crate::cluster::existing::kubeconfig_path(existing.kubeconfig.as_deref(), &base)?;
        crate::cluster::existing::check_consent(&existing.context, &self.opts.consent)?;
        let docker = docker?;
        let (cluster, place) =
            crate::cluster::existing::guard(&existing.context, &kubeconfig, &self.opts.consent, &docker).await?;
        self.note(&format!("existing cluster, context {}: {place}", existing.context));
        // Say what will be destroyed before anything is touched.
        for (i, d) in plan.scenario.disasters.iter().enumerate() {
            let what = d.describe(&plan.scenario.disasters, plan.reverts.get(&i).copied());
            self.note(&format!("  step {} will: {what}", i + 1));
        }
        let cluster: std::sync::Arc<dyn ClusterProvider> = std::sync::Arc::new(cluster);
        self.cluster = Some(cluster.clone());
        let client = cluster.client().await?;
        self.start_observer(client).await?;
        // No pinned commit: Ready at the revision the cluster's own source holds.
        self.commit = String::new();
        Ok(docker)
    }

    /// Installs the engine (timed), restores the secrets outside Git (timed when there
    /// are any), and creates the root sync from the served repo.
    async fn install_engine(&mut self, cluster: &dyn ClusterProvider) -> Result<Client> {
        let engine = self.engine.clone().context("no engine")?;
        match self.plan.scenario.images {
            crate::scenario::ImageMode::Cold => {}
            crate::scenario::ImageMode::Preloaded => self.preload_images(cluster, engine.as_ref()).await?,
            crate::scenario::ImageMode::Mirror => self.use_mirror(cluster, engine.as_ref()).await?,
        }
        let (url, served) = match (&self.server, &self.plan.repo) {
            (Some(server), _) => (engine.repo_url(server.addr, &server.repo.name), Some(server.addr)),
            (None, RepoSource::Remote { url, .. }) => (url.clone(), None),
            (None, RepoSource::Local { .. }) => return Err(anyhow!("no Git server for the local checkout")),
        };
        let client = cluster.client().await?;
        let (c, e) = (client.clone(), engine.clone());
        self.phase("engine-install", async move { e.install(&c).await }).await?;
        let secrets: Vec<serde_json::Value> = self.secrets.iter().map(|(_, m)| m.clone()).collect();
        let auth = self.repo_auth.clone();
        if engine::has_secret_bootstrap(engine.as_ref(), &secrets, auth.as_ref()) {
            let (c, e, u) = (client.clone(), engine.clone(), url.clone());
            self.phase("secret-bootstrap", async move {
                engine::secret_bootstrap(e.as_ref(), &c, &u, &secrets, auth.as_ref()).await
            })
            .await?;
        }
        engine.bootstrap(&client, &url, served, &self.branch).await?;
        Ok(client)
    }

    /// `images: preloaded`: every image the rebuild needs, pulled into every node before
    /// the engine starts (timed); one that cannot be pulled is a warning, and the
    /// rebuild shows what it costs.
    async fn preload_images(&mut self, cluster: &dyn ClusterProvider, engine: &dyn Engine) -> Result<()> {
        let RepoSource::Local { dir, .. } = &self.plan.repo else {
            return Ok(());
        };
        let entry = self.plan.entry_path().unwrap_or_default();
        let images: Vec<String> = crate::images::needed_images(engine.install_manifest(), dir, &entry)
            .into_iter()
            .map(|i| i.image)
            .collect();
        self.note(&format!("preloading {} image(s) into every node", images.len()));
        let docker = Docker::connect_with_local_defaults().context("failed to connect to Docker")?;
        let name = cluster.name().to_string();
        let failures = self
            .phase("image-preload", async move {
                crate::cluster::preload::preload(&docker, &name, &images).await
            })
            .await?;
        for f in failures {
            self.emit(EventKind::Warning {
                message: format!("could not preload {} into {}: {}", f.image, f.node, f.output),
            });
        }
        Ok(())
    }

    /// `images: mirror`: starts the pull-through cache with the first cluster, and points
    /// every node of this one at it (timed together as `image-mirror`). After a cluster
    /// loss only the pointing is left: the cache, and what it holds, survived.
    async fn use_mirror(&mut self, cluster: &dyn ClusterProvider, engine: &dyn Engine) -> Result<()> {
        let (image, upstream) = mirror_settings(&self.opts.profile)?;
        let mut registries: BTreeSet<String> = BTreeSet::new();
        if let RepoSource::Local { dir, .. } = &self.plan.repo {
            let entry = self.plan.entry_path().unwrap_or_default();
            registries.extend(
                crate::images::needed_images(engine.install_manifest(), dir, &entry)
                    .iter()
                    .map(|i| crate::cluster::mirror::registry_of(&i.image)),
            );
        }
        let docker = Docker::connect_with_local_defaults().context("failed to connect to Docker")?;
        let existing = self.mirror.clone();
        let name = cluster.name().to_string();
        if existing.is_none() {
            signals::register_mirror(&name);
        }
        let cache = self
            .phase("image-mirror", async move {
                let cache = match existing {
                    Some(cache) => cache,
                    None => crate::cluster::mirror::start(&docker, &name, &image, &upstream).await?,
                };
                crate::cluster::mirror::point_nodes_at(&docker, &name, &cache, &registries).await?;
                Ok(cache)
            })
            .await?;
        if self.mirror.is_none() {
            self.note(&format!(
                "pulling through cache {} (in front of {}); it outlives the cluster",
                cache.container, cache.upstream
            ));
        }
        self.mirror = Some(cache);
        Ok(())
    }

    fn state_deleted_in(&self, namespaces: &[String]) -> Vec<ObjectRef> {
        self.events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::ObjectObserved { object, .. } if namespaces.contains(&object.namespace) => {
                    Some(object.clone())
                }
                _ => None,
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    async fn start_observer(&mut self, client: Client) -> Result<()> {
        let (tx, rx) = unbounded_channel();
        let engine = self.engine.as_ref().context("no engine")?;
        let observer = Observer::start(client, engine.rules(), tx).await?;
        self.observer = Some((observer, rx));
        Ok(())
    }

    /// Waits, driven by watch updates, until the cluster has recovered or `deadline`
    /// passes. Returns whether it recovered and, if not, what it was still waiting for.
    async fn wait_recovered(&mut self, baseline: &BTreeSet<ObjectRef>, deadline: Instant) -> (bool, String) {
        let Some(engine) = self.engine.clone() else {
            return (false, "no engine".into());
        };
        let (root, source) = engine.roots();
        loop {
            // Judge only on everything the watchers have reported so far.
            while let Some(u) = self.observer.as_mut().and_then(|(_, rx)| rx.try_recv().ok()) {
                self.apply(u);
            }
            let commit = self.commit.clone();
            let status = self.state.recovery(engine.rules(), &root, &source, &commit, baseline);
            let unhealed = self.unhealed_drift();
            if status.complete && unhealed.is_empty() {
                return (true, String::new());
            }
            let waiting: Vec<String> = status
                .waiting_for
                .iter()
                .map(|(o, why)| format!("{o} ({why})"))
                .chain(
                    unhealed
                        .iter()
                        .map(|o| format!("{o} (hand edit not overwritten by Git yet)")),
                )
                .collect();
            if self.last_wait_note.elapsed() > Duration::from_secs(20) {
                self.last_wait_note = Instant::now();
                self.note(&format!(
                    "  waiting for {} object(s): {}",
                    waiting.len(),
                    waiting.iter().take(3).cloned().collect::<Vec<_>>().join("; ")
                ));
            }
            let Some((_, rx)) = self.observer.as_mut() else {
                return (false, "no observer".into());
            };
            let update = tokio::select! {
                u = rx.recv() => u,
                _ = tokio::time::sleep_until(deadline) => return (false, waiting.join("; ")),
                // Re-print what is being waited for even when nothing changes.
                _ = tokio::time::sleep(Duration::from_secs(21)) => continue,
            };
            match update {
                Some(u) => self.apply(u),
                None => return (false, "the watchers stopped".into()),
            }
        }
    }

    fn apply(&mut self, update: Update) {
        match update {
            Update::Object(o) => {
                let o = *o;
                if self.engine.as_ref().is_some_and(|e| (e.rules().saw_drift)(&o)) {
                    self.engine_event(&o.object, "");
                }
                let previous = self.state.apply(o.clone());
                if previous.is_none() {
                    self.emit(EventKind::ObjectObserved {
                        object: o.object.clone(),
                        depends_on: o.depends_on.clone(),
                        wave: o.wave,
                    });
                }
                let was_ready = previous.as_ref().is_some_and(|p| p.ready && p.present);
                let same_reason = previous
                    .as_ref()
                    .is_some_and(|p| p.reason == o.reason && p.message == o.message && !p.ready);
                if o.ready && o.present && !was_ready {
                    self.emit(EventKind::ObjectReady {
                        object: o.object,
                        revision: o.revision,
                        api_transition: o.api_transition,
                    });
                } else if !(o.ready && o.present) && (was_ready || !same_reason) && previous.is_some() {
                    self.emit(EventKind::ObjectNotReady {
                        object: o.object,
                        reason: o.reason,
                        message: o.message,
                    });
                }
            }
            Update::Pull { fact, node, at } => {
                // The Events watch lists old events too; only pulls of this window count.
                if at.is_some_and(|t| t < self.window_started_at - jiff::SignedDuration::from_secs(2)) {
                    return;
                }
                let kind = match fact {
                    PullFact::Pulling { image } => EventKind::ImagePulling { image, node },
                    PullFact::Pulled {
                        image,
                        kubelet_ms,
                        size_bytes,
                    } => EventKind::ImagePulled {
                        image,
                        node,
                        size_bytes,
                        kubelet_ms,
                    },
                    PullFact::Failed { image, reason, message } => EventKind::ImagePullFailed {
                        image: image.unwrap_or_else(|| "?".into()),
                        node,
                        reason,
                        message,
                    },
                };
                self.emit(kind);
            }
            Update::Live { object, value } => self.live_changed(&object, value.as_ref()),
            Update::EngineEvent { object, message, .. } => self.engine_event(&object, &message),
            Update::WatchError {
                watch,
                cause,
                message,
                at,
            } => self
                .watch_failures
                .record(self.clock.ms_at(at), &watch, &cause, &message),
        }
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
                let _ = std::fs::remove_dir_all(&self.work_dir);
                return;
            }
            if self.opts.keep_cluster {
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
        let _ = std::fs::remove_dir_all(&self.work_dir);
    }
}

/// `images: mirror`'s cache image and upstream, from the profile; an error naming the
/// missing setting otherwise (before anything is created).
pub fn mirror_settings(profile: &Profile) -> Result<(String, String)> {
    let upstream = crate::cluster::mirror::upstream_for(profile.registry_mirror.as_deref()).context(
        "`images: mirror` puts a pull-through cache in front of the profile's registry mirror, \
         and this profile names none (DRILL_REGISTRY_MIRROR); `./hack/testbed up` writes one",
    )?;
    let image = profile
        .mirror_image
        .clone()
        .unwrap_or_else(|| crate::cluster::mirror::DEFAULT_IMAGE.to_string());
    Ok((image, upstream))
}

/// Refuses a cluster that would not fit in the free memory or disk: it would half-start
/// and the run would time out as if the fleet were broken.
async fn fits_on_this_machine(docker: Option<&Docker>, kind_nodes: &[String]) -> Result<()> {
    // Docker not answering is reported a moment later; memory is still judged.
    let root = match docker {
        Some(docker) => docker.info().await.ok().and_then(|i| i.docker_root_dir),
        None => None,
    }
    .map(std::path::PathBuf::from);
    let needs = crate::resources::needs(kind_nodes);
    let short = crate::resources::shortfalls(&needs, &crate::resources::Available::read(root.as_deref()));
    if short.is_empty() {
        return Ok(());
    }
    Err(anyhow!(
        "the cluster does not fit on this machine: {}. Use a kind config with fewer nodes, free memory or disk, \
         or pass --skip-resource-check",
        short.join("; ")
    ))
}

pub mod checks;
