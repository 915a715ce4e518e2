//! A self-managed Argo CD: the repo's install folder (`engine.argocd.install-path`) built
//! into the manifest drill installs, before any cluster is created. Its one remote base
//! drill knows, upstream's install.yaml at a version, comes from what drill already has:
//! the profile's install of that version, or the release cache.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use serde_json::Value;

use super::kustomize;
use crate::engine::release;
use crate::model::{EngineKind, ScenarioError};

/// The built install manifest, and where its parts came from (for the report).
#[derive(Debug)]
pub struct Built {
    pub manifest: PathBuf,
    pub origin: String,
}

/// Builds `folder` (shown as `shown`) into `out`. `release` is the scenario's
/// `version`/`sha256`: fetched into the cache first, so a remote base of that version
/// resolves offline afterwards.
pub async fn build_install(
    folder: &Path,
    shown: &str,
    profile_install: Option<&Path>,
    release: Option<(&str, Option<&str>)>,
    out: &Path,
) -> Result<Built> {
    if let Some((version, sha256)) = release {
        release::install_manifest(EngineKind::Argocd, version, sha256).await?;
    }
    let cache_root = release::cache_root()?;
    let resolve = |url: &str| resolve_remote(url, profile_install, &cache_root);
    let built = kustomize::build(folder, &resolve).map_err(|e| anyhow!(ScenarioError::in_file(&e.file, e.message)))?;
    let installs_argocd = built.objects.iter().any(|o| {
        o.pointer("/kind").and_then(Value::as_str) == Some("StatefulSet")
            && o.pointer("/metadata/name").and_then(Value::as_str) == Some("argocd-application-controller")
    });
    if !installs_argocd {
        return Err(anyhow!(ScenarioError::in_file(
            folder,
            "engine.argocd.install-path: the build has no StatefulSet argocd-application-controller: it does not install Argo CD"
        )));
    }
    std::fs::create_dir_all(out.parent().unwrap_or(Path::new(".")))
        .with_context(|| format!("failed to create the folder of {}", out.display()))?;
    std::fs::write(out, manifest_text(&built.objects)).with_context(|| format!("failed to write {}", out.display()))?;
    let mut origin = format!("the repo's {shown} ({} objects, built by drill", built.objects.len());
    for (url, path) in &built.remote {
        origin.push_str(&format!("; {url} from {}", path.display()));
    }
    origin.push(')');
    Ok(Built {
        manifest: out.to_path_buf(),
        origin,
    })
}

/// The build as a file to read, not install (`drill images`): nothing downloaded, kept in
/// drill's cache under its content's hash. None when it cannot be built offline (the
/// run itself then says why).
pub fn built_for_listing(folder: &Path, profile_install: Option<&Path>) -> Option<PathBuf> {
    let cache_root = release::cache_root().ok()?;
    let resolve = |url: &str| resolve_remote(url, profile_install, &cache_root);
    let built = kustomize::build(folder, &resolve).ok()?;
    let text = manifest_text(&built.objects);
    let hash = release::sha256_hex(text.as_bytes());
    let path = cache_root
        .join("builds")
        .join(format!("argocd-install-{}.yaml", &hash[..16]));
    std::fs::create_dir_all(path.parent()?).ok()?;
    std::fs::write(&path, text).ok()?;
    Some(path)
}

/// Objects as one manifest: JSON documents are YAML, read as any manifest.
fn manifest_text(objects: &[Value]) -> String {
    objects.iter().map(Value::to_string).collect::<Vec<_>>().join("\n---\n")
}

/// A remote resource: one of upstream's install manifests at a version, from the
/// profile's install when it is that version and variant, else (install.yaml) from the
/// release cache. drill downloads none here.
fn resolve_remote(url: &str, profile_install: Option<&Path>, cache_root: &Path) -> Result<PathBuf, String> {
    let Some((version, file)) = kustomize::upstream_install(url) else {
        return Err(
            "drill builds only upstream's install.yaml or core-install.yaml at a tag as a remote base \
                    (https://raw.githubusercontent.com/argoproj/argo-cd/<vX.Y.Z>/manifests/install.yaml): \
                    vendor this one into the repo"
                .into(),
        );
    };
    let full = kustomize::UPSTREAM_INSTALLS.iter().any(|(f, api)| *f == file && *api);
    if let Some(path) = profile_install.filter(|p| install_variant(p) == Some((version.clone(), full))) {
        return Ok(path.to_path_buf());
    }
    let cached = release::cache_path(cache_root, EngineKind::Argocd, &version);
    if full && cached.is_file() {
        return Ok(cached);
    }
    Err(format!(
        "Argo CD {version} {file} is neither the profile's install nor in drill's release cache ({}): \
         set engine.argocd.version: {version} (with its sha256) to fetch install.yaml once, or vendor the file",
        cached.display()
    ))
}

/// The Argo CD version an install manifest runs (its argocd image's tag), and whether it
/// is a full install (with the API server) rather than a core one.
fn install_variant(manifest: &Path) -> Option<(String, bool)> {
    let text = std::fs::read_to_string(manifest).ok()?;
    let at = text.find("quay.io/argoproj/argocd:")? + "quay.io/argoproj/argocd:".len();
    let tag: String = text[at..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"' && *c != '\'')
        .collect();
    let full = text.contains("\n  name: argocd-server\n");
    (!tag.is_empty()).then_some((tag, full))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remote_base_comes_from_the_profile_of_its_version_else_the_cache_else_a_named_error() {
        let dir = tempfile::tempdir().unwrap();
        let profile = dir.path().join("install.yaml");
        // A core install (no API server), as the test bed's profile holds.
        std::fs::write(&profile, "image: quay.io/argoproj/argocd:v3.2.11\n").unwrap();
        let url = |v: &str, f: &str| format!("https://raw.githubusercontent.com/argoproj/argo-cd/{v}/manifests/{f}");
        let core = url("v3.2.11", "core-install.yaml");
        assert_eq!(resolve_remote(&core, Some(&profile), dir.path()), Ok(profile.clone()));
        let err = resolve_remote(&url("v3.2.11", "install.yaml"), Some(&profile), dir.path()).unwrap_err();
        assert!(
            err.contains("set engine.argocd.version: v3.2.11"),
            "not the core one: {err}"
        );
        let cached = release::cache_path(dir.path(), EngineKind::Argocd, "v3.1.0");
        std::fs::create_dir_all(cached.parent().unwrap()).unwrap();
        std::fs::write(&cached, "kind: List\n").unwrap();
        assert_eq!(
            resolve_remote(&url("v3.1.0", "install.yaml"), Some(&profile), dir.path()),
            Ok(cached)
        );
        let err = resolve_remote("https://example.com/base.yaml", None, dir.path()).unwrap_err();
        assert!(err.contains("vendor this one"), "{err}");
    }
}
