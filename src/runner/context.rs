//! The runner's side of [`StepContext`]: what a disaster step may do to the run.

use std::collections::BTreeSet;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use bollard::Docker;
use futures::FutureExt as _;
use futures::future::LocalBoxFuture;
use kube::Client;
use tokio::time::Instant;

use super::Run;
use super::steps::file_edits;
use crate::cluster::ClusterProvider;
use crate::disaster::context::HandEdit;
use crate::disaster::damage::live_edit::{self, ActiveDrift};
use crate::disaster::{StepContext, StepView};
use crate::engine::Engine;
use crate::event::{EventKind, ObjectRef};
use crate::model::{Duration, Edit, SecretName};
use crate::observe::readiness::Observation;

impl StepView for Run<'_> {
    fn observation(&self, object: &ObjectRef) -> Option<&Observation> {
        self.state.get(object)
    }

    fn drift(&self, idx: usize) -> Option<&ActiveDrift> {
        self.drifts.get(idx)
    }
}

impl StepContext for Run<'_> {
    fn budget(&self, within: Option<Duration>) -> std::time::Duration {
        within.unwrap_or(self.plan.scenario.expect.rto).0
    }

    fn engine(&self) -> Result<Arc<dyn Engine>> {
        self.engine.clone().context("no engine")
    }

    fn cluster(&self) -> Result<Arc<dyn ClusterProvider>> {
        self.cluster.clone().context("no cluster")
    }

    fn docker(&self) -> Result<Docker> {
        self.docker.clone().context("no Docker connection")
    }

    fn actor<'a>(&'a self, owner: &'a str) -> &'a str {
        self.opts.operator.as_ref().map(|o| o.name.as_str()).unwrap_or(owner)
    }

    fn reverted_step(&self, step: usize) -> Option<usize> {
        self.plan.reverts.get(&step).copied()
    }

    fn commit(&self) -> &str {
        &self.commit
    }

    fn ready_set(&self) -> BTreeSet<ObjectRef> {
        self.state.ready_set()
    }

    fn emit(&mut self, kind: EventKind) {
        Run::emit(self, kind);
    }

    fn note(&mut self, message: &str) {
        Run::note(self, message);
    }

    fn go_ahead<'a>(&'a mut self, step: usize, what: String) -> LocalBoxFuture<'a, Result<()>> {
        async move { self.operator_go_ahead(step, &what).await }.boxed_local()
    }

    fn reconciles_asked(&mut self, asked: Vec<(ObjectRef, String)>) {
        self.asked_reconciles.extend(asked);
    }

    fn wait_until<'a>(
        &'a mut self,
        deadline: Instant,
        done: &'a mut (dyn FnMut(&dyn StepView) -> bool + Send),
    ) -> LocalBoxFuture<'a, bool> {
        async move { Run::wait_until(self, deadline, |run| done(run)).await }.boxed_local()
    }

    fn namespaces_deleted(&mut self, namespaces: &[String], requested: jiff::Timestamp) {
        let awaited = self.state.namespaces_deleted(namespaces, requested);
        for object in self.state_deleted_in(namespaces) {
            self.emit(EventKind::ObjectNotReady {
                object,
                reason: "Deleted".into(),
                message: "its namespace was deleted".into(),
            });
        }
        for object in awaited {
            self.emit(EventKind::ObjectNotReady {
                object,
                reason: "AwaitingReconcile".into(),
                message: "applied objects into a deleted namespace".into(),
            });
        }
    }

    fn objects_deleted(&mut self, objects: &[ObjectRef], requested: jiff::Timestamp) {
        for object in self.state.objects_deleted(objects, requested) {
            self.emit(EventKind::ObjectNotReady {
                object,
                reason: "AwaitingReconcile".into(),
                message: "an object it applied was deleted".into(),
            });
        }
    }

    fn cluster_lost(&mut self) {
        self.observer = None;
        for kind in self.probes.cluster_lost() {
            self.emit(kind);
        }
        for object in self.state.ready_set() {
            self.emit(EventKind::ObjectNotReady {
                object,
                reason: "Deleted".into(),
                message: "the cluster was deleted".into(),
            });
        }
        self.state.clear();
    }

    fn lose_secrets(&mut self, lost: &[SecretName]) {
        self.secrets.retain(|(name, _)| !lost.contains(name));
        if lost.contains(&SecretName::RepoCredentials) {
            self.repo_auth = None;
        }
    }

    fn rebuild(&mut self) -> LocalBoxFuture<'_, Result<Client>> {
        async move {
            let cluster = StepContext::cluster(self)?;
            // The same config, marked for this run, as the first cluster.
            let rebuilt = self.phase("cluster-create", cluster.recreate()).await?;
            self.cluster = Some(rebuilt.clone());
            let client = self.install_engine(rebuilt.as_ref()).await?;
            self.start_observer(client.clone()).await?;
            Ok(client)
        }
        .boxed_local()
    }

    fn commit_edits<'a>(
        &'a mut self,
        step: usize,
        edits: &'a [Edit],
        message: &'a str,
    ) -> LocalBoxFuture<'a, Result<()>> {
        async move {
            let server = self.server.as_ref().context("no served repo")?;
            let commit = server.repo.commit_edits(&file_edits(edits), message).await?;
            self.committed(step, commit, message.to_string(), None);
            Ok(())
        }
        .boxed_local()
    }

    fn revert(&mut self, step: usize, reverted_step: usize) -> LocalBoxFuture<'_, Result<()>> {
        async move {
            let reverted = self
                .commits_by_step
                .get(&reverted_step)
                .cloned()
                .with_context(|| format!("git-revert: step {} made no commit", reverted_step + 1))?;
            let server = self.server.as_ref().context("no served repo")?;
            let commit = server.repo.revert(&reverted).await?;
            let message = format!("Revert step {}", reverted_step + 1);
            self.committed(step, commit, message, Some(reverted));
            Ok(())
        }
        .boxed_local()
    }

    fn hand_edit<'a>(
        &'a mut self,
        step: usize,
        client: &'a Client,
        edit: HandEdit<'a>,
    ) -> LocalBoxFuture<'a, Result<usize>> {
        async move {
            let manager_of = StepContext::engine(self)?.rules().manager_of;
            let applied = live_edit::apply(client, edit.target, edit.patch, edit.field_manager, manager_of).await?;
            self.emit(EventKind::DriftApplied {
                step,
                object: applied.object.clone(),
                fields: applied.report_fields(),
                manager: applied.manager.clone(),
            });
            let (api, _) = live_edit::api_for(client, edit.target).await?;
            if let Some((observer, _)) = self.observer.as_mut() {
                observer.watch_object(api, applied.object.clone());
            }
            self.drifts.push(ActiveDrift {
                step,
                applied,
                expect: edit.expect,
                reverted: false,
                detected: false,
                backported: false,
            });
            Ok(self.drifts.len() - 1)
        }
        .boxed_local()
    }

    fn mark_backported(&mut self, idx: usize) {
        if let Some(d) = self.drifts.get_mut(idx) {
            d.backported = true;
        }
    }
}
