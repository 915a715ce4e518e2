//! `drill compare`: two recorded runs side by side, phase by phase (e.g. the same
//! rebuild with Flux and with Argo CD). Pure: two reports in, Markdown out.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::Report;
use crate::human::ms;

/// Phases in the order they happen; repeated phases (a rebuild creates the cluster
/// twice) are compared occurrence by occurrence.
pub fn render(a: &Report, b: &Report) -> String {
    let mut out = String::new();
    let label = |r: &Report| format!("{} (`{}`)", r.scenario, r.run_id);
    let _ = writeln!(out, "# drill compare\n\n- A: {}\n- B: {}\n", label(a), label(b));
    let _ = writeln!(out, "| phase | A | B | B − A |\n|---|---:|---:|---:|");
    let rows = rows(a, b);
    for (name, da, db) in &rows {
        let cell = |d: &Option<u64>| d.map(ms).unwrap_or_else(|| "—".into());
        let delta = match (da, db) {
            (Some(x), Some(y)) if y >= x => format!("+{}", ms(y - x)),
            (Some(x), Some(y)) => format!("-{}", ms(x - y)),
            _ => "—".into(),
        };
        let _ = writeln!(out, "| {name} | {} | {} | {delta} |", cell(da), cell(db));
    }
    let _ = writeln!(
        out,
        "\n**A:** {} ({})\n**B:** {} ({})",
        a.headline(),
        a.result.as_str(),
        b.headline(),
        b.result.as_str()
    );
    let _ = writeln!(
        out,
        "**Critical path:**\n- A: {}\n- B: {}",
        a.critical_path.join(" → "),
        b.critical_path.join(" → ")
    );
    out
}

/// (phase label, A's duration, B's duration), phases of both runs in first-seen order.
fn rows(a: &Report, b: &Report) -> Vec<(String, Option<u64>, Option<u64>)> {
    let numbered = |r: &Report| {
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        r.phases
            .iter()
            .map(|p| {
                let n = seen.entry(p.name.as_str()).or_insert(0);
                *n += 1;
                let label = if *n == 1 {
                    p.name.to_string()
                } else {
                    format!("{} #{n}", p.name)
                };
                (label, p.duration_ms)
            })
            .collect::<Vec<_>>()
    };
    let (pa, pb) = (numbered(a), numbered(b));
    let mut order: Vec<String> = pa.iter().map(|(l, _)| l.clone()).collect();
    for (l, _) in &pb {
        if !order.contains(l) {
            order.push(l.clone());
        }
    }
    let find = |list: &[(String, Option<u64>)], l: &str| list.iter().find(|(x, _)| x == l).and_then(|(_, d)| *d);
    order
        .into_iter()
        .map(|l| {
            let (da, db) = (find(&pa, &l), find(&pb, &l));
            (l, da, db)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Phase;
    use crate::report::fixtures::failed_report;

    #[test]
    fn phases_line_up_by_name_and_occurrence() {
        let a = failed_report();
        let mut b = failed_report();
        b.run_id = "other".into();
        b.phases.push(Phase {
            name: "secret-bootstrap".into(),
            step: None,
            start_ms: 0,
            duration_ms: Some(250),
            ok: true,
            message: None,
        });
        if let Some(p) = b.phases.iter_mut().find(|p| p.name == "cluster-create") {
            p.duration_ms = Some(20_000);
        }
        let md = render(&a, &b);
        assert!(md.contains("| cluster-create | 16.2s | 20.0s | +3.8s |"), "{md}");
        assert!(md.contains("| secret-bootstrap | — | 250ms | — |"), "{md}");
    }
}
