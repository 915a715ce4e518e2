//! A node lost for good (`remove-node`): what ran on it and what becomes of each pod,
//! the removal itself, and the wait until every pod a controller makes again runs
//! elsewhere. The Node object stays (NotReady), as it does when a machine dies and no
//! cloud controller deletes it: pods are evicted only after their `unreachable`
//! toleration, a StatefulSet's pod stays Terminating, and a pod whose volume lived on
//! the node (local-path) can never start again. Those are findings, not waits.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result};
use bollard::Docker;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::Client;
use kube::api::{Api, ListParams};
use kube::runtime::watcher;
use tokio::time::Instant;

use super::pods::{is_ready, watch_pods_until};
use crate::event::{LostPod, ObjectRef, PodFate};

/// The taint a node controller puts on a node that stopped answering.
const UNREACHABLE: &str = "node.kubernetes.io/unreachable";

/// What a node's loss takes: each Ready pod on it with its fate, and, for the pods a
/// controller makes again, how many Ready pods each controller had before (by uid).
#[derive(Debug, Clone, Default)]
pub struct NodeLoss {
    pub node: String,
    pub pods: Vec<LostPod>,
    /// Controller uid → Ready pods it had across the cluster before the loss.
    ready_before: BTreeMap<String, usize>,
    /// The lost pods' uids.
    lost: BTreeSet<String>,
    /// The lost pods the API server must show lost (not Ready, evicted or gone) before
    /// workload statuses say anything about the loss: all but a DaemonSet's.
    to_see_lost: BTreeSet<String>,
}

impl NodeLoss {
    pub fn unrecoverable(&self) -> impl Iterator<Item = &LostPod> {
        self.pods
            .iter()
            .filter(|p| matches!(p.fate, PodFate::Unrecoverable { .. }))
    }

    pub fn rescheduled(&self) -> usize {
        self.pods
            .iter()
            .filter(|p| matches!(p.fate, PodFate::Rescheduled { .. }))
            .count()
    }
}

/// Reads, before the removal, every Ready pod on `node` and what will become of it.
pub async fn assess(client: &Client, node: &str) -> Result<NodeLoss> {
    let pods: Api<Pod> = Api::all(client.clone());
    let all = pods
        .list(&ListParams::default())
        .await
        .context("failed to list the cluster's pods")?
        .items;
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    let mut loss = NodeLoss {
        node: node.to_string(),
        ..Default::default()
    };
    let mut reschedulable = BTreeSet::new();
    for pod in all.iter().filter(|p| is_ready(p)) {
        let on_node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node);
        if let Some(owner) = controller_uid(pod) {
            *loss.ready_before.entry(owner.to_string()).or_default() += 1;
        }
        if !on_node {
            continue;
        }
        let pinned = pinned_claim(client, pod, node, &volumes).await?;
        let lost = LostPod {
            pod: pod_ref(pod),
            workload: workload_of(pod),
            fate: fate(pod, pinned, node),
        };
        if matches!(lost.fate, PodFate::Rescheduled { .. })
            && let Some(owner) = controller_uid(pod)
        {
            reschedulable.insert(owner.to_string());
        }
        loss.lost.extend(pod.metadata.uid.clone());
        if lost.fate != PodFate::GoesWithNode {
            loss.to_see_lost.extend(pod.metadata.uid.clone());
        }
        loss.pods.push(lost);
    }
    // Only the controllers that make a lost pod again are waited for.
    loss.ready_before.retain(|uid, _| reschedulable.contains(uid));
    Ok(loss)
}

/// Deletes a node container for good (SIGKILL, then removed with its volumes): a machine
/// that is gone, not rebooted.
pub async fn remove_node(docker: &Docker, container: &str) -> Result<()> {
    let options = bollard::query_parameters::RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    docker
        .remove_container(container, Some(options))
        .await
        .with_context(|| format!("failed to remove node container {container}"))
}

/// Resolves once the API server shows every lost pod lost (the node controller marks them
/// not Ready about 50 s after the node stops answering, so until then every workload
/// still looks healthy) and every controller that lost a pod it makes again has as many
/// Ready pods off the lost node as it had Ready before; or at `deadline` (false).
pub async fn await_rescheduled(client: &Client, loss: &NodeLoss, deadline: Instant) -> bool {
    let api: Api<Pod> = Api::all(client.clone());
    watch_pods_until(api, watcher::Config::default(), deadline, |pods| {
        let seen_lost = loss
            .to_see_lost
            .iter()
            .all(|uid| pods.get(uid).is_none_or(|p| !is_ready(p)));
        let mut ready_elsewhere: BTreeMap<&str, usize> = BTreeMap::new();
        for (uid, pod) in pods {
            let on_lost = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(loss.node.as_str());
            if is_ready(pod)
                && !on_lost
                && !loss.lost.contains(uid)
                && let Some(owner) = controller_uid(pod)
            {
                *ready_elsewhere.entry(owner).or_default() += 1;
            }
        }
        seen_lost
            && loss
                .ready_before
                .iter()
                .all(|(owner, before)| ready_elsewhere.get(owner.as_str()).copied().unwrap_or(0) >= *before)
    })
    .await
}

/// What becomes of a Ready pod of the lost node. `pinned`: its claim whose volume can
/// only be mounted on that node, with the volume's name.
fn fate(pod: &Pod, pinned: Option<(String, String)>, node: &str) -> PodFate {
    let owner_kind = controller(pod).map(|o| o.kind.as_str());
    if owner_kind == Some("DaemonSet") {
        return PodFate::GoesWithNode;
    }
    if let Some((claim, volume)) = pinned {
        return PodFate::Unrecoverable {
            reason: format!(
                "its volume (PersistentVolumeClaim {claim}, PersistentVolume {volume}) lived on node {node}: \
                 no other node can mount it"
            ),
        };
    }
    match owner_kind {
        None => PodFate::Unrecoverable {
            reason: "no controller owns it: nothing makes it again".into(),
        },
        Some("StatefulSet") => PodFate::Unrecoverable {
            reason: format!(
                "a StatefulSet makes its pod again only once the old one is gone, and it stays Terminating \
                 while Node {node} exists: delete the Node or taint it node.kubernetes.io/out-of-service"
            ),
        },
        Some(_) => PodFate::Rescheduled {
            toleration_s: unreachable_toleration(pod),
        },
    }
}

/// The pod's own `unreachable` NoExecute toleration: how long it stays bound to a node
/// that stopped answering (300 s unless the pod or the API server says otherwise).
fn unreachable_toleration(pod: &Pod) -> Option<i64> {
    pod.spec
        .as_ref()?
        .tolerations
        .as_ref()?
        .iter()
        .find(|t| t.key.as_deref() == Some(UNREACHABLE) && t.effect.as_deref() == Some("NoExecute"))?
        .toleration_seconds
}

/// The first claim of `pod` whose volume is bound to `node` alone (local-path, hostPath
/// and local volumes carry a node affinity naming their node).
async fn pinned_claim(
    client: &Client,
    pod: &Pod,
    node: &str,
    volumes: &Api<PersistentVolume>,
) -> Result<Option<(String, String)>> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let claim_names = pod
        .spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .filter_map(|v| v.persistent_volume_claim.as_ref().map(|c| c.claim_name.clone()));
    for claim in claim_names {
        let bound = claims
            .get_opt(&claim)
            .await
            .with_context(|| format!("failed to read PersistentVolumeClaim {namespace}/{claim}"))?
            .and_then(|c| c.spec?.volume_name);
        let Some(volume) = bound else { continue };
        let pv = volumes
            .get_opt(&volume)
            .await
            .with_context(|| format!("failed to read PersistentVolume {volume}"))?;
        if pv.as_ref().is_some_and(|pv| pinned_to(pv, node)) {
            return Ok(Some((format!("{namespace}/{claim}"), volume)));
        }
    }
    Ok(None)
}

/// Whether every node selector term of the volume's required affinity names `node` alone
/// by hostname: no other node could mount it.
fn pinned_to(pv: &PersistentVolume, node: &str) -> bool {
    let terms = pv
        .spec
        .as_ref()
        .and_then(|s| s.node_affinity.as_ref())
        .and_then(|a| a.required.as_ref())
        .map(|r| r.node_selector_terms.as_slice())
        .unwrap_or(&[]);
    !terms.is_empty()
        && terms.iter().all(|term| {
            term.match_expressions.iter().flatten().any(|e| {
                e.key == "kubernetes.io/hostname"
                    && e.operator == "In"
                    && e.values
                        .as_ref()
                        .is_some_and(|v| !v.is_empty() && v.iter().all(|n| n == node))
            })
        })
}

fn controller(pod: &Pod) -> Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference> {
    pod.metadata
        .owner_references
        .as_ref()?
        .iter()
        .find(|o| o.controller == Some(true))
}

fn controller_uid(pod: &Pod) -> Option<&str> {
    controller(pod).map(|o| o.uid.as_str())
}

fn pod_ref(pod: &Pod) -> ObjectRef {
    ObjectRef::new(
        "Pod",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default(),
    )
}

/// The workload a person knows the pod by: a ReplicaSet's pod is its Deployment's (the
/// ReplicaSet's name less the pod template hash).
fn workload_of(pod: &Pod) -> Option<ObjectRef> {
    let owner = controller(pod)?;
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    let hash = pod.metadata.labels.as_ref().and_then(|l| l.get("pod-template-hash"));
    let deployment = (owner.kind == "ReplicaSet")
        .then(|| hash.and_then(|h| owner.name.strip_suffix(&format!("-{h}"))))
        .flatten();
    Some(match deployment {
        Some(name) => ObjectRef::new("Deployment", namespace, name),
        None => ObjectRef::new(&owner.kind, namespace, &owner.name),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, PersistentVolumeSpec, PodSpec, Toleration,
        VolumeNodeAffinity,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

    fn pod(owner: Option<(&str, &str)>, hash: Option<&str>, toleration: Option<i64>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web-7d9f-abcde".into()),
                namespace: Some("ledger".into()),
                labels: hash.map(|h| [("pod-template-hash".to_string(), h.to_string())].into()),
                owner_references: owner.map(|(kind, name)| {
                    vec![OwnerReference {
                        kind: kind.into(),
                        name: name.into(),
                        uid: format!("uid-{name}"),
                        controller: Some(true),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            },
            spec: Some(PodSpec {
                tolerations: toleration.map(|s| {
                    vec![Toleration {
                        key: Some(UNREACHABLE.into()),
                        effect: Some("NoExecute".into()),
                        operator: Some("Exists".into()),
                        toleration_seconds: Some(s),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn pv(hosts: &[&[&str]]) -> PersistentVolume {
        let terms = hosts
            .iter()
            .map(|values| NodeSelectorTerm {
                match_expressions: Some(vec![NodeSelectorRequirement {
                    key: "kubernetes.io/hostname".into(),
                    operator: "In".into(),
                    values: Some(values.iter().map(|v| v.to_string()).collect()),
                }]),
                ..Default::default()
            })
            .collect();
        PersistentVolume {
            spec: Some(PersistentVolumeSpec {
                node_affinity: Some(VolumeNodeAffinity {
                    required: Some(NodeSelector {
                        node_selector_terms: terms,
                    }),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_replicaset_pod_is_rescheduled_after_its_toleration_and_named_by_its_deployment() {
        let p = pod(Some(("ReplicaSet", "web-7d9f")), Some("7d9f"), Some(20));
        assert_eq!(fate(&p, None, "w1"), PodFate::Rescheduled { toleration_s: Some(20) });
        assert_eq!(workload_of(&p), Some(ObjectRef::new("Deployment", "ledger", "web")));
        let bare_rs = pod(Some(("ReplicaSet", "batch")), None, None);
        assert_eq!(
            workload_of(&bare_rs),
            Some(ObjectRef::new("ReplicaSet", "ledger", "batch"))
        );
    }

    #[test]
    fn pods_nothing_brings_back_are_unrecoverable_with_the_reason() {
        let pinned = Some(("ledger/data".to_string(), "pvc-1".to_string()));
        let with_volume = fate(&pod(Some(("ReplicaSet", "db-1")), Some("1"), None), pinned, "w1");
        let PodFate::Unrecoverable { reason } = with_volume else {
            panic!("{with_volume:?}")
        };
        assert!(
            reason.contains("PersistentVolumeClaim ledger/data") && reason.contains("node w1"),
            "{reason}"
        );
        assert!(matches!(
            fate(&pod(None, None, None), None, "w1"),
            PodFate::Unrecoverable { .. }
        ));
        let sts = fate(&pod(Some(("StatefulSet", "db")), None, None), None, "w1");
        assert!(
            matches!(&sts, PodFate::Unrecoverable { reason } if reason.contains("Terminating")),
            "{sts:?}"
        );
        assert_eq!(
            fate(&pod(Some(("DaemonSet", "agent")), None, None), None, "w1"),
            PodFate::GoesWithNode
        );
    }

    #[test]
    fn a_volume_is_pinned_only_when_every_term_names_that_node_alone() {
        assert!(pinned_to(&pv(&[&["w1"]]), "w1"));
        assert!(!pinned_to(&pv(&[&["w2"]]), "w1"));
        assert!(!pinned_to(&pv(&[&["w1", "w2"]]), "w1"), "another node may mount it");
        assert!(!pinned_to(&pv(&[&["w1"], &["w2"]]), "w1"), "another term allows w2");
        assert!(!pinned_to(&pv(&[]), "w1"), "no affinity: network storage");
    }
}
