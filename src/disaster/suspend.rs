//! `suspend`: pause reconciliation of one app (Flux `spec.suspend: true`, Argo CD
//! auto-sync off, with a self-healing parent paused too).

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

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Suspend {
    /// The app to pause: a Flux Kustomization in flux-system (or `namespace/name`).
    #[schemars(with = "String")]
    pub app: Spanned<String>,
}

impl Step for Suspend {
    fn kind(&self) -> &'static str {
        "suspend"
    }

    fn outcome(&self) -> StepOutcome {
        StepOutcome::Nothing
    }

    fn describe(&self, _reverted: Option<(usize, String)>) -> String {
        format!("pause reconciliation of app {}", self.app.value)
    }

    fn check_in_sequence(&self, seq: &mut Sequence) -> Result<(), ScenarioError> {
        check_app(&self.app, self.kind(), seq.file)
    }

    fn inject<'a>(&'a self, cx: &'a mut dyn StepContext, step: usize) -> LocalBoxFuture<'a, Result<Client>> {
        pause_app(cx, step, &self.app.value, true).boxed_local()
    }
}
