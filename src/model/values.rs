//! Validated scalar types used by the scenario format. Each one checks its value
//! while it is deserialized, so a bad value is reported at its own line and column.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written the humantime way (`90s`, `5m`, `1h 30m`), between 1 s and 24 h.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    pub const MIN: std::time::Duration = std::time::Duration::from_secs(1);
    pub const MAX: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

    pub fn parse(text: &str) -> Result<Self, String> {
        let value = humantime::parse_duration(text.trim())
            .map_err(|err| format!("invalid duration {text:?}: {err} (write e.g. 90s, 5m, 1h)"))?;
        if value < Self::MIN || value > Self::MAX {
            return Err(format!(
                "duration {text:?} is out of range: it must be between 1s and 24h"
            ));
        }
        Ok(Self(value))
    }

    pub fn as_millis(&self) -> u64 {
        u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A duration such as 90s, 5m or 1h 30m (humantime), from 1s to 24h.",
            "pattern": "^\\s*[0-9]+\\s*[a-zA-Z]+(\\s*[0-9]+\\s*[a-zA-Z]+)*\\s*$"
        })
    }
}

/// A Kubernetes object name that must be a DNS-1123 label: namespaces, scenario names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Label(String);

impl Label {
    pub fn parse(text: &str) -> Result<Self, String> {
        let ok_chars = text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        let ok_ends = text.starts_with(|c: char| c.is_ascii_alphanumeric())
            && text.ends_with(|c: char| c.is_ascii_alphanumeric());
        if text.is_empty() || text.len() > 63 || !ok_chars || !ok_ends {
            return Err(format!(
                "{text:?} is not a valid name: use 1-63 lowercase letters, digits and '-', starting and ending with a letter or digit"
            ));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Label {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Label {
    fn schema_name() -> Cow<'static, str> {
        "Label".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A DNS-1123 label: lowercase letters, digits and '-', at most 63 characters.",
            "pattern": "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
        })
    }
}

/// A percentage written with its sign (`25%`), from 1 % to 1000 %.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Percent(pub u32);

impl Percent {
    pub fn parse(text: &str) -> Result<Self, String> {
        let number = text
            .trim()
            .strip_suffix('%')
            .ok_or_else(|| format!("{text:?} must be a percentage such as \"25%\""))?;
        match number.trim().parse::<u32>() {
            Ok(n) if (1..=1000).contains(&n) => Ok(Percent(n)),
            _ => Err(format!("{text:?} must be a whole percentage from 1% to 1000%")),
        }
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Percent {
    fn schema_name() -> Cow<'static, str> {
        "Percent".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A whole percentage with its sign, 1% to 1000%, e.g. \"25%\".",
            "pattern": "^[0-9]+%$"
        })
    }
}

/// A relative path inside a repository or next to the scenario file: no `..`, not
/// absolute, not inside `.git`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct RelPath(String);

impl RelPath {
    pub fn parse(text: &str) -> Result<Self, String> {
        let trimmed = text.trim_end_matches('/');
        if trimmed.is_empty() {
            return Err("path is empty".to_owned());
        }
        if trimmed.starts_with('/') {
            return Err(format!("{text:?} must be a relative path"));
        }
        if trimmed.split('/').any(|part| part == "..") {
            return Err(format!("{text:?} must not contain '..'"));
        }
        // Git's own files are never a fleet's: an edit there could run code (hooks).
        if trimmed.split('/').any(|part| part == ".git") {
            return Err(format!("{text:?} must not be inside .git"));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for RelPath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for RelPath {
    fn schema_name() -> Cow<'static, str> {
        "RelPath".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A relative path without '..'.",
            "minLength": 1
        })
    }
}

/// A live object, as `kubectl get` names it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Target {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub namespace: Option<String>,
    pub name: String,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{}/{}", self.kind, ns, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

/// An object by kind, namespace and name, as `expect.pruned` and `expect.kept` name it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ObjectName {
    pub kind: String,
    #[serde(default)]
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectName {
    pub fn to_ref(&self) -> crate::event::ObjectRef {
        crate::event::ObjectRef::new(&self.kind, self.namespace.as_deref().unwrap_or_default(), &self.name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DriftExpect {
    /// The engine must put Git's value back (self-heal).
    #[default]
    Healed,
    /// The engine must leave the live value alone: expected drift (an ignore rule, HPA
    /// replicas) or self-heal switched off. drill asks for a reconcile and checks.
    Kept,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RollbackExpect {
    #[default]
    Reapplied,
    Held,
}

/// One literal edit of a file in the fleet: `find` must occur exactly once.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Edit {
    /// Path inside the served fleet folder, e.g. apps/users-api/deployment.yaml.
    pub file: RelPath,
    pub find: String,
    pub replace: String,
}

/// A secret that lives outside Git, by its field under `secrets:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SecretName {
    SopsAge,
    SealedSecrets,
    /// `repo.credentials`.
    RepoCredentials,
}

impl SecretName {
    pub fn field(self) -> &'static str {
        match self {
            SecretName::SopsAge => "sops-age",
            SecretName::SealedSecrets => "sealed-secrets",
            SecretName::RepoCredentials => "repo-credentials",
        }
    }

    /// Where the scenario configures it, for messages.
    pub fn config_path(self) -> &'static str {
        match self {
            SecretName::SopsAge => "secrets.sops-age",
            SecretName::SealedSecrets => "secrets.sealed-secrets",
            SecretName::RepoCredentials => "repo.credentials",
        }
    }
}

/// What the operator does right after the damage, so runs can compare
/// "wait for the engine's interval" with "operator triggers a reconcile".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OperatorAction {
    /// Ask the engine to reconcile everything now: every Flux source, Kustomization and
    /// HelmRelease gets a reconcile request; every Argo CD Application a refresh. The
    /// step's recovery counts only once the engine handled each request (Flux:
    /// lastHandledReconcileAt; Argo CD: reconciledAt) and the object is Ready.
    ReconcileNow,
}

/// Which engine a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EngineKind {
    Flux,
    Argocd,
}

impl EngineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Flux => "flux",
            EngineKind::Argocd => "argocd",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SyncPolicy {
    #[serde(default = "yes")]
    pub automated: bool,
    #[serde(default = "yes")]
    pub self_heal: bool,
    #[serde(default = "yes")]
    pub prune: bool,
}

impl Default for SyncPolicy {
    fn default() -> Self {
        SyncPolicy {
            automated: true,
            self_heal: true,
            prune: true,
        }
    }
}

fn yes() -> bool {
    true
}

/// HTTP basic-auth repo credentials (a token as the password works for GitHub and
/// GitLab), restored in `secret-bootstrap`: Flux's GitRepository `secretRef`, Argo CD's
/// repository secret. They come from the environment, never from the scenario file.
/// With `path:`, drill's own Git server demands them too, so the restore is rehearsed
/// for real: a rebuild without them cannot fetch.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Credentials {
    /// The environment variable holding the username.
    pub username_env: String,
    /// The environment variable holding the password or token.
    pub password_env: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_humantime_and_respect_the_range() {
        assert_eq!(Duration::parse("90s").map(|d| d.as_millis()), Ok(90_000));
        assert_eq!(Duration::parse("1h 30m").map(|d| d.as_millis()), Ok(5_400_000));
        assert!(Duration::parse("0s").unwrap_err().contains("out of range"));
        assert!(Duration::parse("25h").unwrap_err().contains("out of range"));
        assert!(Duration::parse("soon").unwrap_err().contains("invalid duration"));
    }

    #[test]
    fn labels_follow_dns_1123() {
        assert!(Label::parse("users-api").is_ok());
        for bad in ["", "Users", "-a", "a-", "a_b", &"x".repeat(64)] {
            assert!(Label::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn percentages_need_their_sign_and_a_sane_range() {
        assert_eq!(Percent::parse("25%"), Ok(Percent(25)));
        assert!(Percent::parse("25").unwrap_err().contains("percentage such as"));
        assert!(Percent::parse("0%").is_err());
        assert!(Percent::parse("2.5%").is_err());
        assert_eq!(Percent(25).to_string(), "25%");
    }

    #[test]
    fn relative_paths_reject_escapes() {
        assert_eq!(
            RelPath::parse("clusters/demo/").map(|p| p.0),
            Ok("clusters/demo".into())
        );
        assert!(RelPath::parse("/etc").is_err());
        assert!(RelPath::parse("a/../../b").is_err());
        assert!(RelPath::parse(".git/config").unwrap_err().contains("inside .git"));
        assert!(RelPath::parse("apps/.git/hooks/pre-commit").is_err());
        assert!(RelPath::parse("apps/.github/x.yaml").is_ok());
    }
}
