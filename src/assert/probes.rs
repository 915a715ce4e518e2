//! Availability probes' verdicts: each probe served again by the end of the run and,
//! with `max-downtime`, no outage longer than that.

use super::Assertion;
use crate::human::ms;
use crate::scenario::{Expect, Probe};
use crate::timeline::{Outage, ProbeTiming, Timeline};

/// One assertion per probe that ran (none started when the first sync failed, which
/// is its own failed assertion).
pub(super) fn probe_assertions(expect: &Expect, timeline: &Timeline) -> Vec<Assertion> {
    expect
        .probes
        .iter()
        .filter_map(|spec| {
            let p = timeline.probes.iter().find(|p| p.name == spec.name())?;
            Some(one_probe(spec, p))
        })
        .collect()
}

fn one_probe(spec: &Probe, p: &ProbeTiming) -> Assertion {
    let limit = spec.max_downtime.map(|d| d.as_millis());
    let name = match spec.max_downtime {
        Some(max) => format!("probe {}: served again, each downtime within {max}", p.name),
        None => format!("probe {}: served again by the end", p.name),
    };
    let longest = p.longest();
    let over = longest.filter(|o| limit.is_some_and(|max| o.duration_ms > max));
    let (passed, message) = if !p.ever_served {
        let why = p.outages.first().map_or("no attempt came back", |o| o.reason.as_str());
        (
            false,
            format!("{} never served: {why} (check its service, port and path)", p.target),
        )
    } else if let Some(open) = p.outages.iter().find(|o| o.to_ms.is_none()) {
        (
            false,
            format!(
                "{} not served at the end of the run: down since {}{}: {}",
                p.target,
                ms(open.from_ms),
                in_step(open),
                open.reason
            ),
        )
    } else if let Some(o) = over {
        (
            false,
            format!(
                "{} down {}{} ({}), over {}",
                p.target,
                ms(o.duration_ms),
                in_step(o),
                o.reason,
                ms(limit.unwrap_or_default())
            ),
        )
    } else {
        (true, served_summary(p))
    };
    Assertion {
        name,
        passed,
        message,
        measured_ms: Some(longest.map_or(0, |o| o.duration_ms)),
    }
}

fn in_step(o: &Outage) -> String {
    o.step.map(|s| format!(" in step {}", s + 1)).unwrap_or_default()
}

/// "served at the end; down 42s in step 1; 97% of 312 attempts served".
fn served_summary(p: &ProbeTiming) -> String {
    let downs: Vec<String> = p
        .outages
        .iter()
        .map(|o| format!("down {}{}", ms(o.duration_ms), in_step(o)))
        .collect();
    let downs = if downs.is_empty() {
        "never down".to_string()
    } else {
        downs.join(", ")
    };
    let ratio = p
        .success_percent()
        .map(|pct| format!("; {pct:.1}% of {} attempts served", p.attempts))
        .unwrap_or_default();
    format!("{} served at the end; {downs}{ratio}", p.target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(max: Option<&str>) -> Probe {
        let yaml = format!(
            "namespace: users\nservice: users-api\nport: 8080\npath: /readyz\n{}",
            max.map(|m| format!("max-downtime: {m}\n")).unwrap_or_default()
        );
        serde_saphyr::from_str(&yaml).unwrap()
    }

    fn outage(step: Option<usize>, from: u64, to: Option<u64>, end: u64) -> Outage {
        Outage {
            step,
            from_ms: from,
            to_ms: to,
            duration_ms: to.unwrap_or(end) - from,
            reason: "HTTP 503: no endpoints available".into(),
        }
    }

    fn timing(outages: Vec<Outage>, served_at_end: bool, ever_served: bool) -> ProbeTiming {
        ProbeTiming {
            name: "users-api".into(),
            target: "users/users-api:8080/readyz".into(),
            started_ms: 1_000,
            attempts: 200,
            served: 150,
            outages,
            served_at_end,
            ever_served,
        }
    }

    #[test]
    fn a_probe_served_again_passes_and_says_each_downtime() {
        let a = one_probe(
            &spec(None),
            &timing(vec![outage(Some(0), 10_000, Some(52_000), 0)], true, true),
        );
        assert!(a.passed, "{a:?}");
        assert_eq!(a.name, "probe users-api: served again by the end");
        assert_eq!(
            a.message,
            "users/users-api:8080/readyz served at the end; down 42.0s in step 1; 75.0% of 200 attempts served"
        );
        assert_eq!(a.measured_ms, Some(42_000));
    }

    #[test]
    fn an_outage_still_open_or_too_long_or_a_probe_never_served_fails() {
        let open = one_probe(
            &spec(None),
            &timing(vec![outage(Some(1), 70_000, None, 90_000)], false, true),
        );
        assert!(!open.passed);
        assert!(
            open.message
                .contains("not served at the end of the run: down since 1m 10s in step 2"),
            "{}",
            open.message
        );

        let long = timing(vec![outage(Some(0), 10_000, Some(100_000), 0)], true, true);
        let over = one_probe(&spec(Some("1m")), &long);
        assert!(!over.passed);
        assert_eq!(over.name, "probe users-api: served again, each downtime within 1m");
        assert!(over.message.contains("down 1m 30s in step 1"), "{}", over.message);
        assert!(one_probe(&spec(Some("2m")), &long).passed);

        let never = one_probe(
            &spec(None),
            &timing(vec![outage(None, 1_000, None, 9_000)], false, false),
        );
        assert!(!never.passed);
        assert!(never.message.contains("never served: HTTP 503"), "{}", never.message);
    }
}
