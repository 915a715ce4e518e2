//! Object readiness: when each watched object became Ready in the current window, what it
//! waits for, and why it is not Ready when it is not.

use std::collections::BTreeMap;

use super::{Flap, NotReady, ObjectTiming, Window};
use crate::event::{EventKind, ObjectRef};

#[derive(Default)]
pub(super) struct Objects {
    by_ref: BTreeMap<ObjectRef, ObjectTiming>,
    /// One line per flapping dependency, kept across windows.
    flap_findings: Vec<String>,
    /// Ready transitions against what each object must follow, kept across windows.
    order: super::order::Order,
    /// A reused cluster's initial sync (`--reuse-cluster`): apps already running re-sync
    /// to the new commit in whatever order their reconciles come, so neither the order
    /// Git declares nor a flapping dependency is judged until the first step.
    unjudged: bool,
}

impl Objects {
    pub(super) fn apply(&mut self, now: u64, kind: &EventKind, window: Window) {
        match kind {
            EventKind::Versions(v) if v.reused_cluster.is_some() => self.unjudged = true,
            EventKind::ObjectObserved {
                object,
                depends_on,
                wave,
            } => {
                let o = self.entry(object);
                o.depends_on = depends_on.clone();
                o.wave = *wave;
            }
            EventKind::ObjectReady {
                object,
                revision,
                api_transition,
            } => {
                if !self.entry(object).ready {
                    self.order.became_ready(&self.by_ref, object, now, !self.unjudged);
                }
                let o = self.entry(object);
                if !o.ready {
                    o.ready = true;
                    o.ready_ms = Some(now.saturating_sub(window.start_ms));
                    o.first_ready_ms = o.first_ready_ms.or(o.ready_ms);
                    o.api_ready_ms = match (api_transition, window.run_started_at) {
                        (Some(api), Some(start)) => {
                            let since_start = api.duration_since(start).as_millis() as i64;
                            Some(since_start - window.start_ms as i64)
                        }
                        _ => None,
                    };
                }
                o.revision = revision.clone().or(o.revision.take());
                o.not_ready = None;
            }
            EventKind::ObjectNotReady {
                object,
                reason,
                message,
            } => {
                self.entry(object);
                self.order.left_ready(&self.by_ref, object);
                let dependents = self.ready_dependents(object);
                let judged = !self.unjudged;
                let o = self.entry(object);
                if judged && o.ready && o.first_ready_ms.is_some() && o.flapped.is_none() && !dependents.is_empty() {
                    o.flapped = Some(Flap {
                        at_ms: now.saturating_sub(window.start_ms),
                        reason: reason.clone(),
                        dependents: dependents.clone(),
                    });
                    self.flap_findings.push(format!(
                        "{object} fell back to not Ready ({reason}) at {} into the run, after {} that \
                         depend on it were Ready: a flapping dependency (its ready time is its last)",
                        crate::human::ms(now),
                        dependents.join(", ")
                    ));
                }
                let o = self.entry(object);
                o.ready = false;
                o.ready_ms = None;
                o.not_ready = Some(NotReady {
                    reason: reason.clone(),
                    message: message.clone(),
                });
            }
            _ => {}
        }
    }

    pub(super) fn order(&self) -> (&[String], u64) {
        (&self.order.breaks, self.order.checked)
    }

    /// A new window forgets when objects became Ready; whether they are Ready stays.
    pub(super) fn open_window(&mut self) {
        self.unjudged = false;
        for o in self.by_ref.values_mut() {
            o.ready_ms = None;
            o.first_ready_ms = None;
            o.api_ready_ms = None;
            o.flapped = None;
        }
    }

    /// The objects Ready now that declare `object` as a dependency.
    fn ready_dependents(&self, object: &ObjectRef) -> Vec<String> {
        self.by_ref
            .values()
            .filter(|d| d.ready && d.depends_on.contains(object))
            .map(|d| d.object.to_string())
            .collect()
    }

    /// When the last object of one of `kinds` became Ready, from the window's start.
    pub(super) fn last_ready(&self, kinds: &[&str]) -> Option<u64> {
        self.by_ref
            .values()
            .filter(|o| kinds.contains(&o.object.kind.as_str()))
            .filter_map(|o| o.ready_ms)
            .max()
    }

    /// Every object not Ready now, by name.
    pub(super) fn not_ready_names(&self) -> Vec<String> {
        self.by_ref
            .values()
            .filter(|o| !o.ready)
            .map(|o| o.object.to_string())
            .collect()
    }

    pub(super) fn by_ref(&self) -> &BTreeMap<ObjectRef, ObjectTiming> {
        &self.by_ref
    }

    pub(super) fn flap_findings(&self) -> &[String] {
        &self.flap_findings
    }

    /// Ready ones first, in the order they became Ready; then the rest by name.
    pub(super) fn finish(self) -> Vec<ObjectTiming> {
        let mut objects: Vec<ObjectTiming> = self.by_ref.into_values().collect();
        objects.sort_by(|a, b| {
            (a.ready_ms.is_none(), a.ready_ms, &a.object).cmp(&(b.ready_ms.is_none(), b.ready_ms, &b.object))
        });
        objects
    }

    fn entry(&mut self, object: &ObjectRef) -> &mut ObjectTiming {
        self.by_ref.entry(object.clone()).or_insert_with(|| ObjectTiming {
            object: object.clone(),
            ready: false,
            ready_ms: None,
            first_ready_ms: None,
            flapped: None,
            api_ready_ms: None,
            revision: None,
            not_ready: None,
            depends_on: Vec::new(),
            wave: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use crate::event::{EventKind, ObjectRef};
    use crate::scenario::StepOutcome;
    use crate::timeline::build;
    use crate::timeline::testkit::{at, obj, ready, rebuild_events, run_started, started};

    #[test]
    fn object_ready_times_are_relative_to_the_last_window() {
        let t = build(&rebuild_events());
        let ready: Vec<(String, Option<u64>)> = t.objects.iter().map(|o| (o.object.to_string(), o.ready_ms)).collect();
        assert_eq!(
            ready,
            vec![
                ("GitRepository/flux-system/flux-system".into(), Some(35_000)),
                ("Kustomization/flux-system/infrastructure".into(), Some(40_000)),
                ("Kustomization/flux-system/apps".into(), Some(50_000)),
                ("Deployment/users/users-api".into(), Some(55_000)),
            ]
        );
    }

    #[test]
    fn an_object_that_falls_back_to_not_ready_has_no_ready_time_and_keeps_the_reason() {
        let apps = obj("Kustomization", "apps");
        let t = build(&[
            run_started(0),
            ready(1_000, apps.clone()),
            at(
                2_000,
                EventKind::ObjectNotReady {
                    object: apps,
                    reason: "HealthCheckFailed".into(),
                    message: "users-api not ready".into(),
                },
            ),
            at(9_000, EventKind::RecoveryTimedOut { step: 0 }),
        ]);
        let o = &t.objects[0];
        assert_eq!(o.ready_ms, None);
        assert_eq!(
            o.not_ready.as_ref().map(|n| n.reason.as_str()),
            Some("HealthCheckFailed")
        );
        assert_eq!(t.not_ready().count(), 1);
    }

    #[test]
    fn an_update_read_late_keeps_the_time_its_watcher_received_it() {
        // delete-namespace waits 43 s for the namespace to go; the engine had the app
        // Ready again 22 s into the step. The runner reads that update after the step
        // (appended after the step's own events) but stamped when it was received.
        let api = obj("Deployment", "users-api");
        let t = build(&[
            run_started(0),
            ready(1_000, api.clone()),
            started(10_000, 0, "delete-namespace", StepOutcome::Recovered),
            at(
                53_000,
                EventKind::ObjectNotReady {
                    object: api.clone(),
                    reason: "Deleted".into(),
                    message: "its namespace was deleted".into(),
                },
            ),
            at(53_000, EventKind::DisasterInjected { step: 0 }),
            ready(32_000, api),
            at(54_000, EventKind::Recovered { step: 0 }),
        ]);
        let o = &t.objects[0];
        assert!(o.ready, "the later-read Ready is the object's state");
        assert_eq!(o.ready_ms, Some(22_000), "Ready 22 s into the step, not when read");
    }

    #[test]
    fn a_flux_object_ready_before_what_it_depends_on_is_an_order_break() {
        let (db, api) = (obj("Kustomization", "users-db"), obj("Kustomization", "users-api"));
        let mut events = vec![
            run_started(0),
            observed(1, db.clone(), vec![]),
            observed(1, api.clone(), vec![db.clone()]),
            ready(10_000, db.clone()),
            ready(11_000, api.clone()),
            started(20_000, 0, "delete-namespace", StepOutcome::Recovered),
            not_ready(21_000, db.clone()),
            not_ready(21_000, api.clone()),
        ];
        let in_order = [ready(30_000, db.clone()), ready(31_000, api.clone())];
        let t = build(&[events.clone(), in_order.to_vec()].concat());
        assert!(t.order_breaks.is_empty(), "{:?}", t.order_breaks);
        assert_eq!(t.order_checked, 2, "users-api judged against users-db in each window");

        events.extend([ready(30_000, api.clone()), ready(31_000, db.clone())]);
        let t = build(&events);
        assert_eq!(t.order_breaks.len(), 1, "{:?}", t.order_breaks);
        assert!(
            t.order_breaks[0].starts_with(
                "Kustomization/flux-system/users-api became Ready at 30.0s into the run before Kustomization/flux-system/users-db, which it depends on"
            ),
            "{}",
            t.order_breaks[0]
        );
        assert!(t.findings.contains(&t.order_breaks[0]), "a break is a finding");
    }

    #[test]
    fn a_reused_clusters_initial_sync_is_not_judged_for_order_or_flaps_and_its_steps_are() {
        let (db, api) = (obj("Kustomization", "users-db"), obj("Kustomization", "users-api"));
        let reused = at(
            0,
            EventKind::Versions(crate::event::Versions {
                reused_cluster: Some("drill-kept-ab12 (kept by run r1)".into()),
                ..Default::default()
            }),
        );
        // Both Ready at an older commit: not Ready at first sight, then users-api re-syncs
        // first, and users-db falls back once more while users-api is Ready.
        let initial = vec![
            run_started(0),
            reused,
            observed(1, db.clone(), vec![]),
            observed(1, api.clone(), vec![db.clone()]),
            not_ready(2, db.clone()),
            not_ready(2, api.clone()),
            ready(1_000, api.clone()),
            ready(1_100, db.clone()),
            not_ready(1_200, db.clone()),
            ready(1_300, db.clone()),
        ];
        let t = build(&initial);
        assert!(t.order_breaks.is_empty(), "{:?}", t.order_breaks);
        assert!(t.findings.is_empty(), "{:?}", t.findings);

        let mut stepped = initial.clone();
        stepped.extend([
            started(20_000, 0, "delete-namespace", StepOutcome::Recovered),
            not_ready(21_000, db.clone()),
            not_ready(21_000, api.clone()),
            ready(30_000, api.clone()),
            ready(31_000, db.clone()),
        ]);
        let t = build(&stepped);
        assert_eq!(
            t.order_breaks.len(),
            1,
            "the step's window is judged: {:?}",
            t.order_breaks
        );
        assert!(t.order_breaks[0].contains("at 30.0s"), "{}", t.order_breaks[0]);
        assert_eq!(
            t.versions.reused_cluster.as_deref(),
            Some("drill-kept-ab12 (kept by run r1)")
        );
    }

    #[test]
    fn a_dependency_rechecking_or_marked_by_drill_mid_reconcile_is_no_order_break() {
        let (infra, reports) = (obj("Kustomization", "infrastructure"), obj("Kustomization", "reports"));
        let not = |ms, o: &ObjectRef, reason: &str| {
            at(
                ms,
                EventKind::ObjectNotReady {
                    object: o.clone(),
                    reason: reason.into(),
                    message: String::new(),
                },
            )
        };
        let t = build(&[
            run_started(0),
            observed(1, infra.clone(), vec![]),
            observed(1, reports.clone(), vec![infra.clone()]),
            ready(10_000, infra.clone()),
            ready(11_000, reports.clone()),
            started(20_000, 0, "delete-namespace", StepOutcome::Recovered),
            // drill's own mark: infrastructure applied into the deleted namespace.
            not(21_000, &infra, "AwaitingReconcile"),
            // reports' periodic reconcile meanwhile: Flux found infrastructure Ready.
            not(22_000, &reports, "Progressing"),
            ready(23_000, reports.clone()),
            // infrastructure re-checks while reports reconciles again.
            not(30_000, &reports, "Progressing"),
            not(30_500, &infra, "Progressing"),
            ready(31_000, reports.clone()),
            ready(32_000, infra.clone()),
        ]);
        assert!(t.order_breaks.is_empty(), "{:?}", t.order_breaks);
        assert_eq!(t.order_checked, 3);
    }

    #[test]
    fn an_argocd_app_healthy_before_an_earlier_wave_of_its_parent_is_an_order_break() {
        let app = |name| ObjectRef::new("Application", "argocd", name);
        let waved = |ms, name, parent, wave| {
            at(
                ms,
                EventKind::ObjectObserved {
                    object: app(name),
                    depends_on: vec![app(parent)],
                    wave: Some(wave),
                },
            )
        };
        let t = build(&[
            run_started(0),
            waved(1, "users-db", "root", 1),
            waved(1, "users-api", "root", 2),
            // An earlier wave under another parent: no order between them.
            waved(1, "other-child", "other", 0),
            ready(5_000, app("users-api")),
            ready(9_000, app("users-db")),
        ]);
        assert_eq!(t.order_breaks.len(), 1, "{:?}", t.order_breaks);
        assert!(t.order_breaks[0].contains("before Application/argocd/users-db, which it follows in sync wave"));
    }

    fn observed(ms: u64, o: ObjectRef, depends_on: Vec<ObjectRef>) -> crate::event::DrillEvent {
        at(
            ms,
            EventKind::ObjectObserved {
                object: o,
                depends_on,
                wave: None,
            },
        )
    }

    fn not_ready(ms: u64, o: ObjectRef) -> crate::event::DrillEvent {
        at(
            ms,
            EventKind::ObjectNotReady {
                object: o,
                reason: "HealthCheckFailed".into(),
                message: "timeout".into(),
            },
        )
    }

    #[test]
    fn a_dependency_that_falls_back_after_its_dependents_were_ready_is_a_flap() {
        // The demo's table listed infrastructure Ready at 1m 35s, after users-db (1m 10s)
        // that depends on it: the last Ready, which a reader takes for the first.
        let infra = obj("Kustomization", "infrastructure");
        let db = obj("Kustomization", "users-db");
        let t = build(&[
            run_started(0),
            observed(0, db.clone(), vec![infra.clone()]),
            ready(40_000, infra.clone()),
            ready(70_000, db),
            not_ready(80_000, infra.clone()),
            ready(95_000, infra),
        ]);
        let o = t.objects.iter().find(|o| o.object.name == "infrastructure").unwrap();
        assert_eq!((o.first_ready_ms, o.ready_ms), (Some(40_000), Some(95_000)));
        let flap = o.flapped.as_ref().expect("a flap");
        assert_eq!(flap.at_ms, 80_000);
        assert_eq!(flap.dependents, vec!["Kustomization/flux-system/users-db".to_string()]);
        assert_eq!(t.findings.len(), 1, "{:?}", t.findings);
        assert!(t.findings[0].contains("flapping dependency"), "{}", t.findings[0]);
        assert!(t.findings[0].contains("at 1m 20s"), "{}", t.findings[0]);
    }

    #[test]
    fn falling_back_before_any_dependent_was_ready_is_not_a_flap() {
        let infra = obj("Kustomization", "infrastructure");
        let db = obj("Kustomization", "users-db");
        let t = build(&[
            run_started(0),
            observed(0, db.clone(), vec![infra.clone()]),
            ready(40_000, infra.clone()),
            not_ready(50_000, infra.clone()),
            ready(60_000, infra),
            ready(70_000, db),
        ]);
        let o = t.objects.iter().find(|o| o.object.name == "infrastructure").unwrap();
        assert_eq!((o.first_ready_ms, o.ready_ms), (Some(40_000), Some(60_000)));
        assert_eq!(o.flapped, None);
        assert!(t.findings.is_empty(), "{:?}", t.findings);
    }

    #[test]
    fn objects_untouched_by_the_damage_stay_ready_without_a_new_ready_time() {
        let src = obj("GitRepository", "flux-system");
        let t = build(&[
            run_started(0),
            ready(1_000, src),
            started(2_000, 0, "delete-namespace", StepOutcome::Recovered),
            at(9_000, EventKind::Recovered { step: 0 }),
        ]);
        assert!(t.objects[0].ready);
        assert_eq!(t.objects[0].ready_ms, None);
        assert_eq!(t.not_ready().count(), 0);
    }

    #[test]
    fn api_transition_times_are_reported_beside_drills_own() {
        let k = obj("Kustomization", "apps");
        let base = Timestamp::from_second(1_700_000_000).unwrap();
        let t = build(&[
            run_started(0),
            at(
                5_000,
                EventKind::ObjectReady {
                    object: k,
                    revision: None,
                    api_transition: Some(base + std::time::Duration::from_secs(4)),
                },
            ),
        ]);
        assert_eq!(t.objects[0].ready_ms, Some(5_000));
        assert_eq!(t.objects[0].api_ready_ms, Some(4_000));
    }
}
