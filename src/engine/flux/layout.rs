//! A fleet made by `flux bootstrap`: beside the bootstrap path's manifests sits
//! `flux-system/` with `gotk-components.yaml` (Flux's install, pinned to the version the
//! team runs) and `gotk-sync.yaml` (the root GitRepository and Kustomization, both
//! `flux-system/flux-system`, the GitRepository on the team's Git host). A rebuild
//! from Git installs the first and applies the second.
//!
//! The root Kustomization applies `flux-system/` itself, so Flux keeps re-applying
//! gotk-sync.yaml from Git: to sync from drill's served copy, the copy's gotk-sync.yaml
//! must say so. [`redirect`] writes that file; the runner commits it to the served copy
//! and the engine applies the same text.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

pub const FOLDER: &str = "flux-system";
pub const COMPONENTS: &str = "gotk-components.yaml";
pub const SYNC: &str = "gotk-sync.yaml";

/// The `flux-system/` folder of a bootstrap path, read and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapLayout {
    /// gotk-components.yaml in the checkout: the install manifest.
    pub components: PathBuf,
    /// gotk-sync.yaml in the checkout.
    pub sync: PathBuf,
    /// gotk-sync.yaml's path inside the served repository (what a redirect commits).
    pub sync_in_repo: String,
    /// The GitRepository's `spec.url` as Git holds it.
    pub source_url: String,
    /// Its `spec.ref.branch` (None: Flux's default, `master`).
    pub source_branch: Option<String>,
    /// Its `spec.secretRef.name`.
    pub source_secret: Option<String>,
}

/// A `flux-system/` folder drill cannot rebuild from; names the file and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", file.display())]
pub struct LayoutError {
    pub file: PathBuf,
    pub message: String,
}

fn fail<T>(file: &Path, message: impl Into<String>) -> Result<T, LayoutError> {
    Err(LayoutError {
        file: file.to_path_buf(),
        message: message.into(),
    })
}

/// Reads `<fleet>/<entry>/flux-system/`: None when it holds neither file (a fleet drill
/// bootstraps itself), the layout when it holds both and they hang together.
pub fn detect(fleet: &Path, entry: &str) -> Result<Option<BootstrapLayout>, LayoutError> {
    let entry = normalize(entry).unwrap_or_default();
    let folder = fleet.join(&entry).join(FOLDER);
    let (components, sync) = (folder.join(COMPONENTS), folder.join(SYNC));
    match (components.is_file(), sync.is_file()) {
        (false, false) => return Ok(None),
        (true, false) => {
            return fail(
                &components,
                format!(
                    "a partial flux-system folder: {SYNC} (the root GitRepository and Kustomization) is missing beside it"
                ),
            );
        }
        (false, true) => {
            return fail(
                &sync,
                format!("a partial flux-system folder: {COMPONENTS} (Flux's install) is missing beside it"),
            );
        }
        (true, true) => {}
    }
    let text = std::fs::read_to_string(&sync).or_else(|e| fail(&sync, format!("cannot read it: {e}")))?;
    let docs = parse(&sync, &text)?;
    let source = check_sync(&sync, &docs, &entry)?;
    check_components(&components)?;
    let field = |pointer: &str| source.pointer(pointer).and_then(Value::as_str).map(str::to_string);
    Ok(Some(BootstrapLayout {
        sync_in_repo: format!("{}/{FOLDER}/{SYNC}", entry.trim_end_matches('/'))
            .trim_start_matches('/')
            .to_string(),
        source_url: field("/spec/url").unwrap_or_default(),
        source_branch: field("/spec/ref/branch"),
        source_secret: field("/spec/secretRef/name"),
        components,
        sync,
    }))
}

impl BootstrapLayout {
    /// gotk-components.yaml's path inside the served repository, for messages.
    pub fn components_in_repo(&self) -> String {
        self.sync_in_repo.replace(SYNC, COMPONENTS)
    }
}

fn parse(file: &Path, text: &str) -> Result<Vec<Value>, LayoutError> {
    super::super::apply::parse_manifest(text).or_else(|e| fail(file, format!("{e}")))
}

/// `./clusters/demo/` → `clusters/demo`; None for a path that leaves the repository.
fn normalize(path: &str) -> Option<String> {
    if path.starts_with('/') {
        return None;
    }
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    (!parts.contains(&"..")).then(|| parts.join("/"))
}

fn root_doc<'a>(docs: &'a [Value], kind: &str) -> Option<&'a Value> {
    docs.iter().find(|d| {
        d["kind"] == kind
            && d.pointer("/metadata/name").and_then(Value::as_str) == Some(super::ROOT_NAME)
            && d.pointer("/metadata/namespace").and_then(Value::as_str) == Some(super::NAMESPACE)
    })
}

/// The checks of gotk-sync.yaml; returns the root GitRepository.
fn check_sync<'a>(file: &Path, docs: &'a [Value], entry: &str) -> Result<&'a Value, LayoutError> {
    let root = format!("{}/{}", super::NAMESPACE, super::ROOT_NAME);
    let Some(source) = root_doc(docs, "GitRepository") else {
        return fail(
            file,
            format!("no GitRepository {root} (the root source `flux bootstrap` writes)"),
        );
    };
    if source.pointer("/spec/url").and_then(Value::as_str).is_none() {
        return fail(file, format!("GitRepository {root}: spec.url is missing"));
    };
    let Some(kustomization) = root_doc(docs, "Kustomization") else {
        return fail(
            file,
            format!("no Kustomization {root} (the root sync `flux bootstrap` writes)"),
        );
    };
    let source_ref = kustomization.pointer("/spec/sourceRef");
    let names_root = source_ref.is_some_and(|r| {
        r["kind"] == "GitRepository"
            && r["name"] == super::ROOT_NAME
            && r.get("namespace").is_none_or(|n| n == super::NAMESPACE)
    });
    if !names_root {
        return fail(
            file,
            format!(
                "Kustomization {root}: spec.sourceRef must name GitRepository {root} (it names {})",
                source_ref.map_or("nothing".into(), Value::to_string)
            ),
        );
    }
    let path = kustomization
        .pointer("/spec/path")
        .and_then(Value::as_str)
        .unwrap_or("./");
    match normalize(path) {
        None => fail(
            file,
            format!("Kustomization {root}: spec.path {path:?} points outside the repository"),
        ),
        Some(p) if p != entry => fail(
            file,
            format!(
                "Kustomization {root}: spec.path {path:?} is not the scenario's engine.flux.path {entry:?} (the folder holding flux-system/)"
            ),
        ),
        Some(_) => Ok(source),
    }
}

/// gotk-components.yaml must install Flux: its controllers' Deployments in flux-system.
/// A plain text scan, as the file is many thousand lines.
fn check_components(file: &Path) -> Result<(), LayoutError> {
    let text = std::fs::read_to_string(file).or_else(|e| fail(file, format!("cannot read it: {e}")))?;
    let has = |needle: &str| text.lines().any(|l| l.trim() == needle);
    if !(has("kind: Deployment") && has("name: source-controller") && has("name: kustomize-controller")) {
        return fail(
            file,
            "holds no Flux install (no source-controller and kustomize-controller Deployments): `flux install --export` writes it",
        );
    }
    Ok(())
}

/// gotk-sync.yaml as the served copy holds it: the GitRepository on `url` at `branch`,
/// with the repo credentials' Secret when there are any (`secret`), else none. Everything
/// else is kept; the original URL is named in a comment.
pub fn redirect(layout: &BootstrapLayout, url: &str, branch: &str, secret: Option<&str>) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(&layout.sync)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", layout.sync.display()))?;
    let mut docs = parse(&layout.sync, &text)?;
    for doc in &mut docs {
        let is_root = doc["kind"] == "GitRepository"
            && doc.pointer("/metadata/name").and_then(Value::as_str) == Some(super::ROOT_NAME);
        if let (true, Some(spec)) = (is_root, doc.get_mut("spec").and_then(Value::as_object_mut)) {
            spec.insert("url".into(), json!(url));
            spec.insert("ref".into(), json!({"branch": branch}));
            match secret {
                Some(name) => spec.insert("secretRef".into(), json!({"name": name})),
                None => spec.remove("secretRef"),
            };
        }
    }
    let yaml = serde_saphyr::to_string_multiple(&docs)?;
    Ok(format!(
        "# Rewritten by gitops-drill in its served copy: the source was {}\n---\n{yaml}",
        layout.source_url
    ))
}

/// The objects of gotk-sync.yaml as Git holds it (the kept-URL case).
pub fn sync_objects(layout: &BootstrapLayout) -> anyhow::Result<Vec<Value>> {
    let text = std::fs::read_to_string(&layout.sync)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", layout.sync.display()))?;
    Ok(parse(&layout.sync, &text)?)
}

#[cfg(test)]
mod tests;
