use std::fmt;
use std::path::PathBuf;

/// Where in a scenario file something is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub line: u64,
    pub column: u64,
}

impl Position {
    pub fn of(location: &serde_saphyr::Location) -> Option<Self> {
        (location.line() > 0).then(|| Position {
            line: location.line(),
            column: location.column(),
        })
    }
}

/// A scenario that cannot be used. Every variant names the file; most name line and column.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("failed to read scenario {}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Bad YAML, an unknown field, a wrong type, or a value a field rejects.
    #[error("{}: {message}", located(file, position))]
    Invalid {
        file: PathBuf,
        position: Option<Position>,
        message: String,
    },
}

fn located(file: &std::path::Path, position: &Option<Position>) -> String {
    match position {
        Some(p) => format!("{}:{}:{}", file.display(), p.line, p.column),
        None => file.display().to_string(),
    }
}

impl ScenarioError {
    pub(crate) fn from_yaml(file: &std::path::Path, err: &serde_saphyr::Error) -> Self {
        let position = err.location().as_ref().and_then(Position::of);
        ScenarioError::Invalid {
            file: file.to_path_buf(),
            position,
            message: first_line(&err.to_string()),
        }
    }

    pub(crate) fn at(file: &std::path::Path, location: &serde_saphyr::Location, message: impl fmt::Display) -> Self {
        ScenarioError::Invalid {
            file: file.to_path_buf(),
            position: Position::of(location),
            message: message.to_string(),
        }
    }

    pub(crate) fn in_file(file: &std::path::Path, message: impl fmt::Display) -> Self {
        ScenarioError::Invalid {
            file: file.to_path_buf(),
            position: None,
            message: message.to_string(),
        }
    }
}

/// serde-saphyr renders `error: line N column M: message` and a source snippet below;
/// drill prints its own `file:line:column:` prefix, so keep only the message itself.
fn first_line(rendered: &str) -> String {
    let line = rendered.lines().next().unwrap_or(rendered).trim();
    let line = line.strip_prefix("error: ").unwrap_or(line);
    let without_position = line
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(": "))
        .filter(|(position, _)| position.split(" column ").all(|n| n.trim().parse::<u64>().is_ok()))
        .map(|(_, message)| message);
    without_position.unwrap_or(line).to_string()
}
