//! Validation that needs several fields or other files, producing a [`Plan`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::spec::{ClusterSpec, Credentials, EngineKind, EngineSpec, Repo, Scenario, SecretName, SshKey};
use crate::disaster::Disaster;
use crate::disaster::validate::{ScenarioFacts, Sequence};
use crate::engine::flux::layout::{self, BootstrapLayout};
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
    /// A Flux fleet made by `flux bootstrap`, in a local checkout drill creates a cluster
    /// for: Flux is installed from its gotk-components.yaml and synced by its gotk-sync.yaml.
    pub flux_layout: Option<BootstrapLayout>,
    /// A self-managed Argo CD's install folder in a local checkout (`install-path`),
    /// built into the install manifest before any cluster is created.
    pub argocd_install: Option<PathBuf>,
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
        /// The deploy key of an ssh:// source.
        ssh_key: Option<SshKey>,
    },
}

impl RepoSource {
    /// The credentials secret-bootstrap restores (and drill's server demands).
    pub fn credentials(&self) -> Option<&Credentials> {
        match self {
            RepoSource::Local { credentials, .. } | RepoSource::Remote { credentials, .. } => credentials.as_ref(),
        }
    }

    /// The ssh deploy key secret-bootstrap restores (and drill's preflight reads with).
    pub fn ssh_key(&self) -> Option<&SshKey> {
        match self {
            RepoSource::Remote { ssh_key, .. } => ssh_key.as_ref(),
            RepoSource::Local { .. } => None,
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
        let prunes = scenario.disasters.iter().any(|d| d.kind() == "prune");
        let judges_prunes = !scenario.expect.pruned.is_empty() || !scenario.expect.kept.is_empty();
        if judges_prunes && !prunes {
            return Err(ScenarioError::in_file(
                file,
                "expect.pruned / expect.kept judge what a `prune` step checked; add a prune step to disasters",
            ));
        }
        super::probe::check_probes(&scenario.expect.probes, file)?;
        check_versions(&scenario.engine, file)?;

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
            Some(repo) => {
                if repo.ssh_key().is_some() && engine == EngineKind::Argocd {
                    return Err(ScenarioError::in_file(
                        file,
                        "engine.argocd.repo.ssh-key: drill restores ssh deploy keys for Flux only, not yet for Argo CD",
                    ));
                }
                resolve_repo(repo, &base, file)?
            }
            None => return Err(ScenarioError::in_file(file, "engine: no repo")),
        };
        let mut plan = Plan {
            scenario,
            file: file.to_path_buf(),
            kind_config,
            kind_nodes,
            repo,
            reverts: BTreeMap::new(),
            engine,
            flux_layout: None,
            argocd_install: None,
        };
        plan.follow_flux_layout()?;
        plan.follow_argocd_install()?;
        let served = matches!(plan.scenario.cluster, ClusterSpec::Kind(_));
        plan.reverts = check_steps(&plan.scenario.disasters, &plan.repo, served, file)?;
        plan.check_existing()?;
        Ok(plan)
    }

    /// Reads a `flux bootstrap` layout in the bootstrap path of a local checkout. With
    /// `keep-source-url` the cluster syncs from gotk-sync.yaml's URL, so the plan's repo
    /// becomes that remote (pinned and reached as any `url:` repo).
    fn follow_flux_layout(&mut self) -> Result<(), ScenarioError> {
        self.flux_layout = None;
        let Some(flux) = self
            .scenario
            .engine
            .flux
            .as_ref()
            .filter(|_| self.engine == EngineKind::Flux)
        else {
            return Ok(());
        };
        let local = match (&self.repo, &self.scenario.cluster) {
            (RepoSource::Local { dir, .. }, ClusterSpec::Kind(_)) => Some(dir.clone()),
            _ => None,
        };
        let found = match &local {
            Some(dir) => {
                layout::detect(dir, flux.path.as_str()).map_err(|e| ScenarioError::in_file(&e.file, e.message))?
            }
            None => None,
        };
        let ssh_key = flux.repo.ssh_key().cloned();
        if !flux.keep_source_url {
            if ssh_key.is_some() && local.is_some() {
                return Err(ScenarioError::in_file(
                    &self.file,
                    "engine.flux.repo.ssh-key: drill serves this checkout to the cluster over HTTP; an ssh deploy key \
                     is for gotk-sync.yaml's ssh:// URL, kept with engine.flux.keep-source-url: true",
                ));
            }
            self.flux_layout = found;
            return Ok(());
        }
        let Some(found) = found else {
            return Err(ScenarioError::in_file(
                &self.file,
                "engine.flux.keep-source-url: the bootstrap path of a local checkout must hold flux-system/gotk-sync.yaml (a fleet made by `flux bootstrap`)",
            ));
        };
        let credentials = self.repo.credentials().cloned();
        check_kept_source(&found, ssh_key.is_some(), credentials.is_some())?;
        let url = &found.source_url;
        let branch = found.source_branch.clone().unwrap_or_else(|| "master".into());
        self.repo = RepoSource::Remote {
            url: url.clone(),
            git_ref: branch,
            credentials,
            ssh_key,
        };
        self.flux_layout = Some(found);
        Ok(())
    }

    /// An existing cluster already runs its engine from its own source: drill installs,
    /// restores and preloads nothing there. It follows Flux's `flux bootstrap` root
    /// (flux-system/flux-system), or Argo CD's root Application (`root-app`).
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

    /// Finds `engine.argocd.install-path` in a local checkout drill creates a cluster for.
    fn follow_argocd_install(&mut self) -> Result<(), ScenarioError> {
        self.argocd_install = None;
        let Some(rel) = (self.scenario.engine.argocd.as_ref())
            .filter(|_| self.engine == EngineKind::Argocd)
            .and_then(|a| a.install_path.as_ref())
        else {
            return Ok(());
        };
        let refuse = |why: &str| {
            Err(ScenarioError::in_file(
                &self.file,
                format!("engine.argocd.install-path: {}: {why}", rel.as_str()),
            ))
        };
        let (RepoSource::Local { dir, .. }, ClusterSpec::Kind(_)) = (&self.repo, &self.scenario.cluster) else {
            return refuse(
                "a self-managed install is built from a local checkout (`repo.path`) for a cluster drill creates",
            );
        };
        let folder = dir.join(rel.as_str());
        if crate::engine::argocd::kustomize::kustomization_file(&folder).is_none() {
            return refuse(&format!("{} holds no kustomization.yaml", folder.display()));
        }
        self.argocd_install = Some(folder);
        Ok(())
    }

    /// What a `flux bootstrap` layout or a self-managed Argo CD changes, in one line
    /// (None without either).
    pub fn layout_note(&self) -> Option<String> {
        if self.argocd_install.is_some() {
            let rel = self.scenario.engine.argocd.as_ref()?.install_path.as_ref()?;
            return Some(format!(
                "self-managed Argo CD: installed from the repo's {} (built by drill before any cluster)",
                rel.as_str()
            ));
        }
        let l = self.flux_layout.as_ref()?;
        let how = match &self.repo {
            RepoSource::Remote { .. } => "kept (engine.flux.keep-source-url)",
            RepoSource::Local { .. } => "redirected to drill's served copy of the checkout",
        };
        Some(format!(
            "flux bootstrap layout: Flux from the repo's {}, source {} {how}",
            l.components_in_repo(),
            l.source_url
        ))
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
        self.follow_flux_layout()?;
        self.follow_argocd_install()?;
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
    /// Whether drill serves the repo from its own Git server: a local checkout synced into
    /// a kind cluster drill creates (an existing cluster keeps its own source).
    pub fn serves_repo(&self) -> bool {
        matches!(self.repo, RepoSource::Local { .. }) && matches!(self.scenario.cluster, ClusterSpec::Kind(_))
    }

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

/// `version:` is a release tag (v1.2.3, a pre-release suffix allowed); `sha256:` is 64
/// hex digits and pins a `version:`.
fn check_versions(spec: &EngineSpec, file: &Path) -> Result<(), ScenarioError> {
    let sections = [
        ("flux", spec.flux.as_ref().map(|f| (&f.version, &f.sha256))),
        ("argocd", spec.argocd.as_ref().map(|a| (&a.version, &a.sha256))),
    ];
    for (name, fields) in sections {
        let Some((version, sha256)) = fields else { continue };
        if let Some(v) = version {
            // It becomes a URL path and a cache folder: a pre-release suffix may hold
            // letters, digits and dots only.
            let (core, suffix) = v
                .strip_prefix('v')
                .map(|c| c.split_once('-').unwrap_or((c, "")))
                .unwrap_or(("", ""));
            let parts: Vec<&str> = core.split('.').collect();
            let is_tag = parts.len() == 3
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                && suffix.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.');
            if !is_tag {
                return Err(ScenarioError::in_file(
                    file,
                    format!("engine.{name}.version: {v:?} is not a release tag like v2.9.5"),
                ));
            }
        }
        match (version, sha256) {
            (None, Some(_)) => {
                return Err(ScenarioError::in_file(
                    file,
                    format!("engine.{name}.sha256 pins a `version:`, and there is none"),
                ));
            }
            (_, Some(h)) if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) => {
                return Err(ScenarioError::in_file(
                    file,
                    format!("engine.{name}.sha256: {h:?} is not 64 hex digits"),
                ));
            }
            _ => {}
        }
    }
    Ok(())
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
            ..
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
            ssh_key,
        } => Ok(RepoSource::Remote {
            url: url.clone(),
            git_ref: git_ref.clone(),
            credentials: credentials.clone(),
            ssh_key: ssh_key.clone(),
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

/// The source a `keep-source-url` run keeps must be reachable with what the scenario
/// restores: an ssh:// URL with an ssh deploy key (restored under `flux bootstrap`'s
/// Secret name), an http(s) URL with its credentials when it names a Secret.
fn check_kept_source(found: &BootstrapLayout, has_ssh_key: bool, has_credentials: bool) -> Result<(), ScenarioError> {
    let url = &found.source_url;
    let ssh = url.starts_with("ssh://");
    if !(ssh || url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ScenarioError::in_file(
            &found.sync,
            format!(
                "GitRepository flux-system: spec.url {url:?}: engine.flux.keep-source-url needs an ssh:// or http(s) URL"
            ),
        ));
    }
    match (ssh, has_ssh_key, &found.source_secret) {
        (true, false, _) => {
            return Err(ScenarioError::in_file(
                &found.sync,
                format!(
                    "GitRepository flux-system: spec.url {url:?} is ssh://, and the scenario gives no engine.flux.repo.ssh-key \
                     (the deploy key and the host's known_hosts) to restore"
                ),
            ));
        }
        (false, true, _) => {
            return Err(ScenarioError::in_file(
                &found.sync,
                format!(
                    "GitRepository flux-system: spec.url {url:?} is not ssh://, and engine.flux.repo.ssh-key is for ssh"
                ),
            ));
        }
        (true, true, secret) if secret.as_deref() != Some(crate::engine::flux::REPO_SECRET) => {
            return Err(ScenarioError::in_file(
                &found.sync,
                format!(
                    "GitRepository flux-system: spec.secretRef is {secret:?}; drill restores the ssh deploy key as Secret {} \
                     (what `flux bootstrap` names it), so the source must name that",
                    crate::engine::flux::REPO_SECRET
                ),
            ));
        }
        _ => {}
    }
    let secret = &found.source_secret;
    match (secret, has_credentials) {
        (Some(_), false) if ssh => {}
        (Some(name), false) => {
            return Err(ScenarioError::in_file(
                &found.sync,
                format!(
                    "GitRepository flux-system: spec.secretRef names Secret {name}, and the scenario restores no repo.credentials"
                ),
            ));
        }
        (Some(name), true) if name != crate::engine::flux::REPO_SECRET => {
            return Err(ScenarioError::in_file(
                &found.sync,
                format!(
                    "GitRepository flux-system: spec.secretRef names Secret {name}; drill restores repo.credentials as Secret {}",
                    crate::engine::flux::REPO_SECRET
                ),
            ));
        }
        _ => {}
    }
    Ok(())
}
