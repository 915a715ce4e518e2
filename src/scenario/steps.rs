//! Validation of the steps in order: each step checks itself against the steps before
//! it (the fleet's files as earlier commits left them, the commits a revert can name).

use std::collections::BTreeMap;
use std::path::Path;

use super::error::ScenarioError;
use super::plan::RepoSource;
use crate::disaster::Disaster;
use crate::disaster::validate::Sequence;

/// Checks every step; returns, for each git-revert step, the commit step it reverts.
/// `served`: drill serves the repo to the cluster it creates (commit steps need that).
pub fn check_steps(
    steps: &[Disaster],
    repo: &RepoSource,
    served: bool,
    file: &Path,
) -> Result<BTreeMap<usize, usize>, ScenarioError> {
    let dir = match repo {
        RepoSource::Local { dir, .. } if served => Some(dir.clone()),
        _ => None,
    };
    let mut seq = Sequence::new(file, steps, dir);
    for (i, step) in steps.iter().enumerate() {
        seq.index = i;
        step.as_step().check_in_sequence(&mut seq)?;
    }
    Ok(seq.reverts)
}
