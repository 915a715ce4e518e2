//! What the runner does around steps: waits driven by watch updates (until a condition,
//! until degraded), following hand edits, recording commits, the operator's go-ahead.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;
use tokio::time::Instant;

use super::Run;
use crate::event::{EventKind, ObjectRef};
use crate::gitserve::FileEdit;
use crate::scenario::{DriftExpect, Edit};

/// How long an object must stay not Ready, after the engine fetched the change, to count
/// as degraded rather than rolling out. Long enough for a normal rollout of the demo fleet.
const DEGRADE_AFTER: Duration = Duration::from_secs(20);

/// Whether a not-Ready object says something is broken, rather than that it waits for
/// another object or is busy: an engine object waiting on a dependency or mid-reconcile
/// is a symptom; the workload that cannot become Ready, or a failed reconcile, is the breakage.
fn counts_as_broken(o: &ObjectRef, why: &str) -> bool {
    const WAITING: [&str; 9] = [
        "DependencyNotReady",
        "Progressing",
        "ProgressingWithRetry",
        "Suspended",
        "StaleGeneration",
        "waiting for a reconcile",
        "applied ",
        "at revision",
        "not created yet",
    ];
    let workload = matches!(o.kind.as_str(), "Deployment" | "StatefulSet" | "DaemonSet");
    workload || !WAITING.iter().any(|w| why.starts_with(w))
}

pub(super) fn file_edits(edits: &[Edit]) -> Vec<FileEdit> {
    edits
        .iter()
        .map(|e| FileEdit {
            file: e.file.as_str().to_string(),
            find: e.find.clone(),
            replace: e.replace.clone(),
        })
        .collect()
}

impl Run<'_> {
    pub(super) fn committed(&mut self, step: usize, commit: String, message: String, reverts: Option<String>) {
        self.commit = commit.clone();
        self.commits_by_step.insert(step, commit.clone());
        self.emit(EventKind::Committed {
            step,
            commit,
            message,
            reverts,
        });
    }

    /// Waits, driven by watch updates, until `done` holds or `deadline` passes.
    pub(super) async fn wait_until(&mut self, deadline: Instant, mut done: impl FnMut(&Self) -> bool) -> bool {
        loop {
            if self.drain_updates().is_err() {
                return false;
            }
            if done(self) {
                return true;
            }
            let Some((_, rx)) = self.observer.as_mut() else {
                return false;
            };
            let update = tokio::select! {
                u = rx.recv() => u,
                _ = tokio::time::sleep_until(deadline) => return done(self),
            };
            match update {
                Some(u) => self.apply(u),
                None => return false,
            }
        }
    }

    /// Waits until the engine has fetched the current commit and some object it must
    /// make Ready has stayed not Ready for [`DEGRADE_AFTER`] (or an image pull failed).
    pub(super) async fn wait_degraded(&mut self, step: usize, deadline: Instant) -> bool {
        let Some(engine) = self.engine.clone() else {
            return false;
        };
        let (root, source) = engine.roots();
        let mut fetched_at: Option<Instant> = None;
        let mut since: BTreeMap<ObjectRef, Instant> = BTreeMap::new();
        let first_event = self.events.len();
        loop {
            if self.drain_updates().is_err() {
                return false;
            }
            let commit = self.commit.clone();
            let now = Instant::now();
            if fetched_at.is_none()
                && self
                    .state
                    .get(&source)
                    .and_then(|o| o.revision.as_deref())
                    .is_some_and(|rev| rev.ends_with(&commit))
            {
                fetched_at = Some(now);
                self.emit(EventKind::RevisionFetched {
                    step,
                    commit: commit.clone(),
                });
            }
            if let Some(fetched) = fetched_at {
                let status = self
                    .state
                    .recovery(engine.rules(), &root, &source, &commit, &Default::default());
                since.retain(|o, _| status.waiting_for.iter().any(|(w, _)| w == o));
                let failed_pulls: Vec<String> = self.events[first_event..]
                    .iter()
                    .filter_map(|e| match &e.kind {
                        EventKind::ImagePullFailed { image, reason, .. } => Some(format!("{image}: {reason}")),
                        _ => None,
                    })
                    .collect();
                let mut broken = Vec::new();
                for (o, why) in status.waiting_for.iter().filter(|(o, why)| counts_as_broken(o, why)) {
                    let first = *since.entry(o.clone()).or_insert(now);
                    if now.duration_since(first.max(fetched)) >= DEGRADE_AFTER || !failed_pulls.is_empty() {
                        broken.push((o.clone(), why.clone()));
                    }
                }
                if !broken.is_empty() {
                    broken.extend(
                        failed_pulls
                            .into_iter()
                            .map(|p| (ObjectRef::new("Image", "", &p), "pull failed".to_string())),
                    );
                    self.emit(EventKind::Degraded { step, objects: broken });
                    return true;
                }
            }
            let Some((_, rx)) = self.observer.as_mut() else {
                return false;
            };
            let update = tokio::select! {
                u = rx.recv() => u,
                _ = tokio::time::sleep_until(deadline) => return false,
                // Time alone can make an object count as degraded: look again.
                _ = tokio::time::sleep(Duration::from_secs(2)) => continue,
            };
            match update {
                Some(u) => self.apply(u),
                None => return false,
            }
        }
    }

    /// Hand edits the engine is expected to overwrite and has not yet.
    pub(super) fn unhealed_drift(&self) -> Vec<ObjectRef> {
        self.drifts
            .iter()
            .filter(|d| d.expect == DriftExpect::Healed && !d.reverted && !d.backported)
            .map(|d| d.applied.object.clone())
            .collect()
    }

    pub(super) fn live_changed(&mut self, object: &ObjectRef, value: Option<&Value>) {
        let step = self.current_step;
        let mut reverted = Vec::new();
        for d in self
            .drifts
            .iter_mut()
            .filter(|d| &d.applied.object == object && !d.reverted)
        {
            if let Some(v) = value
                && !d.backported
                && d.applied.reverted(v)
            {
                d.reverted = true;
                reverted.push(object.clone());
            }
        }
        for object in reverted {
            self.emit(EventKind::DriftReverted { step, object });
        }
    }

    /// Flux records what a reconcile changed as an event on the Kustomization
    /// ("ConfigMap/users/users-api-env configured"); Argo CD marks the Application
    /// OutOfSync (`message` empty): either way the engine saw the drift.
    pub(super) fn engine_event(&mut self, kustomization: &ObjectRef, message: &str) {
        let step = self.current_step;
        let mut detected = Vec::new();
        for d in self.drifts.iter_mut().filter(|d| !d.detected && !d.reverted) {
            let o = &d.applied.object;
            let named = if o.namespace.is_empty() {
                format!("{}/{} configured", o.kind, o.name)
            } else {
                format!("{}/{}/{} configured", o.kind, o.namespace, o.name)
            };
            // Argo CD reports drift as its Application going OutOfSync (no message to match).
            let argo = kustomization.kind == "Application" && message.is_empty();
            if d.applied.manager.as_ref() == Some(kustomization) && (argo || message.contains(&named)) {
                d.detected = true;
                detected.push((o.clone(), format!("{kustomization}: {named}")));
            }
        }
        for (object, by) in detected {
            self.emit(EventKind::DriftDetected { step, object, by });
        }
    }

    /// Game-day mode: shows what comes next and waits for the operator's Enter (not with
    /// `--auto`), then records the go-ahead, who gave it and how long it took.
    pub(super) async fn operator_go_ahead(&mut self, step: usize, what: &str) -> Result<()> {
        let Some(operator) = self.opts.operator.clone() else {
            return Ok(());
        };
        let asked = Instant::now();
        if operator.auto {
            self.note(&format!("▶ {what} (auto)"));
        } else {
            eprintln!("\n▶ {what}\n  {}: press Enter to go ahead", operator.name);
            tokio::task::spawn_blocking(|| {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line).map(|n| n > 0)
            })
            .await
            .context("failed to wait for the operator")?
            .context("failed to read the operator's answer from stdin")?
            .then_some(())
            .context("stdin closed while waiting for the operator")?;
        }
        let waited = asked.elapsed();
        self.emit(EventKind::Action {
            step,
            action: format!("go-ahead: {what}"),
            ok: true,
            by: operator.name.clone(),
            message: if operator.auto {
                "auto".to_string()
            } else {
                format!("after {:.1}s", waited.as_secs_f64())
            },
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_workloads_and_failed_reconciles_count_as_broken() {
        let k = ObjectRef::new("Kustomization", "flux-system", "users-api");
        let d = ObjectRef::new("Deployment", "users", "users-api");
        assert!(!counts_as_broken(
            &k,
            "DependencyNotReady: dependency 'flux-system/users-db' is not ready"
        ));
        assert!(!counts_as_broken(&k, "Progressing: Reconciliation in progress"));
        assert!(!counts_as_broken(&k, "applied main@sha1:a, source is at main@sha1:b"));
        assert!(counts_as_broken(
            &k,
            "HealthCheckFailed: timeout waiting for: [Deployment/users/users-api]"
        ));
        assert!(counts_as_broken(&d, "ProgressDeadlineExceeded: 0/1 available"));
        assert!(counts_as_broken(&d, "Progressing: 0/1 available"));
    }
}
