//! JUnit XML: one test suite per scenario, one test case per assertion. A run that
//! ended in error gets a single `run` case with an <error>, so CI shows why.

use std::fmt::Write;

use super::{Outcome, Report};

/// The JUnit XML of `reports`, valid against the strictest JUnit schema in use (Apache
/// Ant's, which Jenkins, GitLab and the GitHub test-report actions all read): each suite
/// carries `package`, `id`, `hostname` and a zone-less `timestamp`, `<properties>` first
/// and `<system-out>`/`<system-err>` last; the totals are the suites' own.
pub fn render(reports: &[Report]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
    for (id, r) in reports.iter().enumerate() {
        suite(&mut out, r, id, repeated(reports, r));
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
fn suite(out: &mut String, r: &Report, id: usize, repeated: bool) {
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
    // Ant's schema wants the time without a zone: it is UTC.
    let timestamp = r
        .started_at
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S").to_string())
        .unwrap_or_else(|| "1970-01-01T00:00:00".into());
    let hostname = r.versions.host.as_deref().unwrap_or("localhost");
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" package=\"{}\" id=\"{id}\" hostname=\"{}\" timestamp=\"{timestamp}\" \
         tests=\"{}\" failures=\"{suite_failures}\" errors=\"{suite_errors}\" time=\"{}\">",
        esc(&name),
        esc(&class),
        esc(hostname),
        case_count(r),
        secs(r.duration_ms),
    );
    let _ = writeln!(out, "    <properties>");
    for (key, value) in properties(r) {
        let _ = writeln!(out, "      <property name=\"{key}\" value=\"{}\"/>", esc(&value));
    }
    let _ = writeln!(out, "    </properties>");
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
    let _ = writeln!(out, "    <system-out>{}</system-out>", esc(&r.headline()));
    let _ = writeln!(
        out,
        "    <system-err>{}</system-err>",
        esc(r.error.as_deref().unwrap_or(""))
    );
    let _ = writeln!(out, "  </testsuite>");
}

/// What a CI tool shows beside the cases: the run, its verdict, what it ran with.
fn properties(r: &Report) -> Vec<(&'static str, String)> {
    let v = &r.versions;
    [
        ("run_id", Some(r.run_id.clone())),
        ("scenario", Some(r.scenario.clone())),
        ("result", Some(r.result.as_str().to_string())),
        ("rto_ms", r.rto_ms.map(|m| m.to_string())),
        ("rebuild_ms", r.rebuild_ms.map(|m| m.to_string())),
        ("drill", v.drill.clone()),
        ("engine", v.engine.clone()),
        ("kubernetes", v.kubernetes.clone()),
        ("node_image", v.node_image.clone()),
        ("engine_from", v.engine_from.clone()),
        ("source", v.source.clone()),
        ("reused_cluster", v.reused_cluster.clone()),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect()
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

/// Escapes text for an XML attribute or element body (HTML's and SVG's too: report.html
/// uses it); control characters XML 1.0 forbids are dropped.
pub(super) fn esc(text: &str) -> String {
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
        assert_eq!(xml.matches("failures=\"2\"").count(), 2, "{xml}");
        assert!(xml.contains(" id=\"0\" ") && xml.contains(" id=\"1\" "), "{xml}");
        let single = render(&[failed_report()]);
        assert!(single.contains("classname=\"drill.flux-namespace-loss\""), "{single}");
    }

    /// The rules of Apache Ant's JUnit XSD (github.com/windyroad/JUnit-Schema), the
    /// strictest in use, checked on a parsed document: required attributes and their
    /// forms, and the order of a suite's children.
    #[test]
    fn the_xml_holds_to_the_ant_junit_schema() {
        use quick_xml::events::Event;
        let mut errored = failed_report();
        errored.error = Some("Docker went away".into());
        errored.result = Outcome::Error;
        errored.versions.host = Some("ci-runner-7".into());
        let xml = render(&[failed_report(), errored]);
        let mut reader = quick_xml::Reader::from_str(&xml);
        let mut stack: Vec<String> = Vec::new();
        let mut suite_children: Vec<Vec<String>> = Vec::new();
        let attrs = |e: &quick_xml::events::BytesStart| -> Vec<(String, String)> {
            e.attributes()
                .map(|a| {
                    let a = a.unwrap();
                    (
                        String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                        a.unescape_value().unwrap().to_string(),
                    )
                })
                .collect()
        };
        let require = |element: &str, got: &[(String, String)], names: &[&str]| {
            for n in names {
                let v = got.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
                assert!(
                    v.is_some_and(|v| !v.is_empty()),
                    "<{element}> lacks {n}: {got:?}\n{xml}"
                );
            }
        };
        loop {
            let (e, empty) = match reader.read_event().unwrap() {
                Event::Start(e) => (e, false),
                Event::Empty(e) => (e, true),
                Event::End(_) => {
                    stack.pop();
                    continue;
                }
                Event::Eof => break,
                _ => continue,
            };
            let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
            let a = attrs(&e);
            match name.as_str() {
                "testsuites" => assert!(a.is_empty(), "Ant's testsuites has no attributes: {a:?}"),
                "testsuite" => {
                    require(
                        &name,
                        &a,
                        &[
                            "name",
                            "package",
                            "id",
                            "hostname",
                            "timestamp",
                            "tests",
                            "failures",
                            "errors",
                            "time",
                        ],
                    );
                    let ts = &a.iter().find(|(k, _)| k == "timestamp").unwrap().1;
                    assert!(
                        jiff::civil::DateTime::strptime("%Y-%m-%dT%H:%M:%S", ts).is_ok(),
                        "timestamp {ts}"
                    );
                    for k in ["id", "tests", "failures", "errors"] {
                        a.iter().find(|(n, _)| n == k).unwrap().1.parse::<i32>().unwrap();
                    }
                    suite_children.push(Vec::new());
                }
                "property" => require(&name, &a, &["name", "value"]),
                "testcase" => {
                    require(&name, &a, &["name", "classname", "time"]);
                    a.iter().find(|(k, _)| k == "time").unwrap().1.parse::<f64>().unwrap();
                }
                "failure" | "error" => require(&name, &a, &["type"]),
                _ => {}
            }
            if stack.last().is_some_and(|p| p == "testsuite") {
                suite_children.last_mut().unwrap().push(name.clone());
            }
            if !empty {
                stack.push(name);
            }
        }
        assert_eq!(suite_children.len(), 2);
        for children in &suite_children {
            // properties, testcase*, system-out, system-err: in that order, each once.
            assert_eq!(children.first().map(String::as_str), Some("properties"), "{children:?}");
            assert_eq!(
                &children[children.len() - 2..],
                ["system-out", "system-err"],
                "{children:?}"
            );
            assert!(
                children[1..children.len() - 2].iter().all(|c| c == "testcase"),
                "{children:?}"
            );
        }
        assert!(xml.contains("hostname=\"ci-runner-7\""), "{xml}");
    }
}
