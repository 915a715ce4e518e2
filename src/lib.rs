//! gitops-drill: disaster-recovery rehearsals for GitOps-run Kubernetes.
//!
//! The pipeline: [`scenario`] (strict YAML → validated plan) → runner (cluster,
//! engine, disaster, observe; emits [`event::DrillEvent`]s) → [`timeline`] (pure fold)
//! → [`assert`] (pure verdicts) → [`report`] (pure renderers, atomic writer).

pub mod assert;
pub mod cli;
pub mod event;
pub mod report;
pub mod scenario;
pub mod timeline;
