//! What a step may do to the run while it injects: the runner implements
//! [`StepContext`], so steps name what they need and never reach into the runner.

use std::collections::BTreeSet;
use std::sync::Arc;

use anyhow::Result;
use bollard::Docker;
use futures::future::LocalBoxFuture;
use kube::Client;
use serde_json::Value;
use tokio::time::Instant;

use super::damage::live_edit::ActiveDrift;
use crate::cluster::ClusterProvider;
use crate::engine::Engine;
use crate::event::{EventKind, ObjectRef};
use crate::model::{DriftExpect, Duration, Edit, SecretName, Target};
use crate::observe::readiness::Observation;

/// What a wait's condition may look at.
pub trait StepView {
    /// The latest observation of an object.
    fn observation(&self, object: &ObjectRef) -> Option<&Observation>;

    /// A hand edit made by [`StepContext::hand_edit`], by the index it returned.
    fn drift(&self, idx: usize) -> Option<&ActiveDrift>;
}

/// A hand edit to make: the object, a JSON merge patch, the field manager (None: kubectl's).
pub struct HandEdit<'a> {
    pub target: &'a Target,
    pub patch: &'a Value,
    pub field_manager: Option<&'a str>,
    pub expect: DriftExpect,
}

pub trait StepContext: StepView {
    /// The step's own budget, or `expect.rto`.
    fn budget(&self, within: Option<Duration>) -> std::time::Duration;
    fn engine(&self) -> Result<Arc<dyn Engine>>;
    fn cluster(&self) -> Result<Arc<dyn ClusterProvider>>;
    fn docker(&self) -> Result<Docker>;
    /// Who does a person's action: the game-day operator, else `owner`.
    fn actor<'a>(&'a self, owner: &'a str) -> &'a str;
    /// For a git-revert step, the commit step it reverts (from validation).
    fn reverted_step(&self, step: usize) -> Option<usize>;
    /// The commit the cluster must be at now.
    fn commit(&self) -> &str;
    /// Objects Ready now.
    fn ready_set(&self) -> BTreeSet<ObjectRef>;

    fn emit(&mut self, kind: EventKind);
    /// Records reconciles asked of the engine (each object with its token): the step's
    /// recovery counts only once the engine handled every one.
    fn reconciles_asked(&mut self, asked: Vec<(ObjectRef, String)>);
    fn note(&mut self, message: &str);

    /// Game-day mode: waits for the operator's go-ahead (recorded as an action).
    fn go_ahead<'a>(&'a mut self, step: usize, what: String) -> LocalBoxFuture<'a, Result<()>>;

    /// Waits, driven by watch updates, until `done` holds or `deadline` passes.
    fn wait_until<'a>(
        &'a mut self,
        deadline: Instant,
        done: &'a mut (dyn FnMut(&dyn StepView) -> bool + Send),
    ) -> LocalBoxFuture<'a, bool>;

    /// Namespaces were deleted (confirmed gone) after `requested`: everything in them is
    /// gone, and the engine objects that applied into them must reconcile again.
    fn namespaces_deleted(&mut self, namespaces: &[String], requested: jiff::Timestamp);

    /// Objects were deleted (confirmed gone) after `requested`: the engine objects that
    /// applied them must reconcile again.
    fn objects_deleted(&mut self, objects: &[ObjectRef], requested: jiff::Timestamp);

    /// The cluster is gone: stop watching it, and every Ready object is lost.
    fn cluster_lost(&mut self);

    /// Secret backups lost with the cluster: the rebuild goes without them.
    fn lose_secrets(&mut self, lost: &[SecretName]);

    /// Rebuilds the lost cluster (timed as `cluster-create`), installs and bootstraps the
    /// engine again, and starts watching it.
    fn rebuild(&mut self) -> LocalBoxFuture<'_, Result<Client>>;

    /// Commits edits to the served repo (the cluster must then reach that commit).
    fn commit_edits<'a>(
        &'a mut self,
        step: usize,
        edits: &'a [Edit],
        message: &'a str,
    ) -> LocalBoxFuture<'a, Result<()>>;

    /// `git revert` of the commit step `reverted_step` made.
    fn revert(&mut self, step: usize, reverted_step: usize) -> LocalBoxFuture<'_, Result<()>>;

    /// Makes a hand edit and follows the object; returns the edit's index for [`StepView::drift`].
    fn hand_edit<'a>(
        &'a mut self,
        step: usize,
        client: &'a Client,
        edit: HandEdit<'a>,
    ) -> LocalBoxFuture<'a, Result<usize>>;

    /// The hand edit is now what Git holds too (a break-glass backport).
    fn mark_backported(&mut self, idx: usize);
}
