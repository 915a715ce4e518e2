//! Prune checks (`prune` steps): each object that left Git or was made by hand, pruned
//! or left, and the findings a reader looks for.

use serde::{Deserialize, Serialize};

use crate::event::{EventKind, ObjectRef};
use crate::human::ms;

/// One object a prune step checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PruneRecord {
    pub step: usize,
    #[serde(flatten)]
    pub object: ObjectRef,
    /// Made by hand (never in Git), labelled like an app's objects; else dropped from Git.
    pub by_hand: bool,
    /// Gone by the API server once every engine object was at the commit.
    pub pruned: bool,
    /// From the commit to that check: the prune happened within it.
    pub checked_after_ms: u64,
}

impl PruneRecord {
    /// The finding: what the engine did with the object.
    pub fn finding(&self) -> String {
        let what = match (self.by_hand, self.pruned) {
            (false, true) => "dropped from Git, was pruned".to_string(),
            (false, false) => {
                "dropped from Git, is still in the cluster: the engine did not prune it (prune off for its app?)"
                    .to_string()
            }
            (true, true) => {
                "made by hand and never in Git, was pruned: the engine's marks on it claimed it for the app".to_string()
            }
            (true, false) => {
                "made by hand and never in Git, was left: the engine prunes only what it applied".to_string()
            }
        };
        format!(
            "step {} (prune): {}, {what} (checked {} after the commit)",
            self.step + 1,
            self.object,
            ms(self.checked_after_ms)
        )
    }
}

/// Folds `PruneChecked` events.
#[derive(Default)]
pub(super) struct Prunes(Vec<PruneRecord>);

impl Prunes {
    pub(super) fn apply(&mut self, kind: &EventKind) {
        if let EventKind::PruneChecked {
            step,
            object,
            by_hand,
            gone,
            checked_after_ms,
        } = kind
        {
            self.0.push(PruneRecord {
                step: *step,
                object: object.clone(),
                by_hand: *by_hand,
                pruned: *gone,
                checked_after_ms: *checked_after_ms,
            });
        }
    }

    pub(super) fn finish(self) -> Vec<PruneRecord> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_outcome_reads_as_what_the_engine_did() {
        let r = |by_hand, pruned| PruneRecord {
            step: 1,
            object: ObjectRef::new("ConfigMap", "users", "flags"),
            by_hand,
            pruned,
            checked_after_ms: 12_300,
        };
        assert_eq!(
            r(false, true).finding(),
            "step 2 (prune): ConfigMap/users/flags, dropped from Git, was pruned (checked 12.3s after the commit)"
        );
        assert!(r(false, false).finding().contains("did not prune it"));
        assert!(r(true, true).finding().contains("claimed it for the app"));
        assert!(r(true, false).finding().contains("prunes only what it applied"));
    }
}
