//! Validation that needs several fields or other files, producing a [`Plan`].

use std::path::{Path, PathBuf};

use super::error::ScenarioError;
use super::spec::{ClusterSpec, Credentials, Disaster, EngineKind, EngineSpec, Repo, Scenario, SecretName};

/// Namespaces drill refuses to delete: losing them is not a GitOps recovery, it is a broken control plane.
const PROTECTED_NAMESPACES: [&str; 4] = ["kube-system", "kube-public", "kube-node-lease", "default"];

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

        for disaster in &scenario.disasters {
            check_disaster(disaster, &scenario, &kind_nodes, file)?;
        }
        for check in &scenario.expect.objects {
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
        let reverts = super::steps::check_steps(&scenario.disasters, &repo, served, file)?;
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

fn check_disaster(
    disaster: &Disaster,
    scenario: &Scenario,
    kind_nodes: &[String],
    file: &Path,
) -> Result<(), ScenarioError> {
    let cluster = &scenario.cluster;
    match disaster {
        Disaster::DeleteNamespace(d) => {
            if d.namespaces.value.is_empty() {
                return Err(ScenarioError::at(
                    file,
                    &d.namespaces.referenced,
                    "delete-namespace: list at least one namespace",
                ));
            }
            if let Some(ns) = d
                .namespaces
                .value
                .iter()
                .find(|ns| PROTECTED_NAMESPACES.contains(&ns.as_str()))
            {
                return Err(ScenarioError::at(
                    file,
                    &d.namespaces.referenced,
                    format!(
                        "delete-namespace: refusing to delete {ns}: it is part of the control plane, not of what Git restores"
                    ),
                ));
            }
        }
        Disaster::DeleteCluster(d) => {
            let secrets = scenario.secrets.clone().unwrap_or_default();
            for (lost, at) in d
                .lost_secrets
                .iter()
                .flat_map(|l| l.value.iter().map(move |n| (n, &l.referenced)))
            {
                let configured = match lost {
                    SecretName::SopsAge => secrets.sops_age.is_some(),
                    SecretName::SealedSecrets => secrets.sealed_secrets.is_some(),
                    SecretName::RepoCredentials => [EngineKind::Flux, EngineKind::Argocd]
                        .iter()
                        .filter_map(|e| engine_repo(&scenario.engine, *e))
                        .any(|r| r.credentials().is_some()),
                };
                if !configured {
                    return Err(ScenarioError::at(
                        file,
                        at,
                        format!(
                            "delete-cluster: lost-secrets names {}, but {} is not set: only a secret that is restored can be lost",
                            lost.field(),
                            lost.config_path()
                        ),
                    ));
                }
            }
            if let ClusterSpec::Existing(existing) = cluster {
                return Err(ScenarioError::in_file(
                    file,
                    format!(
                        "delete-cluster: drill can only destroy clusters it created; context {} is an existing cluster",
                        existing.context
                    ),
                ));
            }
        }
        Disaster::KillNode(k) => {
            if matches!(cluster, ClusterSpec::Existing(_)) {
                return Err(ScenarioError::at(
                    file,
                    &k.node.referenced,
                    "kill-node: only kind clusters created by drill have node containers to kill",
                ));
            }
            if !kind_nodes.iter().any(|n| n == k.node.value.as_str()) {
                return Err(ScenarioError::at(
                    file,
                    &k.node.referenced,
                    format!(
                        "kill-node: the kind config has no node {:?}; its nodes are: {}",
                        k.node.value.as_str(),
                        kind_nodes.join(", ")
                    ),
                ));
            }
        }
        Disaster::DeletePods(d) => {
            // The control plane's own pods (default holds no controller of the cluster's).
            if PROTECTED_NAMESPACES[..3].contains(&d.namespace.value.as_str()) {
                return Err(ScenarioError::at(
                    file,
                    &d.namespace.referenced,
                    format!(
                        "delete-pods: refusing to delete pods in {}: it is part of the control plane, not of what Git restores",
                        d.namespace.value
                    ),
                ));
            }
            if d.selector.value.is_empty() {
                return Err(ScenarioError::at(
                    file,
                    &d.selector.referenced,
                    "delete-pods: the selector needs at least one label, e.g. {app: users-api}",
                ));
            }
        }
        Disaster::ArgocdHistoryRollback(h) if scenario.engine.argocd.is_none() => {
            return Err(ScenarioError::at(
                file,
                &h.app.referenced,
                "argocd-history-rollback: the scenario has no `engine.argocd:`; this step rolls back an Argo CD Application",
            ));
        }
        // The quiet steps (drift, commits, pauses) are checked against the fleet's
        // files, in steps.rs.
        _ => {}
    }
    Ok(())
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
