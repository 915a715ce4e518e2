//! `--reuse-cluster`: rehearse on a kind cluster an earlier run made and kept, instead of
//! creating one. Only the cluster is reused: the repo is served afresh (a new served
//! commit, the run's own credential), the engine, its secrets and the root sync are
//! applied again (server-side apply: what is there already stays untouched), and the
//! initial sync waits until every app is Ready at the new commit. So the steps start
//! from what Git holds, whatever an earlier rehearsal did to the cluster, and a person
//! iterating on a scenario (or a suite running many) skips the cluster's creation and
//! the engine's start.

use anyhow::{Context, Result, bail};
use bollard::Docker;

use super::Run;
use super::setup::create_private_dir;
use crate::cluster::ClusterProvider;
use crate::cluster::kind::kept::{self, KeptCluster};
use crate::cluster::kind::provider::KindProvider;
use crate::cluster::kind::{effective_config, export_kubeconfig};
use crate::scenario::{ImageMode, KindCluster};

/// `--reuse-cluster` with a `cluster: existing` scenario: refused before anything is touched.
pub(super) fn not_for_existing(name: &str, existing: &crate::scenario::ExistingCluster) -> anyhow::Error {
    anyhow::anyhow!(
        "--reuse-cluster {name} takes up a kind cluster drill kept; this scenario names an existing cluster (context {})",
        existing.context
    )
}

impl super::RunOptions {
    /// The run's cluster outlives it: `--keep-cluster`, or a reused cluster (the user chose
    /// it, so it is kept again whatever `--keep-cluster` says).
    pub fn keeps_cluster(&self) -> bool {
        self.keep_cluster || self.reuse_cluster.is_some()
    }
}

impl Run<'_> {
    /// Takes up kept cluster `name` for this run, then serves, installs and bootstraps as
    /// on a new cluster; the cluster is kept at the end.
    pub(super) async fn reuse_and_bootstrap(
        &mut self,
        kind_spec: &KindCluster,
        docker: Result<Docker>,
        name: &str,
    ) -> Result<Docker> {
        let plan = self.plan;
        if plan.scenario.images == ImageMode::Mirror {
            bail!(
                "--reuse-cluster {name}: `images: mirror` starts its pull-through cache with a new cluster; \
                 run this scenario without --reuse-cluster"
            );
        }
        let docker = docker?;
        let found = kept::find(&docker, name).await?;
        if found.nodes != plan.kind_nodes.len() {
            bail!(
                "--reuse-cluster {name}: it has {} node(s), and the scenario's kind config declares {}",
                found.nodes,
                plan.kind_nodes.len()
            );
        }
        self.take_up_work_dir(&found, name)?;
        self.check_same_kind_config(kind_spec, &found, name)?;
        let kubeconfig = self.work_dir.join("kubeconfig");
        export_kubeconfig(name, &kubeconfig).await?;
        self.note(&format!(
            "reusing cluster {name}, kept by run {}: nothing is created; the engine, secrets and root sync are applied again",
            found.run_id
        ));
        self.emit(crate::event::EventKind::Versions(crate::event::Versions {
            reused_cluster: Some(format!("{name} (kept by run {})", found.run_id)),
            ..Default::default()
        }));

        let (served, commit) = self.pin_repo().await?;
        let cluster = KindProvider::adopt(
            name,
            &self.work_dir.join("kind-config.json"),
            &kubeconfig,
            &found.run_id,
        );
        let cluster: std::sync::Arc<dyn ClusterProvider> = std::sync::Arc::new(cluster);
        self.cluster = Some(cluster.clone());
        if let Some(served) = served {
            self.serve_on_kind_network(served, &docker).await?;
        }
        let commit = self.rewrite_served_copy().await?.unwrap_or(commit);
        let client = self.install_engine(cluster.as_ref()).await?;
        // Its apps are Ready at an earlier commit and would look again only on their
        // interval: ask now, so the initial sync times the new commit, not the interval.
        let engine = self.engine.clone().context("no engine")?;
        let asked = engine.reconcile_now(&client).await?.len();
        self.note(&format!(
            "  asked {asked} object(s) to reconcile the new served commit now"
        ));
        self.start_observer(client).await?;
        self.mark_synced_path();
        self.commit = commit;
        Ok(docker)
    }

    /// Removes this run's work folder, unless it took up a kept cluster: that folder is
    /// the kept run's (its kubeconfig, kind config and synced path), and a run refused or
    /// failed before it adopted the cluster must leave it for the next one. Seen on the
    /// test bed: a refused `--reuse-cluster` deleted it.
    pub(super) fn remove_work_dir_unless_reused(&self) {
        if self.opts.reuse_cluster.is_none() {
            let _ = std::fs::remove_dir_all(&self.work_dir);
        }
    }

    /// What the cluster last synced (`<engine> <path>`), written by each run for the next
    /// one that takes it up.
    fn synced_marker(&self) -> std::path::PathBuf {
        self.work_dir.join("synced-path")
    }

    fn synced_now(&self) -> String {
        format!(
            "{} {}",
            self.plan.engine.as_str(),
            self.plan.entry_path().unwrap_or_default()
        )
    }

    /// Refuses another fleet path than the cluster last synced. Tried on the test bed:
    /// the engine prunes what only the old path made while drill watches, and drill
    /// counted it as deleted (the SOPS fleet's nine apps, when the sealed-secrets fleet
    /// took over); and Argo CD, its root Application pointed at a new path, once reported
    /// it Synced and Healthy before the new path's apps existed, so a degraded child
    /// passed its initial sync. A fresh cluster has neither problem.
    fn refuse_another_path(&self, name: &str) -> Result<()> {
        let now = self.synced_now();
        match std::fs::read_to_string(self.synced_marker()) {
            Ok(before) if before.trim() != now => bail!(
                "--reuse-cluster {name}: it last synced {}, and this scenario syncs {now}; on a reused cluster \
                 the engine would prune the other path's objects while drill watches, and Argo CD can report a new \
                 path Synced before its apps exist: rehearse scenarios of one path on a cluster, or keep a new one",
                before.trim()
            ),
            _ => Ok(()),
        }
    }

    /// Records what this run's cluster syncs, for a later `--reuse-cluster`.
    pub(super) fn mark_synced_path(&self) {
        let _ = std::fs::write(self.synced_marker(), self.synced_now());
    }

    /// The kept run's work folder holds the cluster's kubeconfig and kind config: this
    /// run takes its lock (so `drill clean` leaves the cluster alone, and a second run on
    /// it at once is refused), refuses another fleet path, and serves its repo from a
    /// fresh copy there.
    fn take_up_work_dir(&mut self, found: &KeptCluster, name: &str) -> Result<()> {
        self.work_dir = std::env::temp_dir().join(format!("drill-{}", found.run_id));
        if !self.work_dir.exists() {
            create_private_dir(&self.work_dir)?;
        }
        let lock = crate::runlock::RunLock::acquire(&self.work_dir)
            .with_context(|| format!("--reuse-cluster {name}: another run is using it"))?;
        self.lock = Some(lock);
        // Before anything in the folder changes: a refused run leaves it as it found it.
        self.refuse_another_path(name)?;
        // The earlier run's served copy (and the work tree it committed from) is no one's now.
        let served = self.work_dir.join("git");
        if served.exists() {
            std::fs::remove_dir_all(&served).with_context(|| format!("failed to remove {}", served.display()))?;
        }
        Ok(())
    }

    /// Refuses a scenario whose kind config (with the profile's node image and patches)
    /// is not the one the cluster was made from: a rehearsal must run on the cluster its
    /// file declares.
    fn check_same_kind_config(&mut self, kind_spec: &KindCluster, found: &KeptCluster, name: &str) -> Result<()> {
        let config = self.plan.kind_config.clone().context("no kind config")?;
        let kept = self.work_dir.join("kind-config.json");
        let wanted = self.work_dir.join("kind-config.wanted.json");
        effective_config(
            &config,
            kind_spec.node_image.as_deref(),
            &self.opts.profile,
            (&found.run_id, &crate::cluster::owner::source_dir()?),
            &wanted,
        )?;
        let read = |path: &std::path::Path| -> Result<serde_json::Value> {
            let text = std::fs::read_to_string(path).with_context(|| format!("failed to read {}", path.display()))?;
            serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
        };
        if kept.exists() && read(&kept)? != read(&wanted)? {
            let _ = std::fs::remove_file(&wanted);
            bail!(
                "--reuse-cluster {name}: it was made from another kind config or node image than {} with this profile; \
                 reuse it with the scenarios it fits, or keep a new one",
                config.display()
            );
        }
        // A rebuild (`delete-cluster`) makes the cluster again from this file.
        std::fs::rename(&wanted, &kept).with_context(|| format!("failed to write {}", kept.display()))
    }
}
