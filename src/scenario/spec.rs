//! The scenario file format: strict YAML (unknown fields are errors), kebab-case keys,
//! one externally tagged enum per choice so every error keeps its line and column.
//! `drill schema` prints the JSON schema generated from these types.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use super::types::{Duration, Label, RelPath};

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

/// Which engine a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EngineKind {
    Flux,
    Argocd,
}

impl EngineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Flux => "flux",
            EngineKind::Argocd => "argocd",
        }
    }
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SyncPolicy {
    #[serde(default = "yes")]
    pub automated: bool,
    #[serde(default = "yes")]
    pub self_heal: bool,
    #[serde(default = "yes")]
    pub prune: bool,
}

impl Default for SyncPolicy {
    fn default() -> Self {
        SyncPolicy {
            automated: true,
            self_heal: true,
            prune: true,
        }
    }
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
    },
    Remote {
        url: String,
        git_ref: String,
        credentials: Option<Credentials>,
    },
}

impl Repo {
    pub fn credentials(&self) -> Option<&Credentials> {
        match self {
            Repo::Local { credentials, .. } | Repo::Remote { credentials, .. } => credentials.as_ref(),
        }
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
}

/// HTTP basic-auth repo credentials (a token as the password works for GitHub and
/// GitLab), restored in `secret-bootstrap`: Flux's GitRepository `secretRef`, Argo CD's
/// repository secret. They come from the environment, never from the scenario file.
/// With `path:`, drill's own Git server demands them too, so the restore is rehearsed
/// for real: a rebuild without them cannot fetch.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Credentials {
    /// The environment variable holding the username.
    pub username_env: String,
    /// The environment variable holding the password or token.
    pub password_env: String,
}

impl TryFrom<RawRepo> for Repo {
    type Error = String;

    fn try_from(raw: RawRepo) -> Result<Self, String> {
        match (raw.path, raw.url) {
            (Some(path), None) => Ok(Repo::Local {
                path,
                git_ref: raw.git_ref.unwrap_or_else(|| "HEAD".into()),
                credentials: raw.credentials,
            }),
            (None, Some(url)) => {
                let scheme_ok = ["http://", "https://", "ssh://"].iter().any(|s| url.starts_with(s));
                if !scheme_ok {
                    return Err(format!(
                        "repo: url {url:?} must start with http://, https:// or ssh:// (Flux accepts no other scheme)"
                    ));
                }
                Ok(Repo::Remote {
                    url,
                    git_ref: raw.git_ref.unwrap_or_else(|| "main".into()),
                    credentials: raw.credentials,
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

/// One damage step, followed by a timed recovery.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub enum Disaster {
    /// Delete namespaces (and everything in them).
    DeleteNamespace(DeleteNamespace),
    /// Destroy the whole cluster, then rebuild it from Git.
    DeleteCluster(DeleteCluster),
    /// Kill a node's container abruptly (SIGKILL, a power cut), then start it again;
    /// recovered once every pod that was Ready on the node runs again.
    KillNode(KillNode),
    /// Delete the pods a label selector matches, as a node drain or an eviction does:
    /// their controllers make new ones, which read their config afresh.
    DeletePods(DeletePods),
    /// Hand-edit a live object the way a human would (`kubectl edit`), then watch
    /// whether the engine heals it (or, for expected drift, leaves it alone).
    Drift(Drift),
    /// Pause reconciliation of one app (Flux `spec.suspend: true`).
    Suspend(Suspend),
    /// Resume a paused app; the engine applies Git again.
    Resume(Resume),
    /// Commit a change to the served repo and wait for the engine to apply it.
    Commit(Commit),
    /// Commit a change that is meant to break an app, and wait until it does.
    BadCommit(BadCommit),
    /// Revert an earlier commit step with `git revert` (a new commit, never a force push).
    GitRevert(GitRevert),
    /// The incident workflow: pause one app, mitigate by hand, check the others still
    /// reconcile, backport the mitigation to Git, resume, confirm Git and cluster agree.
    BreakGlass(BreakGlass),
    /// Argo CD only: roll one Application back to an earlier entry of its sync history,
    /// as the UI's "History and rollback" does, and watch what auto-sync does next.
    ArgocdHistoryRollback(HistoryRollback),
}

impl Disaster {
    pub fn kind(&self) -> &'static str {
        match self {
            Disaster::DeleteNamespace(_) => "delete-namespace",
            Disaster::DeleteCluster(_) => "delete-cluster",
            Disaster::KillNode(_) => "kill-node",
            Disaster::DeletePods(_) => "delete-pods",
            Disaster::Drift(_) => "drift",
            Disaster::Suspend(_) => "suspend",
            Disaster::Resume(_) => "resume",
            Disaster::Commit(_) => "commit",
            Disaster::BadCommit(_) => "bad-commit",
            Disaster::GitRevert(_) => "git-revert",
            Disaster::BreakGlass(_) => "break-glass",
            Disaster::ArgocdHistoryRollback(_) => "argocd-history-rollback",
        }
    }

    pub fn operator_action(&self) -> Option<OperatorAction> {
        match self {
            Disaster::DeleteNamespace(d) => d.operator_action,
            Disaster::DeleteCluster(d) => d.operator_action,
            Disaster::KillNode(d) => d.operator_action,
            Disaster::DeletePods(d) => d.operator_action,
            Disaster::Drift(d) => d.operator_action,
            Disaster::Resume(d) => d.operator_action,
            Disaster::Commit(d) => d.operator_action,
            Disaster::BadCommit(d) => d.operator_action,
            Disaster::GitRevert(d) => d.operator_action,
            Disaster::Suspend(_) | Disaster::BreakGlass(_) | Disaster::ArgocdHistoryRollback(_) => None,
        }
    }

    /// What the step must end in: everything Ready again (timed as a recovery), a
    /// degraded app, or nothing to wait for.
    pub fn outcome(&self) -> StepOutcome {
        match self {
            Disaster::DeleteNamespace(_) | Disaster::DeleteCluster(_) | Disaster::KillNode(_) => StepOutcome::Recovered,
            Disaster::DeletePods(d) => d.expect,
            Disaster::Drift(d) => match d.expect {
                DriftExpect::Healed => StepOutcome::Recovered,
                DriftExpect::Kept => StepOutcome::Nothing,
            },
            Disaster::Suspend(_) => StepOutcome::Nothing,
            Disaster::Resume(d) => d.expect,
            Disaster::Commit(d) => d.expect,
            Disaster::BadCommit(_) => StepOutcome::Degraded,
            Disaster::GitRevert(d) => d.expect,
            Disaster::BreakGlass(_) => StepOutcome::Recovered,
            // Judged by its own actions (rolled back, then re-applied or held).
            Disaster::ArgocdHistoryRollback(_) => StepOutcome::Nothing,
        }
    }

    /// The step's own budget, where it overrides `expect.rto`.
    pub fn within(&self) -> Option<Duration> {
        match self {
            Disaster::Drift(d) => d.within,
            Disaster::DeletePods(d) => d.within,
            Disaster::Resume(d) => d.within,
            Disaster::Commit(d) => d.within,
            Disaster::BadCommit(d) => d.within,
            Disaster::GitRevert(d) => d.within,
            Disaster::ArgocdHistoryRollback(d) => d.within,
            _ => None,
        }
    }
}

/// How a step ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum StepOutcome {
    /// Everything back to Ready at the served revision (timed against the budget).
    #[default]
    Recovered,
    /// Some app breaks: an object stays not Ready, or the engine reports a failure.
    Degraded,
    /// Nothing to wait for (the next step's wait covers it).
    Nothing,
}

/// A live object, as `kubectl get` names it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Target {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub namespace: Option<String>,
    pub name: String,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{}/{}", self.kind, ns, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DriftExpect {
    /// The engine must put Git's value back (self-heal).
    #[default]
    Healed,
    /// The engine must leave the live value alone: expected drift (an ignore rule, HPA
    /// replicas) or self-heal switched off. drill asks for a reconcile and checks.
    Kept,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Drift {
    #[schemars(with = "Target")]
    pub target: Spanned<Target>,
    /// A JSON merge patch, written as YAML, e.g. `{data: {DB_HOST: db-old}}` or `{spec: {replicas: 3}}`.
    #[schemars(with = "serde_json::Value")]
    pub patch: Spanned<serde_json::Value>,
    #[serde(default)]
    pub expect: DriftExpect,
    /// Who makes the change, as the API server records it: `kubectl-edit` (a person, the
    /// default) or a controller's field manager, e.g. `kube-controller-manager` for an HPA
    /// scaling a Deployment. Flux takes over fields kubectl set, not those of controllers.
    #[serde(default)]
    pub field_manager: Option<String>,
    /// With `expect: kept`, how long to wait for the engine's reconcile before checking.
    #[serde(default = "default_hold")]
    pub hold: Duration,
    #[serde(default)]
    pub within: Option<Duration>,
    #[serde(default)]
    pub operator_action: Option<OperatorAction>,
}

fn default_hold() -> Duration {
    Duration(std::time::Duration::from_secs(30))
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Suspend {
    /// The app to pause: a Flux Kustomization in flux-system (or `namespace/name`).
    #[schemars(with = "String")]
    pub app: Spanned<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Resume {
    #[schemars(with = "String")]
    pub app: Spanned<String>,
    #[serde(default)]
    pub expect: StepOutcome,
    #[serde(default)]
    pub within: Option<Duration>,
    #[serde(default)]
    pub operator_action: Option<OperatorAction>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HistoryRollback {
    /// The Application to roll back (in namespace argocd).
    #[schemars(with = "String")]
    pub app: Spanned<String>,
    /// What auto-sync must do after the rollback: `reapplied` (it syncs Git's revision
    /// again, undoing the rollback: the trap the rehearsal shows) or `held` (the
    /// rollback stays, e.g. with auto-sync off).
    #[serde(default)]
    pub expect: RollbackExpect,
    /// How long to wait for the rollback and then for auto-sync (default: expect.rto).
    #[serde(default)]
    pub within: Option<Duration>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RollbackExpect {
    #[default]
    Reapplied,
    Held,
}

/// One literal edit of a file in the fleet: `find` must occur exactly once.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Edit {
    /// Path inside the served fleet folder, e.g. apps/users-api/deployment.yaml.
    pub file: RelPath,
    pub find: String,
    pub replace: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Commit {
    pub message: String,
    #[schemars(with = "Vec<Edit>")]
    pub edits: Spanned<Vec<Edit>>,
    #[serde(default)]
    pub expect: StepOutcome,
    #[serde(default)]
    pub within: Option<Duration>,
    #[serde(default)]
    pub operator_action: Option<OperatorAction>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BadCommit {
    pub message: String,
    #[schemars(with = "Vec<Edit>")]
    pub edits: Spanned<Vec<Edit>>,
    /// How long the app may take to degrade.
    #[serde(default)]
    pub within: Option<Duration>,
    #[serde(default)]
    pub operator_action: Option<OperatorAction>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct GitRevert {
    /// The 1-based number of the commit or bad-commit step to revert; default: the last one.
    #[serde(default)]
    #[schemars(with = "Option<usize>")]
    pub step: Option<Spanned<usize>>,
    #[serde(default)]
    pub expect: StepOutcome,
    #[serde(default)]
    pub within: Option<Duration>,
    #[serde(default)]
    pub operator_action: Option<OperatorAction>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BreakGlass {
    /// The one app to pause (a Flux Kustomization).
    #[schemars(with = "String")]
    pub app: Spanned<String>,
    /// Who owns the pause; recorded in the report.
    pub owner: String,
    /// Resume and backport must both happen within this long after the pause.
    pub deadline: Duration,
    /// The manual mitigation, applied to the live cluster while paused.
    pub mitigation: Mitigation,
    /// How long the mitigation runs before the backport (the incident's length).
    #[serde(default)]
    pub hold: Option<Duration>,
    /// The commit that puts the mitigation into Git.
    pub backport: Backport,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Mitigation {
    #[schemars(with = "Target")]
    pub target: Spanned<Target>,
    #[schemars(with = "serde_json::Value")]
    pub patch: Spanned<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Backport {
    pub message: String,
    #[schemars(with = "Vec<Edit>")]
    pub edits: Spanned<Vec<Edit>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DeleteNamespace {
    #[schemars(with = "Vec<Label>")]
    pub namespaces: Spanned<Vec<Label>>,
    #[serde(default)]
    pub operator_action: Option<OperatorAction>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DeleteCluster {
    /// Secrets (named as under `secrets:`) whose backup is lost with the cluster: the
    /// rebuild goes without them, to rehearse what a lost key costs.
    #[serde(default)]
    #[schemars(with = "Option<Vec<SecretName>>")]
    pub lost_secrets: Option<Spanned<Vec<SecretName>>>,
    #[serde(default)]
    pub operator_action: Option<OperatorAction>,
}

/// A secret that lives outside Git, by its field under `secrets:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SecretName {
    SopsAge,
    SealedSecrets,
    /// `repo.credentials`.
    RepoCredentials,
}

impl DeleteCluster {
    pub fn lost(&self) -> &[SecretName] {
        self.lost_secrets.as_ref().map_or(&[], |l| l.value.as_slice())
    }
}

impl SecretName {
    pub fn field(self) -> &'static str {
        match self {
            SecretName::SopsAge => "sops-age",
            SecretName::SealedSecrets => "sealed-secrets",
            SecretName::RepoCredentials => "repo-credentials",
        }
    }

    /// Where the scenario configures it, for messages.
    pub fn config_path(self) -> &'static str {
        match self {
            SecretName::SopsAge => "secrets.sops-age",
            SecretName::SealedSecrets => "secrets.sealed-secrets",
            SecretName::RepoCredentials => "repo.credentials",
        }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KillNode {
    /// Node role suffix as kind names containers: `control-plane`, `worker`, `worker2`, ...
    #[schemars(with = "Label")]
    pub node: Spanned<Label>,
    #[serde(default)]
    pub operator_action: Option<OperatorAction>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DeletePods {
    #[schemars(with = "String")]
    pub namespace: Spanned<String>,
    /// Labels every deleted pod carries, e.g. `{app: users-api}` (at least one: drill
    /// never deletes a whole namespace's pods by accident).
    #[schemars(with = "BTreeMap<String, String>")]
    pub selector: Spanned<BTreeMap<String, String>>,
    /// What the new pods must end in: `recovered` (Ready again, the default) or
    /// `degraded` (they cannot start with the config they read now).
    #[serde(default)]
    pub expect: StepOutcome,
    #[serde(default)]
    pub within: Option<Duration>,
    #[serde(default)]
    pub operator_action: Option<OperatorAction>,
}

/// What the operator does right after the damage, so runs can compare
/// "wait for the engine's interval" with "operator triggers a reconcile".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OperatorAction {
    /// Annotate every Flux source and Kustomization with a reconcile request.
    ReconcileNow,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Expect {
    /// Budget for each recovery: disaster start to everything Ready again.
    pub rto: Duration,
    /// Optional budgets for single phases.
    #[serde(default)]
    pub phases: BTreeMap<PhaseName, Duration>,
    /// Every Flux object Ready at its current generation and revision, and every
    /// Deployment/StatefulSet/DaemonSet available.
    #[serde(default = "yes")]
    pub all_ready: bool,
    /// Extra checks on live objects after recovery.
    #[serde(default)]
    pub objects: Vec<ObjectCheck>,
    /// Drift that stayed longer than this is a finding (drift steps; default: none).
    #[serde(default)]
    pub max_drift_age: Option<Duration>,
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
