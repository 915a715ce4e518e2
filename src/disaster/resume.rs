//! `resume`: resume a paused app; the engine applies Git again.

use anyhow::Result;
use futures::FutureExt as _;
use futures::future::LocalBoxFuture;
use kube::Client;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::validate::{Sequence, check_app};
use super::{Step, StepContext, pause_app};
use crate::event::StepOutcome;
use crate::model::ScenarioError;
use crate::model::{Duration, OperatorAction};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Resume {
    #[schemars(with = "String")]
    pub app: Spanned<String>,
    #[serde(default)]
    pub expect: StepOutcome,
    #[serde(default)]
    pub within: Option<Duration>,
    #[serde(default)]
    pub operator_action: Option<OperatorAction>,
}

impl Step for Resume {
    fn kind(&self) -> &'static str {
        "resume"
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

    /// What the resumed app applies is Git's state now, not what was Ready before.
    fn changes_desired_state(&self) -> bool {
        true
    }

    fn describe(&self, _reverted: Option<(usize, String)>) -> String {
        format!("resume reconciliation of app {}", self.app.value)
    }

    fn check_in_sequence(&self, seq: &mut Sequence) -> Result<(), ScenarioError> {
        check_app(&self.app, self.kind(), seq.file)
    }

    fn inject<'a>(&'a self, cx: &'a mut dyn StepContext, step: usize) -> LocalBoxFuture<'a, Result<Client>> {
        pause_app(cx, step, &self.app.value, false).boxed_local()
    }
}
