//! The Bitnami sealed-secrets controller's key: read from its backup, checked against the
//! certificate the fleet's SealedSecrets were sealed with, and rebuilt as the Secret the
//! controller looks for when it starts. Errors name Secrets and files, never key bytes.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use thiserror::Error;

/// The label by which the controller finds its keys at start.
pub const KEY_LABEL: &str = "sealedsecrets.bitnami.com/sealed-secrets-key";

#[derive(Debug, Error, PartialEq)]
pub enum BackupError {
    #[error("{0} is not YAML that kubectl could have written")]
    NotYaml(String),
    #[error("{origin}: expected Secrets (or a List of them) as `kubectl get secret -o yaml` prints, found {found}")]
    NotSecrets { origin: String, found: String },
    #[error("{origin}: Secret {name} is not a sealed-secrets key ({problem})")]
    NotAKey {
        origin: String,
        name: String,
        problem: String,
    },
    #[error("{0} holds no sealed-secrets key")]
    Empty(String),
}

/// The keys of one backup: the Secrets to restore, and the certificates (DER) they hold.
#[derive(Debug)]
pub struct KeyBackup {
    pub secrets: Vec<Value>,
    pub certificates: Vec<Vec<u8>>,
}

/// Reads a backup (`origin` names where it came from, for errors). Each key is rebuilt
/// clean for `namespace`, labelled so the controller picks it up: a backup taken with
/// `kubectl get -o yaml` carries uids and resourceVersions that must not be applied.
pub fn parse_backup(text: &str, namespace: &str, origin: &str) -> Result<KeyBackup, BackupError> {
    // serde_saphyr's message may quote the offending text: it is key material, so left out.
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|_| BackupError::NotYaml(origin.into()))?;
    let mut secrets = Vec::new();
    let mut certificates = Vec::new();
    let items = docs
        .iter()
        .filter(|d| !d.is_null())
        .flat_map(|d| match d.get("kind").and_then(Value::as_str) {
            Some("List") => d.get("items").and_then(Value::as_array).cloned().unwrap_or_default(),
            _ => vec![d.clone()],
        });
    for item in items {
        let kind = item
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("an object without a kind");
        if kind != "Secret" {
            return Err(BackupError::NotSecrets {
                origin: origin.into(),
                found: kind.into(),
            });
        }
        let name = item
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let not_a_key = |problem: &str| BackupError::NotAKey {
            origin: origin.into(),
            name: name.clone(),
            problem: problem.into(),
        };
        if name.is_empty() {
            return Err(not_a_key("it has no metadata.name"));
        }
        if item.get("type").and_then(Value::as_str) != Some("kubernetes.io/tls") {
            return Err(not_a_key("its type is not kubernetes.io/tls"));
        }
        let field = |k: &str| item.pointer(&format!("/data/{k}")).and_then(Value::as_str);
        let (Some(crt), Some(key)) = (field("tls.crt"), field("tls.key")) else {
            return Err(not_a_key("data needs tls.crt and tls.key"));
        };
        let pem = STANDARD
            .decode(crt.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| not_a_key("tls.crt is not base64 of a PEM certificate"))?;
        let ders = certificates_der(&pem);
        if ders.is_empty() {
            return Err(not_a_key("tls.crt holds no PEM certificate"));
        }
        if STANDARD.decode(key.trim()).is_err() {
            return Err(not_a_key("tls.key is not base64"));
        }
        certificates.extend(ders);
        secrets.push(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace, "labels": {KEY_LABEL: "active"}},
            "type": "kubernetes.io/tls",
            "data": {"tls.crt": crt, "tls.key": key}
        }));
    }
    if secrets.is_empty() {
        return Err(BackupError::Empty(origin.into()));
    }
    Ok(KeyBackup { secrets, certificates })
}

/// The DER bytes of every CERTIFICATE block in a PEM text.
pub fn certificates_der(pem: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut body: Option<String> = None;
    for line in pem.lines().map(str::trim) {
        if line == "-----BEGIN CERTIFICATE-----" {
            body = Some(String::new());
        } else if line == "-----END CERTIFICATE-----" {
            if let Some(b) = body.take()
                && let Ok(der) = STANDARD.decode(b)
            {
                out.push(der);
            }
        } else if let Some(b) = body.as_mut() {
            b.push_str(line);
        }
    }
    out
}

/// The fleet's files that hold a SealedSecret.
pub fn sealed_secret_files(fleet: &Path) -> Vec<PathBuf> {
    crate::fleet::fleet_yaml_files(fleet)
        .into_iter()
        .filter(|(_, text)| text.lines().any(|l| l.trim() == "kind: SealedSecret"))
        .map(|(path, _)| path)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEMO_BACKUP: &str = include_str!("../../examples/keys/sealed-secrets-key.yaml");
    const OTHER_BACKUP: &str = include_str!("../../tests/fixtures/wrong-sealed-secrets-key.yaml");
    const FLEET_CERT: &str = include_str!("../../examples/fleet/sealed-secrets-cert.pem");

    #[test]
    fn a_kubectl_backup_is_rebuilt_clean_labelled_and_matches_the_fleets_certificate() {
        let b = parse_backup(DEMO_BACKUP, "kube-system", "key file k.yaml").unwrap();
        assert_eq!(b.secrets.len(), 1);
        let s = &b.secrets[0];
        assert_eq!(s["metadata"]["namespace"], "kube-system");
        assert_eq!(s["metadata"]["labels"][KEY_LABEL], "active");
        assert_eq!(s["type"], "kubernetes.io/tls");
        assert!(s["metadata"].get("uid").is_none());
        let fleet = certificates_der(FLEET_CERT);
        assert_eq!(fleet.len(), 1);
        assert!(b.certificates.contains(&fleet[0]));

        let other = parse_backup(OTHER_BACKUP, "kube-system", "other").unwrap();
        assert!(!other.certificates.contains(&fleet[0]));
    }

    #[test]
    fn what_is_not_a_key_backup_is_named_without_echoing_its_content() {
        let opaque =
            "apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\ntype: Opaque\ndata: {password: c2VjcmV0}\n";
        let err = parse_backup(opaque, "kube-system", "key file k.yaml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "key file k.yaml: Secret creds is not a sealed-secrets key (its type is not kubernetes.io/tls)"
        );
        assert!(!err.to_string().contains("c2VjcmV0"));

        let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n";
        assert!(
            parse_backup(cm, "kube-system", "f")
                .unwrap_err()
                .to_string()
                .contains("found ConfigMap")
        );
        let garbage = "tls.key: [unclosed SECRETBYTES";
        let err = parse_backup(garbage, "kube-system", "f").unwrap_err().to_string();
        assert!(!err.contains("SECRETBYTES"), "{err}");
        assert_eq!(
            parse_backup("", "kube-system", "f").unwrap_err(),
            BackupError::Empty("f".into())
        );
    }

    #[test]
    fn the_fleets_sealed_secrets_are_found() {
        let fleet = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fleet");
        let files = sealed_secret_files(&fleet);
        assert_eq!(files.len(), 1, "{files:?}");
        assert!(files[0].ends_with("apps/users-sealed/users-db-password.yaml"));
    }
}
