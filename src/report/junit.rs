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
        let suite_failures = r.assertions.iter().filter(|a| !a.passed).count();
        let suite_errors = usize::from(r.result == Outcome::Error);
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{suite_failures}\" errors=\"{suite_errors}\" time=\"{}\"{}>",
            esc(&r.scenario),
            case_count(r),
            secs(r.duration_ms),
            r.started_at.map(|t| format!(" timestamp=\"{t}\"")).unwrap_or_default()
        );
        let class = format!("drill.{}", r.scenario);
        if let Some(error) = &r.error {
            let _ = writeln!(
                out,
                "    <testcase classname=\"{}\" name=\"run\" time=\"{}\">",
                esc(&class),
                secs(r.duration_ms)
            );
            let _ = writeln!(out, "      <error message=\"{}\"/>", esc(error));
            let _ = writeln!(out, "    </testcase>");
        }
        for a in &r.assertions {
            if a.passed {
                let _ = writeln!(
                    out,
                    "    <testcase classname=\"{}\" name=\"{}\"/>",
                    esc(&class),
                    esc(&a.name)
                );
            } else {
                let _ = writeln!(
                    out,
                    "    <testcase classname=\"{}\" name=\"{}\">",
                    esc(&class),
                    esc(&a.name)
                );
                let _ = writeln!(out, "      <failure message=\"{}\"/>", esc(&a.message));
                let _ = writeln!(out, "    </testcase>");
            }
        }
        let _ = writeln!(out, "  </testsuite>");
    }
    out.push_str("</testsuites>\n");
    out
}

fn case_count(r: &Report) -> usize {
    r.assertions.len() + usize::from(r.error.is_some())
}

fn secs(ms: u64) -> String {
    format!("{:.3}", ms as f64 / 1000.0)
}

/// Escapes text for an XML attribute; control characters XML 1.0 forbids are dropped.
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
            xml.contains("<error message=\"Docker engine is not answering\"/>"),
            "{xml}"
        );
    }
}
