//! `expect.probes`: what users see. A probe asks a Service over HTTP (GET, through the
//! API server's service proxy) from the end of the first sync to the end of the run; the
//! report gives each probe's downtime per step and its success ratio.

use std::borrow::Cow;
use std::path::Path;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer};

use crate::model::{Duration, Label, ScenarioError};

/// One Service probed over HTTP: served when it answers 2xx or 3xx within `timeout`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Probe {
    /// What the report calls it (default: the Service's name); unique in the scenario.
    #[serde(default)]
    pub name: Option<Label>,
    /// The Service's namespace.
    pub namespace: Label,
    /// The Service.
    pub service: Label,
    /// The Service's port: its number or its name.
    pub port: ProbePort,
    /// The path asked with GET, e.g. /readyz (default /).
    #[serde(default)]
    pub path: ProbePath,
    /// Time between the starts of two attempts (default 1s).
    #[serde(default = "one_second")]
    pub every: Duration,
    /// How long one attempt may take before it counts as not served (default 2s).
    #[serde(default = "two_seconds")]
    pub timeout: Duration,
    /// The longest downtime one step may cause (first failure to the next answer);
    /// longer fails the run. Without it, a probe fails the run only when it is not
    /// served again by the end.
    #[serde(default)]
    pub max_downtime: Option<Duration>,
}

impl Probe {
    pub fn name(&self) -> &str {
        self.name.as_ref().unwrap_or(&self.service).as_str()
    }

    /// `namespace/service:port/path`, as reports show it.
    pub fn target(&self) -> String {
        format!("{}/{}:{}{}", self.namespace, self.service, self.port, self.path.0)
    }
}

fn one_second() -> Duration {
    Duration(std::time::Duration::from_secs(1))
}

fn two_seconds() -> Duration {
    Duration(std::time::Duration::from_secs(2))
}

/// A Service port by number or by name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ProbePort {
    Number(u16),
    Name(Label),
}

impl std::fmt::Display for ProbePort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProbePort::Number(n) => write!(f, "{n}"),
            ProbePort::Name(name) => write!(f, "{name}"),
        }
    }
}

/// An absolute URL path (with an optional query) that stays under the Service: it is
/// appended to the API server's proxy path, so `.` and `..` segments (plain or
/// percent-encoded), backslashes, fragments, spaces and control characters are refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbePath(pub String);

impl Default for ProbePath {
    fn default() -> Self {
        ProbePath("/".into())
    }
}

impl ProbePath {
    pub fn parse(text: &str) -> Result<Self, String> {
        let refuse = |why: &str| Err(format!("probe path {text:?}: {why}"));
        if !text.starts_with('/') {
            return refuse("must start with '/'");
        }
        if text.len() > 512 {
            return refuse("is longer than 512 characters");
        }
        if text
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '#' || c == '\\')
        {
            return refuse("holds a space, control character, '#' or '\\'");
        }
        let path = text.split_once('?').map_or(text, |(p, _)| p);
        let dots = path
            .split('/')
            .map(|s| s.to_ascii_lowercase().replace("%2e", "."))
            .any(|s| s == "." || s == "..");
        if dots || path.to_ascii_lowercase().contains("%2f") {
            return refuse("must not leave the Service ('.', '..' or an encoded '/')");
        }
        Ok(ProbePath(text.to_string()))
    }
}

impl<'de> Deserialize<'de> for ProbePath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for ProbePath {
    fn schema_name() -> Cow<'static, str> {
        "ProbePath".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "An absolute URL path under the Service, e.g. /readyz (no '.' or '..' segments).",
            "pattern": "^/",
            "maxLength": 512
        })
    }
}

/// Probe names are unique (the report and its assertions are keyed by them).
pub(super) fn check_probes(probes: &[Probe], file: &Path) -> Result<(), ScenarioError> {
    let mut seen = std::collections::BTreeSet::new();
    for probe in probes {
        if !seen.insert(probe.name()) {
            return Err(ScenarioError::in_file(
                file,
                format!(
                    "expect.probes: two probes are called {:?}; give one a `name:`",
                    probe.name()
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_under_the_service() {
        for good in ["/", "/readyz", "/api/v1/health?full=1", "/a.b/c..d"] {
            assert!(ProbePath::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "readyz",
            "/../../api/v1/secrets",
            "/a/./b",
            "/%2e%2E/x",
            "/a%2Fb",
            "/a b",
            "/a#b",
            "/a\\b",
            "/x\n",
        ] {
            assert!(ProbePath::parse(bad).is_err(), "{bad:?}");
        }
    }
}
