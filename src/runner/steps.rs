//! The quieter steps: drift, suspend/resume, commits and reverts, break-glass. Each one
//! acts on the cluster or the served repo and emits what it did; the waits are driven by
//! the same watch updates as recoveries.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};
use kube::Client;
use serde_json::Value;
use tokio::time::Instant;

use super::Run;
use crate::disaster::drift::{self, AppliedDrift};
use crate::engine::argocd;
use crate::event::{EventKind, ObjectRef};
use crate::gitserve::FileEdit;
use crate::scenario::{BreakGlass, Disaster, DriftExpect, Edit, HistoryRollback, RollbackExpect, Target};

/// How long an object must stay not Ready, after the engine fetched the change, to count
/// as degraded rather than rolling out. Long enough for a normal rollout of the demo fleet.
const DEGRADE_AFTER: Duration = Duration::from_secs(20);
/// How long other apps may take to finish a requested reconcile during break-glass.
const OTHERS_RECONCILE_TIMEOUT: Duration = Duration::from_secs(180);

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

/// A hand edit drill made and still follows.
#[derive(Debug, Clone)]
pub struct ActiveDrift {
    pub step: usize,
    pub applied: AppliedDrift,
    pub expect: DriftExpect,
    pub reverted: bool,
    pub detected: bool,
    /// The hand edit is now what Git holds too (a break-glass backport).
    pub backported: bool,
}

/// The first 12 characters of a commit.
fn short(rev: &str) -> &str {
    &rev[..12.min(rev.len())]
}

/// What an action note says about the apps paused or resumed along with the one named.
fn pause_note(with: &[ObjectRef], paused: bool) -> String {
    if with.is_empty() {
        return String::new();
    }
    let names: Vec<String> = with.iter().map(ToString::to_string).collect();
    if paused {
        format!("{} paused too: its self-heal would undo the pause", names.join(", "))
    } else {
        format!("{} resumed too", names.join(", "))
    }
}

/// One line for the step: what it does. `reverted`: for a git-revert, the step it reverts.
pub fn describe(d: &Disaster, all: &[Disaster], reverted: Option<usize>) -> String {
    match d {
        Disaster::DeleteNamespace(dn) => format!(
            "delete namespace(s) {}",
            dn.namespaces
                .value
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Disaster::DeleteCluster(_) => "destroy the whole cluster and rebuild it from Git".into(),
        Disaster::KillNode(k) => format!("kill node {} (SIGKILL) and start it again", k.node.value),
        Disaster::DeletePods(dp) => format!(
            "delete the pods {} in {} (as a node drain does); expect the new ones to {}",
            dp.selector
                .value
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(","),
            dp.namespace.value,
            match dp.expect {
                crate::scenario::StepOutcome::Recovered => "become Ready",
                crate::scenario::StepOutcome::Degraded => "fail",
                crate::scenario::StepOutcome::Nothing => "start (not waited for)",
            }
        ),
        Disaster::Drift(dr) => format!(
            "hand-edit {} ({}); expect the engine to {}",
            dr.target.value,
            drift::leaf_pointers(&dr.patch.value).join(", "),
            match dr.expect {
                DriftExpect::Healed => "overwrite it with Git's value",
                DriftExpect::Kept => "leave it alone",
            }
        ),
        Disaster::Suspend(s) => format!("pause reconciliation of app {}", s.app.value),
        Disaster::Resume(r) => format!("resume reconciliation of app {}", r.app.value),
        Disaster::Commit(c) => format!("commit {:?}", c.message),
        Disaster::BadCommit(c) => format!("bad commit {:?}", c.message),
        Disaster::GitRevert(_) => match reverted.and_then(|i| Some((i, all.get(i)?))) {
            Some((i, Disaster::Commit(c))) => format!("git revert of step {} (commit {:?})", i + 1, c.message),
            Some((i, Disaster::BadCommit(c))) => format!("git revert of step {} (bad commit {:?})", i + 1, c.message),
            _ => "git revert of an earlier commit".into(),
        },
        Disaster::BreakGlass(b) => format!(
            "break glass on app {} (owner {}, deadline {})",
            b.app.value, b.owner, b.deadline
        ),
        Disaster::ArgocdHistoryRollback(h) => {
            format!("roll Argo CD app {} back to its previous history entry", h.app.value)
        }
    }
}

fn file_edits(edits: &[Edit]) -> Vec<FileEdit> {
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
    pub(super) async fn quiet_step(&mut self, step: usize, d: &Disaster, client: &Client) -> Result<()> {
        match d {
            Disaster::Drift(dr) => {
                let idx = self
                    .hand_edit(
                        step,
                        client,
                        (&dr.target.value, &dr.patch.value, dr.field_manager.as_deref()),
                        dr.expect,
                    )
                    .await?;
                self.emit(EventKind::DisasterInjected { step });
                if dr.expect == DriftExpect::Kept {
                    self.give_engine_a_chance(step, client, idx, dr.hold.0).await?;
                }
            }
            Disaster::Suspend(s) => {
                let engine = self.engine.clone().context("no engine")?;
                let app = engine.app_ref(&s.app.value);
                let with = engine.set_paused(client, &app, true).await?;
                self.paused_with(step, &app, with, true);
                self.emit(EventKind::DisasterInjected { step });
            }
            Disaster::Resume(r) => {
                let engine = self.engine.clone().context("no engine")?;
                let app = engine.app_ref(&r.app.value);
                let with = engine.set_paused(client, &app, false).await?;
                self.paused_with(step, &app, with, false);
                self.emit(EventKind::DisasterInjected { step });
            }
            Disaster::Commit(c) => self.commit_step(step, &c.edits.value, &c.message).await?,
            Disaster::BadCommit(c) => self.commit_step(step, &c.edits.value, &c.message).await?,
            Disaster::GitRevert(_) => {
                let reverted_step = self
                    .plan
                    .reverts
                    .get(&step)
                    .copied()
                    .context("git-revert: no commit step to revert")?;
                let reverted = self
                    .commits_by_step
                    .get(&reverted_step)
                    .cloned()
                    .with_context(|| format!("git-revert: step {} made no commit", reverted_step + 1))?;
                let server = self.server.as_ref().context("no served repo")?;
                let commit = server.repo.revert(&reverted).await?;
                let message = format!("Revert step {}", reverted_step + 1);
                self.committed(step, commit, message, Some(reverted));
                self.emit(EventKind::DisasterInjected { step });
            }
            Disaster::BreakGlass(b) => self.break_glass(step, client, b).await?,
            Disaster::ArgocdHistoryRollback(h) => self.history_rollback(step, client, h).await?,
            Disaster::DeleteNamespace(_)
            | Disaster::DeleteCluster(_)
            | Disaster::KillNode(_)
            | Disaster::DeletePods(_) => {}
        }
        Ok(())
    }

    /// Argo CD's break-glass rollback: sync one Application to the newest history entry
    /// whose revision differs from what it runs now, wait for that sync, then watch
    /// whether auto-sync applies Git's revision again (the seed's warning) or the
    /// rollback holds. Each is an action; one that goes against `expect` fails the run.
    async fn history_rollback(&mut self, step: usize, client: &Client, h: &HistoryRollback) -> Result<()> {
        let engine = self.engine.clone().context("no engine")?;
        if engine.kind() != crate::scenario::EngineKind::Argocd {
            anyhow::bail!(
                "step {}: argocd-history-rollback needs Argo CD; this run uses Flux",
                step + 1
            );
        }
        let app = engine.app_ref(&h.app.value);
        let history = argocd::history(client, &app).await?;
        let current = history
            .current
            .with_context(|| format!("{app} has not synced yet: no history to roll back to"))?;
        let (id, target) = history
            .entries
            .iter()
            .rev()
            .find(|(_, rev)| *rev != current)
            .cloned()
            .with_context(|| format!("{app}: no history entry with another revision than {}", short(&current)))?;
        let budget = h.within.unwrap_or(self.plan.scenario.expect.rto).0;
        let by = self.actor("").to_string();
        self.operator_go_ahead(step, &format!("roll back {app} to history {id} ({})", short(&target)))
            .await?;
        let requested = jiff::Timestamp::now();
        argocd::rollback(client, &app, &target, id).await?;
        self.emit(EventKind::DisasterInjected { step });
        self.action(
            step,
            format!("roll back {app} to history {id}"),
            true,
            &by,
            format!("from {} to {}", short(&current), short(&target)),
        );

        // The rollback's own sync (started after the request) ends.
        let since = requested - jiff::SignedDuration::from_secs(1);
        let started = Instant::now();
        let synced = |rev: &str| {
            let (rev, app) = (rev.to_string(), app.clone());
            move |run: &Self| {
                run.state.get(&app).is_some_and(|o| {
                    o.operation.as_ref().is_some_and(|op| {
                        op.phase == "Succeeded"
                            && op.revision.as_deref() == Some(rev.as_str())
                            && op.started_at.is_some_and(|t| t >= since)
                    })
                })
            }
        };
        let rolled_back = self.wait_until(started + budget, synced(&target)).await;
        self.action(
            step,
            "Argo CD synced the rollback",
            rolled_back,
            "",
            if rolled_back {
                format!("{} live after {:.1}s", short(&target), started.elapsed().as_secs_f64())
            } else {
                format!(
                    "the rollback's sync did not succeed within {}",
                    humantime::format_duration(budget)
                )
            },
        );
        if !rolled_back {
            return Ok(());
        }

        // Then: does auto-sync put Git's revision back?
        let after = Instant::now();
        let reapplied = self.wait_until(after + budget, synced(&current)).await;
        let waited = after.elapsed().as_secs_f64();
        match h.expect {
            RollbackExpect::Reapplied => self.action(
                step,
                "auto-sync re-applied Git's revision",
                reapplied,
                "",
                if reapplied {
                    format!(
                        "{} again {waited:.1}s after the rollback: with auto-sync on, a rollback does not hold; revert in Git, or turn auto-sync off first",
                        short(&current)
                    )
                } else {
                    format!("the rollback held for {}", humantime::format_duration(budget))
                },
            ),
            RollbackExpect::Held => self.action(
                step,
                "the rollback held",
                !reapplied,
                "",
                if reapplied {
                    format!("auto-sync applied {} again {waited:.1}s after the rollback", short(&current))
                } else {
                    format!("{} still live after {}", short(&target), humantime::format_duration(budget))
                },
            ),
        }
        Ok(())
    }

    async fn commit_step(&mut self, step: usize, edits: &[Edit], message: &str) -> Result<()> {
        let server = self.server.as_ref().context("no served repo")?;
        let commit = server.repo.commit_edits(&file_edits(edits), message).await?;
        self.committed(step, commit, message.to_string(), None);
        self.emit(EventKind::DisasterInjected { step });
        Ok(())
    }

    fn committed(&mut self, step: usize, commit: String, message: String, reverts: Option<String>) {
        self.commit = commit.clone();
        self.commits_by_step.insert(step, commit.clone());
        self.emit(EventKind::Committed {
            step,
            commit,
            message,
            reverts,
        });
    }

    /// Makes a hand edit, starts following the object, returns its index in `drifts`.
    async fn hand_edit(
        &mut self,
        step: usize,
        client: &Client,
        (target, patch, field_manager): (&Target, &Value, Option<&str>),
        expect: DriftExpect,
    ) -> Result<usize> {
        let manager_of = self.engine.as_ref().context("no engine")?.rules().manager_of;
        let applied = drift::apply(client, target, patch, field_manager, manager_of).await?;
        self.emit(EventKind::DriftApplied {
            step,
            object: applied.object.clone(),
            fields: applied.report_fields(),
            manager: applied.manager.clone(),
        });
        let (api, _) = drift::api_for(client, target).await?;
        if let Some((observer, _)) = self.observer.as_mut() {
            observer.watch_object(api, applied.object.clone());
        }
        self.drifts.push(ActiveDrift {
            step,
            applied,
            expect,
            reverted: false,
            detected: false,
            backported: false,
        });
        Ok(self.drifts.len() - 1)
    }

    /// For expected drift: asks the managing app to reconcile and waits until it has
    /// (or `hold` passes, as when the app is paused), then records whether the edit survived.
    async fn give_engine_a_chance(&mut self, step: usize, client: &Client, idx: usize, hold: Duration) -> Result<()> {
        let deadline = Instant::now() + hold;
        let manager = self.drifts[idx].applied.manager.clone();
        let suspended = manager
            .as_ref()
            .and_then(|m| self.state.get(m))
            .is_some_and(|o| o.suspended);
        let mut reconciled = false;
        match manager {
            Some(m) if !suspended => {
                let engine = self.engine.clone().context("no engine")?;
                let token = crate::engine::request_reconcile(engine.as_ref(), client, &m).await?;
                self.emit(EventKind::OperatorAction {
                    step,
                    action: format!("reconcile requested on {m}"),
                });
                // Done when the engine handled the request and is Ready, and the edited
                // object, when drill judges it (a scaled Deployment), is Ready again too.
                let target = self.drifts[idx].applied.object.clone();
                reconciled = self
                    .wait_until(deadline, |run| {
                        run.state.get(&m).is_some_and(|o| engine.handled(o, &token) && o.ready)
                            && run.state.get(&target).is_none_or(|o| o.ready)
                    })
                    .await;
            }
            // Paused, or not managed by the engine: nothing will touch it; watch for the hold.
            _ => {
                self.wait_until(deadline, |run| run.drifts[idx].reverted).await;
            }
        }
        if !self.drifts[idx].reverted {
            let object = self.drifts[idx].applied.object.clone();
            self.emit(EventKind::DriftKept {
                step,
                object,
                reconciled,
            });
        }
        Ok(())
    }

    /// Waits, driven by watch updates, until `done` holds or `deadline` passes.
    pub(super) async fn wait_until(&mut self, deadline: Instant, mut done: impl FnMut(&Self) -> bool) -> bool {
        loop {
            while let Some(u) = self.observer.as_mut().and_then(|(_, rx)| rx.try_recv().ok()) {
                self.apply(u);
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
            while let Some(u) = self.observer.as_mut().and_then(|(_, rx)| rx.try_recv().ok()) {
                self.apply(u);
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
        self.action(
            step,
            format!("go-ahead: {what}"),
            true,
            &operator.name,
            if operator.auto {
                "auto".to_string()
            } else {
                format!("after {:.1}s", waited.as_secs_f64())
            },
        );
        Ok(())
    }

    /// The break-glass actions are done by the operator in game-day mode.
    fn actor<'a>(&'a self, owner: &'a str) -> &'a str {
        self.opts.operator.as_ref().map(|o| o.name.as_str()).unwrap_or(owner)
    }

    fn action(&mut self, step: usize, action: impl Into<String>, ok: bool, by: &str, message: impl Into<String>) {
        self.emit(EventKind::Action {
            step,
            action: action.into(),
            ok,
            by: by.to_string(),
            message: message.into(),
        });
    }

    /// The incident workflow, each action timed; the recovery wait that follows is the
    /// "Git, engine and cluster agree" check, finished by [`Self::break_glass_agreement`].
    async fn break_glass(&mut self, step: usize, client: &Client, b: &BreakGlass) -> Result<()> {
        let engine = self.engine.clone().context("no engine")?;
        let app = engine.app_ref(&b.app.value);
        let owner_name = self.actor(&b.owner).to_string();
        let owner = owner_name.as_str();
        self.operator_go_ahead(step, &format!("pause {app}")).await?;
        let paused_at = Instant::now();

        let paused_too = engine.set_paused(client, &app, true).await?;
        let note = pause_note(&paused_too, true);
        self.paused_with(step, &app, paused_too.clone(), true);
        self.action(step, format!("pause {app}"), true, owner, &note);

        self.operator_go_ahead(step, &format!("mitigate: edit {}", b.mitigation.target.value))
            .await?;
        let idx = self
            .hand_edit(
                step,
                client,
                (&b.mitigation.target.value, &b.mitigation.patch.value, None),
                DriftExpect::Kept,
            )
            .await?;
        self.action(
            step,
            format!("mitigate {}", b.mitigation.target.value),
            true,
            owner,
            "hand edit while the app is paused",
        );
        self.emit(EventKind::DisasterInjected { step });

        // Every other app must still reconcile: the pause is for one app only.
        let others: Vec<ObjectRef> = self
            .state
            .ready_set()
            .into_iter()
            .filter(|o| o.kind == app.kind && *o != app && !paused_too.contains(o))
            .collect();
        let tokens = engine.request_reconciles(client, &others).await?;
        let started = Instant::now();
        let all_reconciled = self
            .wait_until(started + OTHERS_RECONCILE_TIMEOUT, |run| {
                tokens
                    .iter()
                    .all(|(o, token)| run.state.get(o).is_some_and(|s| engine.handled(s, token) && s.ready))
            })
            .await;
        let mitigation_live = !self.drifts[idx].reverted;
        self.action(
            step,
            "other apps still reconcile",
            all_reconciled && mitigation_live,
            "",
            if !mitigation_live {
                "the mitigation was overwritten while the app was paused".to_string()
            } else if all_reconciled {
                format!(
                    "{} apps reconciled in {:.1}s",
                    others.len(),
                    started.elapsed().as_secs_f64()
                )
            } else {
                format!(
                    "not all of {} apps reconciled within {OTHERS_RECONCILE_TIMEOUT:?}",
                    others.len()
                )
            },
        );

        if let Some(hold) = b.hold {
            tokio::time::sleep(hold.0).await;
        }

        self.operator_go_ahead(step, &format!("backport to Git: {:?}", b.backport.message))
            .await?;
        let server = self.server.as_ref().context("no served repo")?;
        let commit = server
            .repo
            .commit_edits(&file_edits(&b.backport.edits.value), &b.backport.message)
            .await?;
        self.committed(step, commit, b.backport.message.clone(), None);
        self.drifts[idx].backported = true;
        let backport_at = paused_at.elapsed();
        self.action(step, "backport the mitigation to Git", true, owner, "");

        self.operator_go_ahead(step, &format!("resume {app}")).await?;
        let with = engine.set_paused(client, &app, false).await?;
        // As `flux resume` does, and what one clicks in Argo CD: apply Git now, which
        // now holds the backport, instead of at the next interval.
        engine.reconcile_now(client).await?;
        let note = pause_note(&with, false);
        self.paused_with(step, &app, with, false);
        let resume_at = paused_at.elapsed();
        self.action(step, format!("resume {app}"), true, owner, &note);

        let late: Vec<String> = [("backport", backport_at), ("resume", resume_at)]
            .into_iter()
            .filter(|(_, at)| *at > b.deadline.0)
            .map(|(what, at)| format!("{what} came {:.1}s after the pause", at.as_secs_f64()))
            .collect();
        self.action(
            step,
            format!("deadline {} (owner {owner})", b.deadline),
            late.is_empty(),
            owner,
            if late.is_empty() {
                format!("resumed {:.1}s after the pause", resume_at.as_secs_f64())
            } else {
                late.join("; ")
            },
        );
        Ok(())
    }

    /// Records a pause or resume of `app` and of the apps that went with it.
    fn paused_with(&mut self, step: usize, app: &ObjectRef, with: Vec<ObjectRef>, suspended: bool) {
        for object in std::iter::once(app.clone()).chain(with) {
            self.emit(EventKind::Suspended {
                step,
                object,
                suspended,
            });
        }
    }

    /// After the recovery wait: the mitigation is still live, now because Git holds it.
    pub(super) async fn break_glass_agreement(&mut self, step: usize, b: &BreakGlass) {
        let object = drift::object_ref(&b.mitigation.target.value);
        let live = self
            .drifts
            .iter()
            .rev()
            .find(|d| d.step == step && d.applied.object == object)
            .map(|d| !d.reverted);
        let ok = live == Some(true);
        self.action(
            step,
            "Git, engine and cluster agree",
            ok,
            "",
            if ok {
                format!(
                    "{object} keeps the mitigation, now from Git at {}",
                    &self.commit[..12.min(self.commit.len())]
                )
            } else {
                format!("{object} lost the mitigation after the resume: the backport does not match it")
            },
        );
        if ok {
            self.emit(EventKind::DriftKept {
                step,
                object,
                reconciled: true,
            });
        }
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
