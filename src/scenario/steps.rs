//! Validation of the quieter steps (drift, suspend/resume, commits, reverts, break-glass):
//! targets and patches that make sense, edits that apply to the fleet's files in order,
//! reverts that name an earlier commit step.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_saphyr::Spanned;

use super::error::ScenarioError;
use super::plan::RepoSource;
use super::spec::{Disaster, Edit, Target};

/// Checks every step; returns, for each git-revert step, the commit step it reverts.
/// `served`: drill serves the repo to the cluster it creates (commit steps need that).
pub fn check_steps(
    steps: &[Disaster],
    repo: &RepoSource,
    served: bool,
    file: &Path,
) -> Result<BTreeMap<usize, usize>, ScenarioError> {
    let mut files = FleetFiles::new(repo, served);
    let mut commits: Vec<usize> = Vec::new();
    let mut reverts = BTreeMap::new();
    for (i, step) in steps.iter().enumerate() {
        let kind = step.kind();
        match step {
            Disaster::Drift(d) => {
                check_target(&d.target, kind, file)?;
                check_patch(&d.patch, kind, file)?;
            }
            Disaster::Suspend(s) => check_app(&s.app, kind, file)?,
            Disaster::Resume(r) => check_app(&r.app, kind, file)?,
            Disaster::Commit(c) => {
                files.apply(&c.edits, kind, file)?;
                commits.push(i);
            }
            Disaster::BadCommit(c) => {
                files.apply(&c.edits, kind, file)?;
                commits.push(i);
            }
            Disaster::GitRevert(r) => {
                let reverted = match &r.step {
                    Some(n) => {
                        let idx = n.value.checked_sub(1);
                        match idx.filter(|idx| commits.contains(idx)) {
                            Some(idx) => idx,
                            None => {
                                return Err(ScenarioError::at(
                                    file,
                                    &n.referenced,
                                    format!(
                                        "git-revert: step {} is not an earlier commit or bad-commit step",
                                        n.value
                                    ),
                                ));
                            }
                        }
                    }
                    None => *commits.last().ok_or_else(|| {
                        ScenarioError::in_file(
                            file,
                            format!(
                                "step {}: git-revert has no earlier commit or bad-commit step to revert",
                                i + 1
                            ),
                        )
                    })?,
                };
                // What the revert restores is Git's business; later edits of those files are not checked here.
                files.forget(steps[reverted].edits().unwrap_or(&[]));
                reverts.insert(i, reverted);
            }
            Disaster::BreakGlass(b) => {
                check_app(&b.app, kind, file)?;
                check_target(&b.mitigation.target, kind, file)?;
                check_patch(&b.mitigation.patch, kind, file)?;
                files.apply(&b.backport.edits, kind, file)?;
                if b.hold.is_some_and(|h| h >= b.deadline) {
                    return Err(ScenarioError::in_file(
                        file,
                        format!(
                            "step {}: break-glass hold must be shorter than the deadline ({})",
                            i + 1,
                            b.deadline
                        ),
                    ));
                }
            }
            Disaster::ArgocdHistoryRollback(h) => check_app(&h.app, kind, file)?,
            // Checked with the disasters (scenario::plan).
            Disaster::DeleteNamespace(_)
            | Disaster::DeleteCluster(_)
            | Disaster::KillNode(_)
            | Disaster::DeletePods(_) => {}
        }
    }
    Ok(reverts)
}

impl Disaster {
    /// The edits a commit step makes.
    pub fn edits(&self) -> Option<&[Edit]> {
        match self {
            Disaster::Commit(c) => Some(&c.edits.value),
            Disaster::BadCommit(c) => Some(&c.edits.value),
            Disaster::BreakGlass(b) => Some(&b.backport.edits.value),
            _ => None,
        }
    }
}

fn check_target(target: &Spanned<Target>, kind: &str, file: &Path) -> Result<(), ScenarioError> {
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

fn check_patch(patch: &Spanned<serde_json::Value>, kind: &str, file: &Path) -> Result<(), ScenarioError> {
    let fields = crate::disaster::drift::leaf_pointers(&patch.value);
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

fn check_app(app: &Spanned<String>, kind: &str, file: &Path) -> Result<(), ScenarioError> {
    let ok = app.value.split('/').count() <= 2
        && app
            .value
            .split('/')
            .all(|part| super::types::Label::parse(part).is_ok());
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
struct FleetFiles {
    dir: Option<PathBuf>,
    contents: BTreeMap<String, Option<String>>,
}

impl FleetFiles {
    fn new(repo: &RepoSource, served: bool) -> Self {
        let dir = match repo {
            RepoSource::Local { dir, .. } if served => Some(dir.clone()),
            _ => None,
        };
        FleetFiles {
            dir,
            contents: BTreeMap::new(),
        }
    }

    fn apply(&mut self, edits: &Spanned<Vec<Edit>>, kind: &str, file: &Path) -> Result<(), ScenarioError> {
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

    fn forget(&mut self, edits: &[Edit]) {
        for edit in edits {
            self.contents.insert(edit.file.as_str().to_string(), None);
        }
    }
}
