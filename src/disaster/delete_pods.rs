//! `delete-pods`: delete the pods a label selector matches, as a node drain or an
//! eviction does, and judge what their replacements end in.

use std::collections::BTreeMap;

use anyhow::Result;
use futures::FutureExt as _;
use futures::future::LocalBoxFuture;
use kube::Client;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;
use tokio::time::Instant;

use super::validate::{PROTECTED_NAMESPACES, ScenarioFacts, Sequence};
use super::{Step, StepContext, damage};
use crate::event::{EventKind, StepOutcome};
use crate::model::ScenarioError;
use crate::model::{Duration, OperatorAction};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DeletePods {
    #[schemars(with = "String")]
    pub namespace: Spanned<String>,
    /// Labels every deleted pod carries, e.g. `{app: users-api}` (at least one: drill
    /// never deletes a whole namespace's pods by accident).
    #[schemars(with = "BTreeMap<String, String>")]
    pub selector: Spanned<BTreeMap<String, String>>,
    /// What the new pods must end in: `recovered` (Ready again, the default) or
    /// `degraded` (they cannot start with the config they read now); `nothing` waits for
    /// none of it and leaves the judging to the next step (so it cannot be the last step).
    #[serde(default)]
    pub expect: StepOutcome,
    #[serde(default)]
    pub within: Option<Duration>,
    #[serde(default)]
    pub operator_action: Option<OperatorAction>,
}

impl Step for DeletePods {
    fn kind(&self) -> &'static str {
        "delete-pods"
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

    fn describe(&self, _reverted: Option<(usize, String)>) -> String {
        format!(
            "delete the pods {} in {} (as a node drain does); expect the new ones to {}",
            self.selector
                .value
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(","),
            self.namespace.value,
            match self.expect {
                StepOutcome::Recovered => "become Ready",
                StepOutcome::Degraded => "fail",
                StepOutcome::Nothing => "start (not waited for)",
            }
        )
    }

    fn check(&self, facts: &ScenarioFacts) -> Result<(), ScenarioError> {
        // The control plane's own pods (default holds no controller of the cluster's).
        if PROTECTED_NAMESPACES[..3].contains(&self.namespace.value.as_str()) {
            return Err(ScenarioError::at(
                facts.file,
                &self.namespace.referenced,
                format!(
                    "delete-pods: refusing to delete pods in {}: it is part of the control plane, not of what Git restores",
                    self.namespace.value
                ),
            ));
        }
        if self.selector.value.is_empty() {
            return Err(ScenarioError::at(
                facts.file,
                &self.selector.referenced,
                "delete-pods: the selector needs at least one label, e.g. {app: users-api}",
            ));
        }
        Ok(())
    }

    /// The verdict can come before the cluster has even marked the workload not Ready (a
    /// Deployment's status follows the deletion by a moment): a last step that waits for
    /// nothing would pass on an instant, not on what the new pods end in.
    fn check_in_sequence(&self, seq: &mut Sequence) -> Result<(), ScenarioError> {
        if self.expect == StepOutcome::Nothing && seq.index + 1 == seq.steps.len() {
            return Err(ScenarioError::at(
                seq.file,
                &self.namespace.referenced,
                "delete-pods: `expect: nothing` on the last step leaves the new pods unjudged (no later step waits for them); \
                 use `recovered` (the default) or `degraded`, or add a step after it",
            ));
        }
        Ok(())
    }

    fn inject<'a>(&'a self, cx: &'a mut dyn StepContext, step: usize) -> LocalBoxFuture<'a, Result<Client>> {
        async move {
            let client = cx.cluster()?.client().await?;
            let namespace = &self.namespace.value;
            let deleted = damage::delete_pods(&client, namespace, &self.selector.value).await?;
            cx.note(&format!("  deleted pod(s) {}", deleted.names.join(", ")));
            cx.emit(EventKind::DisasterInjected { step });
            if self.expect == StepOutcome::Recovered {
                // The recovery is judged once the replacements are Ready (or the
                // budget is spent and the usual wait says what is missing).
                let budget = cx.budget(self.within);
                damage::await_replaced(&client, namespace, &deleted, Instant::now() + budget).await;
            }
            Ok(client)
        }
        .boxed_local()
    }
}
