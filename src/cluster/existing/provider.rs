//! An existing cluster, by kubeconfig context, let through the blast-radius guard
//! ([`super::guard`], the only place that makes one): drill never creates, deletes or
//! touches its containers. Its clients come from the kubeconfig as the guard read and
//! checked it, never from the file again.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use futures::FutureExt as _;
use futures::future::BoxFuture;

use super::PinnedKubeconfig;
use crate::cluster::provider::ClusterProvider;

#[derive(Debug, Clone)]
pub struct ExistingProvider {
    context: String,
    kubeconfig: PinnedKubeconfig,
}

impl ExistingProvider {
    pub(super) fn new(context: &str, kubeconfig: PinnedKubeconfig) -> ExistingProvider {
        ExistingProvider {
            context: context.to_string(),
            kubeconfig,
        }
    }

    async fn pinned_client(&self) -> Result<kube::Client> {
        let options = kube::config::KubeConfigOptions {
            context: Some(self.context.clone()),
            ..Default::default()
        };
        let config = kube::Config::from_custom_kubeconfig(self.kubeconfig.config.clone(), &options)
            .await
            .with_context(|| format!("invalid kubeconfig {}", self.kubeconfig.source.display()))?;
        kube::Client::try_from(config).context("failed to build a Kubernetes client")
    }
}

impl ClusterProvider for ExistingProvider {
    fn name(&self) -> &str {
        &self.context
    }

    fn kubeconfig(&self) -> &Path {
        &self.kubeconfig.source
    }

    fn client(&self) -> BoxFuture<'_, Result<kube::Client>> {
        self.pinned_client().boxed()
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
