//! The availability probes in every report format: one row per probe (its downtime per
//! step, how many attempts were served), and in report.html a lane on the time axis.

use crate::human::ms;
use crate::timeline::ProbeTiming;

pub const HEADER: [&str; 4] = ["probe", "target", "downtime", "served"];

/// The probe's row: its outages ("42.0s in step 1"; an open one "since 1m 10s in step 2,
/// not served at the end") and its served attempts.
pub fn row(p: &ProbeTiming) -> [String; 4] {
    [p.name.clone(), p.target.clone(), downtime(p), served(p)]
}

pub fn downtime(p: &ProbeTiming) -> String {
    if p.outages.is_empty() {
        return "none".into();
    }
    p.outages
        .iter()
        .map(|o| {
            let step = o.step.map(|s| format!(" in step {}", s + 1)).unwrap_or_default();
            match o.to_ms {
                Some(_) => format!("{}{step}", ms(o.duration_ms)),
                None => format!("since {}{step}, not served at the end", ms(o.from_ms)),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn served(p: &ProbeTiming) -> String {
    match p.success_percent() {
        Some(pct) => format!("{pct:.1}% of {}", p.attempts),
        None => "no attempt".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::Outage;

    #[test]
    fn a_row_names_each_outage_with_its_step_and_an_open_one_as_such() {
        let outage = |step, from, to: Option<u64>, duration| Outage {
            step,
            from_ms: from,
            to_ms: to,
            duration_ms: duration,
            reason: "HTTP 503".into(),
        };
        let mut p = ProbeTiming {
            name: "users-api".into(),
            target: "users/users-api:8080/readyz".into(),
            started_ms: 1_000,
            attempts: 300,
            served: 291,
            outages: vec![outage(Some(0), 10_000, Some(19_000), 9_000)],
            served_at_end: true,
            ever_served: true,
        };
        assert_eq!(row(&p)[2..], ["9.0s in step 1".to_string(), "97.0% of 300".to_string()]);
        p.outages.push(outage(Some(1), 70_000, None, 20_000));
        assert_eq!(
            downtime(&p),
            "9.0s in step 1, since 1m 10s in step 2, not served at the end"
        );
        p.outages.clear();
        assert_eq!(downtime(&p), "none");
    }
}
