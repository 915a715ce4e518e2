//! `summary.md`: short enough for a CI step summary; the verdict and RTO first.

use std::fmt::Write;

use super::{Outcome, Report};
use crate::human::ms;

/// `past`: the scenario's recorded runs before this one (oldest first), to show the
/// change since the last run and the trend.
pub fn render(report: &Report, past: &[HistoryEntry]) -> String {
    let previous = past.last();
    let mut out = String::new();
    let verdict = match report.result {
        Outcome::Pass => "✅ PASS",
        Outcome::Fail => "❌ FAIL",
        Outcome::Error => "⚠️ ERROR",
    };
    let _ = writeln!(out, "# drill: {} — {verdict}\n", report.scenario);
    let _ = write!(out, "**{}**", report.headline());
    // Like with like: an RTO against the previous RTO, a rebuild against the previous rebuild.
    let figures = match (report.rto_ms, previous) {
        (Some(now), Some(p)) => p.rto_ms.map(|prev| (now, prev)),
        (None, Some(p)) if report.recoveries.is_empty() => report.rebuild_ms.zip(p.rebuild_ms),
        _ => None,
    };
    if let Some((now, prev)) = figures {
        let delta = now as i64 - prev as i64;
        let sign = if delta >= 0 { "+" } else { "-" };
        let _ = write!(out, ", previous run {} ({sign}{})", ms(prev), ms(delta.unsigned_abs()));
    }
    let _ = writeln!(out, " · run `{}`\n", report.run_id);
    let trend = super::trend::figures(report, past);
    if !trend.is_empty() {
        let _ = writeln!(out, "{}\n", super::trend::line(report, &trend));
    }
    if let Some(line) = report.versions_line() {
        let _ = writeln!(out, "Ran with {line}.\n");
    }
    if !report.evidence.is_empty() {
        let links: Vec<String> = report.evidence.iter().map(|f| format!("[{f}]({f})")).collect();
        let _ = writeln!(out, "**Failure evidence:** {}\n", links.join(", "));
    }
    if let Some(error) = &report.error {
        let _ = writeln!(out, "> **Error:** {}\n", one_line(error));
    }
    if let Some(why) = &report.stopped_early {
        let _ = writeln!(
            out,
            "> **Stopped early** (the outcome was certain): {}\n",
            one_line(why)
        );
    }

    judged(&mut out, report);
    phases_and_objects(&mut out, report);
    out
}

/// Assertions, findings, steps and drift: what was judged.
fn judged(out: &mut String, report: &Report) {
    let _ = writeln!(out, "## Assertions\n");
    for a in &report.assertions {
        let mark = if a.passed { "✅" } else { "❌" };
        let _ = writeln!(out, "- {mark} **{}** — {}", one_line(&a.name), one_line(&a.message));
    }

    if !report.findings.is_empty() {
        let _ = writeln!(out, "\n## Findings\n");
        for f in &report.findings {
            let _ = writeln!(out, "- {}", one_line(f));
        }
    }
    if report.steps.iter().any(|s| !s.figures().is_empty()) {
        let _ = writeln!(out, "\n## Steps\n\n| step | what | figures |\n|---|---|---|");
        for st in &report.steps {
            let _ = writeln!(
                out,
                "| {} {} | {} | {} |",
                st.step + 1,
                st.kind,
                one_line(&st.description),
                one_line(&st.figures())
            );
        }
    }
    if !report.drift.is_empty() {
        let _ = writeln!(
            out,
            "\n## Drift\n\n| hand edit | fields (Git → live) | detected | overwritten | age |\n|---|---|---:|---|---:|"
        );
        for d in &report.drift {
            let row = super::drift_row(d).map(|c| one_line(&c));
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
    }
    if !report.probes.is_empty() {
        let _ = writeln!(
            out,
            "\n## Availability\n\n| {} |\n|---|---|---|---:|",
            super::probes::HEADER.join(" | ")
        );
        for p in &report.probes {
            let row = super::probes::row(p).map(|c| one_line(&c));
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
    }
}

/// Phases, the critical path, objects and image pulls: where the time went.
fn phases_and_objects(out: &mut String, report: &Report) {
    let _ = writeln!(out, "\n## Phases\n\n| phase | start | duration |\n|---|---:|---:|");
    for p in &report.phases {
        let d = p.duration_ms.map(ms).unwrap_or_else(|| "unfinished".into());
        let _ = writeln!(out, "| {} | {} | {d} |", p.label(), ms(p.start_ms));
    }
    for (label, path) in super::critical_path_lines(report) {
        let _ = writeln!(out, "\n**Critical path{label}:** {}", path.join(" → "));
    }

    if !report.apps.is_empty() {
        let _ = writeln!(
            out,
            "\n## Objects\n\n| object | ready after (last) | API server says | status |\n|---|---:|---:|---|"
        );
        for a in &report.apps {
            let ready = a.ready_text();
            let api = a
                .api_ready_ms
                .map(|v| {
                    if v < 0 {
                        format!("-{}", ms(v.unsigned_abs()))
                    } else {
                        ms(v as u64)
                    }
                })
                .unwrap_or_else(|| "—".into());
            let _ = writeln!(out, "| {} | {ready} | {api} | {} |", a.label(), one_line(&a.status()));
        }
    }

    let (images, present) = super::listed_images(report);
    if !images.is_empty() || present > 0 {
        let _ = writeln!(out, "\n## Image pulls\n");
    }
    if present > 0 {
        let _ = writeln!(
            out,
            "{present} image(s) per node were already present: no pull needed.\n"
        );
    }
    if !images.is_empty() {
        let _ = writeln!(out, "| image | node | pull | size |\n|---|---|---:|---:|");
        for i in images {
            let pull = one_line(&i.pull_text());
            let size = i
                .size_bytes
                .map(|b| format!("{:.1} MB", b as f64 / 1e6))
                .unwrap_or_else(|| "—".into());
            let _ = writeln!(out, "| `{}` | {} | {pull} | {size} |", i.image, i.node);
        }
    }
}

/// Table cells and list items must stay on one line; pipes would split a table cell,
/// and `<...>` would be taken for HTML by GitHub's step summary.
fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
        .replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub use super::history::HistoryEntry;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::failed_report;

    #[test]
    fn summary_of_a_failed_run() {
        insta::assert_snapshot!(render(&failed_report(), &[]));
    }

    #[test]
    fn summary_shows_the_rto_change_since_the_previous_run() {
        let mut r = failed_report();
        r.rto_ms = Some(50_000);
        let prev = HistoryEntry {
            run_id: "old".into(),
            started_at: None,
            result: Outcome::Pass,
            rto_ms: Some(42_000),
            rebuild_ms: None,
            ..HistoryEntry::default()
        };
        let md = render(&r, std::slice::from_ref(&prev));
        assert!(
            md.contains("RTO over the last 2 runs: ▁█ (42.0s … 50.0s, this run last)"),
            "{md}"
        );
        assert!(
            md.contains("**RTO 50.0s (budget 1m 00s)**, previous run 42.0s (+8.0s)"),
            "{md}"
        );
    }

    #[test]
    fn a_run_without_damage_is_headed_by_its_rebuild_time_and_compared_with_the_last() {
        let mut r = failed_report();
        r.recoveries.clear();
        r.steps.clear();
        r.rto_ms = None;
        r.rebuild_ms = Some(95_000);
        let prev = HistoryEntry {
            run_id: "old".into(),
            started_at: None,
            result: Outcome::Pass,
            rto_ms: None,
            rebuild_ms: Some(100_000),
            ..HistoryEntry::default()
        };
        let md = render(&r, std::slice::from_ref(&prev));
        assert!(
            md.contains("**rebuilt from Git in 1m 35s (budget 1m 00s)**, previous run 1m 40s (-5.0s)"),
            "{md}"
        );
        assert!(!md.contains("not recovered"), "{md}");
        let table = crate::report::table::render(&r);
        assert!(
            table.contains("— rebuilt from Git in 1m 35s (budget 1m 00s), run"),
            "{table}"
        );
    }
}
