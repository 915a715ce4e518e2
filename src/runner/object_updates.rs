//! One watched object's update: what it changes in the state and which events it says,
//! including what holds the engine object that manages it.

use std::collections::BTreeMap;

use super::Run;
use crate::event::{EventKind, ObjectRef};
use crate::observe::observation::Observation;
use crate::observe::readiness::with_holders;
use crate::observe::rules::is_managed_leaf;

/// The last not-Ready message said of each object, so a reason is said once per change.
#[derive(Default)]
pub(super) struct Said(BTreeMap<ObjectRef, String>);

impl Run<'_> {
    pub(super) fn object_update(&mut self, o: Observation) {
        if self.engine.as_ref().is_some_and(|e| (e.rules().saw_drift)(&o)) {
            self.engine_event(&o.object, "");
        }
        let object = o.object.clone();
        let previous = self.state.apply(o);
        // What the state kept (a re-check of what was Ready stays Ready).
        let Some(o) = self.state.get(&object).cloned() else {
            return;
        };
        if previous.is_none() {
            self.emit(EventKind::ObjectObserved {
                object: o.object.clone(),
                depends_on: o.depends_on.clone(),
                wave: o.wave,
            });
        }
        let was_ready = previous.as_ref().is_some_and(|p| p.ready && p.present);
        if o.ready && o.present {
            self.said.0.remove(&o.object);
            if !was_ready {
                self.emit(EventKind::ObjectReady {
                    object: o.object.clone(),
                    revision: o.revision.clone(),
                    api_transition: o.api_transition,
                });
            }
        } else if previous.is_some() {
            self.say_not_ready(&o.object, was_ready);
        }
        // The engine objects managing it may be held by it, or no longer.
        if is_managed_leaf(&o.object.kind) {
            for manager in &o.depends_on {
                if self.state.get(manager).is_some_and(|m| m.present && !m.ready) {
                    self.say_not_ready(manager, false);
                }
            }
        }
    }

    /// Says why `object` is not Ready, with the objects of its inventory that hold it,
    /// unless that was the last thing said of it (and it was not Ready until now).
    fn say_not_ready(&mut self, object: &ObjectRef, was_ready: bool) {
        let Some(o) = self.state.get(object) else {
            return;
        };
        let (reason, own) = (o.reason.clone(), o.message.clone());
        let mut message = with_holders(own, self.state.holders(object));
        let health_reasons = self.engine.as_ref().map_or(&[][..], |e| e.rules().health_reasons);
        if health_reasons.contains(&reason.as_str()) && self.state.inside_all_ready(object) {
            message.push_str(
                "; engine health behind: every object drill follows inside it is Ready by its \
                 own rule (the engine re-checks at its next refresh)",
            );
        }
        let said = format!("{reason}: {message}");
        if !was_ready && self.said.0.get(object) == Some(&said) {
            return;
        }
        self.said.0.insert(object.clone(), said);
        self.emit(EventKind::ObjectNotReady {
            object: object.clone(),
            reason,
            message,
        });
    }
}
