//! The order Git declares, judged on Ready transitions: an object that became Ready while
//! something it must follow had stayed not Ready since the object itself left Ready
//! (Flux: its source and dependsOn; Argo CD: the Applications of an earlier sync wave
//! under the same parent). What a dependency did after the object's reconcile began is
//! not held against it: Flux checks dependencies when a reconcile starts, so a
//! dependency's own periodic re-check in the meantime is no break. drill's own
//! "AwaitingReconcile" mark (objects it deleted) is not the API server's Ready=False
//! and blocks nothing.

use std::collections::BTreeMap;

use super::ObjectTiming;
use crate::event::ObjectRef;

#[derive(Default)]
pub(super) struct Order {
    /// How often each object became Ready: a dependency Ready in between is not a break.
    ready_count: BTreeMap<ObjectRef, u64>,
    /// For each object not Ready: what it must follow that was not Ready when it left
    /// Ready, with that one's ready count then, and how it must follow it.
    waiting: BTreeMap<ObjectRef, Vec<(ObjectRef, u64, &'static str)>>,
    pub(super) breaks: Vec<String>,
    /// How many (object, what it must follow) pairs a Ready transition was judged on.
    pub(super) checked: u64,
}

impl Order {
    /// `object` left Ready (or is not Ready at first sight): note what it must follow
    /// that is not Ready now. A later NotReady of the same stretch changes nothing.
    pub(super) fn left_ready(&mut self, objects: &BTreeMap<ObjectRef, ObjectTiming>, object: &ObjectRef) {
        if self.waiting.contains_key(object) {
            return;
        }
        let blocked = must_follow(objects, object)
            .into_iter()
            .filter(|(b, _)| blocking(b))
            .map(|(b, how)| (b.object.clone(), self.count(&b.object), how))
            .collect();
        self.waiting.insert(object.clone(), blocked);
    }

    /// `object` became Ready at `now` (run time): a break for each it must follow that has
    /// stayed not Ready since it left Ready. Unless `judged`, only counted (what later
    /// transitions are judged against).
    pub(super) fn became_ready(
        &mut self,
        objects: &BTreeMap<ObjectRef, ObjectTiming>,
        object: &ObjectRef,
        now: u64,
        judged: bool,
    ) {
        if !judged {
            self.waiting.remove(object);
            *self.ready_count.entry(object.clone()).or_default() += 1;
            return;
        }
        let follows = must_follow(objects, object);
        self.checked += follows.len() as u64;
        // Ready at first sight, no stretch not Ready seen: held against what has never
        // been Ready at all.
        let first_sight: Vec<(ObjectRef, u64, &'static str)> = (follows.iter())
            .filter(|(b, _)| blocking(b) && self.count(&b.object) == 0)
            .map(|(b, how)| (b.object.clone(), 0, *how))
            .collect();
        let waited = match self.waiting.remove(object) {
            Some(waited) => waited,
            None if self.count(object) == 0 => first_sight,
            None => Vec::new(),
        };
        for (b, count, how) in waited {
            let still = objects.get(&b).is_some_and(blocking) && self.count(&b) == count;
            let line = format!(
                "{object} became Ready at {} into the run before {b}, which it {how}, was Ready: \
                 the recovery did not follow the order Git declares",
                crate::human::ms(now)
            );
            if still && !self.breaks.contains(&line) {
                self.breaks.push(line);
            }
        }
        *self.ready_count.entry(object.clone()).or_default() += 1;
    }

    fn count(&self, object: &ObjectRef) -> u64 {
        self.ready_count.get(object).copied().unwrap_or(0)
    }
}

/// Not Ready by the API server's word (drill's own mark for deleted objects is not).
fn blocking(o: &ObjectTiming) -> bool {
    !o.ready && o.not_ready.as_ref().is_none_or(|n| n.reason != "AwaitingReconcile")
}

/// What `object` must follow, each with how.
fn must_follow<'a>(
    objects: &'a BTreeMap<ObjectRef, ObjectTiming>,
    object: &ObjectRef,
) -> Vec<(&'a ObjectTiming, &'static str)> {
    let Some(o) = objects.get(object) else {
        return Vec::new();
    };
    match object.kind.as_str() {
        "Kustomization" | "HelmRelease" => (o.depends_on.iter())
            .filter_map(|d| objects.get(d))
            .map(|d| (d, "depends on"))
            .collect(),
        "Application" => match (o.wave, o.depends_on.first()) {
            (Some(wave), Some(parent)) => (objects.values())
                .filter(|b| b.object.kind == "Application" && b.depends_on.first() == Some(parent))
                .filter(|b| b.wave.is_some_and(|w| w < wave))
                .map(|b| (b, "follows in sync wave"))
                .collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}
