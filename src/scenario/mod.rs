//! Scenario files: parse (strict YAML) → validate → [`Plan`].
//!
//! Parsing rejects unknown fields and bad values with file:line:column. Validation
//! then checks what needs several fields or the file system (a kind config that
//! exists, a kill-node target that the config defines), still pointing at a line.

mod kind_config;
mod plan;
pub mod probe;
pub mod spec;
pub use crate::model::values as types;

pub use crate::model::ScenarioError;
pub use plan::{Plan, RepoSource};
pub use probe::Probe;
pub use spec::*;
pub use types::{Duration, Label, RelPath};

use std::path::Path;

/// Reads and parses one scenario file, without checks that touch other files.
pub fn parse_file(path: &Path) -> Result<Scenario, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    parse_str(&text, path)
}

/// Parses scenario text; `path` only names the file in errors.
pub fn parse_str(text: &str, path: &Path) -> Result<Scenario, ScenarioError> {
    serde_saphyr::from_str::<Scenario>(text).map_err(|err| ScenarioError::from_yaml(path, &err))
}

/// Parses and validates a scenario file into a runnable plan.
pub fn load(path: &Path) -> Result<Plan, ScenarioError> {
    let scenario = parse_file(path)?;
    tracing::debug!(
        path = %path.display(),
        steps = scenario.disasters.len(),
        "parsed scenario {}",
        scenario.name
    );
    Plan::build(scenario, path)
}

#[cfg(test)]
mod tests;
