//! The terminal table printed at the end of `drill run`.

use tabled::builder::Builder;
use tabled::settings::Style;

use super::Report;
use crate::human::ms;

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let rto = report.rto_ms.map(ms).unwrap_or_else(|| "not recovered".into());
    out.push_str(&format!(
        "{}: {} — RTO {rto} (budget {}), run {}\n",
        report.scenario,
        report.result.as_str().to_uppercase(),
        ms(report.rto_budget_ms),
        report.run_id
    ));

    let mut phases = Builder::default();
    phases.push_record(["phase", "start", "duration"]);
    for p in &report.phases {
        phases.push_record([
            p.name.to_string(),
            ms(p.start_ms),
            p.duration_ms.map(ms).unwrap_or_else(|| "unfinished".into()),
        ]);
    }
    out.push_str(&phases.build().with(Style::sharp()).to_string());
    out.push('\n');

    if !report.apps.is_empty() {
        let mut apps = Builder::default();
        apps.push_record(["object", "ready after", "status"]);
        for a in &report.apps {
            apps.push_record([a.label(), a.ready_ms.map(ms).unwrap_or_else(|| "—".into()), a.status()]);
        }
        out.push_str(&apps.build().with(Style::sharp()).to_string());
        out.push('\n');
    }

    if !report.images.is_empty() {
        let mut images = Builder::default();
        images.push_record(["image", "node", "pull"]);
        for i in &report.images {
            images.push_record([i.image.clone(), i.node.clone(), i.pull_text()]);
        }
        out.push_str(&images.build().with(Style::sharp()).to_string());
        out.push('\n');
    }

    if report.steps.iter().any(|s| !s.figures().is_empty()) {
        let mut steps = Builder::default();
        steps.push_record(["step", "what", "figures"]);
        for st in &report.steps {
            steps.push_record([
                format!("{} {}", st.step + 1, st.kind),
                st.description.clone(),
                st.figures(),
            ]);
        }
        out.push_str(&steps.build().with(Style::sharp()).to_string());
        out.push('\n');
    }
    if !report.drift.is_empty() {
        let mut drift = Builder::default();
        drift.push_record(["hand edit", "fields (Git → live)", "detected", "overwritten", "age"]);
        for d in &report.drift {
            drift.push_record(super::drift_row(d));
        }
        out.push_str(&drift.build().with(Style::sharp()).to_string());
        out.push('\n');
    }
    for f in &report.findings {
        out.push_str(&format!("finding: {f}\n"));
    }

    if !report.critical_path.is_empty() {
        out.push_str(&format!("critical path: {}\n", report.critical_path.join(" → ")));
    }
    for a in &report.assertions {
        out.push_str(&format!(
            "{} {} — {}\n",
            if a.passed { "✓" } else { "✗" },
            a.name,
            a.message
        ));
    }
    if let Some(error) = &report.error {
        out.push_str(&format!("error: {error}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::failed_report;

    #[test]
    fn terminal_table_of_a_failed_run() {
        insta::assert_snapshot!(render(&failed_report()));
    }
}
