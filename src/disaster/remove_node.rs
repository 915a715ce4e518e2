//! `remove-node`: a worker lost for good. Its container is deleted with its disks and
//! its Node object is left NotReady, as when a machine dies and nothing deletes its Node.
//! Recovered once every pod a controller makes again runs Ready on another node; a pod
//! that cannot come back (its volume lived on that node, a StatefulSet's pod held by the
//! Node, a pod no controller owns) is named, and the run's verdict waits on it.

use anyhow::{Result, bail};
use futures::FutureExt as _;
use futures::future::LocalBoxFuture;
use kube::Client;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;
use tokio::time::Instant;

use super::kill_node::check_node;
use super::validate::ScenarioFacts;
use super::{Step, StepContext, damage};
use crate::event::{EventKind, LostPod, ObjectRef, PodFate, StepOutcome};
use crate::human::ms;
use crate::model::ScenarioError;
use crate::model::{Label, OperatorAction};

/// How long the workloads of pods that cannot come back may take to show it, once the
/// API server shows those pods lost.
const SHOWN_LOST_WITHIN: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RemoveNode {
    /// A worker, as kind names node containers: `worker`, `worker2`, ... (a control plane
    /// lost for good is a lost cluster: `delete-cluster`).
    #[schemars(with = "Label")]
    pub node: Spanned<Label>,
    #[serde(default)]
    pub operator_action: Option<OperatorAction>,
}

impl Step for RemoveNode {
    fn kind(&self) -> &'static str {
        "remove-node"
    }

    fn outcome(&self) -> StepOutcome {
        StepOutcome::Recovered
    }

    fn operator_action(&self) -> Option<OperatorAction> {
        self.operator_action
    }

    fn describe(&self, _reverted: Option<(usize, String)>) -> String {
        format!("remove node {} for good (its Node left NotReady)", self.node.value)
    }

    fn check(&self, facts: &ScenarioFacts) -> Result<(), ScenarioError> {
        check_node(self.kind(), &self.node, facts)?;
        if self.node.value.as_str().starts_with("control-plane") {
            return Err(ScenarioError::at(
                facts.file,
                &self.node.referenced,
                "remove-node: a control plane lost for good takes the cluster with it; rehearse that with \
                 delete-cluster, or name a worker",
            ));
        }
        Ok(())
    }

    fn inject<'a>(&'a self, cx: &'a mut dyn StepContext, step: usize) -> LocalBoxFuture<'a, Result<Client>> {
        async move {
            let cluster = cx.cluster()?;
            let (Some(container), Some(run)) = (cluster.node_container(self.node.value.as_str()), cluster.owner_run())
            else {
                bail!("remove-node needs a cluster drill created");
            };
            let docker = cx.docker()?;
            crate::cluster::owner::require(&docker, &container, run).await?;
            let client = cluster.client().await?;
            // The kind node container is the Kubernetes node of the same name.
            let loss = damage::assess_node_loss(&client, &container).await?;
            let removed_at = Instant::now();
            damage::remove_node(&docker, &container).await?;
            cx.emit(EventKind::NodeRemoved {
                step,
                node: container.clone(),
                pods: loss.pods.clone(),
            });
            cx.note(&format!("  removed {container} for good; {}", summary(&loss.pods)));
            cx.emit(EventKind::DisasterInjected { step });
            let deadline = removed_at + cx.budget(None);
            let back = damage::await_rescheduled(&client, &loss, deadline).await;
            cx.note(&if back {
                format!(
                    "  the node's pods are lost by the API server and {} rescheduled Ready elsewhere, {} after the removal",
                    loss.rescheduled(),
                    ms(u64::try_from(removed_at.elapsed().as_millis()).unwrap_or(u64::MAX))
                )
            } else {
                "  not every pod of the node ran again elsewhere within the budget: judging what is there".to_string()
            });
            await_shown_lost(cx, &loss).await;
            Ok(client)
        }
        .boxed_local()
    }
}

/// Waits (briefly) until each workload whose pod cannot come back is seen not Ready, so
/// the verdict is not taken on its status from before the loss.
async fn await_shown_lost(cx: &mut dyn StepContext, loss: &damage::NodeLoss) {
    let workloads: Vec<ObjectRef> = loss.unrecoverable().filter_map(|p| p.workload.clone()).collect();
    if workloads.is_empty() {
        return;
    }
    let mut shown =
        |view: &dyn crate::disaster::StepView| workloads.iter().all(|w| view.observation(w).is_none_or(|o| !o.ready));
    cx.wait_until(Instant::now() + SHOWN_LOST_WITHIN, &mut shown).await;
}

/// One line: how many pods the node took and what becomes of them.
fn summary(pods: &[LostPod]) -> String {
    let count = |f: fn(&PodFate) -> bool| pods.iter().filter(|p| f(&p.fate)).count();
    let tolerations: std::collections::BTreeSet<i64> = pods
        .iter()
        .filter_map(|p| match p.fate {
            PodFate::Rescheduled { toleration_s } => Some(toleration_s.unwrap_or(300)),
            _ => None,
        })
        .collect();
    let after = tolerations
        .iter()
        .map(|s| format!("{s}s"))
        .collect::<Vec<_>>()
        .join("/");
    let mut line = format!(
        "{} Ready pod(s) on it: {} to reschedule elsewhere (evicted after their unreachable toleration{}), \
         {} of its DaemonSets",
        pods.len(),
        count(|f| matches!(f, PodFate::Rescheduled { .. })),
        if after.is_empty() {
            String::new()
        } else {
            format!(", {after}")
        },
        count(|f| *f == PodFate::GoesWithNode),
    );
    for p in pods {
        if let PodFate::Unrecoverable { reason } = &p.fate {
            line.push_str(&format!("\n  ✗ {} cannot come back: {reason}", p.pod));
        }
    }
    line
}
