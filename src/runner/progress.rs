//! Human progress on stderr: phases, damage, readiness, what is being waited for.
//! Disabled with `--quiet`; no colour when NO_COLOR is set or stderr is not a terminal.

use std::io::IsTerminal as _;

use crate::assert::ms;
use crate::event::{DrillEvent, EventKind};

pub struct Progress {
    enabled: bool,
    color: bool,
}

impl Progress {
    pub fn new(enabled: bool) -> Self {
        let color = std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal();
        Progress { enabled, color }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    pub fn line(&self, text: &str) {
        if self.enabled {
            eprintln!("{text}");
        }
    }

    pub fn event(&self, ev: &DrillEvent) {
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
            EventKind::Warning { message } => self.paint("33", &format!("  warning: {message}")),
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
            EventKind::ObjectObserved { .. } | EventKind::ImagePulling { .. } | EventKind::RunFinished => return,
        };
        eprintln!("{t} {text}");
    }
}
