//! The trend of a scenario's figure over its recent runs (its RTO, or its rebuild for a
//! run without damage): a text sparkline for summary.md and an SVG one for report.html.

use std::fmt::Write as _;

use super::Report;
use super::history::HistoryEntry;
use crate::human::ms;

/// How many runs a trend shows, this one included.
pub const RUNS: usize = 20;

/// The figure of the last runs, oldest first, this run last: like with like (RTOs when
/// this run had a step to recover from, rebuilds otherwise); runs without it are skipped.
/// Empty unless there are at least two points.
pub fn figures(report: &Report, past: &[HistoryEntry]) -> Vec<u64> {
    let damage = !report.recoveries.is_empty();
    let pick = |rto: Option<u64>, rebuild: Option<u64>| if damage { rto } else { rebuild };
    let Some(now) = pick(report.rto_ms, report.rebuild_ms) else {
        return Vec::new();
    };
    let mut values: Vec<u64> = past.iter().filter_map(|e| pick(e.rto_ms, e.rebuild_ms)).collect();
    values.push(now);
    let values = values.split_off(values.len().saturating_sub(RUNS));
    if values.len() < 2 { Vec::new() } else { values }
}

/// `▃▄▂▅█`: each value's height between the smallest and the largest.
pub fn sparkline(values: &[u64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let (lo, hi) = bounds(values);
    values
        .iter()
        .map(|v| BARS[((v - lo) * 7).checked_div(hi - lo).unwrap_or(3) as usize])
        .collect()
}

/// "RTO over the last 5 runs: ▃▄▂▅█ (42.0s … 1m 10s, this run last)".
pub fn line(report: &Report, values: &[u64]) -> String {
    let (lo, hi) = bounds(values);
    let what = if report.recoveries.is_empty() { "Rebuild" } else { "RTO" };
    format!(
        "{what} over the last {} runs: {} ({} … {}, this run last)",
        values.len(),
        sparkline(values),
        ms(lo),
        ms(hi)
    )
}

/// The same as a small SVG polyline, this run's point marked.
pub fn svg(values: &[u64]) -> String {
    let (lo, hi) = bounds(values);
    let (width, height, pad) = (160u64, 28u64, 3u64);
    let step = (width - 2 * pad) / (values.len() as u64 - 1).max(1);
    let point = |i: usize, v: u64| {
        let y = height - pad - (v - lo) * (height - 2 * pad) / (hi - lo).max(1);
        (pad + i as u64 * step, y)
    };
    let points: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let (x, y) = point(i, *v);
            format!("{x},{y}")
        })
        .collect();
    let (lx, ly) = point(values.len() - 1, values[values.len() - 1]);
    let mut s = format!(
        "<svg class=\"trend\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"trend\">"
    );
    let _ = write!(
        s,
        "<polyline fill=\"none\" stroke=\"#0969da\" stroke-width=\"2\" points=\"{}\"/><circle cx=\"{lx}\" cy=\"{ly}\" r=\"3\" fill=\"#fb8500\"/></svg>",
        points.join(" ")
    );
    s
}

fn bounds(values: &[u64]) -> (u64, u64) {
    let lo = values.iter().copied().min().unwrap_or(0);
    let hi = values.iter().copied().max().unwrap_or(0);
    (lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sparkline_spans_the_smallest_to_the_largest() {
        assert_eq!(sparkline(&[10, 80, 45, 10]), "▁█▄▁");
        assert_eq!(sparkline(&[5, 5]), "▄▄", "all equal: the middle");
    }

    #[test]
    fn figures_are_like_with_like_this_run_last_and_at_most_twenty() {
        let entry = |rto: Option<u64>, rebuild: Option<u64>| HistoryEntry {
            rto_ms: rto,
            rebuild_ms: rebuild,
            ..HistoryEntry::default()
        };
        let mut report = crate::report::fixtures::failed_report();
        report.rto_ms = Some(50_000);
        let past: Vec<HistoryEntry> = (0..30).map(|i| entry(Some(i * 1_000), Some(1))).collect();
        let v = figures(&report, &past);
        assert_eq!(v.len(), RUNS);
        assert_eq!((v[0], v[RUNS - 2], v[RUNS - 1]), (11_000, 29_000, 50_000));
        assert!(figures(&report, &[]).is_empty(), "one point is no trend");
        assert!(figures(&report, &[entry(None, Some(9))]).is_empty(), "no past RTO");
        assert!(line(&report, &v).starts_with("RTO over the last 20 runs: "));
        let svg = svg(&v);
        assert!(svg.contains("<polyline") && svg.matches(',').count() == RUNS, "{svg}");
    }
}
