//! gitops-drill: disaster-recovery rehearsals for GitOps-run Kubernetes.
//!
//! The pipeline: [`scenario`] (strict YAML → validated plan) → runner (cluster,
//! engine, disaster, observe; emits [`event::DrillEvent`]s) → [`timeline`] (pure fold)
//! → [`assert`] (pure verdicts) → [`report`] (pure renderers, atomic writer).

pub mod assert;
pub mod clean;
pub mod cli;
pub mod cluster;
pub mod disaster;
pub mod doctor;
pub mod engine;
pub mod event;
pub mod exit;
pub mod fleet;
pub mod gitserve;
pub mod human;
pub mod images;
pub mod model;
pub mod observe;
pub mod profile;
pub mod repo_auth;
pub mod repo_ssh;
pub mod report;
pub mod resources;
pub mod runlock;
pub mod runlog;
pub mod runner;
pub mod scenario;
pub mod secrets;
pub mod timeline;
