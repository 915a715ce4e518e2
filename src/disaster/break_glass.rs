//! `break-glass`: the incident workflow. Pause one app, mitigate by hand, check the
//! others still reconcile, backport the mitigation to Git, resume, and (after the
//! recovery wait) confirm Git, engine and cluster agree. Each action is timed.

use std::time::Duration as StdDuration;

use anyhow::Result;
use futures::FutureExt as _;
use futures::future::LocalBoxFuture;
use kube::Client;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;
use tokio::time::Instant;

use super::context::HandEdit;
use super::damage::live_edit::object_ref;
use super::validate::{Sequence, check_app, check_patch, check_target};
use super::{Step, StepContext, StepView, action, pause_note, paused_with};
use crate::event::{EventKind, ObjectRef, StepOutcome};
use crate::model::ScenarioError;
use crate::model::{DriftExpect, Duration, Edit, Target};

/// How long other apps may take to finish a requested reconcile during break-glass.
const OTHERS_RECONCILE_TIMEOUT: StdDuration = StdDuration::from_secs(180);

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BreakGlass {
    /// The one app to pause (a Flux Kustomization).
    #[schemars(with = "String")]
    pub app: Spanned<String>,
    /// Who owns the pause; recorded in the report.
    pub owner: String,
    /// Resume and backport must both happen within this long after the pause.
    pub deadline: Duration,
    /// The manual mitigation, applied to the live cluster while paused.
    pub mitigation: Mitigation,
    /// How long the mitigation runs before the backport (the incident's length).
    #[serde(default)]
    pub hold: Option<Duration>,
    /// The commit that puts the mitigation into Git.
    pub backport: Backport,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Mitigation {
    #[schemars(with = "Target")]
    pub target: Spanned<Target>,
    #[schemars(with = "serde_json::Value")]
    pub patch: Spanned<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Backport {
    pub message: String,
    #[schemars(with = "Vec<Edit>")]
    pub edits: Spanned<Vec<Edit>>,
}

impl Step for BreakGlass {
    fn kind(&self) -> &'static str {
        "break-glass"
    }

    fn outcome(&self) -> StepOutcome {
        StepOutcome::Recovered
    }

    fn edits(&self) -> Option<&[Edit]> {
        Some(&self.backport.edits.value)
    }

    fn describe(&self, _reverted: Option<(usize, String)>) -> String {
        format!(
            "break glass on app {} (owner {}, deadline {})",
            self.app.value, self.owner, self.deadline
        )
    }

    fn check_in_sequence(&self, seq: &mut Sequence) -> Result<(), ScenarioError> {
        let kind = self.kind();
        check_app(&self.app, kind, seq.file)?;
        check_target(&self.mitigation.target, kind, seq.file)?;
        check_patch(&self.mitigation.patch, kind, seq.file)?;
        seq.files.apply(&self.backport.edits, kind, seq.file)?;
        if self.hold.is_some_and(|h| h >= self.deadline) {
            return Err(ScenarioError::in_file(
                seq.file,
                format!(
                    "step {}: break-glass hold must be shorter than the deadline ({})",
                    seq.index + 1,
                    self.deadline
                ),
            ));
        }
        Ok(())
    }

    fn inject<'a>(&'a self, cx: &'a mut dyn StepContext, step: usize) -> LocalBoxFuture<'a, Result<Client>> {
        async move {
            let client = cx.cluster()?.client().await?;
            self.run(cx, step, &client).await?;
            Ok(client)
        }
        .boxed_local()
    }

    /// After the recovery wait: the mitigation is still live, now because Git holds it.
    fn after_recovery<'a>(&'a self, cx: &'a mut dyn StepContext, step: usize) -> LocalBoxFuture<'a, ()> {
        async move {
            let object = object_ref(&self.mitigation.target.value);
            let live = (0..)
                .map_while(|i| cx.drift(i))
                .filter(|d| d.step == step && d.applied.object == object)
                .last()
                .map(|d| !d.reverted);
            let ok = live == Some(true);
            let commit = cx.commit().to_string();
            action(
                cx,
                step,
                "Git, engine and cluster agree",
                ok,
                "",
                if ok {
                    format!(
                        "{object} keeps the mitigation, now from Git at {}",
                        &commit[..12.min(commit.len())]
                    )
                } else {
                    format!("{object} lost the mitigation after the resume: the backport does not match it")
                },
            );
            if ok {
                cx.emit(EventKind::DriftKept {
                    step,
                    object,
                    reconciled: true,
                });
            }
        }
        .boxed_local()
    }
}

impl BreakGlass {
    /// The incident workflow up to the resume; the recovery wait that follows is the
    /// "Git, engine and cluster agree" check, finished by `after_recovery`.
    async fn run(&self, cx: &mut dyn StepContext, step: usize, client: &Client) -> Result<()> {
        let engine = cx.engine()?;
        let app = engine.app_ref(&self.app.value);
        let owner = cx.actor(&self.owner).to_string();
        cx.go_ahead(step, format!("pause {app}")).await?;
        let paused_at = Instant::now();

        let paused_too = engine.set_paused(client, &app, true).await?;
        let note = pause_note(&paused_too, true);
        paused_with(cx, step, &app, paused_too.clone(), true);
        action(cx, step, format!("pause {app}"), true, &owner, &note);

        let idx = self.mitigate(cx, step, client, &owner).await?;
        self.others_still_reconcile(cx, step, client, &app, &paused_too, idx)
            .await?;

        if let Some(hold) = self.hold {
            tokio::time::sleep(hold.0).await;
        }

        cx.go_ahead(step, format!("backport to Git: {:?}", self.backport.message))
            .await?;
        cx.commit_edits(step, &self.backport.edits.value, &self.backport.message)
            .await?;
        cx.mark_backported(idx);
        let backport_at = paused_at.elapsed();
        action(cx, step, "backport the mitigation to Git", true, &owner, "");

        cx.go_ahead(step, format!("resume {app}")).await?;
        let with = engine.set_paused(client, &app, false).await?;
        // As `flux resume` does, and what one clicks in Argo CD: apply Git now, which
        // now holds the backport, instead of at the next interval.
        let asked = engine.reconcile_now(client).await?;
        cx.reconciles_asked(asked);
        let note = pause_note(&with, false);
        paused_with(cx, step, &app, with, false);
        let resume_at = paused_at.elapsed();
        action(cx, step, format!("resume {app}"), true, &owner, &note);

        let late: Vec<String> = [("backport", backport_at), ("resume", resume_at)]
            .into_iter()
            .filter(|(_, at)| *at > self.deadline.0)
            .map(|(what, at)| format!("{what} came {:.1}s after the pause", at.as_secs_f64()))
            .collect();
        action(
            cx,
            step,
            format!("deadline {} (owner {owner})", self.deadline),
            late.is_empty(),
            &owner,
            if late.is_empty() {
                format!("resumed {:.1}s after the pause", resume_at.as_secs_f64())
            } else {
                late.join("; ")
            },
        );
        Ok(())
    }

    /// The hand edit while the app is paused; returns its index.
    async fn mitigate(&self, cx: &mut dyn StepContext, step: usize, client: &Client, owner: &str) -> Result<usize> {
        let target = &self.mitigation.target.value;
        cx.go_ahead(step, format!("mitigate: edit {target}")).await?;
        let edit = HandEdit {
            target,
            patch: &self.mitigation.patch.value,
            field_manager: None,
            expect: DriftExpect::Kept,
        };
        let idx = cx.hand_edit(step, client, edit).await?;
        action(
            cx,
            step,
            format!("mitigate {target}"),
            true,
            owner,
            "hand edit while the app is paused",
        );
        cx.emit(EventKind::DisasterInjected { step });
        Ok(idx)
    }

    /// Every other app must still reconcile: the pause is for one app only.
    async fn others_still_reconcile(
        &self,
        cx: &mut dyn StepContext,
        step: usize,
        client: &Client,
        app: &ObjectRef,
        paused_too: &[ObjectRef],
        idx: usize,
    ) -> Result<()> {
        let engine = cx.engine()?;
        let others: Vec<ObjectRef> = cx
            .ready_set()
            .into_iter()
            .filter(|o| o.kind == app.kind && o != app && !paused_too.contains(o))
            .collect();
        let tokens = engine.request_reconciles(client, &others).await?;
        let started = Instant::now();
        let mut done = |v: &dyn StepView| {
            tokens
                .iter()
                .all(|(o, token)| v.observation(o).is_some_and(|s| engine.handled(s, token) && s.ready))
        };
        let all_reconciled = cx.wait_until(started + OTHERS_RECONCILE_TIMEOUT, &mut done).await;
        let mitigation_live = !cx.drift(idx).is_some_and(|d| d.reverted);
        action(
            cx,
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
        Ok(())
    }
}
