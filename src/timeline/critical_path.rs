//! The critical path: the chain of phases and objects that set the total of the last window.

use std::collections::BTreeMap;

use super::phases::is_driven;
use super::{ObjectTiming, PhaseSpan};
use crate::event::ObjectRef;

/// The chain that set the total of the last window: the phases drill drove in that window,
/// then, from the object that became Ready last, each dependency that became Ready last.
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

    let Some(mut current) = objects
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
