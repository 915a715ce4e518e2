//! What a run changed on a cluster it does not own (`cluster: existing`) and has not
//! undone yet: an app it paused, a hand edit Git has not overwritten. drill never
//! deletes a cluster it did not create, so when an interrupt ends such a run without
//! its teardown, this list is what it says it left, each with how to undo it. Fed from
//! the run's events (the one place they are recorded), so nothing is listed twice.

use std::sync::Mutex;

use crate::event::{EventKind, ObjectRef};

struct Left {
    context: String,
    /// (object, what was done and how to undo it), in the order it happened.
    changes: Vec<(ObjectRef, String)>,
}

static LEFT: Mutex<Option<Left>> = Mutex::new(None);

/// From now on, changes to `context` (an existing cluster) are tracked.
pub fn track(context: &str) {
    if let Ok(mut left) = LEFT.lock() {
        *left = Some(Left {
            context: context.to_string(),
            changes: Vec::new(),
        });
    }
}

/// Follows one event of the run: a pause or a hand edit is left until undone.
pub fn record(kind: &EventKind) {
    let Ok(mut guard) = LEFT.lock() else { return };
    let Some(left) = guard.as_mut() else { return };
    match kind {
        EventKind::Suspended {
            object,
            suspended: true,
            ..
        } => left.changes.push((object.clone(), paused(object))),
        EventKind::DriftApplied { object, fields, .. } => {
            let fields: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
            let what = format!(
                "{object}: hand edit of {} (Git's values not restored yet): reconcile its app or restore them",
                fields.join(", ")
            );
            left.changes.push((object.clone(), what));
        }
        EventKind::Suspended {
            object,
            suspended: false,
            ..
        }
        | EventKind::DriftReverted { object, .. } => left.changes.retain(|(o, _)| o != object),
        _ => {}
    }
}

/// The context and every change still left, then forgets them; None when nothing is.
pub fn take() -> Option<(String, Vec<String>)> {
    let left = LEFT.lock().ok()?.take()?;
    (!left.changes.is_empty()).then(|| (left.context, left.changes.into_iter().map(|(_, what)| what).collect()))
}

fn paused(object: &ObjectRef) -> String {
    let undo = match object.kind.as_str() {
        "Application" => format!("argocd app set {} --sync-policy automated --self-heal", object.name),
        kind => format!(
            "flux resume {} {} -n {}",
            kind.to_ascii_lowercase(),
            object.name,
            object.namespace
        ),
    };
    format!("{object}: paused by drill; resume it: {undo}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_and_an_edit_are_left_until_undone_and_only_while_tracking() {
        let app = ObjectRef::new("Kustomization", "flux-system", "apps");
        let pause = |suspended| EventKind::Suspended {
            step: 0,
            object: app.clone(),
            suspended,
        };
        record(&pause(true));
        assert!(take().is_none(), "not tracking: nothing kept");
        track("kind-x");
        record(&pause(true));
        let (context, left) = take().unwrap();
        assert_eq!(context, "kind-x");
        assert_eq!(
            left,
            [
                "Kustomization/flux-system/apps: paused by drill; resume it: flux resume kustomization apps -n flux-system"
            ]
        );
        assert!(take().is_none(), "taken once");
        track("kind-x");
        record(&pause(true));
        record(&pause(false));
        assert!(take().is_none(), "resumed: nothing left");
    }
}
