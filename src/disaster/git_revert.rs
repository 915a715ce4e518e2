//! `git-revert`: revert an earlier commit step with `git revert` (a new commit, never
//! a force push), as a team rolls back a bad change.

use anyhow::{Context as _, Result};
use futures::FutureExt as _;
use futures::future::LocalBoxFuture;
use kube::Client;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::validate::Sequence;
use super::{Step, StepContext};
use crate::event::{EventKind, StepOutcome};
use crate::model::ScenarioError;
use crate::model::{Duration, OperatorAction};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct GitRevert {
    /// The 1-based number of the commit or bad-commit step to revert; default: the last one.
    #[serde(default)]
    #[schemars(with = "Option<usize>")]
    pub step: Option<Spanned<usize>>,
    #[serde(default)]
    pub expect: StepOutcome,
    #[serde(default)]
    pub within: Option<Duration>,
    #[serde(default)]
    pub operator_action: Option<OperatorAction>,
}

impl Step for GitRevert {
    fn kind(&self) -> &'static str {
        "git-revert"
    }

    fn outcome(&self) -> StepOutcome {
        self.expect
    }

    fn within(&self) -> Option<Duration> {
        self.within
    }

    fn operator_action(&self) -> Option<OperatorAction> {
        self.operator_action
    }

    fn changes_desired_state(&self) -> bool {
        true
    }

    fn describe(&self, reverted: Option<(usize, String)>) -> String {
        match reverted {
            Some((i, what)) => format!("git revert of step {} ({what})", i + 1),
            None => "git revert of an earlier commit".into(),
        }
    }

    fn check_in_sequence(&self, seq: &mut Sequence) -> Result<(), ScenarioError> {
        let i = seq.index;
        let reverted = match &self.step {
            Some(n) => {
                let idx = n.value.checked_sub(1);
                match idx.filter(|idx| seq.commits.contains(idx)) {
                    Some(idx) => idx,
                    None => {
                        return Err(ScenarioError::at(
                            seq.file,
                            &n.referenced,
                            format!(
                                "git-revert: step {} is not an earlier commit or bad-commit step",
                                n.value
                            ),
                        ));
                    }
                }
            }
            None => *seq.commits.last().ok_or_else(|| {
                ScenarioError::in_file(
                    seq.file,
                    format!(
                        "step {}: git-revert has no earlier commit or bad-commit step to revert",
                        i + 1
                    ),
                )
            })?,
        };
        // What the revert restores is Git's business; later edits of those files are not checked here.
        seq.files.forget(seq.steps[reverted].edits().unwrap_or(&[]));
        seq.reverts.insert(i, reverted);
        Ok(())
    }

    fn inject<'a>(&'a self, cx: &'a mut dyn StepContext, step: usize) -> LocalBoxFuture<'a, Result<Client>> {
        async move {
            let client = cx.cluster()?.client().await?;
            let reverted_step = cx.reverted_step(step).context("git-revert: no commit step to revert")?;
            cx.revert(step, reverted_step).await?;
            cx.emit(EventKind::DisasterInjected { step });
            Ok(client)
        }
        .boxed_local()
    }
}
