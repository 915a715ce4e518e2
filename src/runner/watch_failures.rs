//! Watch failures, grouped by cause. While an API server restarts (a killed node), every
//! watch fails the same way several times over, first unreachable, then refused until
//! its RBAC cache is warm: one warning per kind per retry would bury the report. Each
//! cause becomes one warning that names the watches it hit, how often, and when.

use std::collections::{BTreeMap, BTreeSet};

use crate::assert::ms;

#[derive(Debug, Default)]
pub struct WatchFailures {
    by_cause: BTreeMap<String, Group>,
}

#[derive(Debug)]
struct Group {
    watches: BTreeSet<String>,
    first_ms: u64,
    last_ms: u64,
    count: usize,
    first_message: String,
}

impl WatchFailures {
    /// Records that watch `watch` failed at `at_ms` (run time) with `cause` (e.g. `403
    /// Forbidden`, or the client's error) and the full `message`.
    pub fn record(&mut self, at_ms: u64, watch: &str, cause: &str, message: &str) {
        let group = self.by_cause.entry(cause.to_string()).or_insert_with(|| Group {
            watches: BTreeSet::new(),
            first_ms: at_ms,
            last_ms: at_ms,
            count: 0,
            first_message: format!("watching {watch}: {message}"),
        });
        group.watches.insert(watch.to_string());
        group.last_ms = at_ms;
        group.count += 1;
    }

    /// The warnings for what was recorded since the last call, one per cause.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.by_cause)
            .into_iter()
            .map(|(cause, g)| match g.count {
                1 => g.first_message,
                n => format!(
                    "{n} watch failures ({cause}) from {} to {}, each retried: {}; the first: {}",
                    ms(g.first_ms),
                    ms(g.last_ms),
                    g.watches.into_iter().collect::<Vec<_>>().join(", "),
                    g.first_message
                ),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_api_server_restart_is_one_warning_per_cause() {
        let mut f = WatchFailures::default();
        f.record(
            91_000,
            "Deployment",
            "client error (Connect)",
            "failed to start watching object: client error (Connect)",
        );
        f.record(
            92_000,
            "Kustomization",
            "client error (Connect)",
            "failed to start watching object: client error (Connect)",
        );
        f.record(
            95_000,
            "Deployment",
            "client error (Connect)",
            "failed to start watching object: client error (Connect)",
        );
        f.record(
            161_000,
            "HelmRelease",
            "403 Forbidden",
            "failed to start watching object: helmreleases is forbidden",
        );
        let warnings = f.take_warnings();
        assert_eq!(
            warnings,
            [
                "watching HelmRelease: failed to start watching object: helmreleases is forbidden",
                "3 watch failures (client error (Connect)) from 1m 31s to 1m 35s, each retried: Deployment, Kustomization; \
                 the first: watching Deployment: failed to start watching object: client error (Connect)",
            ]
        );
        assert!(f.take_warnings().is_empty(), "taken once");
    }
}
