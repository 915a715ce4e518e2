//! `commit`: commit a change to the served repo and wait for the engine to apply it.

use anyhow::Result;
use futures::FutureExt as _;
use futures::future::LocalBoxFuture;
use kube::Client;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::validate::Sequence;
use super::{Step, StepContext, check_commit, inject_commit};
use crate::event::StepOutcome;
use crate::model::ScenarioError;
use crate::model::{Duration, Edit, OperatorAction};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Commit {
    pub message: String,
    #[schemars(with = "Vec<Edit>")]
    pub edits: Spanned<Vec<Edit>>,
    #[serde(default)]
    pub expect: StepOutcome,
    #[serde(default)]
    pub within: Option<Duration>,
    #[serde(default)]
    pub operator_action: Option<OperatorAction>,
}

impl Step for Commit {
    fn kind(&self) -> &'static str {
        "commit"
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

    fn edits(&self) -> Option<&[Edit]> {
        Some(&self.edits.value)
    }

    fn describe(&self, _reverted: Option<(usize, String)>) -> String {
        format!("commit {:?}", self.message)
    }

    fn check_in_sequence(&self, seq: &mut Sequence) -> Result<(), ScenarioError> {
        check_commit(&self.edits, self.kind(), seq)
    }

    fn inject<'a>(&'a self, cx: &'a mut dyn StepContext, step: usize) -> LocalBoxFuture<'a, Result<Client>> {
        inject_commit(cx, step, &self.edits.value, &self.message).boxed_local()
    }
}
