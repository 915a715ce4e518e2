//! Failures whose outcome is already certain, so a wait need not run out its timeout.
//!
//! Only what cannot fix itself counts: the registry answering, on every attempt for a
//! grace period, that an image or tag does not exist; an add-on saying for as long that
//! it lacks what only a person can restore (a sealed-secrets controller without the key
//! that sealed the fleet). An engine's own "failed" (a health check timeout, a failed
//! sync) is retried by the engine and can still end Ready, so it is not settled here.
//! Pure: events and the objects still waited for in, a verdict out.

use std::collections::BTreeMap;

use crate::event::{DrillEvent, EventKind, LostPod, ObjectRef, PodFate};
use crate::human::ms;

/// How long every pull attempt of an image must have been refused as missing.
pub const MISSING_IMAGE_GRACE_MS: u64 = 60_000;

/// Failures an add-on reports that nothing in a run undoes: (kind, words of its reason).
const DECLARED: [(&str, &str); 1] = [("SealedSecret", "no key could decrypt secret")];

/// How long an add-on must have said so.
pub const DECLARED_GRACE_MS: u64 = 60_000;

/// When each object still waited for was first seen saying it lacks what only a person
/// can restore, kept by the caller across one wait.
pub type DeclaredSince = BTreeMap<ObjectRef, u64>;

/// The first object still waited for whose own reason has said, for `grace_ms` of this
/// wait, that it lacks what only a person can restore. `since` is updated: an object
/// that stopped saying so starts again.
pub fn declared_failure(
    now_ms: u64,
    grace_ms: u64,
    waiting_for: &[(ObjectRef, String)],
    since: &mut DeclaredSince,
) -> Option<Settled> {
    let declaring: Vec<(&ObjectRef, &str, &str)> = waiting_for
        .iter()
        .filter_map(|(object, why)| {
            let (_, words) = DECLARED
                .iter()
                .find(|(kind, words)| object.kind == *kind && why.contains(words))?;
            Some((object, *words, why.as_str()))
        })
        .collect();
    since.retain(|o, _| declaring.iter().any(|(d, _, _)| *d == o));
    declaring.into_iter().find_map(|(object, words, why)| {
        let first = *since.entry(object.clone()).or_insert(now_ms);
        (now_ms.saturating_sub(first) >= grace_ms).then(|| Settled {
            cause: format!("{object} has said \"{words}\" for {} ({why})", ms(now_ms - first)),
            waiting: waiting_for.iter().map(|(o, _)| o.to_string()).collect(),
        })
    })
}

/// A certain failure: why, and what waits on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    pub cause: String,
    /// The workloads whose pods cannot start, then everything else still not Ready.
    pub waiting: Vec<String>,
}

impl Settled {
    pub fn describe(&self) -> String {
        format!("{}; waiting on it: {}", self.cause, self.waiting.join(", "))
    }
}

/// Refusals of one image since its last successful pull.
struct Refusals {
    first_ms: u64,
    count: usize,
    message: String,
    pods: Vec<ObjectRef>,
}

/// Whether the registry said the image is not there (containerd's "not found",
/// a registry's "manifest unknown"), rather than a network or auth problem.
pub fn says_missing(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("not found") || m.contains("manifest unknown") || m.contains("notfound")
}

/// The first image refused as missing on every attempt for `grace_ms` up to `now_ms`,
/// with at least two attempts, as a verdict naming the workloads waiting on it.
pub fn missing_image(
    events: &[DrillEvent],
    now_ms: u64,
    grace_ms: u64,
    waiting_for: &[(ObjectRef, String)],
) -> Option<Settled> {
    let mut by_image: BTreeMap<&str, Refusals> = BTreeMap::new();
    for ev in events {
        match &ev.kind {
            EventKind::ImagePullFailed {
                image, message, pod, ..
            } if says_missing(message) => {
                let r = by_image.entry(image.as_str()).or_insert_with(|| Refusals {
                    first_ms: ev.elapsed_ms,
                    count: 0,
                    message: message.clone(),
                    pods: Vec::new(),
                });
                r.count += 1;
                if let Some(pod) = pod
                    && !r.pods.contains(pod)
                {
                    r.pods.push(pod.clone());
                }
            }
            EventKind::ImagePulled { image, .. } => {
                by_image.remove(image.as_str());
            }
            _ => {}
        }
    }
    let (image, refused) = by_image
        .into_iter()
        .find(|(_, r)| r.count >= 2 && now_ms.saturating_sub(r.first_ms) >= grace_ms)?;
    let owners: Vec<&ObjectRef> = waiting_for
        .iter()
        .map(|(o, _)| o)
        .filter(|o| refused.pods.iter().any(|pod| owns(o, pod)))
        .collect();
    let mut waiting: Vec<String> = owners.iter().map(|o| o.to_string()).collect();
    waiting.extend(
        waiting_for
            .iter()
            .filter(|(o, _)| !owners.contains(&o))
            .map(|(o, _)| o.to_string()),
    );
    Some(Settled {
        cause: format!(
            "the registry has refused image {image} as missing on every attempt for {} ({} attempts): {}",
            ms(now_ms.saturating_sub(refused.first_ms)),
            refused.count,
            refused.message
        ),
        waiting,
    })
}

/// Settled when every workload still waited for lost a pod that nothing brings back
/// with a removed node (`remove-node`): its volume lived there, or the Node holds it.
pub fn lost_with_node(events: &[DrillEvent], waiting_for: &[(ObjectRef, String)]) -> Option<Settled> {
    let lost: Vec<(&str, &LostPod, &str)> = events
        .iter()
        .filter_map(|ev| match &ev.kind {
            EventKind::NodeRemoved { node, pods, .. } => Some((node, pods)),
            _ => None,
        })
        .flat_map(|(node, pods)| {
            pods.iter().filter_map(move |p| match &p.fate {
                PodFate::Unrecoverable { reason } => Some((node.as_str(), p, reason.as_str())),
                _ => None,
            })
        })
        .collect();
    let workloads: Vec<&ObjectRef> = waiting_for
        .iter()
        .map(|(o, _)| o)
        .filter(|o| matches!(o.kind.as_str(), "Deployment" | "StatefulSet" | "DaemonSet"))
        .collect();
    let held = |w: &ObjectRef| lost.iter().find(|(_, p, _)| p.workload.as_ref() == Some(w));
    if workloads.is_empty() || !workloads.iter().all(|w| held(w).is_some()) {
        return None;
    }
    let (node, pod, reason) = held(workloads[0])?;
    let mut waiting: Vec<String> = workloads.iter().map(|w| w.to_string()).collect();
    waiting.extend(
        waiting_for
            .iter()
            .filter(|(o, _)| !workloads.contains(&o))
            .map(|(o, _)| o.to_string()),
    );
    Some(Settled {
        cause: format!("{} cannot come back after node {node} was removed: {reason}", pod.pod),
        waiting,
    })
}

/// Whether workload `o` owns `pod` by the names its controllers give pods
/// (`<deployment>-<hash>-<id>`, `<statefulset>-<n>`, `<daemonset>-<id>`).
fn owns(o: &ObjectRef, pod: &ObjectRef) -> bool {
    matches!(o.kind.as_str(), "Deployment" | "StatefulSet" | "DaemonSet")
        && o.namespace == pod.namespace
        && pod
            .name
            .strip_prefix(o.name.as_str())
            .is_some_and(|rest| rest.starts_with('-'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::testkit::at;

    const MISSING: &str = "Failed to pull image \"registry:5000/demo-missing:9.9\": rpc error: code = NotFound desc = failed to resolve reference: not found";

    fn refused(ms: u64, message: &str) -> DrillEvent {
        at(
            ms,
            EventKind::ImagePullFailed {
                image: "registry:5000/demo-missing:9.9".into(),
                node: "n1".into(),
                reason: "Failed".into(),
                message: message.into(),
                pod: Some(ObjectRef::new("Pod", "users", "ghost-5d8f7c9b4-x2x7q")),
            },
        )
    }

    fn waiting() -> Vec<(ObjectRef, String)> {
        vec![
            (
                ObjectRef::new("Kustomization", "flux-system", "ghost"),
                "HealthCheckFailed".into(),
            ),
            (ObjectRef::new("Deployment", "users", "ghost"), "0/1 available".into()),
            (
                ObjectRef::new("Deployment", "users", "ghost-proxy"),
                "0/1 available".into(),
            ),
        ]
    }

    #[test]
    fn an_image_refused_as_missing_for_the_grace_period_is_settled_and_names_its_workload_first() {
        let events = [refused(10_000, MISSING), refused(25_000, MISSING)];
        let s = missing_image(&events, 70_000, 60_000, &waiting()).expect("settled");
        assert_eq!(
            s.waiting,
            vec![
                "Deployment/users/ghost",
                "Kustomization/flux-system/ghost",
                "Deployment/users/ghost-proxy"
            ]
        );
        assert!(s.cause.contains("demo-missing:9.9"), "{}", s.cause);
        assert!(s.cause.contains("for 1m 00s (2 attempts)"), "{}", s.cause);
    }

    #[test]
    fn not_settled_before_the_grace_period_or_after_one_attempt() {
        let two = [refused(10_000, MISSING), refused(25_000, MISSING)];
        assert_eq!(missing_image(&two, 69_999, 60_000, &waiting()), None);
        assert_eq!(missing_image(&two[..1], 90_000, 60_000, &waiting()), None);
    }

    #[test]
    fn a_sealed_secret_without_its_key_for_the_grace_period_is_settled() {
        let sealed = ObjectRef::new("SealedSecret", "users", "users-db-password");
        let no_key = vec![(
            sealed.clone(),
            "ErrUnsealFailed: no key could decrypt secret (password)".to_string(),
        )];
        let other = vec![(sealed, "Progressing: unsealing".to_string())];
        let mut since = DeclaredSince::new();
        assert_eq!(declared_failure(5_000, 60_000, &no_key, &mut since), None);
        assert_eq!(declared_failure(64_999, 60_000, &no_key, &mut since), None);
        let s = declared_failure(65_000, 60_000, &no_key, &mut since).expect("settled");
        assert!(s.cause.contains("SealedSecret/users/users-db-password"), "{}", s.cause);
        assert!(s.cause.contains("for 1m 00s"), "{}", s.cause);
        assert_eq!(s.waiting, vec!["SealedSecret/users/users-db-password"]);
        // Saying something else in between starts the count again.
        assert_eq!(declared_failure(70_000, 60_000, &other, &mut since), None);
        assert_eq!(declared_failure(80_000, 60_000, &no_key, &mut since), None);
        assert!(declared_failure(140_000, 60_000, &no_key, &mut since).is_some());
    }

    #[test]
    fn a_pull_that_succeeds_later_or_fails_for_another_reason_is_not_settled() {
        let pulled = at(
            30_000,
            EventKind::ImagePulled {
                image: "registry:5000/demo-missing:9.9".into(),
                node: "n1".into(),
                size_bytes: None,
                kubelet_ms: None,
            },
        );
        let events = [refused(10_000, MISSING), refused(25_000, MISSING), pulled];
        assert_eq!(missing_image(&events, 90_000, 60_000, &waiting()), None);
        let timeout = "Failed to pull image \"x\": dial tcp 10.0.0.1:5000: i/o timeout";
        let events = [refused(10_000, timeout), refused(25_000, timeout)];
        assert_eq!(missing_image(&events, 90_000, 60_000, &waiting()), None);
    }

    #[test]
    fn a_workload_whose_pod_went_with_a_removed_node_settles_once_it_is_all_that_waits() {
        let lost = |fate| LostPod {
            pod: ObjectRef::new("Pod", "ledger", "ledger-1"),
            workload: Some(ObjectRef::new("Deployment", "ledger", "ledger")),
            fate,
        };
        let removed = |fate| {
            [at(
                5_000,
                EventKind::NodeRemoved {
                    step: 0,
                    node: "w1".into(),
                    pods: vec![lost(fate)],
                },
            )]
        };
        let ledger = (ObjectRef::new("Deployment", "ledger", "ledger"), "0/1 available".into());
        let web = (ObjectRef::new("Deployment", "ledger", "web"), "1/2 available".into());
        let ks = (
            ObjectRef::new("Kustomization", "flux-system", "ledger"),
            "HealthCheckFailed".into(),
        );
        let pinned = removed(PodFate::Unrecoverable {
            reason: "its volume lived on node w1".into(),
        });
        let s = lost_with_node(&pinned, &[ks.clone(), ledger.clone()]).expect("settled");
        assert!(
            s.cause.contains("Pod/ledger/ledger-1 cannot come back after node w1"),
            "{}",
            s.cause
        );
        assert_eq!(
            s.waiting,
            vec!["Deployment/ledger/ledger", "Kustomization/flux-system/ledger"]
        );
        // Another workload may still come back: not settled yet.
        assert!(lost_with_node(&pinned, &[ledger.clone(), web]).is_none());
        // Only the engine waits (its next check): nothing settled by this rule.
        assert!(lost_with_node(&pinned, std::slice::from_ref(&ks)).is_none());
        let rescheduled = removed(PodFate::Rescheduled { toleration_s: Some(20) });
        assert!(lost_with_node(&rescheduled, &[ledger]).is_none());
    }
}
