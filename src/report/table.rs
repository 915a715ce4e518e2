//! The terminal table printed at the end of `drill run`.

use tabled::builder::Builder;
use tabled::settings::Style;

use super::Report;
use crate::human::ms;

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{}: {} — {}, run {}\n",
        report.scenario,
        report.result.as_str().to_uppercase(),
        report.headline(),
        report.run_id
    ));
    if let Some(line) = report.versions_line() {
        out.push_str(&format!("ran with {line}\n"));
    }

    out.push_str(&table(
        ["phase", "start", "duration"],
        report.phases.iter().map(|p| {
            [
                p.label(),
                ms(p.start_ms),
                p.duration_ms.map(ms).unwrap_or_else(|| "unfinished".into()),
            ]
        }),
    ));
    if !report.apps.is_empty() {
        out.push_str(&table(
            ["object", "ready after (last)", "status"],
            report.apps.iter().map(|a| [a.label(), a.ready_text(), a.status()]),
        ));
    }
    let (images, present) = super::listed_images(report);
    if !images.is_empty() {
        out.push_str(&table(
            ["image", "node", "pull"],
            images.iter().map(|i| [i.image.clone(), i.node.clone(), i.pull_text()]),
        ));
    }
    if present > 0 {
        out.push_str(&format!(
            "{present} image(s) per node were already present: no pull needed\n"
        ));
    }
    if report.steps.iter().any(|s| !s.figures().is_empty()) {
        out.push_str(&table(
            ["step", "what", "figures"],
            report.steps.iter().map(|st| {
                [
                    format!("{} {}", st.step + 1, st.kind),
                    st.description.clone(),
                    st.figures(),
                ]
            }),
        ));
    }
    if !report.drift.is_empty() {
        out.push_str(&table(
            ["hand edit", "fields (Git → live)", "detected", "overwritten", "age"],
            report.drift.iter().map(super::drift_row),
        ));
    }
    if !report.probes.is_empty() {
        out.push_str(&table(
            super::probes::HEADER,
            report.probes.iter().map(super::probes::row),
        ));
    }
    out.push_str(&verdict_lines(report));
    out
}

/// One table in the terminal's style, ending in a newline (every table drill prints).
pub fn table<const N: usize>(header: [&str; N], rows: impl Iterator<Item = [String; N]>) -> String {
    let mut b = Builder::default();
    b.push_record(header);
    for row in rows {
        b.push_record(row);
    }
    format!("{}\n", b.build().with(Style::sharp()))
}

/// Findings, the critical path, the assertions and the error, one per line.
fn verdict_lines(report: &Report) -> String {
    let mut out = String::new();
    for f in &report.findings {
        out.push_str(&format!("finding: {f}\n"));
    }
    for (label, path) in super::critical_path_lines(report) {
        out.push_str(&format!("critical path{label}: {}\n", path.join(" → ")));
    }
    for a in &report.assertions {
        out.push_str(&format!(
            "{} {} — {}\n",
            if a.passed { "✓" } else { "✗" },
            a.name,
            a.message
        ));
    }
    if let Some(why) = &report.stopped_early {
        out.push_str(&format!("stopped early: {why}\n"));
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
    fn images_only_found_present_are_counted_not_listed() {
        let mut r = failed_report();
        let mut present = r.images[0].clone();
        (present.image, present.pull_ms, present.pulled, present.present) = ("cached:1".into(), None, 0, 3);
        r.images.push(present);
        let out = render(&r);
        assert!(!out.contains("cached:1"), "{out}");
        assert!(
            out.contains("1 image(s) per node were already present: no pull needed"),
            "{out}"
        );
        let md = crate::report::markdown::render(&r, &[]);
        assert!(
            !md.contains("cached:1") && md.contains("1 image(s) per node were already present"),
            "{md}"
        );
    }

    #[test]
    fn terminal_table_of_a_failed_run() {
        insta::assert_snapshot!(render(&failed_report()));
    }
}
