//! An ssh deploy key (`repo.ssh-key`): read at preflight and checked for shape (a private
//! key without a passphrase, known_hosts lines for the URL's host), restored as Flux's
//! source Secret, and handed to `git ls-remote` as files in a private folder that lives
//! only as long as that command. Never printed: `Debug` and errors name the file or the
//! variable, never the key.

use std::fmt;
use std::path::Path;

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

#[derive(Clone, PartialEq, Eq)]
pub struct SshIdentity {
    /// The private key, ending in a newline (OpenSSH refuses one without).
    pub key: String,
    pub known_hosts: String,
    /// Where the key came from, for messages: `key file keys/deploy`.
    pub origin: String,
}

impl fmt::Debug for SshIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SshIdentity")
            .field("origin", &self.origin)
            .field("key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Why a key or its known_hosts cannot be used; the message names where they came from.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SshKeyError {
    #[error("{0} holds no private key (-----BEGIN OPENSSH PRIVATE KEY----- or a PEM private key)")]
    NotAKey(String),
    #[error("{0} is protected by a passphrase: Flux and drill read deploy keys without one")]
    Passphrase(String),
    #[error("{origin} has no line for {host}, the host of {url} (`ssh-keyscan {scan}` prints them)")]
    HostUnknown {
        origin: String,
        host: String,
        url: String,
        scan: String,
    },
    #[error("{0} is not an ssh:// URL with a host")]
    NotSshUrl(String),
}

impl SshIdentity {
    /// Checks the key and that `known_hosts` can vouch for `url`'s host.
    pub fn new(key: String, key_origin: String, known_hosts: String, hosts_origin: &str, url: &str) -> Result<Self> {
        check_private_key(&key, &key_origin)?;
        let (host, port) = ssh_host(url)?;
        let pattern = match port {
            Some(port) if port != 22 => format!("[{host}]:{port}"),
            _ => host.clone(),
        };
        if !known_hosts_names(&known_hosts, &pattern) {
            let scan = match port {
                Some(port) if port != 22 => format!("-p {port} {host}"),
                _ => host,
            };
            return Err(SshKeyError::HostUnknown {
                origin: hosts_origin.to_string(),
                host: pattern,
                url: url.to_string(),
                scan,
            }
            .into());
        }
        let key = if key.ends_with('\n') { key } else { key + "\n" };
        Ok(SshIdentity {
            key,
            known_hosts,
            origin: key_origin,
        })
    }

    /// Flux's ssh source Secret: `identity` and `known_hosts`, as `flux bootstrap` makes it.
    pub fn flux_secret(&self, name: &str, namespace: &str) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace},
            "type": "Opaque",
            "stringData": {"identity": self.key, "known_hosts": self.known_hosts}
        })
    }

    /// Writes the key and known_hosts into a new private folder (removed when the returned
    /// guard drops) and returns the `GIT_SSH_COMMAND` that uses exactly them: no agent, no
    /// user config, no prompt, no host trusted on first use.
    pub fn git_ssh_command(&self) -> Result<(tempfile::TempDir, String)> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let dir = tempfile::Builder::new()
            .prefix("drill-ssh-")
            .tempdir()
            .context("cannot make a private folder for the ssh deploy key")?;
        let write = |name: &str, text: &str| -> Result<()> {
            use std::io::Write as _;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(dir.path().join(name))
                .and_then(|mut f| f.write_all(text.as_bytes()))
                .with_context(|| format!("cannot write the ssh {name} for git"))
        };
        write("identity", &self.key)?;
        write("known_hosts", &self.known_hosts)?;
        let path = |name: &str| shell_quote(&dir.path().join(name));
        let command = format!(
            "ssh -F /dev/null -i {} -o IdentitiesOnly=yes -o IdentityAgent=none -o UserKnownHostsFile={} \
             -o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=20",
            path("identity"),
            path("known_hosts")
        );
        Ok((dir, command))
    }
}

fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

/// A private key OpenSSH and Flux read without a passphrase.
fn check_private_key(key: &str, origin: &str) -> Result<(), SshKeyError> {
    const OPENSSH: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
    if let Some(start) = key.find(OPENSSH) {
        let body: String = key[start + OPENSSH.len()..]
            .lines()
            .take_while(|l| !l.starts_with("-----END"))
            .collect();
        let bytes = STANDARD
            .decode(body.trim())
            .map_err(|_| SshKeyError::NotAKey(origin.into()))?;
        // openssh-key-v1\0, then the cipher's name as a length-prefixed string.
        let rest = bytes
            .strip_prefix(b"openssh-key-v1\0")
            .ok_or_else(|| SshKeyError::NotAKey(origin.into()))?;
        let len = rest
            .get(..4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or_else(|| SshKeyError::NotAKey(origin.into()))?;
        return match rest.get(4..4 + len) {
            Some(b"none") => Ok(()),
            Some(_) => Err(SshKeyError::Passphrase(origin.into())),
            None => Err(SshKeyError::NotAKey(origin.into())),
        };
    }
    const PEM: [&str; 4] = [
        "-----BEGIN RSA PRIVATE KEY-----",
        "-----BEGIN EC PRIVATE KEY-----",
        "-----BEGIN DSA PRIVATE KEY-----",
        "-----BEGIN PRIVATE KEY-----",
    ];
    if !PEM.iter().any(|header| key.contains(header)) {
        return Err(SshKeyError::NotAKey(origin.into()));
    }
    if key.contains("ENCRYPTED") {
        return Err(SshKeyError::Passphrase(origin.into()));
    }
    Ok(())
}

/// The host and port of `ssh://[user@]host[:port]/path`.
pub fn ssh_host(url: &str) -> Result<(String, Option<u16>), SshKeyError> {
    let bad = || SshKeyError::NotSshUrl(url.to_string());
    let rest = url.strip_prefix("ssh://").ok_or_else(bad)?;
    let authority = rest.split('/').next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = match host_port.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']').ok_or_else(bad)?;
            (host, after.strip_prefix(':'))
        }
        None => match host_port.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        },
    };
    if host.is_empty() {
        return Err(bad());
    }
    let port = port.map(|p| p.parse::<u16>().map_err(|_| bad())).transpose()?;
    Ok((host.to_string(), port))
}

/// Whether a known_hosts text has a plain line for `pattern` (hashed lines, `|1|...`,
/// cannot be read without the host's name; one of them counts, and ssh decides).
fn known_hosts_names(text: &str, pattern: &str) -> bool {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next())
        .any(|hosts| hosts.starts_with("|1|") || hosts.split(',').any(|h| h == pattern))
}

/// Reads a key source relative to `base`: (text, where it came from).
pub fn read_source(file: Option<&str>, env: Option<&str>, base: &Path, what: &str) -> Result<(String, String)> {
    match (file, env) {
        (Some(path), _) => {
            let path = base.join(path);
            let origin = format!("{what} file {}", path.display());
            let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {origin}"))?;
            Ok((text, origin))
        }
        (None, Some(var)) => {
            let origin = format!("environment variable {var}");
            match std::env::var(var) {
                Ok(text) if !text.trim().is_empty() => Ok((text, origin)),
                _ => bail!("{origin} (the {what}) is not set: export it before the run"),
            }
        }
        (None, None) => bail!("no {what} given"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The start of an OpenSSH private key file with `cipher`: all the check reads.
    fn openssh_key(cipher: &str) -> String {
        let mut body = b"openssh-key-v1\0".to_vec();
        body.extend_from_slice(&(cipher.len() as u32).to_be_bytes());
        body.extend_from_slice(cipher.as_bytes());
        body.extend_from_slice(&[0; 16]);
        format!(
            "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
            STANDARD.encode(body)
        )
    }

    #[test]
    fn a_key_without_passphrase_passes_and_one_with_a_passphrase_is_named() {
        assert_eq!(check_private_key(&openssh_key("none"), "f"), Ok(()));
        assert_eq!(
            check_private_key(&openssh_key("aes256-ctr"), "key file k"),
            Err(SshKeyError::Passphrase("key file k".into()))
        );
        assert_eq!(
            check_private_key("ssh-ed25519 AAAA... a public key", "key file k"),
            Err(SshKeyError::NotAKey("key file k".into()))
        );
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----\n";
        assert_eq!(check_private_key(pem, "f"), Ok(()));
        let encrypted = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n-----END RSA PRIVATE KEY-----";
        assert!(matches!(
            check_private_key(encrypted, "f"),
            Err(SshKeyError::Passphrase(_))
        ));
    }

    #[test]
    fn the_host_of_an_ssh_url_with_user_port_and_ipv6() {
        assert_eq!(
            ssh_host("ssh://git@github.com/org/repo").unwrap(),
            ("github.com".into(), None)
        );
        assert_eq!(
            ssh_host("ssh://git@10.0.0.5:2222/srv/git/f.git").unwrap(),
            ("10.0.0.5".into(), Some(2222))
        );
        assert_eq!(ssh_host("ssh://[fd00::1]:22/x").unwrap(), ("fd00::1".into(), Some(22)));
        assert!(ssh_host("https://github.com/x").is_err());
        assert!(ssh_host("ssh://git@/x").is_err());
    }

    #[test]
    fn known_hosts_must_name_the_urls_host_with_its_port() {
        let key = openssh_key("none");
        let hosts = "# scanned\n172.18.0.9 ssh-ed25519 AAAAC3Nza\n[git.example]:2222 ssh-ed25519 AAAAC3Nzb\n";
        let ok = |url: &str| SshIdentity::new(key.clone(), "k".into(), hosts.into(), "h", url);
        assert!(ok("ssh://git@172.18.0.9/srv/git/f.git").is_ok());
        assert!(ok("ssh://git@git.example:2222/f.git").is_ok());
        let err = ok("ssh://git@git.example/f.git").unwrap_err().to_string();
        assert!(err.contains("has no line for git.example"), "{err}");
        assert!(err.contains("ssh-keyscan git.example"), "{err}");
        let hashed = "|1|abc=|def= ssh-ed25519 AAAA\n";
        assert!(SshIdentity::new(key.clone(), "k".into(), hashed.into(), "h", "ssh://git@x/y").is_ok());
    }

    #[test]
    fn the_key_never_shows_in_debug_and_the_secret_has_what_flux_reads() {
        let id = SshIdentity::new(
            openssh_key("none"),
            "k".into(),
            "x ssh-ed25519 A\n".into(),
            "h",
            "ssh://x/y",
        )
        .unwrap();
        assert!(!format!("{id:?}").contains("OPENSSH"));
        let secret = id.flux_secret("flux-system", "flux-system");
        assert_eq!(secret["stringData"]["identity"], id.key.as_str());
        assert_eq!(secret["stringData"]["known_hosts"], "x ssh-ed25519 A\n");
    }

    #[test]
    fn the_git_ssh_command_reads_private_files_that_go_with_the_guard() {
        let id = SshIdentity::new(
            openssh_key("none"),
            "k".into(),
            "x ssh-ed25519 A\n".into(),
            "h",
            "ssh://x/y",
        )
        .unwrap();
        let (dir, command) = id.git_ssh_command().unwrap();
        let identity = dir.path().join("identity");
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&identity).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(command.contains("StrictHostKeyChecking=yes") && command.contains("BatchMode=yes"));
        assert!(command.contains(&identity.display().to_string()));
        let path = dir.path().to_path_buf();
        drop(dir);
        assert!(!path.exists(), "the key is removed with its guard");
    }
}
