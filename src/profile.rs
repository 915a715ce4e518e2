//! Online vs offline, chosen outside the scenario: the same scenario file runs on a
//! laptop with internet (public kind node image, upstream Flux) and on an air-gapped
//! machine or the offline test bed (its node image, a local Flux install manifest, a
//! registry mirror). A profile is a `KEY=value` file named by `--profile` or
//! `DRILL_PROFILE`; each key can also be set (and overridden) in the environment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    /// Where the settings came from, for `drill doctor` and the report.
    pub source: Option<PathBuf>,
    /// DRILL_NODE_IMAGE: kind node image for every node.
    pub node_image: Option<String>,
    /// DRILL_FLUX_INSTALL: Flux install manifest (`flux install --export` output).
    pub flux_install: Option<PathBuf>,
    pub flux_version: Option<String>,
    /// DRILL_ARGOCD_INSTALL: Argo CD install manifest (upstream install.yaml or core-install.yaml).
    pub argocd_install: Option<PathBuf>,
    /// DRILL_KUBEADM_DNS_TAG: CoreDNS tag kubeadm must use (the node image preloads it).
    pub kubeadm_dns_tag: Option<String>,
    /// DRILL_REGISTRY_MIRROR: where nodes pull through (the node image configures it);
    /// `images: mirror` puts drill's pull-through cache in front of it.
    pub registry_mirror: Option<String>,
    /// DRILL_MIRROR_IMAGE: the registry image `images: mirror` runs as the cache.
    pub mirror_image: Option<String>,
    /// Lines of the file drill cannot use: a key without the DRILL_ prefix, or one a
    /// typo away from a key drill reads. Other DRILL_* keys are left alone: the test
    /// bed's profile also carries settings for its own scripts.
    pub warnings: Vec<String>,
}

/// The keys drill reads, from the file or the environment.
pub const KEYS: [&str; 7] = [
    "DRILL_NODE_IMAGE",
    "DRILL_FLUX_INSTALL",
    "DRILL_FLUX_VERSION",
    "DRILL_ARGOCD_INSTALL",
    "DRILL_KUBEADM_DNS_TAG",
    "DRILL_REGISTRY_MIRROR",
    "DRILL_MIRROR_IMAGE",
];

impl Profile {
    pub fn mode(&self) -> &'static str {
        if self.node_image.is_some() || self.flux_install.is_some() || self.argocd_install.is_some() {
            "offline (profile)"
        } else {
            "online"
        }
    }

    /// Reads the profile file (if any), then lets DRILL_* environment variables override it.
    pub fn load(file: Option<&Path>) -> Result<Profile> {
        let from_env = std::env::var_os("DRILL_PROFILE").map(PathBuf::from);
        let file = file.map(Path::to_path_buf).or(from_env);
        let mut values = BTreeMap::new();
        let mut warnings = Vec::new();
        if let Some(path) = &file {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("failed to read profile {}", path.display()))?;
            let lines = parse(&text).with_context(|| format!("invalid profile {}", path.display()))?;
            for (line, key, value) in lines {
                if let Some(why) = unusable_key(&key) {
                    warnings.push(format!("profile {} line {line}: {why}", path.display()));
                }
                values.insert(key, value);
            }
        }
        for key in KEYS {
            if let Ok(v) = std::env::var(key) {
                values.insert(key.to_string(), v);
            }
        }
        let get = |k: &str| values.get(k).filter(|v| !v.is_empty()).cloned();
        Ok(Profile {
            source: file,
            node_image: get("DRILL_NODE_IMAGE"),
            flux_install: get("DRILL_FLUX_INSTALL").map(PathBuf::from),
            flux_version: get("DRILL_FLUX_VERSION"),
            argocd_install: get("DRILL_ARGOCD_INSTALL").map(PathBuf::from),
            kubeadm_dns_tag: get("DRILL_KUBEADM_DNS_TAG"),
            registry_mirror: get("DRILL_REGISTRY_MIRROR"),
            mirror_image: get("DRILL_MIRROR_IMAGE"),
            warnings,
        })
    }
}

/// Why drill cannot use a profile key, if it cannot: not a DRILL_ key, or a typo of one.
fn unusable_key(key: &str) -> Option<String> {
    if KEYS.contains(&key) {
        return None;
    }
    let nearest = KEYS
        .iter()
        .map(|k| (strsim::levenshtein(k, key), *k))
        .min()
        .filter(|(distance, _)| *distance <= 2);
    match nearest {
        Some((_, known)) => Some(format!("unknown key {key}; did you mean {known}?")),
        None if !key.starts_with("DRILL_") => Some(format!(
            "{key} is not a drill setting (drill reads {})",
            KEYS.join(", ")
        )),
        None => None,
    }
}

/// (line number, key, value) of each setting.
fn parse(text: &str) -> Result<Vec<(usize, String, String)>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .with_context(|| format!("line {}: expected KEY=value", n + 1))?;
        out.push((n + 1, k.trim().to_string(), v.trim().trim_matches('"').to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_files_are_key_value_lines() {
        let parsed = parse(
            "# test bed\nDRILL_NODE_IMAGE=gitops-drill/kind-node:v1.34.4\nDRILL_FLUX_INSTALL=\"/c/install.yaml\"\n",
        )
        .unwrap();
        assert_eq!(
            parsed[0],
            (2, "DRILL_NODE_IMAGE".into(), "gitops-drill/kind-node:v1.34.4".into())
        );
        assert_eq!(parsed[1], (3, "DRILL_FLUX_INSTALL".into(), "/c/install.yaml".into()));
        assert!(parse("no equals sign").unwrap_err().to_string().contains("line 1"));
    }

    #[test]
    fn a_typo_or_a_foreign_key_is_named_and_the_test_beds_own_keys_are_not() {
        assert_eq!(
            unusable_key("DRILL_NODE_IMAGES").as_deref(),
            Some("unknown key DRILL_NODE_IMAGES; did you mean DRILL_NODE_IMAGE?")
        );
        assert!(unusable_key("NODE_IMAGE").unwrap().contains("not a drill setting"));
        for ok in [
            "DRILL_NODE_IMAGE",
            "DRILL_KIND",
            "DRILL_FLUX_IMAGES",
            "DRILL_ARGOCD_VERSION",
            "DRILL_SOPS",
        ] {
            assert_eq!(unusable_key(ok), None, "{ok}");
        }
    }

    #[test]
    fn loading_a_profile_with_a_typo_warns_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profile.env");
        std::fs::write(&path, "# mine\nDRILL_NODE_IMAGE=a\nDRILL_FLUX_INSTAL=/x.yaml\n").unwrap();
        let profile = Profile::load(Some(&path)).unwrap();
        assert_eq!(profile.warnings.len(), 1, "{:?}", profile.warnings);
        assert!(
            profile.warnings[0].ends_with("line 3: unknown key DRILL_FLUX_INSTAL; did you mean DRILL_FLUX_INSTALL?"),
            "{:?}",
            profile.warnings
        );
    }
}
