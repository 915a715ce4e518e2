//! The critical path: the chain of phases and objects that set the total of the last window.

use std::collections::BTreeMap;

use super::phases::is_driven;
use super::{ObjectTiming, PhaseSpan};
use crate::event::ObjectRef;

/// The chain that set the total of a window: the phases drill drove in that window, then,
/// from the object that became Ready last (or the last of what it manages, which it
/// waited for), each dependency that became Ready last: for Argo CD the parent
/// Applications up to the root, with their sync waves.
pub(super) fn critical_path(
    phases: &[PhaseSpan],
    objects: &BTreeMap<ObjectRef, ObjectTiming>,
    window_start: u64,
) -> Vec<String> {
    let mut path: Vec<String> = phases
        .iter()
        .filter(|p| p.start_ms >= window_start && is_driven(&p.name))
        .map(|p| p.name.to_string())
        .collect();

    let Some(last) = objects
        .values()
        .filter(|o| o.ready_ms.is_some())
        .max_by_key(|o| (o.ready_ms, &o.object))
    else {
        return path;
    };
    let label = |o: &ObjectTiming| match o.wave {
        Some(w) => format!("{} (wave {w})", o.object),
        None => o.object.to_string(),
    };
    // An object Ready last may have waited for what it manages (an app-of-apps is Healthy
    // once its children are, a Kustomization with `wait` once its workloads are): go down
    // to the last of those first, then up through what each waited for.
    let mut current = last;
    let mut seen = vec![current.object.clone()];
    for _ in 0..objects.len() {
        let child = objects
            .values()
            // A child that is also a dependency is a cycle: not something it waited for.
            .filter(|c| c.depends_on.contains(&current.object) && !current.depends_on.contains(&c.object))
            .filter(|c| !seen.contains(&c.object))
            .filter(|c| c.ready_ms.is_some() && c.ready_ms <= current.ready_ms)
            .max_by_key(|c| (c.ready_ms, &c.object));
        match child {
            Some(c) => {
                seen.push(c.object.clone());
                current = c;
            }
            None => break,
        }
    }
    let mut chain = vec![label(current)];
    // Bounded by the object count, so a dependency cycle cannot loop forever.
    for _ in 0..objects.len() {
        let next = current
            .depends_on
            .iter()
            .filter_map(|d| objects.get(d))
            .filter(|d| d.ready_ms.is_some())
            .max_by_key(|d| (d.ready_ms, &d.object));
        match next {
            Some(dep) if !chain.contains(&label(dep)) => {
                chain.push(label(dep));
                current = dep;
            }
            _ => break,
        }
    }
    chain.reverse();
    path.extend(chain);
    path
}

#[cfg(test)]
mod tests {
    use crate::event::EventKind;
    use crate::timeline::build;
    use crate::timeline::testkit::{at, obj, ready, rebuild_events, run_started};

    #[test]
    fn critical_path_follows_the_latest_dependency() {
        let t = build(&rebuild_events());
        assert_eq!(
            t.critical_path,
            vec![
                "cluster-create",
                "engine-install",
                "GitRepository/flux-system/flux-system",
                "Kustomization/flux-system/infrastructure",
                "Kustomization/flux-system/apps",
                "Deployment/users/users-api",
            ]
        );
    }

    #[test]
    fn an_app_of_apps_ready_last_leads_down_to_the_child_it_waited_for_and_back_up() {
        // The root is Healthy last (it aggregates its children); the path must not be
        // the root alone but the chain root -> parent (wave) -> child (wave) -> workload.
        let observed = |o: &crate::event::ObjectRef, deps: Vec<crate::event::ObjectRef>, wave: Option<i64>| {
            at(
                1,
                EventKind::ObjectObserved {
                    object: o.clone(),
                    depends_on: deps,
                    wave,
                },
            )
        };
        let root = obj("Application", "root");
        let platform = obj("Application", "platform");
        let audit = obj("Application", "audit");
        let early = obj("Application", "early");
        let deploy = crate::event::ObjectRef::new("Deployment", "audit", "audit");
        let t = build(&[
            run_started(0),
            observed(&platform, vec![root.clone()], Some(3)),
            observed(&early, vec![root.clone()], Some(0)),
            observed(&audit, vec![platform.clone()], Some(1)),
            observed(&deploy, vec![audit.clone()], None),
            ready(10_000, early),
            ready(40_000, deploy),
            ready(41_000, audit),
            ready(42_000, platform),
            ready(43_000, root),
        ]);
        assert_eq!(
            t.critical_path,
            vec![
                "Application/flux-system/root",
                "Application/flux-system/platform (wave 3)",
                "Application/flux-system/audit (wave 1)",
                "Deployment/audit/audit",
            ]
        );
    }

    #[test]
    fn every_window_keeps_its_own_critical_path() {
        let t = build(&rebuild_events());
        let steps: Vec<Option<usize>> = t.critical_paths.iter().map(|w| w.step).collect();
        assert_eq!(steps, vec![None, Some(0)]);
        assert_eq!(
            t.critical_paths[1].path, t.critical_path,
            "the last is the report's own"
        );
        assert!(
            !t.critical_paths[0].path.is_empty(),
            "the initial rebuild's path is kept"
        );
    }

    #[test]
    fn a_dependency_cycle_ends_the_chain_and_waves_are_named() {
        let (a, b) = (obj("Application", "a"), obj("Application", "b"));
        let observed = |ms, o: &crate::event::ObjectRef, dep: &crate::event::ObjectRef| {
            at(
                ms,
                EventKind::ObjectObserved {
                    object: o.clone(),
                    depends_on: vec![dep.clone()],
                    wave: Some(1),
                },
            )
        };
        let t = build(&[
            run_started(0),
            observed(1, &a, &b),
            observed(1, &b, &a),
            ready(2_000, a.clone()),
            ready(3_000, b.clone()),
        ]);
        assert_eq!(
            t.critical_path,
            vec![
                "Application/flux-system/a (wave 1)",
                "Application/flux-system/b (wave 1)"
            ]
        );
    }
}
