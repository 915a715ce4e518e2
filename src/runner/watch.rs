//! Following the cluster: applying watch updates to the state (and to the event
//! stream), and waiting until everything Git declares is back.

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::time::Instant;

use super::Run;
use crate::disaster::Disaster;
use crate::engine::Engine;
use crate::event::{EventKind, ObjectRef};
use crate::observe::kubelet::PullFact;
use crate::observe::readiness::Observation;
use crate::observe::{Received, Update};

/// How often, at most, a wait asks whether its outcome is settled: the question reads the
/// window's events, and a large fleet sends updates many times a second.
const SETTLED_EVERY: Duration = Duration::from_secs(1);

impl Run<'_> {
    pub(super) fn state_deleted_in(&self, namespaces: &[String]) -> Vec<ObjectRef> {
        self.events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::ObjectObserved { object, .. } if namespaces.contains(&object.namespace) => {
                    Some(object.clone())
                }
                _ => None,
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// A step that must end recovered: waits for it (and past its budget, so an
    /// over-budget recovery is still measured), then for users to be served again.
    pub(super) async fn wait_step_recovered(
        &mut self,
        step: usize,
        d: &Disaster,
        baseline: &BTreeSet<ObjectRef>,
        budget: Duration,
    ) {
        let deadline = Instant::now() + budget + budget.min(Duration::from_secs(600));
        let (mut done, _) = self.wait_recovered(baseline, deadline).await;
        if done {
            done = self.wait_reconciles_handled(deadline).await;
        }
        self.emit(if done {
            EventKind::Recovered { step }
        } else {
            EventKind::RecoveryTimedOut { step }
        });
        if done {
            // Users are served again when every probe is: the next damage, or the run's
            // end, waits for that (its downtime is measured in full).
            self.wait_served(deadline).await;
            d.as_step().after_recovery(self, step).await;
        }
    }

    /// Waits until the engine handled every reconcile asked in this step (an operator's
    /// reconcile-now, a resume): each object asked, while it exists and is not paused,
    /// took the request and is Ready. Without this, recovery could be judged from before
    /// the asked reconcile, and the engine would still act on it after the run, against
    /// a served repo already gone (seen: Argo CD's root left at the bare branch name, its
    /// comparison failed).
    async fn wait_reconciles_handled(&mut self, deadline: Instant) -> bool {
        let Some(engine) = self.engine.clone() else {
            return false;
        };
        let asked = std::mem::take(&mut self.asked_reconciles);
        let done = |run: &Self| unhandled(engine.as_ref(), &asked, |o| run.state.get(o)).is_empty();
        if self.wait_until(deadline, done).await {
            return true;
        }
        let left = unhandled(engine.as_ref(), &asked, |o| self.state.get(o));
        let names: Vec<String> = left.iter().map(ToString::to_string).collect();
        self.note(&format!(
            "  a reconcile asked in this step was not handled and Ready by the deadline: {}",
            names.join(", ")
        ));
        false
    }

    /// Waits, driven by watch updates, until the cluster has recovered or `deadline`
    /// passes. Returns whether it recovered and, if not, what it was still waiting for.
    pub(super) async fn wait_recovered(&mut self, baseline: &BTreeSet<ObjectRef>, deadline: Instant) -> (bool, String) {
        let Some(engine) = self.engine.clone() else {
            return (false, "no engine".into());
        };
        let (root, source) = engine.roots();
        let mut declared = crate::observe::settled::DeclaredSince::new();
        // Whether the outcome is settled is asked at most every SETTLED_EVERY.
        let mut settled_asked: Option<Instant> = None;
        loop {
            // Judge only on everything the watchers have reported so far.
            if let Err(why) = self.drain_updates() {
                return (false, why);
            }
            let commit = self.commit.clone();
            let status = self.state.recovery(engine.rules(), &root, &source, &commit, baseline);
            let unhealed = self.unhealed_drift();
            if status.complete && unhealed.is_empty() {
                return (true, String::new());
            }
            let waiting: Vec<String> = status
                .waiting_for
                .iter()
                .map(|(o, why)| format!("{o} ({why})"))
                .chain(
                    unhealed
                        .iter()
                        .map(|o| format!("{o} (hand edit not overwritten by Git yet)")),
                )
                .collect();
            // A question skipped for the rate is asked again when the rate allows, even
            // if no update comes (the last one may be what settles it).
            let mut ask_again = None;
            if self.opts.fail_fast && settled_asked.is_some_and(|at| at.elapsed() < SETTLED_EVERY) {
                ask_again = settled_asked.map(|at| at + SETTLED_EVERY);
            } else if self.opts.fail_fast {
                settled_asked = Some(Instant::now());
                if let Some(settled) = self.settled_failure(&status.waiting_for, &mut declared) {
                    let reason = settled.describe();
                    self.emit(EventKind::StoppedEarly { reason: reason.clone() });
                    return (false, reason);
                }
            }
            if self.last_wait_note.elapsed() > Duration::from_secs(20) {
                self.last_wait_note = Instant::now();
                self.note(&format!(
                    "  waiting for {} object(s): {}",
                    waiting.len(),
                    waiting.iter().take(3).cloned().collect::<Vec<_>>().join("; ")
                ));
            }
            let Some((_, rx)) = self.observer.as_mut() else {
                return (false, "no observer".into());
            };
            let update = tokio::select! {
                u = rx.recv() => u,
                _ = tokio::time::sleep_until(deadline) => return (false, waiting.join("; ")),
                // Re-print what is being waited for even when nothing changes.
                _ = tokio::time::sleep(Duration::from_secs(21)) => continue,
                _ = tokio::time::sleep_until(ask_again.unwrap_or(deadline)), if ask_again.is_some() => continue,
            };
            match update {
                Some(u) => self.apply(u),
                None => return (false, "the watchers stopped".into()),
            }
        }
    }

    /// A failure already certain among what is waited for ([`crate::observe::settled`]).
    fn settled_failure(
        &self,
        waiting_for: &[(ObjectRef, String)],
        declared: &mut crate::observe::settled::DeclaredSince,
    ) -> Option<crate::observe::settled::Settled> {
        use crate::observe::settled;
        let (events, now) = (self.window_events(), self.clock.elapsed_ms());
        settled::missing_image(events, now, settled::MISSING_IMAGE_GRACE_MS, waiting_for)
            .or_else(|| settled::declared_failure(now, settled::DECLARED_GRACE_MS, waiting_for, declared))
            .or_else(|| settled::lost_with_node(events, waiting_for))
    }

    /// The events since the last step began (or the run, before any step).
    fn window_events(&self) -> &[crate::event::DrillEvent] {
        let start = self
            .events
            .iter()
            .rposition(|e| matches!(e.kind, EventKind::DisasterStarted { .. }))
            .unwrap_or(0);
        &self.events[start..]
    }

    /// Applies every update the watchers have sent so far, so a wait judges on all of
    /// it. Err when a watch has panicked: what it followed is no longer seen, and every
    /// wait must stop (the run ends as that error).
    pub(super) fn drain_updates(&mut self) -> Result<(), String> {
        while let Some(u) = self.observer.as_mut().and_then(|(_, rx)| rx.try_recv().ok()) {
            self.apply(u);
        }
        self.watch_panic.clone().map_or(Ok(()), Err)
    }

    /// Applies one update; the events it causes are stamped with when it was received.
    pub(super) fn apply(&mut self, received: Received) {
        self.observed_at = Some(received.at);
        self.apply_update(received.update);
        self.observed_at = None;
    }

    fn apply_update(&mut self, update: Update) {
        match update {
            Update::Object(o) => self.object_update(*o),
            Update::Pull { fact, node, pod, at } => {
                // The Events watch lists old events too; only pulls of this window count.
                if at.is_some_and(|t| t < self.window_started_at - jiff::SignedDuration::from_secs(2)) {
                    return;
                }
                let kind = match fact {
                    PullFact::Pulling { image } => EventKind::ImagePulling { image, node },
                    PullFact::Pulled {
                        image,
                        kubelet_ms,
                        size_bytes,
                    } => EventKind::ImagePulled {
                        image,
                        node,
                        size_bytes,
                        kubelet_ms,
                    },
                    PullFact::Present { image } => EventKind::ImagePresent { image, node },
                    PullFact::Failed { image, reason, message } => EventKind::ImagePullFailed {
                        image: image.unwrap_or_else(|| "?".into()),
                        node,
                        reason,
                        message,
                        pod,
                    },
                };
                self.emit(kind);
            }
            Update::Probe { probe, served, detail } => {
                if let Some(kind) = self.probes.record(&probe, served, detail) {
                    self.emit(kind);
                }
            }
            Update::Live { object, value } => self.live_changed(&object, value.as_ref()),
            Update::EngineEvent { object, message, .. } => self.engine_event(&object, &message),
            Update::WatchError {
                watch,
                cause,
                message,
                at,
            } => self
                .watch_failures
                .record(self.clock.ms_at(at), &watch, &cause, &message),
            Update::WatchPanicked { watch, message } => {
                self.watch_panic.get_or_insert(format!(
                    "the {watch} watch panicked (a bug in drill; please report it): {message}"
                ));
            }
        }
    }
}

/// The asked objects that have not yet handled their request and been Ready. An object
/// drill does not watch, one deleted, or one paused (Flux ignores requests while
/// suspended) is not waited for.
fn unhandled<'a>(
    engine: &dyn Engine,
    asked: &'a [(ObjectRef, String)],
    observed: impl Fn(&ObjectRef) -> Option<&'a Observation>,
) -> Vec<&'a ObjectRef> {
    asked
        .iter()
        .filter(|(object, token)| {
            observed(object).is_some_and(|o| o.present && !o.suspended && !(engine.handled(o, token) && o.ready))
        })
        .map(|(object, _)| object)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::flux::Flux;

    fn seen(name: &str, ready: bool, handled: Option<&str>) -> Observation {
        let mut o = Observation::deleted(ObjectRef::new("Kustomization", "flux-system", name));
        o.present = true;
        o.ready = ready;
        o.last_handled = handled.map(str::to_string);
        o
    }

    #[test]
    fn an_asked_object_counts_once_it_handled_the_request_and_is_ready() {
        let flux = Flux::new(None, "clusters/x".into(), Duration::from_secs(60), false);
        let token = "2026-12-06T09:00:00Z".to_string();
        let mut paused = seen("paused", false, None);
        paused.suspended = true;
        let observed = [
            seen("done", true, Some(&token)),
            seen("earlier-request", true, Some("2026-12-06T08:00:00Z")),
            seen("handled-not-ready", false, Some(&token)),
            paused,
            Observation::deleted(ObjectRef::new("Kustomization", "flux-system", "gone")),
        ];
        let asked: Vec<(ObjectRef, String)> = [
            "done",
            "earlier-request",
            "handled-not-ready",
            "paused",
            "gone",
            "unwatched",
        ]
        .iter()
        .map(|n| (ObjectRef::new("Kustomization", "flux-system", n), token.clone()))
        .collect();
        let find = |o: &ObjectRef| observed.iter().find(|s| &s.object == o);
        let left: Vec<&str> = unhandled(&flux, &asked, find).iter().map(|o| o.name.as_str()).collect();
        assert_eq!(left, ["earlier-request", "handled-not-ready"]);
    }
}
