//! JUnit XML: one test suite per scenario, one test case per assertion. A run that
//! ended in error gets a single `run` case with an <error>, so CI shows why.

use std::fmt::Write;

use super::{Outcome, Report};

pub fn render(reports: &[Report]) -> String {
    let tests: usize = reports.iter().map(case_count).sum();
    let failures: usize = reports
        .iter()
        .map(|r| r.assertions.iter().filter(|a| !a.passed).count())
        .sum();
    let errors = reports.iter().filter(|r| r.result == Outcome::Error).count();
    let time: u64 = reports.iter().map(|r| r.duration_ms).sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"drill\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{}\">",
        secs(time)
    );
    for r in reports {
        suite(&mut out, r, repeated(reports, r));
    }
    out.push_str("</testsuites>\n");
    out
}

/// Whether `r`'s scenario has more than one run here (`--repeat`, or one file for the
/// whole invocation): then each run's names carry its run id, since CI tools keep
/// only one test case per class and name.
fn repeated(reports: &[Report], r: &Report) -> bool {
    reports.iter().filter(|o| o.scenario == r.scenario).count() > 1
}

/// One run as a test suite: an `run` error case when it could not finish, then one case
/// per assertion, timed by what it measured. Failure text is in the element's body too
/// (GitLab shows the body, GitHub and Jenkins the message).
fn suite(out: &mut String, r: &Report, repeated: bool) {
    let suite_failures = r.assertions.iter().filter(|a| !a.passed).count();
    let suite_errors = usize::from(r.result == Outcome::Error);
    let (name, class) = if repeated {
        (
            format!("{} ({})", r.scenario, r.run_id),
            format!("drill.{}.{}", r.scenario, r.run_id),
        )
    } else {
        (r.scenario.clone(), format!("drill.{}", r.scenario))
    };
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{suite_failures}\" errors=\"{suite_errors}\" time=\"{}\"{}>",
        esc(&name),
        case_count(r),
        secs(r.duration_ms),
        r.started_at.map(|t| format!(" timestamp=\"{t}\"")).unwrap_or_default()
    );
    let context = context(r);
    if let Some(error) = &r.error {
        let _ = writeln!(
            out,
            "    <testcase classname=\"{}\" name=\"run\" time=\"{}\">",
            esc(&class),
            secs(r.duration_ms)
        );
        let _ = writeln!(
            out,
            "      <error message=\"{}\" type=\"error\">{}</error>",
            esc(error),
            esc(&format!("{error}{context}"))
        );
        let _ = writeln!(out, "    </testcase>");
    }
    for a in &r.assertions {
        let head = format!(
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{}\"",
            esc(&class),
            esc(&a.name),
            secs(a.measured_ms.unwrap_or(0))
        );
        if a.passed {
            let _ = writeln!(out, "{head}/>");
        } else {
            let _ = writeln!(out, "{head}>");
            let _ = writeln!(
                out,
                "      <failure message=\"{}\" type=\"assertion\">{}</failure>",
                esc(&a.message),
                esc(&format!("{}{context}", a.message))
            );
            let _ = writeln!(out, "    </testcase>");
        }
    }
    let _ = writeln!(out, "  </testsuite>");
}

/// What a reader of a failure wants beside it: the findings, an early stop, the run.
fn context(r: &Report) -> String {
    let mut text = String::new();
    for f in &r.findings {
        text.push_str(&format!("\nfinding: {f}"));
    }
    if let Some(why) = &r.stopped_early {
        text.push_str(&format!("\nstopped early: {why}"));
    }
    text.push_str(&format!("\nrun {} of scenario {}", r.run_id, r.scenario));
    text
}

fn case_count(r: &Report) -> usize {
    r.assertions.len() + usize::from(r.error.is_some())
}

fn secs(ms: u64) -> String {
    format!("{:.3}", ms as f64 / 1000.0)
}

/// Escapes text for an XML attribute or element body; control characters XML 1.0
/// forbids are dropped.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::failed_report;

    #[test]
    fn junit_counts_failures_and_escapes_messages() {
        insta::assert_snapshot!(render(&[failed_report()]));
    }

    #[test]
    fn an_errored_run_has_an_error_case() {
        let mut r = failed_report();
        r.error = Some("Docker engine is not answering".into());
        r.result = Outcome::Error;
        let xml = render(&[r]);
        assert!(xml.contains("errors=\"1\""), "{xml}");
        assert!(
            xml.contains(
                "<error message=\"Docker engine is not answering\" type=\"error\">Docker engine is not answering"
            ),
            "{xml}"
        );
    }

    #[test]
    fn repeated_runs_of_a_scenario_get_names_of_their_own_and_cases_their_time() {
        let a = failed_report();
        let mut b = failed_report();
        b.run_id = "20261123T110000Z-cd34".into();
        let xml = render(&[a, b]);
        assert!(
            xml.contains("classname=\"drill.flux-namespace-loss.20261123T100000Z-ab12\""),
            "{xml}"
        );
        assert!(
            xml.contains("classname=\"drill.flux-namespace-loss.20261123T110000Z-cd34\""),
            "{xml}"
        );
        assert!(
            xml.contains("<testsuites name=\"drill\" tests=\"6\" failures=\"4\""),
            "{xml}"
        );
        let single = render(&[failed_report()]);
        assert!(single.contains("classname=\"drill.flux-namespace-loss\""), "{single}");
    }
}
