//! Disaster steps, one file per kind. Each file holds the step's scenario spec, its
//! validation, its one-line description, what it must end in, and its injection against
//! a [`StepContext`]; [`damage`] holds the primitives they share (delete namespaces,
//! kill a node, hand-edit an object). Adding a kind is its file plus one line in
//! [`register_steps!`] below, then `drill schema > docs/scenario.schema.json`.
//! Model: kind's ordered `Action`s, each run against an `ActionContext`.

pub mod context;
pub mod damage;
pub mod validate;

mod argocd_history_rollback;
mod bad_commit;
mod break_glass;
mod commit;
mod delete_cluster;
mod delete_crds;
mod delete_namespace;
mod delete_pods;
mod drift;
mod git_revert;
mod kill_node;
mod prune;
mod remove_node;
mod resume;
mod suspend;

pub use argocd_history_rollback::HistoryRollback;
pub use bad_commit::BadCommit;
pub use break_glass::{Backport, BreakGlass, Mitigation};
pub use commit::Commit;
pub use context::{StepContext, StepView};
pub use delete_cluster::DeleteCluster;
pub use delete_namespace::DeleteNamespace;
pub use delete_pods::DeletePods;
pub use drift::Drift;
pub use git_revert::GitRevert;
pub use kill_node::KillNode;
pub use prune::Prune;
pub use remove_node::RemoveNode;
pub use resume::Resume;
pub use suspend::Suspend;

use anyhow::Result;
use futures::future::LocalBoxFuture;
use kube::Client;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::event::{EventKind, ObjectRef, StepOutcome};
use crate::model::ScenarioError;
use crate::model::{Duration, Edit, OperatorAction};
use validate::{ScenarioFacts, Sequence};

/// One kind of disaster step.
pub trait Step {
    /// The kind's name in scenario files and reports (`delete-namespace`).
    fn kind(&self) -> &'static str;

    /// What the step must end in: everything Ready again (timed as a recovery), a
    /// degraded app, or nothing to wait for.
    fn outcome(&self) -> StepOutcome;

    /// The step's own budget, where it overrides `expect.rto`.
    fn within(&self) -> Option<Duration> {
        None
    }

    /// What the operator does right after the damage (`reconcile-now`).
    fn operator_action(&self) -> Option<OperatorAction> {
        None
    }

    /// The edits a step commits to the served repo.
    fn edits(&self) -> Option<&[Edit]> {
        None
    }

    /// After a change to Git the desired state is what Git now holds (its inventories),
    /// not what was Ready before; after damage, it is both.
    fn changes_desired_state(&self) -> bool {
        self.edits().is_some()
    }

    /// One line: what the step does. `reverted`: for a git-revert, the step it reverts
    /// (its number and description).
    fn describe(&self, reverted: Option<(usize, String)>) -> String;

    /// Checks that need the scenario's other sections (the cluster, the secrets).
    fn check(&self, _facts: &ScenarioFacts) -> Result<(), ScenarioError> {
        Ok(())
    }

    /// Checks that need the steps before it (the fleet's files as earlier commits left
    /// them, the commits a revert can name).
    fn check_in_sequence(&self, _seq: &mut Sequence) -> Result<(), ScenarioError> {
        Ok(())
    }

    /// Does the damage (emitting `DisasterInjected` once it is done); returns a client for
    /// the cluster to judge the recovery on (a new one after a rebuild).
    fn inject<'a>(&'a self, cx: &'a mut dyn StepContext, step: usize) -> LocalBoxFuture<'a, Result<Client>>;

    /// After the step's recovery was seen: a last check of its own (break-glass:
    /// Git, engine and cluster agree).
    fn after_recovery<'a>(&'a self, _cx: &'a mut dyn StepContext, _step: usize) -> LocalBoxFuture<'a, ()> {
        Box::pin(async {})
    }
}

/// Declares the `Disaster` enum the scenario file's `disasters:` list holds, one line
/// per kind: `Variant(Type)`, the variant's kebab-case name being the YAML key.
macro_rules! register_steps {
    ($($(#[doc = $doc:literal])* $variant:ident($ty:ty),)*) => {
        /// One damage step, followed by a timed recovery.
        #[derive(Debug, Clone, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields, rename_all = "kebab-case")]
        pub enum Disaster {
            $($(#[doc = $doc])* $variant($ty),)*
        }

        impl Disaster {
            pub fn as_step(&self) -> &dyn Step {
                match self {
                    $(Disaster::$variant(s) => s,)*
                }
            }
        }
    };
}

register_steps! {
    /// Delete namespaces (and everything in them).
    DeleteNamespace(DeleteNamespace),
    /// Destroy the whole cluster, then rebuild it from Git.
    DeleteCluster(DeleteCluster),
    /// Kill a node's container abruptly (SIGKILL, a power cut), then start it again;
    /// recovered once every pod that was Ready on the node runs again.
    KillNode(KillNode),
    /// Lose a worker for good: its container deleted, its Node left NotReady. Recovered
    /// once every pod a controller makes again runs Ready on another node; a pod that
    /// cannot come back (its volume lived on that node) is named.
    RemoveNode(RemoveNode),
    /// Delete the pods a label selector matches, as a node drain or an eviction does:
    /// their controllers make new ones, which read their config afresh.
    DeletePods(DeletePods),
    /// Hand-edit a live object the way a human would (`kubectl edit`), then watch
    /// whether the engine heals it (or, for expected drift, leaves it alone).
    Drift(Drift),
    /// Pause reconciliation of one app (Flux `spec.suspend: true`).
    Suspend(Suspend),
    /// Resume a paused app; the engine applies Git again.
    Resume(Resume),
    /// Commit a change to the served repo and wait for the engine to apply it.
    Commit(Commit),
    /// Commit a change that is meant to break an app, and wait until it does.
    BadCommit(BadCommit),
    /// Revert an earlier commit step with `git revert` (a new commit, never a force push).
    GitRevert(GitRevert),
    /// The incident workflow: pause one app, mitigate by hand, check the others still
    /// reconcile, backport the mitigation to Git, resume, confirm Git and cluster agree.
    BreakGlass(BreakGlass),
    /// Argo CD only: roll one Application back to an earlier entry of its sync history,
    /// as the UI's "History and rollback" does, and watch what auto-sync does next.
    ArgocdHistoryRollback(HistoryRollback),
    /// Make objects by hand (labelled like an app's), commit a change that drops objects
    /// from Git, and check what the engine pruned and what it left.
    Prune(Prune),
    /// Delete CRDs (an operator uninstalled) and with them every custom resource; recovered
    /// once the engine has put back the CRDs and every custom resource.
    DeleteCrds(delete_crds::DeleteCrds),
}

impl Disaster {
    pub fn kind(&self) -> &'static str {
        self.as_step().kind()
    }

    pub fn outcome(&self) -> StepOutcome {
        self.as_step().outcome()
    }

    pub fn within(&self) -> Option<Duration> {
        self.as_step().within()
    }

    pub fn operator_action(&self) -> Option<OperatorAction> {
        self.as_step().operator_action()
    }

    pub fn edits(&self) -> Option<&[Edit]> {
        self.as_step().edits()
    }

    /// One line for the step; `reverted`: for a git-revert, the index of the step it reverts.
    pub fn describe(&self, all: &[Disaster], reverted: Option<usize>) -> String {
        let reverted = reverted.and_then(|i| Some((i, all.get(i)?.as_step().describe(None))));
        self.as_step().describe(reverted)
    }
}

/// The first 12 characters of a commit.
fn short(rev: &str) -> &str {
    &rev[..rev.len().min(12)]
}

/// Records one action of a step, with who did it.
fn action(
    cx: &mut dyn StepContext,
    step: usize,
    action: impl Into<String>,
    ok: bool,
    by: &str,
    message: impl Into<String>,
) {
    cx.emit(EventKind::Action {
        step,
        action: action.into(),
        ok,
        by: by.to_string(),
        message: message.into(),
    });
}

/// A commit step's check: its edits apply to the fleet's files as earlier commits left
/// them, and a later git-revert may name it.
fn check_commit(edits: &serde_saphyr::Spanned<Vec<Edit>>, kind: &str, seq: &mut Sequence) -> Result<(), ScenarioError> {
    seq.files.apply(edits, kind, seq.file)?;
    seq.commits.push(seq.index);
    Ok(())
}

/// A commit step's damage: the edits committed to the served repo.
async fn inject_commit(cx: &mut dyn StepContext, step: usize, edits: &[Edit], message: &str) -> Result<Client> {
    let client = cx.cluster()?.client().await?;
    cx.commit_edits(step, edits, message).await?;
    cx.emit(EventKind::DisasterInjected { step });
    Ok(client)
}

/// Pauses (`paused`) or resumes one app, as suspend and resume steps do.
async fn pause_app(cx: &mut dyn StepContext, step: usize, app: &str, paused: bool) -> Result<Client> {
    let client = cx.cluster()?.client().await?;
    let engine = cx.engine()?;
    let app = engine.app_ref(app);
    let with = engine.set_paused(&client, &app, paused).await?;
    paused_with(cx, step, &app, with, paused);
    cx.emit(EventKind::DisasterInjected { step });
    Ok(client)
}

/// Records a pause or resume of `app` and of the apps that went with it.
fn paused_with(cx: &mut dyn StepContext, step: usize, app: &ObjectRef, with: Vec<ObjectRef>, suspended: bool) {
    for object in std::iter::once(app.clone()).chain(with) {
        cx.emit(EventKind::Suspended {
            step,
            object,
            suspended,
        });
    }
}

/// What an action note says about the apps paused or resumed along with the one named.
fn pause_note(with: &[ObjectRef], paused: bool) -> String {
    if with.is_empty() {
        return String::new();
    }
    let names: Vec<String> = with.iter().map(ToString::to_string).collect();
    if paused {
        format!("{} paused too: its self-heal would undo the pause", names.join(", "))
    } else {
        format!("{} resumed too", names.join(", "))
    }
}
