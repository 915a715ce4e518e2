//! What step validation sees: the scenario's other sections ([`ScenarioFacts`]) and the
//! steps before it ([`Sequence`]), with the checks several step kinds share.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_saphyr::Spanned;

use super::Disaster;
use crate::model::ScenarioError;
use crate::model::{Edit, Label, SecretName, Target};

/// Namespaces drill refuses to delete: losing them is not a GitOps recovery, it is a
/// broken control plane. The first three hold the control plane's own pods.
pub const PROTECTED_NAMESPACES: [&str; 4] = ["kube-system", "kube-public", "kube-node-lease", "default"];

/// The scenario's other sections, as far as steps care.
pub struct ScenarioFacts<'a> {
    pub file: &'a Path,
    /// The context of `cluster: existing` (None: a kind cluster drill creates).
    pub existing_context: Option<&'a str>,
    /// kind's node names without the cluster prefix: control-plane, worker, ...
    pub kind_nodes: &'a [String],
    /// The scenario configures Argo CD.
    pub argocd: bool,
    /// The secrets outside Git that the scenario restores.
    pub restored_secrets: Vec<SecretName>,
}

/// The steps so far, for checks that depend on order.
pub struct Sequence<'a> {
    pub file: &'a Path,
    pub steps: &'a [Disaster],
    /// The index of the step being checked.
    pub index: usize,
    pub files: FleetFiles,
    /// Indexes of the commit steps so far.
    pub commits: Vec<usize>,
    /// For each git-revert step, the commit step it reverts.
    pub reverts: BTreeMap<usize, usize>,
}

impl<'a> Sequence<'a> {
    /// `served_dir`: the local checkout drill serves to the cluster it creates.
    pub fn new(file: &'a Path, steps: &'a [Disaster], served_dir: Option<PathBuf>) -> Self {
        Sequence {
            file,
            steps,
            index: 0,
            files: FleetFiles::new(served_dir),
            commits: Vec::new(),
            reverts: BTreeMap::new(),
        }
    }
}

pub fn check_target(target: &Spanned<Target>, kind: &str, file: &Path) -> Result<(), ScenarioError> {
    let t = &target.value;
    if t.kind == "Secret" {
        return Err(ScenarioError::at(
            file,
            &target.referenced,
            format!("{kind}: drill does not edit Secrets: their values would end up in the report"),
        ));
    }
    if t.name.is_empty() || t.kind.is_empty() || t.api_version.is_empty() {
        return Err(ScenarioError::at(
            file,
            &target.referenced,
            format!("{kind}: target needs api-version, kind and name"),
        ));
    }
    Ok(())
}

pub fn check_patch(patch: &Spanned<serde_json::Value>, kind: &str, file: &Path) -> Result<(), ScenarioError> {
    let fields = super::damage::live_edit::leaf_pointers(&patch.value);
    let is_map = patch.value.as_object().is_some_and(|m| !m.is_empty());
    if !is_map || fields.is_empty() {
        return Err(ScenarioError::at(
            file,
            &patch.referenced,
            format!("{kind}: patch must be a non-empty mapping (a JSON merge patch), e.g. {{data: {{KEY: value}}}}"),
        ));
    }
    if let Some(bad) = fields
        .iter()
        .find(|f| f.starts_with("/metadata/name") || f.starts_with("/metadata/namespace"))
    {
        return Err(ScenarioError::at(
            file,
            &patch.referenced,
            format!("{kind}: patch must not change {bad}"),
        ));
    }
    Ok(())
}

pub fn check_app(app: &Spanned<String>, kind: &str, file: &Path) -> Result<(), ScenarioError> {
    let ok = app.value.split('/').count() <= 2 && app.value.split('/').all(|part| Label::parse(part).is_ok());
    if !ok {
        return Err(ScenarioError::at(
            file,
            &app.referenced,
            format!("{kind}: app {:?} must be an app's name, or namespace/name", app.value),
        ));
    }
    Ok(())
}

/// The fleet's files as the commit steps will have left them, to check each edit in order.
pub struct FleetFiles {
    dir: Option<PathBuf>,
    contents: BTreeMap<String, Option<String>>,
}

impl FleetFiles {
    /// `dir`: the local checkout drill serves (None: commits cannot be made).
    pub fn new(dir: Option<PathBuf>) -> Self {
        FleetFiles {
            dir,
            contents: BTreeMap::new(),
        }
    }

    pub fn apply(&mut self, edits: &Spanned<Vec<Edit>>, kind: &str, file: &Path) -> Result<(), ScenarioError> {
        let Some(dir) = self.dir.clone() else {
            return Err(ScenarioError::at(
                file,
                &edits.referenced,
                format!(
                    "{kind}: commits need a local checkout (`repo: path:`) that drill serves to a kind cluster it creates; \
                     drill never pushes to a remote or to an existing cluster's source"
                ),
            ));
        };
        if edits.value.is_empty() {
            return Err(ScenarioError::at(
                file,
                &edits.referenced,
                format!("{kind}: list at least one edit"),
            ));
        }
        for edit in &edits.value {
            let path = edit.file.as_str().to_string();
            let entry = self
                .contents
                .entry(path.clone())
                .or_insert_with(|| std::fs::read_to_string(dir.join(&path)).ok());
            let Some(text) = entry else {
                // Unknown after a revert, or missing: a missing file is an error only when never touched.
                if !dir.join(&path).exists() {
                    return Err(ScenarioError::at(
                        file,
                        &edits.referenced,
                        format!("{kind}: {path} does not exist in {}", dir.display()),
                    ));
                }
                continue;
            };
            match text.matches(edit.find.as_str()).count() {
                1 => *text = text.replacen(edit.find.as_str(), &edit.replace, 1),
                0 => {
                    return Err(ScenarioError::at(
                        file,
                        &edits.referenced,
                        format!("{kind}: {path} does not contain {:?}", edit.find),
                    ));
                }
                n => {
                    return Err(ScenarioError::at(
                        file,
                        &edits.referenced,
                        format!("{kind}: {path} contains {:?} {n} times; make `find` unique", edit.find),
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn forget(&mut self, edits: &[Edit]) {
        for edit in edits {
            self.contents.insert(edit.file.as_str().to_string(), None);
        }
    }
}
