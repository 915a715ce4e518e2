//! `incident.md`: the game-day record. One table of everything that happened after the
//! first step, in order: what people did (and who), what changed live, what was
//! committed, what the engine reported; then the drift windows and the commit at which
//! Git, engine and cluster agreed again. Pure: events and the report in, text out.

use std::fmt::Write;

use super::{Outcome, Report};
use crate::event::{DrillEvent, EventKind};
use crate::human::{ms, short_commit};

/// Whether a run has anything an incident record would add to the summary.
pub fn applies(events: &[DrillEvent]) -> bool {
    events.iter().any(|e| {
        matches!(
            e.kind,
            EventKind::Action { .. } | EventKind::Committed { .. } | EventKind::DriftApplied { .. }
        )
    })
}

pub fn render(report: &Report, events: &[DrillEvent]) -> String {
    let mut out = String::new();
    let verdict = match report.result {
        Outcome::Pass => "resolved",
        Outcome::Fail => "NOT resolved (an assertion failed)",
        Outcome::Error => "aborted (error)",
    };
    let _ = writeln!(out, "# Incident record: {} — {verdict}\n", report.scenario);
    people(&mut out, report, events);
    drift_windows(&mut out, report);
    match reconciliation_commit(events) {
        Some((commit, message)) => {
            let _ = writeln!(
                out,
                "**Reconciliation commit:** `{}` {message:?}: Git, engine and cluster agreed at it.\n",
                &commit[..commit.len().min(12)]
            );
        }
        None => {
            let _ = writeln!(out, "**Reconciliation commit:** none (Git was not changed)\n");
        }
    }
    for f in &report.findings {
        let _ = writeln!(out, "- finding: {}", cell(f));
    }
    if !report.findings.is_empty() {
        let _ = writeln!(out);
    }

    let _ = writeln!(out, "| time | who | what |\n|---:|---|---|");
    let first_step = events
        .iter()
        .position(|e| matches!(e.kind, EventKind::DisasterStarted { .. }))
        .unwrap_or(events.len());
    for e in &events[first_step..] {
        if let Some((who, what)) = row(&e.kind) {
            let _ = writeln!(out, "| {} | {who} | {} |", ms(e.elapsed_ms), cell(&what));
        }
    }
    out
}

/// The run and the people who acted in it.
fn people(out: &mut String, report: &Report, events: &[DrillEvent]) {
    let operators: Vec<&str> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Action { by, .. } if !by.is_empty() => Some(by.as_str()),
            _ => None,
        })
        .fold(Vec::new(), |mut acc, by| {
            if !acc.contains(&by) {
                acc.push(by);
            }
            acc
        });
    let _ = writeln!(
        out,
        "Run `{}`{} · people: {}\n",
        report.run_id,
        report
            .started_at
            .map(|t| format!(" · started {}", t.strftime("%Y-%m-%d %H:%M:%S UTC")))
            .unwrap_or_default(),
        if operators.is_empty() {
            "none recorded".to_string()
        } else {
            operators.join(", ")
        }
    );
}

/// Each hand edit: what it changed, when, and how it ended.
fn drift_windows(out: &mut String, report: &Report) {
    if report.drift.is_empty() {
        let _ = writeln!(out, "**Drift windows:** none\n");
    } else {
        let _ = writeln!(out, "**Drift windows:**\n");
        for d in &report.drift {
            let end = match (d.reverted_ms, d.kept) {
                (Some(at), _) => format!("overwritten by Git at {}", ms(at)),
                (None, true) => "kept (expected, or now in Git)".into(),
                (None, false) => "still live at the end".into(),
            };
            let fields: Vec<String> = d
                .fields
                .iter()
                .map(|f| format!("{} {} → {}", f.field, cell(&f.git), cell(&f.live)))
                .collect();
            let _ = writeln!(
                out,
                "- {} ({}): set at {}, {end}; lived {}",
                d.object,
                fields.join(", "),
                ms(d.applied_ms),
                ms(d.age_ms)
            );
        }
        let _ = writeln!(out);
    }
}

/// The last commit before the final recovery: where Git, engine and cluster agreed.
fn reconciliation_commit(events: &[DrillEvent]) -> Option<(String, String)> {
    let last_recovered = events
        .iter()
        .rposition(|e| matches!(e.kind, EventKind::Recovered { .. }))?;
    events[..last_recovered].iter().rev().find_map(|e| match &e.kind {
        EventKind::Committed { commit, message, .. } => Some((commit.clone(), message.clone())),
        _ => None,
    })
}

fn row(kind: &EventKind) -> Option<(String, String)> {
    let r = |who: &str, what: String| Some((who.to_string(), what));
    match kind {
        EventKind::DisasterStarted { step, description, .. } => r("drill", format!("step {}: {description}", step + 1)),
        EventKind::Action {
            action,
            by,
            message,
            ok,
            ..
        } => {
            let who = if by.is_empty() { "drill" } else { by.as_str() };
            let mark = if *ok { "" } else { "✗ " };
            let detail = if message.is_empty() {
                String::new()
            } else {
                format!(" ({message})")
            };
            r(who, format!("{mark}{action}{detail}"))
        }
        EventKind::OperatorAction { action, .. } => r("drill", action.clone()),
        EventKind::DriftApplied { object, fields, .. } => r(
            "live change",
            format!(
                "{object}: {}",
                fields
                    .iter()
                    .map(|f| format!("{} {} → {}", f.field, f.git, f.live))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        EventKind::DriftReverted { object, .. } => r("engine", format!("overwrote the hand edit of {object} with Git")),
        EventKind::DriftDetected { object, by, .. } => r("engine", format!("saw drift on {object} ({by})")),
        EventKind::Committed {
            commit,
            message,
            reverts,
            ..
        } => r(
            "Git",
            match reverts {
                Some(rv) => format!("revert of {} as {} {message:?}", short_commit(rv), short_commit(commit)),
                None => format!("commit {} {message:?}", short_commit(commit)),
            },
        ),
        EventKind::RevisionFetched { commit, .. } => r("engine", format!("fetched {}", short_commit(commit))),
        EventKind::Suspended { object, suspended, .. } => r(
            "engine",
            format!("{object} {}", if *suspended { "paused" } else { "resumed" }),
        ),
        EventKind::ObjectReady { object, .. } => r("engine", format!("{object} Ready")),
        EventKind::ObjectNotReady {
            object,
            reason,
            message,
            ..
        } => r("engine", format!("{object} not Ready: {reason}: {message}")),
        EventKind::Degraded { objects, .. } => r(
            "drill",
            format!(
                "app degraded: {}",
                objects
                    .iter()
                    .map(|(o, why)| format!("{o} ({why})"))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ),
        EventKind::Recovered { step } => r("drill", format!("recovered after step {}", step + 1)),
        EventKind::RecoveryTimedOut { step } => r("drill", format!("step {} did not recover in time", step + 1)),
        _ => None,
    }
}

fn cell(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
        .replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{FieldDrift, ObjectRef};
    use crate::scenario::StepOutcome;

    fn at(ms: u64, kind: EventKind) -> DrillEvent {
        DrillEvent {
            at: jiff::Timestamp::from_second(1_700_000_000).unwrap() + std::time::Duration::from_millis(ms),
            elapsed_ms: ms,
            kind,
        }
    }

    #[test]
    fn the_record_names_people_live_changes_commits_and_the_reconciliation_commit() {
        let cm = ObjectRef::new("ConfigMap", "users", "users-api-env");
        let events = vec![
            at(
                0,
                EventKind::RunStarted {
                    scenario: "break-glass".into(),
                    run_id: "r1".into(),
                },
            ),
            at(
                1_000,
                EventKind::ObjectReady {
                    object: ObjectRef::new("Kustomization", "flux-system", "bootstrap-noise"),
                    revision: None,
                    api_transition: None,
                },
            ),
            at(
                60_000,
                EventKind::DisasterStarted {
                    step: 0,
                    disaster: "break-glass".into(),
                    description: "break glass on users-api".into(),
                    expects: StepOutcome::Recovered,
                    budget_ms: None,
                },
            ),
            at(
                61_000,
                EventKind::Action {
                    step: 0,
                    action: "pause Kustomization/flux-system/users-api".into(),
                    ok: true,
                    by: "alice".into(),
                    message: String::new(),
                },
            ),
            at(
                62_000,
                EventKind::DriftApplied {
                    step: 0,
                    object: cm.clone(),
                    fields: vec![FieldDrift {
                        field: "/data/X".into(),
                        git: "<none>".into(),
                        live: "off".into(),
                    }],
                    manager: None,
                },
            ),
            at(
                70_000,
                EventKind::Committed {
                    step: 0,
                    commit: "0123456789abcdef".into(),
                    message: "backport".into(),
                    reverts: None,
                },
            ),
            at(90_000, EventKind::Recovered { step: 0 }),
        ];
        let timeline = crate::timeline::build(&events);
        let report = Report::new(&timeline, vec![], 60_000, None);
        let md = render(&report, &events);
        assert!(applies(&events));
        assert!(md.contains("people: alice"), "{md}");
        assert!(
            md.contains("| 1m 01s | alice | pause Kustomization/flux-system/users-api |"),
            "{md}"
        );
        assert!(
            md.contains("| live change | ConfigMap/users/users-api-env: /data/X &lt;none&gt; → off |"),
            "{md}"
        );
        assert!(
            md.contains("**Reconciliation commit:** `0123456789ab` \"backport\""),
            "{md}"
        );
        assert!(
            md.contains(
                "ConfigMap/users/users-api-env (/data/X &lt;none&gt; → off): set at 1m 02s, still live at the end"
            ),
            "{md}"
        );
        assert!(!md.contains("bootstrap-noise"), "rows start at the first step: {md}");
    }
}
