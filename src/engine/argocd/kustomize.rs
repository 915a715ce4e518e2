//! A subset of `kustomize build`, enough for a self-managed Argo CD install folder (a
//! kustomization that takes upstream's install.yaml, pins images and patches ConfigMaps
//! and Deployments), so no kustomize binary is needed. No crate does kustomize builds in
//! Rust; this is the part such folders use. What it does not do is an error naming the
//! file and field, never a silently different build:
//! - `resources`: files, folders with their own kustomization, and remote URLs, which
//!   drill never downloads here: the caller resolves them (e.g. from its release cache);
//! - `patches` (`path` or inline `patch`, optional `target` by group/version/kind/name/
//!   namespace, names matched exactly) and `patchesStrategicMerge`: strategic merge
//!   patches merge maps, delete keys set to null, merge lists of objects by `name`
//!   (`$patch: delete` removes one) and replace other lists; JSON 6902 patches (a list
//!   of operations) need a `target`;
//! - `images`: `newName`, `newTag`, `digest` for containers whose image has that name;
//! - `namespace`: only `argocd`, where drill installs Argo CD.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

/// Why a build failed, and in which file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", file.display())]
pub struct KustomizeError {
    pub file: PathBuf,
    pub message: String,
}

fn err(file: &Path, message: impl Into<String>) -> KustomizeError {
    KustomizeError {
        file: file.to_path_buf(),
        message: message.into(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Kustomization {
    #[serde(default)]
    #[allow(dead_code)]
    api_version: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    kind: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    patches: Vec<PatchSpec>,
    #[serde(default)]
    patches_strategic_merge: Vec<String>,
    #[serde(default)]
    images: Vec<ImageSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchSpec {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    patch: Option<String>,
    #[serde(default)]
    target: Option<Target>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Target {
    group: Option<String>,
    version: Option<String>,
    kind: Option<String>,
    name: Option<String>,
    namespace: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ImageSpec {
    name: String,
    new_name: Option<String>,
    new_tag: Option<String>,
    digest: Option<String>,
}

/// The objects of a build, and the remote resources it took and from where.
#[derive(Debug, Default)]
pub struct Built {
    pub objects: Vec<Value>,
    pub remote: Vec<(String, PathBuf)>,
}

/// Resolves a remote resource URL to a local file, or says why it cannot.
pub type Remote<'a> = &'a dyn Fn(&str) -> Result<PathBuf, String>;

const FILES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// Builds the kustomization in `dir`.
pub fn build(dir: &Path, remote: Remote<'_>) -> Result<Built, KustomizeError> {
    let mut built = Built::default();
    build_into(dir, remote, &mut built, 0)?;
    Ok(built)
}

/// The kustomization file of `dir`, if it has one.
pub fn kustomization_file(dir: &Path) -> Option<PathBuf> {
    FILES.iter().map(|f| dir.join(f)).find(|p| p.is_file())
}

fn build_into(dir: &Path, remote: Remote<'_>, built: &mut Built, depth: usize) -> Result<(), KustomizeError> {
    let file = kustomization_file(dir).ok_or_else(|| err(dir, "no kustomization.yaml in this folder"))?;
    if depth > 10 {
        return Err(err(&file, "resources nest more than 10 folders deep (a cycle?)"));
    }
    let text = read(&file)?;
    let k: Kustomization = serde_saphyr::from_str(&text).map_err(|e| err(&file, e.to_string()))?;
    if let Some(ns) = k.namespace.as_deref().filter(|ns| *ns != super::NAMESPACE) {
        return Err(err(
            &file,
            format!(
                "namespace: {ns}: drill installs Argo CD into namespace {}",
                super::NAMESPACE
            ),
        ));
    }
    let mut objects = Vec::new();
    for r in &k.resources {
        if r.contains("://") || r.starts_with("github.com/") {
            let path = remote(r).map_err(|why| err(&file, format!("resources: {r}: {why}")))?;
            objects.extend(manifest(&path)?);
            built.remote.push((r.clone(), path));
            continue;
        }
        let path = dir.join(r);
        if path.is_dir() {
            let mut inner = Built::default();
            build_into(&path, remote, &mut inner, depth + 1)?;
            objects.extend(inner.objects);
            built.remote.extend(inner.remote);
        } else if path.is_file() {
            objects.extend(manifest(&path)?);
        } else {
            return Err(err(&file, format!("resources: {r}: no such file or folder")));
        }
    }
    for p in &k.patches_strategic_merge {
        let (origin, text) = patch_text(dir, &file, Some(p), None)?;
        for patch in parse_docs(&text).map_err(|e| err(&origin, e))? {
            merge_into_named(&mut objects, &patch, &Target::default()).map_err(|e| err(&origin, e))?;
        }
    }
    for p in &k.patches {
        apply_patch(dir, &file, p, &mut objects)?;
    }
    for image in &k.images {
        set_images(&mut objects, image);
    }
    built.objects.extend(objects);
    Ok(())
}

fn read(file: &Path) -> Result<String, KustomizeError> {
    std::fs::read_to_string(file).map_err(|e| err(file, format!("cannot read: {e}")))
}

fn manifest(file: &Path) -> Result<Vec<Value>, KustomizeError> {
    parse_docs(&read(file)?).map_err(|e| err(file, e))
}

fn parse_docs(text: &str) -> Result<Vec<Value>, String> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| format!("invalid YAML: {e}"))?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// A patch's text and the file to blame for it: its own file, or the kustomization.
fn patch_text(
    dir: &Path,
    file: &Path,
    path: Option<&str>,
    inline: Option<&str>,
) -> Result<(PathBuf, String), KustomizeError> {
    match (path, inline) {
        (Some(p), None) if !p.contains('\n') => {
            let path = dir.join(p);
            Ok((path.clone(), read(&path)?))
        }
        (Some(text), None) | (None, Some(text)) => Ok((file.to_path_buf(), text.to_string())),
        _ => Err(err(file, "patches: give `path` or `patch`, exactly one")),
    }
}

fn apply_patch(dir: &Path, file: &Path, spec: &PatchSpec, objects: &mut [Value]) -> Result<(), KustomizeError> {
    let (origin, text) = patch_text(dir, file, spec.path.as_deref(), spec.patch.as_deref())?;
    let docs = parse_docs(&text).map_err(|e| err(&origin, e))?;
    let no_target = Target::default();
    let target = spec.target.as_ref().unwrap_or(&no_target);
    match docs.as_slice() {
        [Value::Array(_)] => {
            if spec.target.is_none() {
                return Err(err(
                    &origin,
                    "a JSON 6902 patch (a list of operations) needs a `target`",
                ));
            }
            let ops: json_patch::Patch =
                serde_json::from_value(docs[0].clone()).map_err(|e| err(&origin, format!("JSON 6902 patch: {e}")))?;
            let mut matched = 0;
            for object in objects.iter_mut().filter(|o| target.matches(o)) {
                json_patch::patch(object, &ops).map_err(|e| err(&origin, format!("JSON 6902 patch: {e}")))?;
                matched += 1;
            }
            if matched == 0 {
                return Err(err(&origin, format!("target {target} matches no resource")));
            }
            Ok(())
        }
        _ => {
            for patch in &docs {
                merge_into_named(objects, patch, target).map_err(|e| err(&origin, e))?;
            }
            Ok(())
        }
    }
}

impl Target {
    fn matches(&self, object: &Value) -> bool {
        let field = |p: &str| object.pointer(p).and_then(Value::as_str).unwrap_or_default();
        let (group, version) = match field("/apiVersion").split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", field("/apiVersion")),
        };
        let is = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        is(&self.group, group)
            && is(&self.version, version)
            && is(&self.kind, field("/kind"))
            && is(&self.name, field("/metadata/name"))
            && is(&self.namespace, field("/metadata/namespace"))
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let part = |v: &Option<String>| v.clone().unwrap_or_else(|| "*".into());
        write!(f, "{}/{}", part(&self.kind), part(&self.name))
    }
}

/// A strategic merge patch applied to the objects the target names, else the object of
/// the patch's own kind and name.
fn merge_into_named(objects: &mut [Value], patch: &Value, target: &Target) -> Result<(), String> {
    let own = Target {
        kind: patch.pointer("/kind").and_then(Value::as_str).map(str::to_string),
        name: patch
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .map(str::to_string),
        ..Target::default()
    };
    let by_target = target.kind.is_some() || target.name.is_some();
    let select = if by_target { target } else { &own };
    if select.kind.is_none() && select.name.is_none() {
        return Err("a strategic merge patch needs its own kind and metadata.name, or a target".into());
    }
    let mut matched = 0;
    for object in objects.iter_mut().filter(|o| select.matches(o)) {
        let mut patch = patch.clone();
        if by_target && let Some(meta) = patch.get_mut("metadata").and_then(Value::as_object_mut) {
            // The target chose the objects: the patch's own name does not rename them.
            meta.remove("name");
        }
        strategic_merge(object, &patch);
        matched += 1;
    }
    if matched == 0 {
        return Err(format!("the patch for {select} matches no resource"));
    }
    Ok(())
}

/// Merges `patch` into `target` (see the module's comment for the rules).
pub fn strategic_merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (key, value) in p {
                if key == "$patch" {
                    continue;
                }
                match (value.is_null(), t.get_mut(key)) {
                    (true, _) => {
                        t.remove(key);
                    }
                    (false, Some(existing)) => strategic_merge(existing, value),
                    (false, None) => {
                        t.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (Value::Array(t), Value::Array(p)) if p.iter().all(named) && t.iter().all(named) => {
            for item in p {
                let name = &item["name"];
                if item.get("$patch").and_then(Value::as_str) == Some("delete") {
                    t.retain(|x| &x["name"] != name);
                } else if let Some(existing) = t.iter_mut().find(|x| &x["name"] == name) {
                    strategic_merge(existing, item);
                } else {
                    t.push(item.clone());
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

fn named(v: &Value) -> bool {
    v.get("name").is_some_and(Value::is_string)
}

/// Sets the image of every container (and init container) whose image is `spec.name`.
fn set_images(objects: &mut [Value], spec: &ImageSpec) {
    for object in objects {
        each_container(object, &mut |c| {
            let Some(image) = c.get("image").and_then(Value::as_str) else {
                return;
            };
            let (name, tag) = split_image(image);
            if name != spec.name {
                return;
            }
            let mut new = spec.new_name.clone().unwrap_or_else(|| name.to_string());
            match (&spec.digest, &spec.new_tag, tag) {
                (Some(d), _, _) => new.push_str(&format!("@{d}")),
                (None, Some(t), _) => new.push_str(&format!(":{t}")),
                (None, None, Some(t)) => new.push_str(t),
                (None, None, None) => {}
            }
            c["image"] = Value::String(new);
        });
    }
}

/// The image's name and its `:tag` / `@digest` suffix (with the separator).
fn split_image(image: &str) -> (&str, Option<&str>) {
    if let Some(at) = image.find('@') {
        return (&image[..at], Some(&image[at..]));
    }
    let slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[slash..].find(':') {
        Some(colon) => (&image[..slash + colon], Some(&image[slash + colon..])),
        None => (image, None),
    }
}

fn each_container(v: &mut Value, f: &mut dyn FnMut(&mut Value)) {
    match v {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if (key == "containers" || key == "initContainers")
                    && let Value::Array(list) = value
                {
                    list.iter_mut().for_each(&mut *f);
                } else {
                    each_container(value, f);
                }
            }
        }
        Value::Array(list) => list.iter_mut().for_each(|x| each_container(x, f)),
        _ => {}
    }
}

/// Upstream's install manifests drill knows, by file name: (name, has an API server).
pub const UPSTREAM_INSTALLS: [(&str, bool); 2] = [("install.yaml", true), ("core-install.yaml", false)];

/// The Argo CD version and file of a remote resource that is one of upstream's install
/// manifests (a release download, or a raw file at a tag), if it is one.
pub fn upstream_install(url: &str) -> Option<(String, &'static str)> {
    let (version, file) = url
        .strip_prefix("https://raw.githubusercontent.com/argoproj/argo-cd/")
        .and_then(|r| r.split_once("/manifests/"))
        .map(|(v, f)| (v.trim_start_matches("refs/tags/"), f))
        .or_else(|| {
            url.strip_prefix("https://github.com/argoproj/argo-cd/releases/download/")
                .and_then(|r| r.split_once('/'))
        })?;
    let file = UPSTREAM_INSTALLS.iter().map(|(f, _)| *f).find(|f| *f == file)?;
    (version.starts_with('v') && !version.contains('/')).then(|| (version.to_string(), file))
}

#[cfg(test)]
#[path = "kustomize_tests.rs"]
mod tests;
