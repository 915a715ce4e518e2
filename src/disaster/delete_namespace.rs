//! `delete-namespace`: delete namespaces (and everything in them), wait until they are
//! gone, and time the engine's rebuild of what Git declares in them.

use anyhow::Result;
use futures::FutureExt as _;
use futures::future::LocalBoxFuture;
use kube::Client;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::validate::{PROTECTED_NAMESPACES, ScenarioFacts};
use super::{Step, StepContext};
use crate::event::{EventKind, StepOutcome};
use crate::model::ScenarioError;
use crate::model::{Label, OperatorAction};

/// How long a namespace may take to finish terminating.
const TERMINATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DeleteNamespace {
    #[schemars(with = "Vec<Label>")]
    pub namespaces: Spanned<Vec<Label>>,
    #[serde(default)]
    pub operator_action: Option<OperatorAction>,
}

impl Step for DeleteNamespace {
    fn kind(&self) -> &'static str {
        "delete-namespace"
    }

    fn outcome(&self) -> StepOutcome {
        StepOutcome::Recovered
    }

    fn operator_action(&self) -> Option<OperatorAction> {
        self.operator_action
    }

    fn describe(&self, _reverted: Option<(usize, String)>) -> String {
        format!(
            "delete namespace(s) {}",
            self.namespaces
                .value
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    }

    fn check(&self, facts: &ScenarioFacts) -> Result<(), ScenarioError> {
        if self.namespaces.value.is_empty() {
            return Err(ScenarioError::at(
                facts.file,
                &self.namespaces.referenced,
                "delete-namespace: list at least one namespace",
            ));
        }
        if let Some(ns) = self
            .namespaces
            .value
            .iter()
            .find(|ns| PROTECTED_NAMESPACES.contains(&ns.as_str()))
        {
            return Err(ScenarioError::at(
                facts.file,
                &self.namespaces.referenced,
                format!(
                    "delete-namespace: refusing to delete {ns}: it is part of the control plane, not of what Git restores"
                ),
            ));
        }
        Ok(())
    }

    fn inject<'a>(&'a self, cx: &'a mut dyn StepContext, step: usize) -> LocalBoxFuture<'a, Result<Client>> {
        async move {
            let client = cx.cluster()?.client().await?;
            let names: Vec<String> = self.namespaces.value.iter().map(|n| n.to_string()).collect();
            // A reconcile counts from the delete request: an engine may restore the
            // namespace before drill sees the old one gone.
            let requested = jiff::Timestamp::now();
            super::damage::delete_namespaces(&client, &names, TERMINATION_TIMEOUT).await?;
            // The namespaces are confirmed gone: so is everything in them, whatever the
            // watch stream has delivered yet.
            cx.namespaces_deleted(&names, requested);
            cx.emit(EventKind::DisasterInjected { step });
            Ok(client)
        }
        .boxed_local()
    }
}
