//! Repo credentials (`repo.credentials`): read from the environment at preflight, handed
//! to the engine's secret and to drill's Git server, and never printed: `Debug` hides the
//! password and errors name only the variables.

use std::fmt;

use anyhow::{Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::model::Credentials;

#[derive(Clone, PartialEq, Eq)]
pub struct RepoAuth {
    pub username: String,
    pub password: String,
    /// Where they came from, for messages: `$USER_VAR / $PASSWORD_VAR`.
    pub origin: String,
}

impl fmt::Debug for RepoAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RepoAuth")
            .field("origin", &self.origin)
            .field("password", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// The origin of the credential drill makes for each run it serves.
const PER_RUN: &str = "a per-run credential";

impl RepoAuth {
    /// A credential for one run's served repo: user `drill`, 32 random hex characters
    /// (16 bytes of the kernel's randomness). Without it any local user, container or pod
    /// of this Docker daemon that reaches the kind network's gateway could clone the fleet.
    pub fn per_run() -> Result<RepoAuth> {
        use std::io::Read as _;
        let mut bytes = [0u8; 16];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .map_err(|e| anyhow::anyhow!("cannot read /dev/urandom for the Git server's per-run credential: {e}"))?;
        Ok(RepoAuth {
            username: "drill".into(),
            password: bytes.iter().map(|b| format!("{b:02x}")).collect(),
            origin: PER_RUN.into(),
        })
    }

    /// Whether drill made it for this run (not read from `repo.credentials`).
    pub fn is_per_run(&self) -> bool {
        self.origin == PER_RUN
    }

    /// Reads both variables; a missing or empty one is an error that names it.
    pub fn from_env(credentials: &Credentials) -> Result<RepoAuth> {
        let read = |var: &str, what: &str| -> Result<String> {
            match std::env::var(var) {
                Ok(v) if !v.is_empty() => Ok(v),
                Ok(_) => bail!("repo.credentials: ${var} (the {what}) is empty"),
                Err(_) => bail!("repo.credentials: ${var} (the {what}) is not set"),
            }
        };
        let username = read(&credentials.username_env, "username")?;
        let password = read(&credentials.password_env, "password or token")?;
        if username.contains(':') {
            bail!(
                "repo.credentials: ${} holds a ':', which HTTP basic auth cannot carry in a username",
                credentials.username_env
            );
        }
        Ok(RepoAuth {
            username,
            password,
            origin: format!("${} / ${}", credentials.username_env, credentials.password_env),
        })
    }

    /// The `Authorization` header value a Git client sends.
    pub fn basic_header(&self) -> String {
        format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", self.username, self.password))
        )
    }

    /// Whether an `Authorization` header carries these credentials.
    pub fn accepts(&self, header: Option<&str>) -> bool {
        let Some(encoded) = header.and_then(|h| h.strip_prefix("Basic ")) else {
            return false;
        };
        let Ok(decoded) = STANDARD.decode(encoded.trim()) else {
            return false;
        };
        let expected = format!("{}:{}", self.username, self.password);
        // Compare without an early exit, so timing does not reveal a matching prefix.
        decoded.len() == expected.len()
            && decoded
                .iter()
                .zip(expected.as_bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_per_run_credential_is_new_each_time_and_never_shown() {
        let (a, b) = (RepoAuth::per_run().unwrap(), RepoAuth::per_run().unwrap());
        assert_ne!(a.password, b.password);
        assert_eq!(a.password.len(), 32);
        assert!(a.password.bytes().all(|c| c.is_ascii_hexdigit()));
        assert!(a.is_per_run() && a.accepts(Some(&a.basic_header())) && !a.accepts(Some(&b.basic_header())));
        assert!(!format!("{a:?}").contains(&a.password));
    }

    fn auth() -> RepoAuth {
        RepoAuth {
            username: "drill".into(),
            password: "s3cret-token".into(),
            origin: "$U / $P".into(),
        }
    }

    #[test]
    fn only_the_exact_credentials_are_accepted() {
        let a = auth();
        assert!(a.accepts(Some(&a.basic_header())));
        assert!(!a.accepts(None));
        assert!(!a.accepts(Some("Bearer s3cret-token")));
        let wrong = RepoAuth {
            password: "s3cret-tokeN".into(),
            ..auth()
        };
        assert!(!a.accepts(Some(&wrong.basic_header())));
        let prefix = RepoAuth {
            password: "s3cret".into(),
            ..auth()
        };
        assert!(!a.accepts(Some(&prefix.basic_header())));
        assert!(!a.accepts(Some("Basic not-base64!")));
    }

    #[test]
    fn debug_never_shows_the_password() {
        let shown = format!("{:?}", auth());
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("$U / $P"));
    }

    #[test]
    fn a_missing_or_empty_variable_is_named() {
        let creds = Credentials {
            username_env: "DRILL_TEST_REPO_USER_UNSET_9F2".into(),
            password_env: "DRILL_TEST_REPO_PASS_UNSET_9F2".into(),
        };
        let err = RepoAuth::from_env(&creds).unwrap_err().to_string();
        assert!(err.contains("$DRILL_TEST_REPO_USER_UNSET_9F2"), "{err}");
        assert!(err.contains("not set"), "{err}");
    }
}
