//! `drift`: hand-edit a live object the way a person would (`kubectl edit`), then
//! watch whether the engine heals it, or, for expected drift, leaves it alone.

use anyhow::{Context as _, Result};
use futures::FutureExt as _;
use futures::future::LocalBoxFuture;
use kube::Client;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;
use tokio::time::Instant;

use super::context::HandEdit;
use super::damage::live_edit::leaf_pointers;
use super::validate::{Sequence, check_patch, check_target};
use super::{Step, StepContext};
use crate::event::{EventKind, StepOutcome};
use crate::model::ScenarioError;
use crate::model::{DriftExpect, Duration, OperatorAction, Target};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Drift {
    #[schemars(with = "Target")]
    pub target: Spanned<Target>,
    /// A JSON merge patch, written as YAML, e.g. `{data: {DB_HOST: db-old}}` or `{spec: {replicas: 3}}`.
    #[schemars(with = "serde_json::Value")]
    pub patch: Spanned<serde_json::Value>,
    #[serde(default)]
    pub expect: DriftExpect,
    /// Who makes the change, as the API server records it: `kubectl-edit` (a person, the
    /// default) or a controller's field manager, e.g. `kube-controller-manager` for an HPA
    /// scaling a Deployment. Flux takes over fields kubectl set, not those of controllers.
    #[serde(default)]
    pub field_manager: Option<String>,
    /// With `expect: kept`, how long to wait for the engine's reconcile before checking.
    #[serde(default = "default_hold")]
    pub hold: Duration,
    #[serde(default)]
    pub within: Option<Duration>,
    #[serde(default)]
    pub operator_action: Option<OperatorAction>,
}

fn default_hold() -> Duration {
    Duration(std::time::Duration::from_secs(30))
}

impl Step for Drift {
    fn kind(&self) -> &'static str {
        "drift"
    }

    fn outcome(&self) -> StepOutcome {
        match self.expect {
            DriftExpect::Healed => StepOutcome::Recovered,
            DriftExpect::Kept => StepOutcome::Nothing,
        }
    }

    fn within(&self) -> Option<Duration> {
        self.within
    }

    fn operator_action(&self) -> Option<OperatorAction> {
        self.operator_action
    }

    fn describe(&self, _reverted: Option<(usize, String)>) -> String {
        format!(
            "hand-edit {} ({}); expect the engine to {}",
            self.target.value,
            leaf_pointers(&self.patch.value).join(", "),
            match self.expect {
                DriftExpect::Healed => "overwrite it with Git's value",
                DriftExpect::Kept => "leave it alone",
            }
        )
    }

    fn check_in_sequence(&self, seq: &mut Sequence) -> Result<(), ScenarioError> {
        check_target(&self.target, self.kind(), seq.file)?;
        check_patch(&self.patch, self.kind(), seq.file)
    }

    fn inject<'a>(&'a self, cx: &'a mut dyn StepContext, step: usize) -> LocalBoxFuture<'a, Result<Client>> {
        async move {
            let client = cx.cluster()?.client().await?;
            let edit = HandEdit {
                target: &self.target.value,
                patch: &self.patch.value,
                field_manager: self.field_manager.as_deref(),
                expect: self.expect,
            };
            let idx = cx.hand_edit(step, &client, edit).await?;
            cx.emit(EventKind::DisasterInjected { step });
            if self.expect == DriftExpect::Kept {
                give_engine_a_chance(cx, step, &client, idx, self.hold.0).await?;
            }
            Ok(client)
        }
        .boxed_local()
    }
}

/// For expected drift: asks the managing app to reconcile and waits until it has (or
/// `hold` passes, as when the app is paused), then records whether the edit survived.
async fn give_engine_a_chance(
    cx: &mut dyn StepContext,
    step: usize,
    client: &Client,
    idx: usize,
    hold: std::time::Duration,
) -> Result<()> {
    let deadline = Instant::now() + hold;
    let drift = cx.drift(idx).context("no such hand edit")?;
    let (manager, target) = (drift.applied.manager.clone(), drift.applied.object.clone());
    let suspended = manager
        .as_ref()
        .and_then(|m| cx.observation(m))
        .is_some_and(|o| o.suspended);
    let mut reconciled = false;
    match manager {
        Some(m) if !suspended => {
            let engine = cx.engine()?;
            let token = crate::engine::request_reconcile(engine.as_ref(), client, &m).await?;
            cx.emit(EventKind::OperatorAction {
                step,
                action: format!("reconcile requested on {m}"),
            });
            // Done when the engine handled the request and is Ready, and the edited
            // object, when drill judges it (a scaled Deployment), is Ready again too.
            let mut done = |v: &dyn super::StepView| {
                v.observation(&m).is_some_and(|o| engine.handled(o, &token) && o.ready)
                    && v.observation(&target).is_none_or(|o| o.ready)
            };
            reconciled = cx.wait_until(deadline, &mut done).await;
        }
        // Paused, or not managed by the engine: nothing will touch it; watch for the hold.
        _ => {
            let mut done = |v: &dyn super::StepView| v.drift(idx).is_some_and(|d| d.reverted);
            cx.wait_until(deadline, &mut done).await;
        }
    }
    if !cx.drift(idx).is_some_and(|d| d.reverted) {
        cx.emit(EventKind::DriftKept {
            step,
            object: target,
            reconciled,
        });
    }
    Ok(())
}
