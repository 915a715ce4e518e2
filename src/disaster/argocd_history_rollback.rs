//! `argocd-history-rollback`: Argo CD's break-glass rollback. Sync one Application to
//! the newest history entry whose revision differs from what it runs now, wait for that
//! sync, then watch whether auto-sync applies Git's revision again (the seed's warning)
//! or the rollback holds. Each is an action; one that goes against `expect` fails the run.

use anyhow::{Context as _, Result, bail};
use futures::FutureExt as _;
use futures::future::LocalBoxFuture;
use kube::Client;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;
use tokio::time::Instant;

use super::validate::{ScenarioFacts, Sequence, check_app};
use super::{Step, StepContext, StepView, action, short};
use crate::engine::argocd;
use crate::event::{EventKind, ObjectRef, StepOutcome};
use crate::model::ScenarioError;
use crate::model::{Duration, EngineKind, RollbackExpect};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HistoryRollback {
    /// The Application to roll back (in namespace argocd).
    #[schemars(with = "String")]
    pub app: Spanned<String>,
    /// What auto-sync must do after the rollback: `reapplied` (it syncs Git's revision
    /// again, undoing the rollback: the trap the rehearsal shows) or `held` (the
    /// rollback stays, e.g. with auto-sync off).
    #[serde(default)]
    pub expect: RollbackExpect,
    /// How long to wait for the rollback and then for auto-sync (default: expect.rto).
    #[serde(default)]
    pub within: Option<Duration>,
}

impl Step for HistoryRollback {
    fn kind(&self) -> &'static str {
        "argocd-history-rollback"
    }

    /// Judged by its own actions (rolled back, then re-applied or held).
    fn outcome(&self) -> StepOutcome {
        StepOutcome::Nothing
    }

    fn within(&self) -> Option<Duration> {
        self.within
    }

    fn describe(&self, _reverted: Option<(usize, String)>) -> String {
        format!("roll Argo CD app {} back to its previous history entry", self.app.value)
    }

    fn check(&self, facts: &ScenarioFacts) -> Result<(), ScenarioError> {
        if !facts.argocd {
            return Err(ScenarioError::at(
                facts.file,
                &self.app.referenced,
                "argocd-history-rollback: the scenario has no `engine.argocd:`; this step rolls back an Argo CD Application",
            ));
        }
        Ok(())
    }

    fn check_in_sequence(&self, seq: &mut Sequence) -> Result<(), ScenarioError> {
        check_app(&self.app, self.kind(), seq.file)
    }

    fn inject<'a>(&'a self, cx: &'a mut dyn StepContext, step: usize) -> LocalBoxFuture<'a, Result<Client>> {
        async move {
            let client = cx.cluster()?.client().await?;
            self.run(cx, step, &client).await?;
            Ok(client)
        }
        .boxed_local()
    }
}

/// Whether `app`'s last sync operation, started after `since`, applied `rev`.
fn synced(v: &dyn StepView, app: &ObjectRef, rev: &str, since: jiff::Timestamp) -> bool {
    v.observation(app).is_some_and(|o| {
        o.operation.as_ref().is_some_and(|op| {
            op.phase == "Succeeded" && op.revision.as_deref() == Some(rev) && op.started_at.is_some_and(|t| t >= since)
        })
    })
}

impl HistoryRollback {
    async fn run(&self, cx: &mut dyn StepContext, step: usize, client: &Client) -> Result<()> {
        let engine = cx.engine()?;
        if engine.kind() != EngineKind::Argocd {
            bail!(
                "step {}: argocd-history-rollback needs Argo CD; this run uses Flux",
                step + 1
            );
        }
        let app = engine.app_ref(&self.app.value);
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
        let budget = cx.budget(self.within);
        let by = cx.actor("").to_string();
        cx.go_ahead(step, format!("roll back {app} to history {id} ({})", short(&target)))
            .await?;
        let requested = jiff::Timestamp::now();
        argocd::rollback(client, &app, &target, id).await?;
        cx.emit(EventKind::DisasterInjected { step });
        action(
            cx,
            step,
            format!("roll back {app} to history {id}"),
            true,
            &by,
            format!("from {} to {}", short(&current), short(&target)),
        );

        // The rollback's own sync (started after the request) ends.
        let since = requested - jiff::SignedDuration::from_secs(1);
        let started = Instant::now();
        let mut rolled = |v: &dyn StepView| synced(v, &app, &target, since);
        let rolled_back = cx.wait_until(started + budget, &mut rolled).await;
        action(
            cx,
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

        self.watch_auto_sync(cx, step, (&app, &current, &target), since, budget)
            .await;
        Ok(())
    }

    /// After the rollback: does auto-sync put Git's revision back (`current`), or does
    /// the rollback (`target`) hold? Judged against `expect`.
    async fn watch_auto_sync(
        &self,
        cx: &mut dyn StepContext,
        step: usize,
        (app, current, target): (&ObjectRef, &str, &str),
        since: jiff::Timestamp,
        budget: std::time::Duration,
    ) {
        // Then: does auto-sync put Git's revision back?
        let after = Instant::now();
        let mut again = |v: &dyn StepView| synced(v, app, current, since);
        let reapplied = cx.wait_until(after + budget, &mut again).await;
        let waited = after.elapsed().as_secs_f64();
        match self.expect {
            RollbackExpect::Reapplied => action(
                cx,
                step,
                "auto-sync re-applied Git's revision",
                reapplied,
                "",
                if reapplied {
                    format!(
                        "{} again {waited:.1}s after the rollback: with auto-sync on, a rollback does not hold; revert in Git, or turn auto-sync off first",
                        short(current)
                    )
                } else {
                    format!("the rollback held for {}", humantime::format_duration(budget))
                },
            ),
            RollbackExpect::Held => action(
                cx,
                step,
                "the rollback held",
                !reapplied,
                "",
                if reapplied {
                    format!(
                        "auto-sync applied {} again {waited:.1}s after the rollback",
                        short(current)
                    )
                } else {
                    format!(
                        "{} still live after {}",
                        short(target),
                        humantime::format_duration(budget)
                    )
                },
            ),
        }
    }
}
