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
}

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
        if let Some(path) = &file {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("failed to read profile {}", path.display()))?;
            values = parse(&text).with_context(|| format!("invalid profile {}", path.display()))?;
        }
        for key in [
            "DRILL_NODE_IMAGE",
            "DRILL_FLUX_INSTALL",
            "DRILL_FLUX_VERSION",
            "DRILL_ARGOCD_INSTALL",
            "DRILL_KUBEADM_DNS_TAG",
            "DRILL_REGISTRY_MIRROR",
            "DRILL_MIRROR_IMAGE",
        ] {
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
        })
    }
}

fn parse(text: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .with_context(|| format!("line {}: expected KEY=value", n + 1))?;
        out.insert(k.trim().to_string(), v.trim().trim_matches('"').to_string());
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
        assert_eq!(parsed["DRILL_NODE_IMAGE"], "gitops-drill/kind-node:v1.34.4");
        assert_eq!(parsed["DRILL_FLUX_INSTALL"], "/c/install.yaml");
        assert!(parse("no equals sign").unwrap_err().to_string().contains("line 1"));
    }
}
