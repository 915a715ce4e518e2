//! `prune`: what the engine deletes when Git stops declaring something, and what it
//! leaves. drill makes objects by hand (never committed, labelled like an app's own, as a
//! person copying a neighbour would), then commits a change that drops objects from Git.
//! Once every engine object is at that commit, each object that left the engines'
//! inventories and each object made by hand is checked by the API server: pruned, or
//! left. Flux prunes only what its inventory lists; Argo CD prunes what its tracking
//! marks claim, hand-made or not.

use std::collections::BTreeSet;

use anyhow::Result;
use futures::FutureExt as _;
use futures::future::LocalBoxFuture;
use kube::Client;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;
use tokio::time::Instant;

use super::damage::by_hand::{self, BY_HAND_KINDS};
use super::validate::{ScenarioFacts, Sequence};
use super::{Step, StepContext, StepView, action, check_commit};
use crate::event::{EventKind, ObjectRef, StepOutcome};
use crate::model::ScenarioError;
use crate::model::{Duration, Edit, OperatorAction};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Prune {
    pub message: String,
    /// The change that drops objects from Git (a file taken out of a kustomization's
    /// `resources:`, a manifest emptied).
    #[schemars(with = "Vec<Edit>")]
    pub edits: Spanned<Vec<Edit>>,
    /// Objects drill makes by hand before the commit, never in Git.
    #[serde(default)]
    pub by_hand: Vec<ByHand>,
    #[serde(default)]
    pub within: Option<Duration>,
    #[serde(default)]
    pub operator_action: Option<OperatorAction>,
}

/// An object made by hand, labelled like the objects of `labelled-as`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ByHand {
    /// ConfigMap, Secret or ServiceAccount.
    #[schemars(with = "String")]
    pub kind: Spanned<String>,
    pub namespace: String,
    pub name: String,
    /// The app (Flux Kustomization, Argo CD Application) whose marks it carries.
    pub labelled_as: String,
}

impl ByHand {
    fn object(&self) -> ObjectRef {
        ObjectRef::new(&self.kind.value, &self.namespace, &self.name)
    }
}

impl Step for Prune {
    fn kind(&self) -> &'static str {
        "prune"
    }

    fn outcome(&self) -> StepOutcome {
        StepOutcome::Recovered
    }

    fn within(&self) -> Option<Duration> {
        self.within
    }

    fn operator_action(&self) -> Option<OperatorAction> {
        self.operator_action
    }

    fn edits(&self) -> Option<&[Edit]> {
        Some(&self.edits.value)
    }

    fn describe(&self, _reverted: Option<(usize, String)>) -> String {
        let hand = if self.by_hand.is_empty() {
            String::new()
        } else {
            format!(" after making {} object(s) by hand", self.by_hand.len())
        };
        format!("prune: commit {:?}{hand}", self.message)
    }

    fn check(&self, facts: &ScenarioFacts) -> Result<(), ScenarioError> {
        for h in &self.by_hand {
            if !BY_HAND_KINDS.contains(&h.kind.value.as_str()) {
                return Err(ScenarioError::at(
                    facts.file,
                    &h.kind.referenced,
                    format!(
                        "prune.by-hand: kind {:?} cannot be made from a name alone; use one of {}",
                        h.kind.value,
                        BY_HAND_KINDS.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    fn check_in_sequence(&self, seq: &mut Sequence) -> Result<(), ScenarioError> {
        check_commit(&self.edits, self.kind(), seq)
    }

    fn inject<'a>(&'a self, cx: &'a mut dyn StepContext, step: usize) -> LocalBoxFuture<'a, Result<Client>> {
        async move {
            let client = cx.cluster()?.client().await?;
            let apps = engine_apps(cx);
            let before = inventories(cx, &apps);
            self.make_by_hand(cx, step, &client).await?;
            let committed = Instant::now();
            cx.commit_edits(step, &self.edits.value, &self.message).await?;
            cx.emit(EventKind::DisasterInjected { step });
            let commit = cx.commit().to_string();
            let mut at_commit = |view: &dyn StepView| {
                apps.iter().all(|a| {
                    view.observation(a).is_none_or(|o| {
                        !o.present || (o.ready && o.revision.as_deref().is_some_and(|r| r.ends_with(&commit)))
                    })
                })
            };
            let reached = cx.wait_until(committed + cx.budget(self.within), &mut at_commit).await;
            let left_git: Vec<ObjectRef> = before.difference(&inventories(cx, &apps)).cloned().collect();
            let made: Vec<ObjectRef> = self.by_hand.iter().map(ByHand::object).collect();
            let checked: Vec<ObjectRef> = left_git.iter().chain(&made).cloned().collect();
            let exist = by_hand::exist(&client, &checked).await?;
            let after = u64::try_from(committed.elapsed().as_millis()).unwrap_or(u64::MAX);
            let mut pruned = 0;
            for (i, (object, exists)) in checked.into_iter().zip(exist).enumerate() {
                pruned += usize::from(!exists);
                cx.emit(EventKind::PruneChecked {
                    step,
                    object,
                    by_hand: i >= left_git.len(),
                    gone: !exists,
                    checked_after_ms: after,
                });
            }
            cx.note(&format!(
                "  {} object(s) left Git's inventories, {} made by hand: {pruned} pruned by the time {}",
                left_git.len(),
                made.len(),
                if reached {
                    "every engine object was at the commit"
                } else {
                    "the budget ran out"
                }
            ));
            Ok(client)
        }
        .boxed_local()
    }
}

impl Prune {
    async fn make_by_hand(&self, cx: &mut dyn StepContext, step: usize, client: &Client) -> Result<()> {
        let engine = cx.engine()?;
        for h in &self.by_hand {
            let object = h.object();
            let app = engine.app_ref(&h.labelled_as);
            let marks = engine.ownership_marks(&app, "", &object);
            by_hand::make(client, &object, marks).await?;
            let by = cx.actor("drill").to_string();
            action(
                cx,
                step,
                format!("made {object} by hand"),
                true,
                &by,
                format!("labelled like {app}'s objects; never in Git"),
            );
        }
        Ok(())
    }
}

/// The engine objects that list an inventory and apply the served commit now: the apps
/// whose prune is judged (a HelmRelease is at its chart's version, not at a commit).
fn engine_apps(cx: &dyn StepContext) -> Vec<ObjectRef> {
    let commit = cx.commit();
    cx.ready_set()
        .into_iter()
        .filter(|o| {
            cx.observation(o)
                .is_some_and(|o| !o.inventory.is_empty() && o.revision.as_deref().is_some_and(|r| r.ends_with(commit)))
        })
        .collect()
}

/// Everything the apps' inventories list.
fn inventories(cx: &dyn StepContext, apps: &[ObjectRef]) -> BTreeSet<ObjectRef> {
    apps.iter()
        .filter_map(|a| cx.observation(a))
        .flat_map(|o| o.inventory.iter().cloned())
        .collect()
}
