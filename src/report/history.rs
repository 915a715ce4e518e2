//! history.jsonl: one line per run of a scenario (append-only, atomic appends), and the
//! percentiles `drill history` prints over its last runs, so a regression in RTO or in
//! one phase shows.
//!
//! Schema: version 2 adds `schema`, `phases` and `objects`; a line without `schema` is
//! version 1 (RTO and rebuild only) and still counts for those.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Outcome, Report};
use crate::assert::Assertion;
use crate::human::ms;

pub const HISTORY_SCHEMA: u32 = 2;

/// One line of `history.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    #[serde(default = "version_one")]
    pub schema: u32,
    pub run_id: String,
    pub started_at: Option<jiff::Timestamp>,
    pub result: Outcome,
    pub rto_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebuild_ms: Option<u64>,
    /// Each finished phase's duration, by its label ("reconcile (step 1)"); a label that
    /// repeats in a run adds up.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub phases: BTreeMap<String, u64>,
    /// Each object's ready time in the run's last window ("Kind/namespace/name").
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub objects: BTreeMap<String, u64>,
}

fn version_one() -> u32 {
    1
}

impl Default for HistoryEntry {
    fn default() -> Self {
        HistoryEntry {
            schema: HISTORY_SCHEMA,
            run_id: String::new(),
            started_at: None,
            result: Outcome::Pass,
            rto_ms: None,
            rebuild_ms: None,
            phases: BTreeMap::new(),
            objects: BTreeMap::new(),
        }
    }
}

impl HistoryEntry {
    pub fn of(report: &Report) -> Self {
        let mut phases = BTreeMap::new();
        for p in &report.phases {
            if let Some(d) = p.duration_ms {
                *phases.entry(p.label()).or_insert(0u64) += d;
            }
        }
        let objects = report
            .apps
            .iter()
            .filter_map(|a| {
                a.ready_ms
                    .map(|ms| (format!("{}/{}/{}", a.kind, a.namespace, a.name), ms))
            })
            .collect();
        HistoryEntry {
            schema: HISTORY_SCHEMA,
            run_id: report.run_id.clone(),
            started_at: report.started_at,
            result: report.result,
            rto_ms: report.rto_ms,
            rebuild_ms: report.rebuild_ms,
            phases,
            objects,
        }
    }

    /// Every figure of the run by name: "rto", "rebuild", "phase <label>", "object <ref>".
    pub fn figures(&self) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        out.extend(self.rto_ms.map(|v| ("rto".to_string(), v)));
        out.extend(self.rebuild_ms.map(|v| ("rebuild".to_string(), v)));
        out.extend(self.phases.iter().map(|(k, v)| (format!("phase {k}"), *v)));
        out.extend(self.objects.iter().map(|(k, v)| (format!("object {k}"), *v)));
        out
    }
}

/// Past runs of a scenario, oldest first; unreadable lines are skipped, not fatal.
pub fn read(path: &Path) -> Vec<HistoryEntry> {
    std::fs::read_to_string(path)
        .map(|text| text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect())
        .unwrap_or_default()
}

/// p50, p95 and max of one figure over the runs that have it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Spread {
    pub figure: String,
    pub runs: usize,
    pub p50_ms: u64,
    pub p95_ms: u64,
    pub max_ms: u64,
    /// The latest run's value.
    pub last_ms: u64,
}

/// The nearest-rank percentile (`q` in 0..=100) of sorted values: the smallest value
/// with at least q% of the values at or below it.
pub fn percentile(sorted: &[u64], q: u32) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (u64::from(q) * sorted.len() as u64).div_ceil(100).max(1) as usize;
    sorted.get(rank - 1).copied()
}

/// Each figure's spread over the last `last` runs, in the order figures first appear.
pub fn spreads(entries: &[HistoryEntry], last: usize) -> Vec<Spread> {
    let recent = &entries[entries.len().saturating_sub(last)..];
    let mut order: Vec<String> = Vec::new();
    let mut values: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for e in recent {
        for (name, v) in e.figures() {
            if !values.contains_key(&name) {
                order.push(name.clone());
            }
            values.entry(name).or_default().push(v);
        }
    }
    order
        .into_iter()
        .filter_map(|figure| {
            let in_order = values.remove(&figure)?;
            let last_ms = *in_order.last()?;
            let mut sorted = in_order;
            sorted.sort_unstable();
            Some(Spread {
                runs: sorted.len(),
                p50_ms: percentile(&sorted, 50)?,
                p95_ms: percentile(&sorted, 95)?,
                max_ms: *sorted.last()?,
                last_ms,
                figure,
            })
        })
        .collect()
}

/// The scenarios under `report_dir` with a history, by name.
pub fn scenarios_in(report_dir: &Path) -> std::io::Result<Vec<String>> {
    let mut found: Vec<String> = std::fs::read_dir(report_dir)?
        .flatten()
        .filter(|e| e.path().join("history.jsonl").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    Ok(found)
}

/// One scenario's spreads as a table under a line naming it.
pub fn table(scenario: &str, runs: usize, spreads: &[Spread]) -> String {
    let rows = spreads.iter().map(|s| {
        [
            s.figure.clone(),
            s.runs.to_string(),
            ms(s.p50_ms),
            ms(s.p95_ms),
            ms(s.max_ms),
            ms(s.last_ms),
        ]
    });
    format!(
        "{scenario}: the last {runs} run(s)\n{}",
        super::table::table(["figure", "runs", "p50", "p95", "max", "last"], rows)
    )
}

/// `expect.regression`: the run's RTO (its rebuild time when it had no damage steps)
/// against the median of the same figure over the last `window` passed runs.
pub fn regression(rule: &crate::scenario::Regression, report: &Report, past: &[HistoryEntry]) -> Assertion {
    let (figure, now) = if report.recoveries.is_empty() {
        ("rebuild", report.rebuild_ms)
    } else {
        ("RTO", report.rto_ms)
    };
    let name = format!("{figure} within {} of the recent median", rule.rto);
    let of = |e: &HistoryEntry| {
        if report.recoveries.is_empty() {
            e.rebuild_ms
        } else {
            e.rto_ms
        }
    };
    let passed_runs: Vec<u64> = past
        .iter()
        .filter(|e| e.result == Outcome::Pass)
        .filter_map(of)
        .collect();
    let mut recent = passed_runs[passed_runs.len().saturating_sub(rule.window as usize)..].to_vec();
    recent.sort_unstable();
    let (Some(now), Some(median)) = (now, percentile(&recent, 50).filter(|_| recent.len() >= 3)) else {
        return Assertion {
            name,
            passed: true,
            message: format!(
                "not judged: {} passed run(s) recorded with a {figure} (3 needed){}",
                recent.len(),
                if now.is_none() { ", and this run has none" } else { "" }
            ),
            measured_ms: now,
        };
    };
    let limit = median.saturating_mul(100 + u64::from(rule.rto.0)) / 100;
    let percent_over = (now.saturating_sub(median)).saturating_mul(100) / median.max(1);
    let median_text = format!("the median {} of the last {} passed runs", ms(median), recent.len());
    Assertion {
        passed: now <= limit,
        message: if now <= limit {
            format!("{figure} {} against {median_text} (allowed {} over)", ms(now), rule.rto)
        } else {
            format!(
                "{figure} {} is {percent_over}% over {median_text} (allowed {}): a regression",
                ms(now),
                rule.rto
            )
        },
        measured_ms: Some(now),
        name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_slower_than_the_recent_median_by_more_than_allowed_fails() {
        use crate::scenario::Regression;
        let rule = Regression {
            rto: crate::model::Percent(25),
            window: 10,
        };
        let run = |rto: u64, result: Outcome| HistoryEntry {
            rto_ms: Some(rto),
            result,
            ..HistoryEntry::default()
        };
        // Passed runs at 60, 62, 58 s (median 60 s); a failed 300 s run does not count.
        let past = vec![
            run(60_000, Outcome::Pass),
            run(300_000, Outcome::Fail),
            run(62_000, Outcome::Pass),
            run(58_000, Outcome::Pass),
        ];
        let mut report = crate::report::fixtures::failed_report();
        report.rto_ms = Some(80_000);
        let a = regression(&rule, &report, &past);
        assert!(!a.passed, "{a:?}");
        assert_eq!(
            a.message,
            "RTO 1m 20s is 33% over the median 1m 00s of the last 3 passed runs (allowed 25%): a regression"
        );
        report.rto_ms = Some(75_000);
        assert!(regression(&rule, &report, &past).passed, "exactly 25% over is allowed");
        let a = regression(&rule, &report, &past[..2]);
        assert!(
            a.passed && a.message.starts_with("not judged: 1 passed run(s)"),
            "{a:?}"
        );
        // Added to a passing run, a failed regression makes it fail (exit 1).
        let mut passing = Report::new(&crate::timeline::Timeline::default(), vec![], 60_000, None);
        assert_eq!(passing.result, Outcome::Pass);
        report.rto_ms = Some(80_000);
        passing.add_assertion(regression(&rule, &report, &past));
        assert_eq!(passing.result, Outcome::Fail);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=10).collect();
        assert_eq!(percentile(&v, 50), Some(5));
        assert_eq!(percentile(&v, 95), Some(10));
        assert_eq!(percentile(&v, 0), Some(1));
        assert_eq!(percentile(&[7], 95), Some(7));
        assert_eq!(percentile(&[], 50), None);
    }

    #[test]
    fn version_one_lines_still_count_for_rto() {
        let old: HistoryEntry =
            serde_json::from_str(r#"{"run_id":"a","started_at":null,"result":"pass","rto_ms":9000}"#).unwrap();
        assert_eq!(old.schema, 1);
        let new = HistoryEntry {
            rto_ms: Some(11_000),
            phases: BTreeMap::from([("reconcile (step 1)".into(), 4_000)]),
            ..HistoryEntry::default()
        };
        let s = spreads(&[old, new], 10);
        assert_eq!(s[0].figure, "rto");
        assert_eq!(
            (s[0].runs, s[0].p50_ms, s[0].max_ms, s[0].last_ms),
            (2, 9_000, 11_000, 11_000)
        );
        assert_eq!(s[1].figure, "phase reconcile (step 1)");
        assert_eq!(s[1].runs, 1);
    }
}
