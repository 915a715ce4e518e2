//! The scenario file format: strict YAML (unknown fields are errors), kebab-case keys,
//! one externally tagged enum per choice so every error keeps its line and column.
//! `drill schema` prints the JSON schema generated from these types.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

pub use crate::event::StepOutcome;
pub use crate::model::{
    Credentials, DriftExpect, Edit, EngineKind, OperatorAction, RollbackExpect, SecretName, SyncPolicy, Target,
};
use crate::model::{Duration, Label, RelPath};

/// A rehearsal: which cluster, which GitOps engine and repo, what damage, what must hold after.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Scenario {
    /// Short name; used for the report directory and the cluster name.
    pub name: Label,
    #[serde(default)]
    pub description: String,
    pub cluster: ClusterSpec,
    pub engine: EngineSpec,
    /// Secrets that live outside Git, restored in the timed `secret-bootstrap` phase.
    #[serde(default)]
    pub secrets: Option<Secrets>,
    /// Where a new node's images come from: `cold` (pulled when pods need them, through
    /// the node's registry settings), `preloaded` (drill pulls the fleet's images into
    /// every node before the engine starts, timed as phase `image-preload`) or `mirror`
    /// (pulled through a cache drill runs beside the cluster, which outlives a
    /// `delete-cluster` step: the rebuild pulls from it; phase `image-mirror`).
    #[serde(default)]
    pub images: ImageMode,
    /// Ordered damage steps. Each is followed by a timed recovery.
    #[serde(default)]
    pub disasters: Vec<Disaster>,
    pub expect: Expect,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ImageMode {
    #[default]
    Cold,
    Preloaded,
    Mirror,
}

impl ImageMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ImageMode::Cold => "cold",
            ImageMode::Preloaded => "preloaded",
            ImageMode::Mirror => "mirror",
        }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub enum ClusterSpec {
    /// A kind cluster that drill creates and owns.
    Kind(KindCluster),
    /// A cluster drill did not create. Guarded: see docs/safety.md.
    Existing(ExistingCluster),
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KindCluster {
    /// A kind config file, relative to the scenario file (e.g. ../kind-configs/1node.yaml).
    #[schemars(with = "String")]
    pub config: Spanned<String>,
    /// Overrides every node's image (otherwise the config's, or the profile's).
    #[serde(default)]
    pub node_image: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ExistingCluster {
    /// The exact kubeconfig context drill may touch; `drill run --allow-context` must
    /// repeat it. Its API server must be a container on this machine's Docker networks
    /// unless `--i-know-this-is-not-a-test-cluster` is given.
    pub context: String,
    /// The kubeconfig file (relative to the scenario file, or `~/...`); default
    /// $KUBECONFIG's first file, else ~/.kube/config.
    #[serde(default)]
    pub kubeconfig: Option<String>,
}

/// The GitOps engine that rebuilds the cluster. A fleet with entry points for both may
/// name both; `drill run --engine` picks one (default: flux).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EngineSpec {
    #[serde(default)]
    pub flux: Option<FluxEngine>,
    #[serde(default)]
    pub argocd: Option<ArgoCdEngine>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ArgoCdEngine {
    pub repo: Repo,
    /// The folder of the root app-of-apps (Applications, ApplicationSets), e.g. argocd/root.
    /// drill creates the root Application `root` in namespace argocd pointing at it.
    pub path: RelPath,
    /// The sync policy of the root Application (children carry their own in Git).
    #[serde(default)]
    pub sync_policy: SyncPolicy,
    /// The root Application's name in namespace argocd (default `root`): the one drill
    /// creates, or on `cluster: existing` the cluster's own app-of-apps, whose tree
    /// drill follows.
    #[serde(default)]
    pub root_app: Option<Label>,
    /// A self-managed Argo CD: the repo's folder that installs Argo CD (a kustomization,
    /// e.g. argocd/install, usually also synced by an Application of the root app-of-apps).
    /// drill builds it (no kustomize binary; a subset, see the README) and installs Argo CD
    /// from it instead of a profile's or a release's install.yaml. A remote base that is
    /// upstream's install.yaml at a version comes from the profile's install of that
    /// version or drill's release cache (`version:` fills it); drill downloads no other.
    #[serde(default)]
    pub install_path: Option<RelPath>,
    /// The engine's version, for a repo that does not pin its install (e.g. v2.9.5 /
    /// v3.2.11): its upstream release's install.yaml is fetched once ($DRILL_RELEASES_URL,
    /// default https://github.com), verified and cached. A profile's install manifest wins.
    #[serde(default)]
    pub version: Option<String>,
    /// The SHA-256 of that install.yaml, when the release publishes none (Argo CD) or to
    /// pin it harder than the release's checksum file does.
    #[serde(default)]
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FluxEngine {
    pub repo: Repo,
    /// The bootstrap path inside the repo, applied by the root Kustomization (e.g. clusters/demo).
    pub path: RelPath,
    /// Reconcile interval of the root GitRepository and Kustomization.
    #[serde(default = "default_interval")]
    pub interval: Duration,
    /// For a fleet made by `flux bootstrap` (the path holds flux-system/gotk-sync.yaml):
    /// keep gotk-sync.yaml's GitRepository URL, so the cluster fetches from the team's Git
    /// host with the restored `repo.credentials`, instead of drill's served copy of the
    /// checkout (the default). Commit steps need the served copy.
    #[serde(default)]
    pub keep_source_url: bool,
    /// The engine's version, for a repo that does not pin its install (e.g. v2.9.5 /
    /// v3.2.11): its upstream release's install.yaml is fetched once ($DRILL_RELEASES_URL,
    /// default https://github.com), verified and cached. A profile's install manifest wins.
    #[serde(default)]
    pub version: Option<String>,
    /// The SHA-256 of that install.yaml, when the release publishes none (Argo CD) or to
    /// pin it harder than the release's checksum file does.
    #[serde(default)]
    pub sha256: Option<String>,
}

fn default_interval() -> Duration {
    Duration(std::time::Duration::from_secs(60))
}

/// Where the desired state lives: a local checkout (served by drill to the cluster at a
/// pinned commit) or a remote URL the cluster can reach.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(try_from = "RawRepo")]
#[schemars(with = "RawRepo")]
pub enum Repo {
    Local {
        path: String,
        git_ref: String,
        credentials: Option<Credentials>,
        ssh_key: Option<SshKey>,
    },
    Remote {
        url: String,
        git_ref: String,
        credentials: Option<Credentials>,
        ssh_key: Option<SshKey>,
    },
}

impl Repo {
    pub fn credentials(&self) -> Option<&Credentials> {
        match self {
            Repo::Local { credentials, .. } | Repo::Remote { credentials, .. } => credentials.as_ref(),
        }
    }

    pub fn ssh_key(&self) -> Option<&SshKey> {
        match self {
            Repo::Local { ssh_key, .. } | Repo::Remote { ssh_key, .. } => ssh_key.as_ref(),
        }
    }
}

/// An ssh deploy key for a Git host reached over `ssh://` (a `flux bootstrap` repo's
/// gotk-sync.yaml URL, kept with `engine.flux.keep-source-url`, or `url: ssh://...`):
/// drill's preflight reads the host with it (`git ls-remote`), so a key the host refuses
/// fails before any cluster exists, and secret-bootstrap restores it as the source's
/// Secret (`identity`, `known_hosts`). Flux only. Each from a file (relative to the
/// scenario file) or an environment variable, never the scenario file itself.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SshKey {
    /// The private key file (OpenSSH or PEM format, no passphrase).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    /// The environment variable holding the private key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_env: Option<String>,
    /// A known_hosts file naming the Git host's public key (`ssh-keyscan HOST`, checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_hosts_file: Option<String>,
    /// The environment variable holding those known_hosts lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_hosts_env: Option<String>,
}

impl SshKey {
    /// Where the private key comes from.
    pub fn key(&self) -> KeySource {
        match (&self.key_file, &self.key_env) {
            (Some(file), _) => KeySource::KeyFile(file.clone()),
            (None, Some(var)) => KeySource::KeyEnv(var.clone()),
            (None, None) => KeySource::KeyEnv(String::new()),
        }
    }

    /// Where the known_hosts lines come from.
    pub fn known_hosts(&self) -> KeySource {
        match (&self.known_hosts_file, &self.known_hosts_env) {
            (Some(file), _) => KeySource::KeyFile(file.clone()),
            (None, Some(var)) => KeySource::KeyEnv(var.clone()),
            (None, None) => KeySource::KeyEnv(String::new()),
        }
    }

    /// Exactly one source for each half.
    fn check(&self) -> Result<(), String> {
        let one = |a: &Option<String>, b: &Option<String>, what: &str| match (a, b) {
            (Some(_), Some(_)) => Err(format!("repo.ssh-key: give {what}-file or {what}-env, not both")),
            (None, None) => Err(format!("repo.ssh-key: missing {what}-file or {what}-env")),
            _ => Ok(()),
        };
        one(&self.key_file, &self.key_env, "key")?;
        one(&self.known_hosts_file, &self.known_hosts_env, "known-hosts")
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawRepo {
    /// A local Git checkout, relative to the scenario file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A remote repository URL (http, https or ssh).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Branch, tag or commit; default HEAD of the checkout, or `main` for a URL.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Credentials>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_key: Option<SshKey>,
}

impl TryFrom<RawRepo> for Repo {
    type Error = String;

    fn try_from(raw: RawRepo) -> Result<Self, String> {
        if let Some(key) = &raw.ssh_key {
            key.check()?;
            if raw.credentials.is_some() {
                return Err(
                    "repo: give either `credentials:` (https, basic auth) or `ssh-key:` (ssh://), not both".into(),
                );
            }
        }
        match (raw.path, raw.url) {
            (Some(path), None) => Ok(Repo::Local {
                path,
                git_ref: raw.git_ref.unwrap_or_else(|| "HEAD".into()),
                credentials: raw.credentials,
                ssh_key: raw.ssh_key,
            }),
            (None, Some(url)) => {
                let scheme_ok = ["http://", "https://", "ssh://"].iter().any(|s| url.starts_with(s));
                if !scheme_ok {
                    return Err(format!(
                        "repo: url {url:?} must start with http://, https:// or ssh:// (Flux accepts no other scheme)"
                    ));
                }
                match (url.starts_with("ssh://"), &raw.ssh_key) {
                    (true, None) => {
                        return Err(format!(
                            "repo: url {url:?} is ssh://, and the scenario gives no `ssh-key:` (a deploy key and the host's known_hosts)"
                        ));
                    }
                    (false, Some(_)) => {
                        return Err(format!("repo: `ssh-key:` is for an ssh:// url, and {url:?} is not one"));
                    }
                    _ => {}
                }
                Ok(Repo::Remote {
                    url,
                    git_ref: raw.git_ref.unwrap_or_else(|| "main".into()),
                    credentials: raw.credentials,
                    ssh_key: raw.ssh_key,
                })
            }
            (Some(_), Some(_)) => Err("repo: give either `path:` or `url:`, not both".into()),
            (None, None) => Err("repo: missing `path:` (a local checkout) or `url:`".into()),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Secrets {
    /// The age key Flux decrypts SOPS-encrypted manifests with (Kustomization
    /// `decryption: {provider: sops, secretRef: {name: sops-age}}`).
    #[serde(default)]
    pub sops_age: Option<SopsAge>,
    /// The Bitnami sealed-secrets controller's private key, restored from its backup
    /// before the controller (deployed from Git) starts.
    #[serde(default)]
    pub sealed_secrets: Option<SealedSecretsKey>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SealedSecretsKey {
    /// The key backup: what `kubectl get secret -n kube-system -l
    /// sealedsecrets.bitnami.com/sealed-secrets-key -o yaml` printed (a List or Secrets),
    /// from a file or an environment variable; never the scenario file itself.
    #[serde(flatten)]
    pub key: KeySource,
    /// The public certificate the fleet's SealedSecrets were sealed with
    /// (`kubeseal --fetch-cert`), a path inside the fleet. The preflight checks that the
    /// backup holds its key.
    #[serde(default)]
    pub cert: Option<String>,
    /// The controller's namespace, where its keys live.
    #[serde(default = "default_sealed_secrets_namespace")]
    pub namespace: String,
}

fn default_sealed_secrets_namespace() -> String {
    "kube-system".into()
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SopsAge {
    /// Where the key comes from; never the scenario file itself.
    #[serde(flatten)]
    pub key: KeySource,
    /// The Secret in flux-system the Kustomizations name.
    #[serde(default = "default_sops_secret")]
    pub secret: String,
}

fn default_sops_secret() -> String {
    "sops-age".into()
}

/// A key file (relative to the scenario file) or an environment variable holding the key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum KeySource {
    KeyFile(String),
    KeyEnv(String),
}

pub use crate::disaster::Disaster;
pub use crate::disaster::{
    Backport, BadCommit, BreakGlass, Commit, DeleteCluster, DeleteNamespace, DeletePods, Drift, GitRevert,
    HistoryRollback, KillNode, Mitigation, Resume, Suspend,
};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Expect {
    /// Budget for each recovery: disaster start to everything Ready again.
    pub rto: Duration,
    /// Optional budgets for single phases.
    #[serde(default)]
    pub phases: BTreeMap<PhaseName, Duration>,
    /// Every Flux object Ready at its current generation and revision, and every
    /// Deployment/StatefulSet/DaemonSet available, at the end. What is not Ready once the
    /// steps are over (an engine mid-reconcile) is waited for up to `rto`, unless a wait
    /// already failed or the last step degrades on purpose.
    #[serde(default = "yes")]
    pub all_ready: bool,
    /// Extra checks on live objects after recovery.
    #[serde(default)]
    pub objects: Vec<ObjectCheck>,
    /// Drift that stayed longer than this is a finding (drift steps; default: none).
    #[serde(default)]
    pub max_drift_age: Option<Duration>,
    /// Fail when the RTO (the rebuild time, for a run without damage) exceeds the median
    /// of this scenario's recent runs (its history.jsonl) by more than this.
    #[serde(default)]
    pub regression: Option<Regression>,
    /// Services asked over HTTP from the first sync to the end of the run: each one's
    /// downtime per step and success ratio; one not served again by the end fails the run.
    #[serde(default)]
    pub probes: Vec<super::probe::Probe>,
    /// Fail when an object became Ready before what it must follow: Flux its source and
    /// dependsOn, Argo CD the Applications of an earlier sync wave under the same parent.
    /// Without it, such a break is still reported as a finding.
    #[serde(default)]
    pub order: bool,
    /// After the last step, every object the engines' inventories list must exist (a Job
    /// complete, a claim Bound), whatever its kind: a rebuild that lost a ConfigMap or a
    /// custom resource Git declares fails (default true; false skips the check).
    #[serde(default = "yes")]
    pub complete: bool,
    /// After `prune` steps: objects the engine must have deleted (dropped from Git, or
    /// made by hand with an app's marks).
    #[serde(default)]
    pub pruned: Vec<crate::model::ObjectName>,
    /// After `prune` steps: objects the engine must have left in the cluster.
    #[serde(default)]
    pub kept: Vec<crate::model::ObjectName>,
}

/// `expect.regression: {rto: 25%, window: 10}`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Regression {
    /// How much slower than the median of the window a run may be.
    pub rto: crate::model::Percent,
    /// How many of the latest recorded runs make the median (default 10; it needs at
    /// least 3 to judge).
    #[serde(default = "ten")]
    pub window: u32,
}

fn ten() -> u32 {
    10
}

fn yes() -> bool {
    true
}

/// Phases that can carry a budget (see the report's `phases`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PhaseName {
    ClusterCreate,
    ImagePreload,
    ImageMirror,
    EngineInstall,
    SecretBootstrap,
    SourceReady,
    ImagePulls,
    Reconcile,
    WorkloadsReady,
}

impl PhaseName {
    pub const ALL: [PhaseName; 9] = [
        PhaseName::ClusterCreate,
        PhaseName::ImagePreload,
        PhaseName::ImageMirror,
        PhaseName::EngineInstall,
        PhaseName::SecretBootstrap,
        PhaseName::SourceReady,
        PhaseName::ImagePulls,
        PhaseName::Reconcile,
        PhaseName::WorkloadsReady,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            PhaseName::ClusterCreate => "cluster-create",
            PhaseName::EngineInstall => "engine-install",
            PhaseName::SecretBootstrap => "secret-bootstrap",
            PhaseName::ImagePreload => "image-preload",
            PhaseName::ImageMirror => "image-mirror",
            PhaseName::SourceReady => "source-ready",
            PhaseName::ImagePulls => "image-pulls",
            PhaseName::Reconcile => "reconcile",
            PhaseName::WorkloadsReady => "workloads-ready",
        }
    }
}

impl std::fmt::Display for PhaseName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A check on one live object after recovery.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ObjectCheck {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub namespace: Option<String>,
    pub name: String,
    /// Whether the object must exist (true) or be absent (false).
    #[serde(default = "yes")]
    pub exists: bool,
    /// A JSON pointer into the object, e.g. /data/DB_HOST; with `equals`.
    #[serde(default)]
    pub field: Option<String>,
    #[serde(default)]
    pub equals: Option<String>,
}
