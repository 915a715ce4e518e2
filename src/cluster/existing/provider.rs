//! An existing cluster, by kubeconfig context, let through the blast-radius guard
//! ([`super::guard`], the only place that makes one): drill never creates, deletes or
//! touches its containers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Result, bail};
use futures::FutureExt as _;
use futures::future::BoxFuture;

use crate::cluster::provider::{ClusterProvider, client_for};

#[derive(Debug, Clone)]
pub struct ExistingProvider {
    context: String,
    kubeconfig: PathBuf,
}

impl ExistingProvider {
    pub(super) fn new(context: &str, kubeconfig: &Path) -> ExistingProvider {
        ExistingProvider {
            context: context.to_string(),
            kubeconfig: kubeconfig.to_path_buf(),
        }
    }
}

impl ClusterProvider for ExistingProvider {
    fn name(&self) -> &str {
        &self.context
    }

    fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    fn client(&self) -> BoxFuture<'_, Result<kube::Client>> {
        client_for(&self.kubeconfig, Some(self.context.clone())).boxed()
    }

    fn owner_run(&self) -> Option<&str> {
        None
    }

    fn delete(&self) -> BoxFuture<'_, Result<()>> {
        async move { bail!("drill did not create cluster {}: it is never deleted", self.context) }.boxed()
    }

    fn recreate(&self) -> BoxFuture<'_, Result<Arc<dyn ClusterProvider>>> {
        async move { bail!("drill cannot rebuild cluster {}: it did not create it", self.context) }.boxed()
    }

    fn node_container(&self, _node: &str) -> Option<String> {
        None
    }
}
