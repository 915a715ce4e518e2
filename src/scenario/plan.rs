//! Validation that needs several fields or other files, producing a [`Plan`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::spec::{ClusterSpec, Credentials, EngineKind, EngineSpec, Repo, Scenario, SecretName};
use crate::disaster::Disaster;
use crate::disaster::validate::{ScenarioFacts, Sequence};
use crate::model::ScenarioError;

/// A validated scenario with every path resolved against the scenario file's folder.
#[derive(Debug, Clone)]
pub struct Plan {
    pub scenario: Scenario,
    pub file: PathBuf,
    /// The kind config, when drill creates the cluster.
    pub kind_config: Option<PathBuf>,
    /// kind's node names without the cluster prefix: control-plane, worker, worker2, ...
    pub kind_nodes: Vec<String>,
    pub repo: RepoSource,
    /// For each git-revert step (by index), the index of the commit step it reverts.
    pub reverts: std::collections::BTreeMap<usize, usize>,
    /// The engine this run uses.
    pub engine: EngineKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoSource {
    Local {
        dir: PathBuf,
        git_ref: String,
        credentials: Option<Credentials>,
    },
    Remote {
        url: String,
        git_ref: String,
        credentials: Option<Credentials>,
    },
}

impl RepoSource {
    /// The credentials secret-bootstrap restores (and drill's server demands).
    pub fn credentials(&self) -> Option<&Credentials> {
        match self {
            RepoSource::Local { credentials, .. } | RepoSource::Remote { credentials, .. } => credentials.as_ref(),
        }
    }
}

impl Plan {
    pub fn build(scenario: Scenario, file: &Path) -> Result<Plan, ScenarioError> {
        let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let (kind_config, kind_nodes) = match &scenario.cluster {
            ClusterSpec::Kind(kind) => {
                let path = base.join(&kind.config.value);
                // A missing file is the scenario's error (where it names it); a bad
                // field is the kind config's own, at its line.
                let text = std::fs::read_to_string(&path).map_err(|err| {
                    ScenarioError::at(
                        file,
                        &kind.config.referenced,
                        format!("cannot read kind config {}: {err}", path.display()),
                    )
                })?;
                let nodes = super::kind_config::node_names(&text, &path)?;
                (Some(path), nodes)
            }
            ClusterSpec::Existing(_) => (None, Vec::new()),
        };

        let facts = step_facts(&scenario, &kind_nodes, file);
        for disaster in &scenario.disasters {
            disaster.as_step().check(&facts)?;
        }
        check_expect(&scenario.expect, file)?;

        let engine = match (&scenario.engine.flux, &scenario.engine.argocd) {
            (Some(_), _) => EngineKind::Flux,
            (None, Some(_)) => EngineKind::Argocd,
            (None, None) => {
                return Err(ScenarioError::in_file(
                    file,
                    "engine: name `flux:` or `argocd:` (or both, and pick with --engine)",
                ));
            }
        };
        let repo = match engine_repo(&scenario.engine, engine) {
            Some(repo) => resolve_repo(repo, &base, file)?,
            None => return Err(ScenarioError::in_file(file, "engine: no repo")),
        };
        let served = matches!(scenario.cluster, ClusterSpec::Kind(_));
        let reverts = check_steps(&scenario.disasters, &repo, served, file)?;
        let plan = Plan {
            scenario,
            file: file.to_path_buf(),
            kind_config,
            kind_nodes,
            repo,
            reverts,
            engine,
        };
        plan.check_existing()?;
        Ok(plan)
    }

    /// An existing cluster already runs its engine from its own source: drill installs,
    /// restores and preloads nothing there, and follows Flux's `flux bootstrap` layout.
    fn check_existing(&self) -> Result<(), ScenarioError> {
        let ClusterSpec::Existing(existing) = &self.scenario.cluster else {
            return Ok(());
        };
        let refuse = |what: &str| {
            Err(ScenarioError::in_file(
                &self.file,
                format!("cluster: existing (context {}): {what}", existing.context),
            ))
        };
        if self.engine != EngineKind::Flux {
            return refuse(
                "only Flux clusters made by `flux bootstrap` (root flux-system/flux-system) can be rehearsed in place so far",
            );
        }
        if self.scenario.secrets.is_some() {
            return refuse("`secrets:` are restored into clusters drill creates; an existing cluster keeps its own");
        }
        if self.scenario.images != super::ImageMode::Cold {
            return refuse(&format!(
                "`images: {}` changes the nodes of a kind cluster drill creates",
                self.scenario.images.as_str()
            ));
        }
        Ok(())
    }

    /// Switches to `engine` (`drill run --engine`); the scenario must configure it.
    pub fn with_engine(mut self, engine: EngineKind) -> Result<Plan, ScenarioError> {
        let Some(repo) = engine_repo(&self.scenario.engine, engine).cloned() else {
            return Err(ScenarioError::in_file(
                &self.file,
                format!(
                    "--engine {}: the scenario has no `engine.{}:` section",
                    engine.as_str(),
                    engine.as_str()
                ),
            ));
        };
        let base = self.file.parent().map(Path::to_path_buf).unwrap_or_default();
        self.repo = resolve_repo(&repo, &base, &self.file)?;
        self.engine = engine;
        self.check_existing()?;
        Ok(self)
    }

    /// Switches the image mode (`drill run --images`), with the same checks as the file's.
    pub fn with_images(mut self, images: super::ImageMode) -> Result<Plan, ScenarioError> {
        self.scenario.images = images;
        self.check_existing()?;
        Ok(self)
    }
}

/// The repo of `engine`'s section (None when the scenario does not configure it).
impl Plan {
    /// The fleet folder the engine starts from (Flux bootstrap path, Argo CD root app).
    pub fn entry_path(&self) -> Option<String> {
        match self.engine {
            EngineKind::Flux => self.scenario.engine.flux.as_ref().map(|f| f.path.as_str().to_string()),
            EngineKind::Argocd => self
                .scenario
                .engine
                .argocd
                .as_ref()
                .map(|a| a.path.as_str().to_string()),
        }
    }
}

fn engine_repo(spec: &EngineSpec, engine: EngineKind) -> Option<&Repo> {
    match engine {
        EngineKind::Flux => spec.flux.as_ref().map(|f| &f.repo),
        EngineKind::Argocd => spec.argocd.as_ref().map(|a| &a.repo),
    }
}

/// The facts of the scenario's other sections a step's own check needs.
fn step_facts<'a>(scenario: &'a Scenario, kind_nodes: &'a [String], file: &'a Path) -> ScenarioFacts<'a> {
    let secrets = scenario.secrets.clone().unwrap_or_default();
    let credentials = [EngineKind::Flux, EngineKind::Argocd]
        .iter()
        .filter_map(|e| engine_repo(&scenario.engine, *e))
        .any(|r| r.credentials().is_some());
    let restored_secrets = [
        (SecretName::SopsAge, secrets.sops_age.is_some()),
        (SecretName::SealedSecrets, secrets.sealed_secrets.is_some()),
        (SecretName::RepoCredentials, credentials),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect();
    ScenarioFacts {
        file,
        existing_context: match &scenario.cluster {
            ClusterSpec::Existing(existing) => Some(existing.context.as_str()),
            ClusterSpec::Kind(_) => None,
        },
        kind_nodes,
        argocd: scenario.engine.argocd.is_some(),
        restored_secrets,
    }
}

/// Checks every step against the steps before it (the fleet's files as earlier commits
/// left them, the commits a revert can name); returns, for each git-revert step, the
/// commit step it reverts. `served`: drill serves the repo to the cluster it creates
/// (commit steps need that).
fn check_steps(
    steps: &[Disaster],
    repo: &RepoSource,
    served: bool,
    file: &Path,
) -> Result<BTreeMap<usize, usize>, ScenarioError> {
    let dir = match repo {
        RepoSource::Local { dir, .. } if served => Some(dir.clone()),
        _ => None,
    };
    let mut seq = Sequence::new(file, steps, dir);
    for (i, step) in steps.iter().enumerate() {
        seq.index = i;
        step.as_step().check_in_sequence(&mut seq)?;
    }
    Ok(seq.reverts)
}

fn resolve_repo(repo: &Repo, base: &Path, file: &Path) -> Result<RepoSource, ScenarioError> {
    match repo {
        Repo::Local {
            path,
            git_ref,
            credentials,
        } => {
            let dir = base.join(path);
            let Ok(canonical) = dir.canonicalize() else {
                return Err(ScenarioError::in_file(
                    file,
                    format!("engine: repo.path: {} does not exist", dir.display()),
                ));
            };
            // The fleet may be any folder inside a Git work tree; drill serves that folder.
            if !canonical.is_dir() || !canonical.ancestors().any(|d| d.join(".git").exists()) {
                return Err(ScenarioError::in_file(
                    file,
                    format!(
                        "engine: repo.path: {} is not a folder inside a Git checkout",
                        dir.display()
                    ),
                ));
            }
            Ok(RepoSource::Local {
                dir: canonical,
                git_ref: git_ref.clone(),
                credentials: credentials.clone(),
            })
        }
        Repo::Remote {
            url,
            git_ref,
            credentials,
        } => Ok(RepoSource::Remote {
            url: url.clone(),
            git_ref: git_ref.clone(),
            credentials: credentials.clone(),
        }),
    }
}

/// Rules across `expect`'s fields that serde cannot state.
fn check_expect(expect: &super::spec::Expect, file: &Path) -> Result<(), ScenarioError> {
    for check in &expect.objects {
        if check.field.is_some() != check.equals.is_some() {
            return Err(ScenarioError::in_file(
                file,
                format!(
                    "expect.objects: {} {}: `field` and `equals` go together",
                    check.kind, check.name
                ),
            ));
        }
        if !check.exists && check.field.is_some() {
            return Err(ScenarioError::in_file(
                file,
                format!(
                    "expect.objects: {} {}: `exists: false` cannot also check a field",
                    check.kind, check.name
                ),
            ));
        }
    }

    if let Some(r) = &expect.regression
        && !(3..=1000).contains(&r.window)
    {
        return Err(ScenarioError::in_file(
            file,
            format!("expect.regression.window: {} runs; a median needs 3 to 1000", r.window),
        ));
    }
    Ok(())
}
