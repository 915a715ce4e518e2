//! Availability probes in a run (`expect.probes`): started once the first sync is done,
//! started again on each new observer (a rebuilt cluster), and counted as not served the
//! moment drill deletes the cluster. Only changes of state become events; the attempts
//! are counted and emitted once, at the end.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio::time::Instant;

use super::Run;
use crate::event::EventKind;
use crate::observe::probe::ProbeTarget;

/// How long after the first sync every probe has to be served once (a probe that never
/// is by then is most likely pointed at the wrong port or path: a warning says so).
const FIRST_ANSWER: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
pub(super) struct Probes {
    started: bool,
    by_name: BTreeMap<String, Count>,
}

#[derive(Debug, Default)]
struct Count {
    /// Whether the last attempt was served (None: no attempt yet).
    served_now: Option<bool>,
    /// Whether any attempt was: a probe never served (a wrong port or path) holds no
    /// wait for users to be served again.
    ever_served: bool,
    last_detail: String,
    attempts: u64,
    served: u64,
}

impl Probes {
    /// One attempt's result; the event it causes when the probe's state changed.
    pub(super) fn record(&mut self, probe: &str, served: bool, detail: String) -> Option<EventKind> {
        let count = self.by_name.get_mut(probe)?;
        count.attempts += 1;
        count.served += u64::from(served);
        let changed = count.served_now != Some(served);
        count.served_now = Some(served);
        count.ever_served |= served;
        if !served {
            count.last_detail.clone_from(&detail);
        }
        changed.then(|| transition(probe, served, detail))
    }

    /// The cluster is gone: every probe still served is not, from now.
    pub(super) fn cluster_lost(&mut self) -> Vec<EventKind> {
        let mut events = Vec::new();
        for (name, count) in &mut self.by_name {
            if count.served_now != Some(false) {
                count.served_now = Some(false);
                count.last_detail = "the cluster was deleted".into();
                events.push(transition(name, false, "the cluster was deleted".into()));
            }
        }
        events
    }

    /// Every probe ever served is served now.
    fn all_served(&self) -> bool {
        self.by_name
            .values()
            .all(|c| c.served_now == Some(true) || !c.ever_served)
    }

    /// Every probe has been served at least once.
    fn all_answered(&self) -> bool {
        self.by_name.values().all(|c| c.ever_served)
    }

    fn not_served(&self) -> Vec<String> {
        self.by_name
            .iter()
            .filter(|(_, c)| c.served_now != Some(true))
            .map(|(name, c)| match c.served_now {
                None => format!("{name} (no answer yet)"),
                Some(_) => format!("{name} ({})", c.last_detail),
            })
            .collect()
    }

    pub(super) fn totals(&self) -> Vec<EventKind> {
        self.by_name
            .iter()
            .map(|(name, c)| EventKind::ProbeTotals {
                probe: name.clone(),
                attempts: c.attempts,
                served: c.served,
            })
            .collect()
    }
}

fn transition(probe: &str, served: bool, detail: String) -> EventKind {
    let probe = probe.to_string();
    if served {
        EventKind::ProbeUp { probe }
    } else {
        EventKind::ProbeDown { probe, detail }
    }
}

impl Run<'_> {
    fn probe_targets(&self) -> Vec<ProbeTarget> {
        self.plan
            .scenario
            .expect
            .probes
            .iter()
            .map(|p| ProbeTarget {
                name: p.name().to_string(),
                namespace: p.namespace.to_string(),
                service: p.service.to_string(),
                port: p.port.to_string(),
                path: p.path.0.clone(),
                every: p.every.0,
                timeout: p.timeout.0,
            })
            .collect()
    }

    /// After the first sync: every probe starts, and the run waits (a minute at most)
    /// until each has been served once, so the first damage meets a served fleet.
    pub(super) async fn start_probes(&mut self) -> Result<()> {
        let targets = self.probe_targets();
        if targets.is_empty() {
            return Ok(());
        }
        for (probe, target) in self.plan.scenario.expect.probes.iter().zip(&targets) {
            self.probes.by_name.insert(target.name.clone(), Count::default());
            self.emit(EventKind::ProbeStarted {
                probe: target.name.clone(),
                target: probe.target(),
            });
        }
        self.probes.started = true;
        let client = self.cluster.as_ref().context("no cluster")?.client().await?;
        if let Some((observer, _)) = self.observer.as_mut() {
            observer.probe(&client, &targets);
        }
        if !self
            .wait_until_probes(Instant::now() + FIRST_ANSWER, Probes::all_answered)
            .await
        {
            let message = format!(
                "not served a minute after the first sync (check the probe's service, port and path): {}",
                self.probes.not_served().join("; ")
            );
            self.emit(EventKind::Warning { message });
        }
        Ok(())
    }

    /// Each probe's attempts, once, as the run ends.
    pub(super) fn emit_probe_totals(&mut self) {
        for totals in self.probes.totals() {
            self.emit(totals);
        }
    }

    /// A new observer (a rebuilt cluster) asks again, once probing has started.
    pub(super) fn resume_probes(&mut self, client: &kube::Client) {
        if !self.probes.started {
            return;
        }
        let targets = self.probe_targets();
        if let Some((observer, _)) = self.observer.as_mut() {
            observer.probe(client, &targets);
        }
    }

    /// Waits, driven by updates, until every probe ever served is served again; false at
    /// `deadline` (its downtime then stays open in the report until it is).
    pub(super) async fn wait_served(&mut self, deadline: Instant) -> bool {
        self.wait_until_probes(deadline, Probes::all_served).await
    }

    async fn wait_until_probes(&mut self, deadline: Instant, done: fn(&Probes) -> bool) -> bool {
        loop {
            if self.drain_updates().is_err() {
                return false;
            }
            if done(&self.probes) {
                return true;
            }
            let Some((_, rx)) = self.observer.as_mut() else {
                return false;
            };
            let update = tokio::select! {
                u = rx.recv() => u,
                _ = tokio::time::sleep_until(deadline) => return false,
            };
            match update {
                Some(u) => self.apply(u),
                None => return false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probes(names: &[&str]) -> Probes {
        let mut p = Probes::default();
        for n in names {
            p.by_name.insert(n.to_string(), Count::default());
        }
        p
    }

    #[test]
    fn only_changes_of_state_are_events_and_every_attempt_is_counted() {
        let mut p = probes(&["api"]);
        assert_eq!(
            p.record("api", false, "HTTP 503: no endpoints".into()),
            Some(EventKind::ProbeDown {
                probe: "api".into(),
                detail: "HTTP 503: no endpoints".into()
            })
        );
        assert_eq!(p.record("api", false, "again".into()), None);
        assert_eq!(
            p.record("api", true, String::new()),
            Some(EventKind::ProbeUp { probe: "api".into() })
        );
        assert_eq!(p.record("api", true, String::new()), None);
        assert_eq!(p.record("other", true, String::new()), None, "not a probe of the run");
        assert_eq!(
            p.totals(),
            vec![EventKind::ProbeTotals {
                probe: "api".into(),
                attempts: 4,
                served: 2
            }]
        );
    }

    #[test]
    fn losing_the_cluster_takes_down_every_served_probe_once() {
        let mut p = probes(&["a", "b"]);
        p.record("a", true, String::new());
        p.record("b", false, "refused".into());
        assert!(p.all_served(), "b was never served: no wait for it");
        let events = p.cluster_lost();
        assert_eq!(
            events,
            vec![EventKind::ProbeDown {
                probe: "a".into(),
                detail: "the cluster was deleted".into()
            }]
        );
        assert!(p.cluster_lost().is_empty());
        assert_eq!(p.not_served(), vec!["a (the cluster was deleted)", "b (refused)"]);
        // b was never served (a wrong port or path): it holds no wait, a does.
        assert!(!p.all_served() && !p.all_answered());
        p.record("a", true, String::new());
        assert!(p.all_served() && !p.all_answered());
    }
}
