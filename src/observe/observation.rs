//! What drill knows of one object at one moment: [`Observation`], made by the
//! readiness rules and kept by the cluster state.

use jiff::Timestamp;

use crate::event::ObjectRef;

#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub object: ObjectRef,
    /// False once the object is deleted.
    pub present: bool,
    pub ready: bool,
    pub reason: String,
    pub message: String,
    /// Sources: the artifact revision. Kustomization: lastAppliedRevision. HelmRelease: lastAttemptedRevision.
    pub revision: Option<String>,
    /// The source a Kustomization or HelmRelease reads from.
    pub source: Option<ObjectRef>,
    /// Objects a Kustomization applied (status.inventory).
    pub inventory: Vec<ObjectRef>,
    /// What this object waits for: dependsOn, its source, or the Kustomization/HelmRelease that manages it.
    pub depends_on: Vec<ObjectRef>,
    /// The API server's lastTransitionTime of the readiness condition.
    pub api_transition: Option<Timestamp>,
    /// Reconciliation paused (Flux `spec.suspend: true`).
    pub suspended: bool,
    /// The last `reconcile.fluxcd.io/requestedAt` token the controller handled
    /// (Argo CD: `status.reconciledAt`).
    pub last_handled: Option<String>,
    /// Argo CD sync wave (`argocd.argoproj.io/sync-wave`).
    pub wave: Option<i64>,
    /// Argo CD: the last sync operation (`status.operationState`), if any.
    pub operation: Option<SyncOperation>,
    /// Flux: Ready is Unknown only because a reconcile of the current generation is under
    /// way (reason Progressing): a periodic re-check, unless the spec or revision changed.
    pub rechecking: bool,
}

/// An Argo CD sync operation as the Application's status reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncOperation {
    /// Running, Succeeded, Failed, Error, Terminating.
    pub phase: String,
    /// The revision it syncs (`syncResult.revision`, or the requested one while running).
    pub revision: Option<String>,
    pub started_at: Option<Timestamp>,
}

impl Observation {
    pub fn deleted(object: ObjectRef) -> Self {
        Observation {
            object,
            present: false,
            ready: false,
            reason: "Deleted".into(),
            message: "the object does not exist".into(),
            revision: None,
            source: None,
            inventory: vec![],
            depends_on: vec![],
            api_transition: None,
            suspended: false,
            last_handled: None,
            wave: None,
            operation: None,
            rechecking: false,
        }
    }
}
