//! `delete-cluster`: destroy the whole cluster, then rebuild it from Git (optionally
//! without secret backups "lost with it") and time the rebuild.

use anyhow::{Context as _, Result};
use futures::FutureExt as _;
use futures::future::LocalBoxFuture;
use kube::Client;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::validate::ScenarioFacts;
use super::{Step, StepContext};
use crate::event::{EventKind, StepOutcome};
use crate::model::ScenarioError;
use crate::model::{OperatorAction, SecretName};

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DeleteCluster {
    /// Secrets (named as under `secrets:`) whose backup is lost with the cluster: the
    /// rebuild goes without them, to rehearse what a lost key costs.
    #[serde(default)]
    #[schemars(with = "Option<Vec<SecretName>>")]
    pub lost_secrets: Option<Spanned<Vec<SecretName>>>,
    #[serde(default)]
    pub operator_action: Option<OperatorAction>,
}

impl DeleteCluster {
    pub fn lost(&self) -> &[SecretName] {
        self.lost_secrets.as_ref().map_or(&[], |l| l.value.as_slice())
    }
}

impl Step for DeleteCluster {
    fn kind(&self) -> &'static str {
        "delete-cluster"
    }

    fn outcome(&self) -> StepOutcome {
        StepOutcome::Recovered
    }

    fn operator_action(&self) -> Option<OperatorAction> {
        self.operator_action
    }

    fn describe(&self, _reverted: Option<(usize, String)>) -> String {
        "destroy the whole cluster and rebuild it from Git".into()
    }

    fn check(&self, facts: &ScenarioFacts) -> Result<(), ScenarioError> {
        for (lost, at) in self
            .lost_secrets
            .iter()
            .flat_map(|l| l.value.iter().map(move |n| (n, &l.referenced)))
        {
            if !facts.restored_secrets.contains(lost) {
                return Err(ScenarioError::at(
                    facts.file,
                    at,
                    format!(
                        "delete-cluster: lost-secrets names {}, but {} is not set: only a secret that is restored can be lost",
                        lost.field(),
                        lost.config_path()
                    ),
                ));
            }
        }
        if let Some(context) = facts.existing_context {
            return Err(ScenarioError::in_file(
                facts.file,
                format!(
                    "delete-cluster: drill can only destroy clusters it created; context {context} is an existing cluster"
                ),
            ));
        }
        Ok(())
    }

    fn inject<'a>(&'a self, cx: &'a mut dyn StepContext, step: usize) -> LocalBoxFuture<'a, Result<Client>> {
        async move {
            let cluster = cx.cluster()?;
            cx.cluster_lost();
            cluster.delete().await.context("failed to delete the cluster")?;
            cx.emit(EventKind::DisasterInjected { step });
            if !self.lost().is_empty() {
                // The backups went with the cluster: the rebuild has to do without them.
                cx.lose_secrets(self.lost());
                let names: Vec<&str> = self.lost().iter().map(|n| n.config_path()).collect();
                cx.note(&format!(
                    "the rebuild goes without {}: lost with the cluster",
                    names.join(", ")
                ));
            }
            cx.rebuild().await
        }
        .boxed_local()
    }
}
