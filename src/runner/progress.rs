//! Human progress: a reporter over the event stream (phases, damage, readiness, what is
//! being waited for), written to any `Write` (stderr for `drill run`, a buffer in tests).
//! Disabled with `--quiet`; no colour when NO_COLOR is set or stderr is not a terminal.

use std::io::{IsTerminal as _, Write};

use crate::assert::ms;
use crate::event::{DrillEvent, EventKind};

pub struct Progress {
    enabled: bool,
    color: bool,
    out: Box<dyn Write + Send>,
}

impl Progress {
    /// Progress on stderr, coloured when stderr is a terminal and NO_COLOR is unset.
    pub fn stderr(enabled: bool) -> Self {
        let color = std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal();
        Progress::to(Box::new(std::io::stderr()), enabled, color)
    }

    pub fn to(out: Box<dyn Write + Send>, enabled: bool, color: bool) -> Self {
        Progress { enabled, color, out }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    pub fn event(&mut self, ev: &DrillEvent) {
        if !self.enabled {
            return;
        }
        let t = self.paint("2", &format!("[{:>7}]", ms(ev.elapsed_ms)));
        let text = match &ev.kind {
            EventKind::RunStarted { scenario, run_id } => format!("drill: {scenario} (run {run_id})"),
            EventKind::PhaseStarted { phase } => format!("▶ {phase}"),
            EventKind::PhaseFinished { phase, ok: true, .. } => self.paint("32", &format!("✓ {phase}")),
            EventKind::PhaseFinished {
                phase,
                ok: false,
                message,
            } => self.paint("31", &format!("✗ {phase}: {}", message.as_deref().unwrap_or("failed"))),
            EventKind::DisasterStarted { step, description, .. } => {
                self.paint("33", &format!("💥 step {}: {description}", step + 1))
            }
            EventKind::DisasterInjected { .. } => "  damage done; timing recovery".into(),
            EventKind::OperatorAction { action, .. } => format!("  operator: {action}"),
            EventKind::ObjectReady { object, .. } => format!("  ready     {object}"),
            EventKind::ObjectNotReady {
                object,
                reason,
                message,
            } => format!("  not ready {object}: {reason}: {message}"),
            EventKind::ImagePulled {
                image,
                node,
                kubelet_ms,
                ..
            } => {
                format!(
                    "  pulled    {image} on {node}{}",
                    kubelet_ms.map(|m| format!(" in {}", ms(m))).unwrap_or_default()
                )
            }
            EventKind::ImagePullFailed { image, reason, .. } => {
                self.paint("31", &format!("  pull failed {image}: {reason}"))
            }
            EventKind::Recovered { step } => self.paint("32", &format!("✓ recovered from step {}", step + 1)),
            EventKind::RecoveryTimedOut { step } => {
                self.paint("31", &format!("✗ step {} did not recover in time", step + 1))
            }
            EventKind::StoppedEarly { reason } => self.paint("31", &format!("✗ stopped waiting: {reason}")),
            EventKind::Warning { message } => self.paint("33", &format!("  warning: {message}")),
            EventKind::Note { message } => message.clone(),
            EventKind::DriftApplied { .. }
            | EventKind::DriftDetected { .. }
            | EventKind::DriftReverted { .. }
            | EventKind::DriftKept { .. }
            | EventKind::Committed { .. }
            | EventKind::RevisionFetched { .. }
            | EventKind::Degraded { .. }
            | EventKind::DegradeTimedOut { .. }
            | EventKind::Suspended { .. }
            | EventKind::PruneChecked { .. }
            | EventKind::Action { .. } => self.change_text(&ev.kind),
            EventKind::ProbeStarted { probe, target } => format!("  probing   {target} as {probe}"),
            EventKind::ProbeDown { probe, detail } => {
                self.paint("31", &format!("  probe {probe}: not served: {detail}"))
            }
            EventKind::ProbeUp { probe } => self.paint("32", &format!("  probe {probe}: served")),
            EventKind::EvidenceSaved { files } => {
                format!("  evidence  {} file(s) saved beside the report (evidence/)", files.len())
            }
            EventKind::Versions(v) => match (&v.engine, &v.kubernetes) {
                (Some(engine), Some(k8s)) => format!("  running   {engine} on Kubernetes {k8s}"),
                _ => return,
            },
            EventKind::ObjectObserved { .. }
            | EventKind::ImagePulling { .. }
            | EventKind::ImagePresent { .. }
            | EventKind::ProbeTotals { .. }
            | EventKind::NodeRemoved { .. } // the step's note says what the node took
            | EventKind::RunFinished => return,
        };
        // Progress is best effort: a closed stderr must not end the run.
        let _ = writeln!(self.out, "{t} {text}");
    }

    /// What the steps changed: hand edits and their fate, commits, pauses, actions.
    fn change_text(&self, kind: &EventKind) -> String {
        match kind {
            EventKind::PruneChecked {
                object, by_hand, gone, ..
            } => format!(
                "  {} {object} ({})",
                if *gone { "pruned   " } else { "left     " },
                if *by_hand { "made by hand" } else { "dropped from Git" }
            ),
            EventKind::DriftApplied { object, fields, .. } => format!(
                "  hand edit {object}: {}",
                fields
                    .iter()
                    .map(|f| format!("{} {} → {}", f.field, f.git, f.live))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            EventKind::DriftDetected { object, by, .. } => format!("  engine saw drift on {object}: {by}"),
            EventKind::DriftReverted { object, .. } => {
                self.paint("36", &format!("  Git overwrote the hand edit of {object}"))
            }
            EventKind::DriftKept { object, reconciled, .. } => format!(
                "  hand edit of {object} still live{}",
                if *reconciled {
                    " after a reconcile"
                } else {
                    " (no reconcile ran)"
                }
            ),
            EventKind::Committed { commit, message, .. } => {
                format!("  committed {} {message:?}", &commit[..commit.len().min(12)])
            }
            EventKind::RevisionFetched { commit, .. } => {
                format!("  engine fetched {}", &commit[..commit.len().min(12)])
            }
            EventKind::Degraded { step, objects } => self.paint(
                "33",
                &format!(
                    "  step {} degraded: {}",
                    step + 1,
                    objects
                        .iter()
                        .map(|(o, why)| format!("{o} ({why})"))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            ),
            EventKind::DegradeTimedOut { step } => {
                self.paint("31", &format!("✗ step {} did not degrade in time", step + 1))
            }
            EventKind::Suspended { object, suspended, .. } => {
                format!("  {} {object}", if *suspended { "paused" } else { "resumed" })
            }
            EventKind::Action {
                action,
                ok,
                by,
                message,
                ..
            } => {
                let who = if by.is_empty() {
                    String::new()
                } else {
                    format!(" ({by})")
                };
                let text = format!(
                    "  {action}{who}{}",
                    if message.is_empty() {
                        String::new()
                    } else {
                        format!(": {message}")
                    }
                );
                if *ok { text } else { self.paint("31", &text) }
            }
            _ => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::event::ObjectRef;

    /// A `Write` the test can read back after the reporter wrote to it.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn at(elapsed_ms: u64, kind: EventKind) -> DrillEvent {
        DrillEvent {
            at: "2026-12-04T08:00:00Z".parse().unwrap(),
            elapsed_ms,
            kind,
        }
    }

    #[test]
    fn notes_and_typed_events_render_as_one_stream_and_quiet_shows_nothing() {
        let events = [
            at(
                0,
                EventKind::RunStarted {
                    scenario: "flux-namespace-loss".into(),
                    run_id: "r1".into(),
                },
            ),
            at(
                1_200,
                EventKind::Note {
                    message: "serving examples/fleet at 0123456789ab".into(),
                },
            ),
            at(
                62_000,
                EventKind::ObjectReady {
                    object: ObjectRef::new("Kustomization", "flux-system", "apps"),
                    revision: None,
                    api_transition: None,
                },
            ),
            at(
                63_000,
                EventKind::ObjectObserved {
                    object: ObjectRef::new("Deployment", "users", "users-api"),
                    depends_on: vec![],
                    wave: None,
                },
            ),
        ];
        let out = Shared::default();
        let mut progress = Progress::to(Box::new(out.clone()), true, false);
        for ev in &events {
            progress.event(ev);
        }
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        insta::assert_snapshot!(text, @r"
        [    0ms] drill: flux-namespace-loss (run r1)
        [   1.2s] serving examples/fleet at 0123456789ab
        [ 1m 02s]   ready     Kustomization/flux-system/apps
        ");

        let quiet = Shared::default();
        let mut progress = Progress::to(Box::new(quiet.clone()), false, false);
        for ev in &events {
            progress.event(ev);
        }
        assert!(quiet.0.lock().unwrap().is_empty());
    }
}
