//! `report.html`: one self-contained page per run (no script, no network, no external
//! style) for explaining an RTO to a team: the verdict, then every phase and object on
//! one time axis as an SVG Gantt, with the steps' damage marked, the critical path
//! highlighted, failures in red with their reason, and hover detail (SVG `<title>`).
//! Below it the image pulls, the assertions and what went wrong.

use std::fmt::Write as _;

use super::junit::esc;
use super::{App, Outcome, Report};
use crate::human::ms;

const LABEL_WIDTH: u64 = 330;
const CHART_WIDTH: u64 = 820;
const ROW: u64 = 18;
const TOP: u64 = 34;

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1b1f24}\
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}\
.verdict{display:inline-block;padding:2px 10px;border-radius:4px;color:#fff;font-weight:600}\
.pass{background:#1a7f37}.fail{background:#cf222e}.error{background:#9a6700}\
.muted{color:#57606a}table{border-collapse:collapse}td,th{padding:3px 10px;border-bottom:1px solid #d0d7de;text-align:left}\
.bar{fill:#54aeff}.served{fill:#4ac26b}.bar.crit{fill:#fb8500}.bar.bad{fill:#cf222e}.phase{fill:#8c959f}.phase.crit{fill:#fb8500}\
.step{stroke:#cf222e;stroke-dasharray:4 3}.axis{stroke:#d0d7de}text{font:12px system-ui,sans-serif;fill:#1b1f24}\
.ok{color:#1a7f37}.ko{color:#cf222e}.pull{display:inline-block;height:10px;background:#54aeff}";

/// The whole page, without the trend (a run re-rendered alone).
pub fn render(report: &Report) -> String {
    render_with_history(report, &[])
}

/// The whole page; `past` (the scenario's runs before this one) gives the trend.
pub fn render_with_history(report: &Report, past: &[super::history::HistoryEntry]) -> String {
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} — {}</title><style>{STYLE}</style></head><body>\n",
        esc(&report.scenario),
        report.result.as_str()
    );
    page.push_str(&header(report, past));
    page.push_str(&timeline(report));
    page.push_str(&images(report));
    page.push_str(&assertions(report));
    page.push_str(&failures(report));
    page.push_str("</body></html>\n");
    page
}

fn header(r: &Report, past: &[super::history::HistoryEntry]) -> String {
    let class = match r.result {
        Outcome::Pass => "pass",
        Outcome::Fail => "fail",
        Outcome::Error => "error",
    };
    let mut h = format!(
        "<header id=\"verdict\"><h1>{} <span class=\"verdict {class}\">{}</span></h1>\n<p>{}</p>\n",
        esc(&r.scenario),
        r.result.as_str().to_uppercase(),
        esc(&r.headline())
    );
    let _ = writeln!(
        h,
        "<p class=\"muted\">run {} · {} in all",
        esc(&r.run_id),
        ms(r.duration_ms)
    );
    if let Some(v) = r.versions_line() {
        let _ = write!(h, " · {}", esc(&v));
    }
    h.push_str("</p>\n");
    let trend = super::trend::figures(r, past);
    if !trend.is_empty() {
        let _ = writeln!(
            h,
            "<p class=\"muted\">{} {}</p>",
            super::trend::svg(&trend),
            esc(&super::trend::line(r, &trend))
        );
    }
    h.push_str("</header>\n");
    h
}

/// Where a window's object times start: the last step's start, else the start of the
/// last step's phases (a report re-rendered without step records), else the run's.
fn window_start(r: &Report) -> u64 {
    let last_step = r.phases.iter().filter_map(|p| p.step).max();
    let from_phases = || {
        r.phases
            .iter()
            .filter(|p| p.step.is_some() && p.step == last_step)
            .map(|p| p.start_ms)
            .min()
    };
    r.steps.last().map(|s| s.started_ms).or_else(from_phases).unwrap_or(0)
}

fn on_critical_path(r: &Report, name: &str) -> bool {
    r.critical_paths.iter().any(|w| w.path.iter().any(|p| p == name)) || r.critical_path.iter().any(|p| p == name)
}

fn app_key(a: &App) -> String {
    format!("{}/{}/{}", a.kind, a.namespace, a.name)
}

/// Engine objects first (they are what the apps are), then workloads and the rest; each
/// group by ready time, the never-Ready last.
fn ordered_apps(r: &Report) -> Vec<&App> {
    let engine = |a: &App| {
        matches!(
            a.kind.as_str(),
            "GitRepository" | "OCIRepository" | "HelmRepository" | "Kustomization" | "HelmRelease" | "Application"
        )
    };
    let mut apps: Vec<&App> = r.apps.iter().collect();
    apps.sort_by_key(|a| {
        (
            !engine(a),
            a.ready_ms.is_none(),
            a.ready_ms.unwrap_or(u64::MAX),
            a.label(),
        )
    });
    apps
}

/// The Gantt's geometry: the run's time axis mapped onto the chart's width.
struct Chart {
    end: u64,
    height: u64,
}

impl Chart {
    fn x(&self, t: u64) -> u64 {
        LABEL_WIDTH + t.min(self.end) * CHART_WIDTH / self.end
    }

    fn axis(&self, svg: &mut String) {
        for i in 0..=4u64 {
            let t = self.end * i / 4;
            let anchor = if i == 4 { "end" } else { "middle" };
            let _ = writeln!(
                svg,
                "<line class=\"axis\" x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\"/><text x=\"{0}\" y=\"14\" text-anchor=\"{anchor}\">{3}</text>",
                self.x(t),
                TOP - 8,
                self.height - 16,
                ms(t)
            );
        }
    }

    fn phase_rows(&self, r: &Report, svg: &mut String) {
        for (row, p) in r.phases.iter().enumerate() {
            let y = TOP + row as u64 * ROW;
            let crit = if on_critical_path(r, p.name.as_str()) {
                " crit"
            } else {
                ""
            };
            // A phase still running when the run ended lasts to the end.
            let duration = p.duration_ms.unwrap_or(self.end.saturating_sub(p.start_ms));
            let class = if p.ok { format!("phase{crit}") } else { "bar bad".into() };
            let message = p.message.as_deref().map(|m| format!(" — {m}")).unwrap_or_default();
            let detail = format!("{}: {} from {}{message}", p.label(), ms(duration), ms(p.start_ms));
            let (from, to) = (self.x(p.start_ms), self.x(p.start_ms + duration));
            svg.push_str(&bar_row(y, &p.label(), from, to, &class, &detail));
        }
    }

    fn app_rows(&self, r: &Report, apps: &[&App], svg: &mut String) {
        let start = window_start(r);
        for (i, a) in apps.iter().enumerate() {
            let y = TOP + (r.phases.len() + i) as u64 * ROW;
            let crit = if on_critical_path(r, &app_key(a)) { " crit" } else { "" };
            let (to, class) = match a.ready_ms {
                Some(t) => (start + t, format!("bar{crit}")),
                None if a.ready => (start, "bar".to_string()),
                None => (self.end, "bar bad".to_string()),
            };
            let detail = format!("{}: {}", a.label(), app_detail(a));
            svg.push_str(&bar_row(y, &a.label(), self.x(start), self.x(to), &class, &detail));
            // Its first Ready, when it fell back after: a tick on the bar.
            if let (Some(first), Some(last)) = (a.first_ready_ms, a.ready_ms)
                && first < last
            {
                let _ = writeln!(
                    svg,
                    "<line stroke=\"#1b1f24\" x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\"><title>first Ready at {3}</title></line>",
                    self.x(start + first),
                    y + 2,
                    y + ROW - 2,
                    ms(first)
                );
            }
        }
    }

    /// One lane per probe from its start: green, with its outages in red over it.
    fn probe_rows(&self, r: &Report, first_row: usize, svg: &mut String) {
        for (i, p) in r.probes.iter().enumerate() {
            let y = TOP + (first_row + i) as u64 * ROW;
            let label = format!("probe {}", p.name);
            let detail = format!("{} ({}): downtime {}", label, p.target, super::probes::downtime(p));
            svg.push_str(&bar_row(
                y,
                &label,
                self.x(p.started_ms),
                self.x(self.end),
                "served",
                &detail,
            ));
            for o in &p.outages {
                let to = o.to_ms.unwrap_or(self.end);
                let _ = writeln!(
                    svg,
                    "<rect class=\"bar bad\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"><title>not served for {}: {}</title></rect>",
                    self.x(o.from_ms),
                    y + 3,
                    self.x(to).saturating_sub(self.x(o.from_ms)).max(2),
                    ROW - 6,
                    ms(o.duration_ms),
                    esc(&o.reason)
                );
            }
        }
    }

    fn step_marks(&self, r: &Report, svg: &mut String) {
        for s in &r.steps {
            let _ = writeln!(
                svg,
                "<g><title>step {}: {}</title><line class=\"step\" x1=\"{2}\" y1=\"{3}\" x2=\"{2}\" y2=\"{4}\"/><text x=\"{2}\" y=\"{5}\" fill=\"#cf222e\">step {0} {6}</text></g>",
                s.step + 1,
                esc(&s.description),
                self.x(s.started_ms),
                TOP - 8,
                self.height - 16,
                self.height - 4,
                esc(&s.kind),
            );
        }
    }
}

fn timeline(r: &Report) -> String {
    let apps = ordered_apps(r);
    let rows = (r.phases.len() + apps.len() + r.probes.len()) as u64;
    let chart = Chart {
        end: r.duration_ms.max(1),
        height: TOP + rows * ROW + 20,
    };
    let (width, height) = (LABEL_WIDTH + CHART_WIDTH + 20, chart.height);
    let mut svg = format!(
        "<section id=\"timeline\"><h2>Timeline</h2>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"phases and objects on one time axis\">\n"
    );
    chart.axis(&mut svg);
    chart.phase_rows(r, &mut svg);
    chart.app_rows(r, &apps, &mut svg);
    chart.probe_rows(r, r.phases.len() + apps.len(), &mut svg);
    chart.step_marks(r, &mut svg);
    svg.push_str("</svg>\n<p class=\"muted\">Bars: phases from their start; objects from the start of the last window (the last step, else the run) to their last Ready; probes green while served, red while not. Orange: the critical path. Red: failed or never Ready. Dashed: a step's damage. Hover for detail.</p></section>\n");
    svg
}

fn app_detail(a: &App) -> String {
    let mut d = format!("{} — {}", a.ready_text(), a.status());
    if let Some(api) = a.api_ready_ms {
        let _ = write!(d, " (API server: {})", ms(api.max(0) as u64));
    }
    d
}

fn bar_row(y: u64, label: &str, from: u64, to: u64, class: &str, detail: &str) -> String {
    let shown: String = if label.chars().count() > 48 {
        label.chars().take(47).chain(std::iter::once('…')).collect()
    } else {
        label.to_string()
    };
    format!(
        "<g><title>{}</title><text x=\"4\" y=\"{}\">{}</text><rect class=\"{class}\" x=\"{from}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"2\"/></g>\n",
        esc(detail),
        y + ROW - 5,
        esc(&shown),
        y + 3,
        to.saturating_sub(from).max(2),
        ROW - 6
    )
}

fn images(r: &Report) -> String {
    let pulls: Vec<_> = r.images.iter().filter(|i| i.needed()).collect();
    let mut s = String::from("<section id=\"images\"><h2>Image pulls</h2>\n");
    if pulls.is_empty() {
        s.push_str("<p class=\"muted\">No image had to be pulled.</p></section>\n");
        return s;
    }
    let longest = pulls.iter().filter_map(|i| i.pull_ms).max().unwrap_or(1).max(1);
    s.push_str("<table><tr><th>image</th><th>node</th><th>pull</th><th></th></tr>\n");
    for i in pulls {
        let width = i.pull_ms.map_or(0, |p| p * 300 / longest).max(2);
        let cell = if i.failed.is_some() { "ko" } else { "" };
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td>{}</td><td class=\"{cell}\">{}</td><td><span class=\"pull\" style=\"width:{width}px\"></span></td></tr>",
            esc(&i.image),
            esc(&i.node),
            esc(&i.pull_text())
        );
    }
    s.push_str("</table></section>\n");
    s
}

fn assertions(r: &Report) -> String {
    let mut s = String::from("<section id=\"assertions\"><h2>Assertions</h2>\n<ul>\n");
    for a in &r.assertions {
        let (class, mark) = if a.passed { ("ok", "✓") } else { ("ko", "✗") };
        let _ = writeln!(
            s,
            "<li class=\"{class}\">{mark} {} — <span class=\"muted\">{}</span></li>",
            esc(&a.name),
            esc(&a.message)
        );
    }
    s.push_str("</ul></section>\n");
    s
}

/// What went wrong, in red, with the reasons: the error, objects never Ready, findings
/// (a passing run's findings alone are listed as such).
fn failures(r: &Report) -> String {
    let not_ready: Vec<&App> = r.apps.iter().filter(|a| !a.ready).collect();
    if r.error.is_none() && not_ready.is_empty() && r.findings.is_empty() && r.stopped_early.is_none() {
        return String::new();
    }
    // A passing run's findings are worth reading, not a failure.
    let (id, title, class) = if r.result == Outcome::Pass {
        ("findings", "Findings", "muted")
    } else {
        ("failures", "What went wrong", "ko")
    };
    let mut s = format!("<section id=\"{id}\"><h2>{title}</h2>\n<ul class=\"{class}\">\n");
    let mut item = |text: String| {
        let _ = writeln!(s, "<li>{}</li>", esc(&text));
    };
    if let Some(e) = &r.error {
        item(format!("error: {e}"));
    }
    if let Some(why) = &r.stopped_early {
        item(format!("stopped early: {why}"));
    }
    for a in not_ready {
        item(format!("{}: {}", a.label(), a.status()));
    }
    for f in &r.findings {
        item(f.clone());
    }
    s.push_str("</ul></section>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::failed_report;

    #[test]
    fn the_page_is_self_contained_and_escapes_what_it_shows() {
        let page = render(&failed_report());
        for forbidden in ["<script", "http://", "https://", "<link", "@import", "src=\""] {
            let allowed_xmlns = forbidden == "http://"
                && page.matches("http://").count() == page.matches("xmlns=\"http://www.w3.org/2000/svg\"").count();
            assert!(!page.contains(forbidden) || allowed_xmlns, "{forbidden} in the page");
        }
        assert!(
            page.contains("&lt;apps&gt; &amp; &quot;quotes&quot;"),
            "assertion text escaped"
        );
        assert!(!page.contains("<apps>"));
        for id in ["verdict", "timeline", "images", "assertions", "failures"] {
            assert!(page.contains(&format!("id=\"{id}\"")), "section {id}");
        }
    }

    #[test]
    fn html_report_of_a_failed_run() {
        insta::assert_snapshot!(render(&failed_report()));
    }
}
