//! `kill-node`: kill a node's container abruptly (SIGKILL, a power cut), start it
//! again, and wait for the pods that were Ready on it to run again.

use anyhow::{Result, bail};
use futures::FutureExt as _;
use futures::future::LocalBoxFuture;
use kube::Client;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;
use tokio::time::Instant;

use super::validate::ScenarioFacts;
use super::{Step, StepContext, damage};
use crate::event::{EventKind, StepOutcome};
use crate::model::ScenarioError;
use crate::model::{Label, OperatorAction};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KillNode {
    /// Node role suffix as kind names containers: `control-plane`, `worker`, `worker2`, ...
    #[schemars(with = "Label")]
    pub node: Spanned<Label>,
    #[serde(default)]
    pub operator_action: Option<OperatorAction>,
}

impl Step for KillNode {
    fn kind(&self) -> &'static str {
        "kill-node"
    }

    fn outcome(&self) -> StepOutcome {
        StepOutcome::Recovered
    }

    fn operator_action(&self) -> Option<OperatorAction> {
        self.operator_action
    }

    fn describe(&self, _reverted: Option<(usize, String)>) -> String {
        format!("kill node {} (SIGKILL) and start it again", self.node.value)
    }

    fn check(&self, facts: &ScenarioFacts) -> Result<(), ScenarioError> {
        check_node(self.kind(), &self.node, facts)
    }

    fn inject<'a>(&'a self, cx: &'a mut dyn StepContext, step: usize) -> LocalBoxFuture<'a, Result<Client>> {
        async move {
            let cluster = cx.cluster()?;
            let (Some(container), Some(run)) = (cluster.node_container(self.node.value.as_str()), cluster.owner_run())
            else {
                bail!("kill-node needs a cluster drill created");
            };
            let docker = cx.docker()?;
            crate::cluster::owner::require(&docker, &container, run).await?;
            // The kind node container is the Kubernetes node of the same name.
            let before = damage::pods_on_node(&cluster.client().await?, &container).await?;
            let killed_at = jiff::Timestamp::now();
            damage::kill_node(&docker, &container).await?;
            cx.note(&format!(
                "  killed and restarted {container}; waiting for its {} Ready pod(s) to start again",
                before.pods.len()
            ));
            cx.emit(EventKind::DisasterInjected { step });
            let client = cluster.client().await?;
            // Until the kubelet restarts them, the workloads still report the
            // availability they had before the kill.
            let budget = cx.budget(None);
            let back = damage::await_restarted(&client, &before, killed_at, Instant::now() + budget).await;
            let after = jiff::Timestamp::now().duration_since(killed_at).as_millis();
            cx.note(&if back {
                format!(
                    "  the node's pods run again, {} after the kill",
                    crate::human::ms(u64::try_from(after).unwrap_or(0))
                )
            } else {
                "  not every pod of the node ran again within the budget: judging what is there".to_string()
            });
            Ok(client)
        }
        .boxed_local()
    }
}

/// A node step's check: the cluster is one drill creates, and its kind config has the node.
pub(super) fn check_node(kind: &str, node: &Spanned<Label>, facts: &ScenarioFacts) -> Result<(), ScenarioError> {
    if facts.existing_context.is_some() {
        return Err(ScenarioError::at(
            facts.file,
            &node.referenced,
            format!("{kind}: only kind clusters created by drill have node containers"),
        ));
    }
    if !facts.kind_nodes.iter().any(|n| n == node.value.as_str()) {
        return Err(ScenarioError::at(
            facts.file,
            &node.referenced,
            format!(
                "{kind}: the kind config has no node {:?}; its nodes are: {}",
                node.value.as_str(),
                facts.kind_nodes.join(", ")
            ),
        ));
    }
    Ok(())
}
