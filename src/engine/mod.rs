//! GitOps engines: install, bootstrap the root sync, request reconciles.

pub mod apply;
pub mod flux;
