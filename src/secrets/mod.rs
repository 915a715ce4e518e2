//! Secrets that live outside Git: where their keys come from, a preflight that proves
//! they can be produced before any cluster exists, and the Secret objects drill restores
//! in the `secret-bootstrap` phase. Key material is read into memory only to build those
//! objects and is never printed: errors name the file or variable, never the content.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use bech32::{Bech32, Hrp};
use serde_json::{Value, json};

use crate::repo_ssh::{SshIdentity, read_source};
use crate::scenario::{KeySource, Plan, RepoSource, SealedSecretsKey, SecretName, SopsAge, SshKey};

pub mod sealed;

pub use crate::repo_auth::RepoAuth;

/// One Secret drill restores, and the key's public half for the report.
pub struct Restored {
    /// Which of the scenario's `secrets:` it comes from.
    pub source: SecretName,
    pub manifest: Value,
    pub description: String,
}

/// What the preflight found: the Secrets to restore, and risks that are not errors.
#[derive(Default)]
pub struct Preflight {
    pub restored: Vec<Restored>,
    /// `repo.credentials`: the engine's repo secret is built from them (its shape is
    /// the engine's), and drill's own Git server demands them.
    pub repo_auth: Option<RepoAuth>,
    /// `repo.ssh-key`: drill's `git ls-remote` of the ssh:// source uses it (its Secret is
    /// among `restored`).
    pub repo_ssh: Option<SshIdentity>,
    pub warnings: Vec<String>,
}

/// Checks every secret the scenario names and builds what secret-bootstrap applies.
pub fn preflight(plan: &Plan) -> Result<Preflight> {
    let fleet = match &plan.repo {
        RepoSource::Local { dir, .. } => Some(dir.as_path()),
        _ => None,
    };
    let secrets = plan.scenario.secrets.clone().unwrap_or_default();
    let base = plan.file.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut restored = Vec::new();
    let mut warnings = Vec::new();
    if let Some(sops) = &secrets.sops_age {
        restored.push(sops_key(sops, plan, &base)?);
    }
    match (&secrets.sealed_secrets, fleet) {
        (Some(ss), _) => restored.extend(sealed_secrets_key(ss, fleet, &base)?),
        (None, Some(dir)) => warnings.extend(sealed_secrets_without_key(plan, dir)),
        (None, None) => {}
    }
    let repo_ssh = match (&plan.repo, plan.repo.ssh_key()) {
        (RepoSource::Remote { url, .. }, Some(key)) => {
            let id = ssh_identity(key, url, &base).context("engine.flux.repo.ssh-key")?;
            restored.push(Restored {
                source: SecretName::RepoCredentials,
                manifest: id.flux_secret(crate::engine::flux::REPO_SECRET, "flux-system"),
                description: format!(
                    "flux-system/{} (ssh deploy key for {url}, from {})",
                    crate::engine::flux::REPO_SECRET,
                    id.origin
                ),
            });
            Some(id)
        }
        _ => None,
    };
    // drill's own Git server always asks a credential: the one the scenario names, else
    // one made for this run.
    let repo_auth = match plan.repo.credentials() {
        Some(credentials) => Some(RepoAuth::from_env(credentials)?),
        None if plan.serves_repo() => Some(RepoAuth::per_run()?),
        None => None,
    };
    Ok(Preflight {
        restored,
        repo_auth,
        repo_ssh,
        warnings,
    })
}

/// The deploy key and known_hosts, checked for shape and for `url`'s host; the host
/// itself is asked later, by `git ls-remote`, before any cluster exists.
fn ssh_identity(key: &SshKey, url: &str, base: &Path) -> Result<SshIdentity> {
    let (text, origin) = read_source(key.key_file.as_deref(), key.key_env.as_deref(), base, "ssh deploy key")?;
    let (hosts, hosts_origin) = read_source(
        key.known_hosts_file.as_deref(),
        key.known_hosts_env.as_deref(),
        base,
        "known_hosts",
    )?;
    SshIdentity::new(text, origin, hosts, &hosts_origin, url)
}

/// The SOPS age key, checked against every SOPS file of a local fleet.
fn sops_key(sops: &SopsAge, plan: &Plan, base: &Path) -> Result<Restored> {
    let (text, origin) = read_key(&sops.key, base).context("secrets.sops-age")?;
    let recipient = age_recipient(&text)
        .with_context(|| format!("secrets.sops-age: {origin} holds no valid age identity (AGE-SECRET-KEY-1...)"))?;
    if let RepoSource::Local { dir, .. } = &plan.repo {
        for (file, recipients) in sops_files(dir)? {
            if !recipients.contains(&recipient) {
                bail!(
                    "secrets.sops-age: the key in {origin} (recipient {recipient}) cannot decrypt {}: it is encrypted for {}",
                    file.strip_prefix(dir).unwrap_or(&file).display(),
                    recipients.join(", ")
                );
            }
        }
    }
    Ok(Restored {
        source: SecretName::SopsAge,
        manifest: json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": sops.secret, "namespace": "flux-system"},
            "type": "Opaque",
            "stringData": {"age.agekey": text}
        }),
        description: format!("flux-system/{} (age recipient {recipient}, from {origin})", sops.secret),
    })
}

/// The sealed-secrets key backup, checked against the certificate the fleet was sealed with.
fn sealed_secrets_key(ss: &SealedSecretsKey, fleet: Option<&Path>, base: &Path) -> Result<Vec<Restored>> {
    let (text, origin) = read_key(&ss.key, base).context("secrets.sealed-secrets")?;
    let backup = sealed::parse_backup(&text, &ss.namespace, &origin).context("secrets.sealed-secrets")?;
    if let (Some(cert), Some(dir)) = (&ss.cert, fleet) {
        let path = dir.join(cert);
        let pem = std::fs::read_to_string(&path)
            .with_context(|| format!("secrets.sealed-secrets: cannot read the certificate {}", path.display()))?;
        let sealed_with = sealed::certificates_der(&pem);
        if sealed_with.is_empty() {
            bail!("secrets.sealed-secrets: {} holds no PEM certificate", path.display());
        }
        if !sealed_with.iter().any(|c| backup.certificates.contains(c)) {
            bail!(
                "secrets.sealed-secrets: the key backup in {origin} does not hold the key of {cert}, the certificate \
                 the fleet's SealedSecrets were sealed with: restored, it would unseal none of them"
            );
        }
    }
    Ok(backup
        .secrets
        .into_iter()
        .map(|manifest| {
            let name = manifest
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let description = format!("{}/{name} (sealed-secrets key, from {origin})", ss.namespace);
            Restored {
                source: SecretName::SealedSecrets,
                manifest,
                description,
            }
        })
        .collect())
}

/// A warning when the deployed fleet has SealedSecrets but no key is restored.
fn sealed_secrets_without_key(plan: &Plan, dir: &Path) -> Option<String> {
    let entry = plan.entry_path().unwrap_or_default();
    let reached: Vec<PathBuf> = crate::fleet::reachable_files(dir, &entry)
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    let deployed = sealed::sealed_secret_files(dir)
        .into_iter()
        .filter(|f| reached.contains(f))
        .collect::<Vec<_>>();
    deployed.first().map(|first| {
        format!(
            "the fleet has SealedSecrets ({}) but the scenario restores no sealed-secrets key \
             (secrets.sealed-secrets): on a new cluster the controller makes a new key and cannot unseal them",
            first.strip_prefix(dir).unwrap_or(first).display()
        )
    })
}

/// Reads a key from its file or environment variable; the second value says which.
fn read_key(source: &KeySource, base: &Path) -> Result<(String, String)> {
    match source {
        KeySource::KeyFile(path) => {
            let path = base.join(path);
            let origin = format!("key file {}", path.display());
            let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {origin}"))?;
            Ok((text, origin))
        }
        KeySource::KeyEnv(var) => {
            let origin = format!("environment variable {var}");
            match std::env::var(var) {
                Ok(text) if !text.trim().is_empty() => Ok((text, origin)),
                _ => bail!("{origin} is not set: export the key there before the run"),
            }
        }
    }
}

/// The age recipient (public key, `age1...`) of the first identity in an age key file.
pub fn age_recipient(key_text: &str) -> Option<String> {
    let line = key_text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("AGE-SECRET-KEY-1"))?;
    let (hrp, data) = bech32::decode(line).ok()?;
    if !hrp.as_str().eq_ignore_ascii_case("age-secret-key-") {
        return None;
    }
    let scalar: [u8; 32] = data.try_into().ok()?;
    let public = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(scalar));
    bech32::encode::<Bech32>(Hrp::parse("age").ok()?, public.as_bytes()).ok()
}

/// SOPS-encrypted files of the fleet with the age recipients each is encrypted for.
fn sops_files(dir: &Path) -> Result<Vec<(PathBuf, Vec<String>)>> {
    if !dir.is_dir() {
        bail!("cannot list {}: not a folder", dir.display());
    }
    let mut out = Vec::new();
    for (path, text) in crate::fleet::fleet_yaml_files(dir) {
        if !text.contains("\nsops:") {
            continue;
        }
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap_or_default();
        let recipients: Vec<String> = docs
            .iter()
            .filter_map(|d| d.pointer("/sops/age").and_then(Value::as_array))
            .flatten()
            .filter_map(|a| a.get("recipient").and_then(Value::as_str).map(str::to_string))
            .collect();
        if !recipients.is_empty() {
            out.push((path, recipients));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEMO_KEY: &str = include_str!("../../examples/keys/demo.agekey");

    #[test]
    fn the_recipient_is_derived_from_the_identity_not_read_from_a_comment() {
        let recipient = age_recipient(DEMO_KEY).unwrap();
        assert!(recipient.starts_with("age1"), "{recipient}");
        // age-keygen writes the same recipient as a comment: the derivation agrees with it.
        assert!(DEMO_KEY.contains(&format!("# public key: {recipient}")));
        let only_identity: String = DEMO_KEY.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(age_recipient(&only_identity).as_deref(), Some(recipient.as_str()));
        assert_eq!(age_recipient("not a key"), None);
    }

    #[test]
    fn the_fleets_encrypted_files_name_their_recipients() {
        let fleet = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fleet");
        let files = sops_files(&fleet).unwrap();
        assert_eq!(files.len(), 1, "{files:?}");
        assert!(files[0].0.ends_with("apps/users-secrets/db-credentials.yaml"));
        assert_eq!(files[0].1, [age_recipient(DEMO_KEY).unwrap()]);
    }
}
