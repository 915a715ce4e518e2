//! The cluster a run acts on, behind one interface: a kind cluster drill created
//! ([`super::kind::provider::KindProvider`]) or an existing one let through the
//! blast-radius guard ([`super::existing::provider::ExistingProvider`]). Each provider
//! folder has the same files: `mod.rs` (how it talks to its clusters) and `provider.rs`
//! (the [`ClusterProvider`] implementation). Boxed futures keep the trait object-safe.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use futures::future::BoxFuture;

pub trait ClusterProvider: Send + Sync + std::fmt::Debug {
    /// The kind cluster name, or the existing cluster's context.
    fn name(&self) -> &str;

    fn kubeconfig(&self) -> &Path;

    fn client(&self) -> BoxFuture<'_, Result<kube::Client>>;

    /// The run whose owner mark is on the cluster's nodes; None for a cluster drill did
    /// not create, which it never deletes and whose containers it never touches.
    fn owner_run(&self) -> Option<&str>;

    fn owned(&self) -> bool {
        self.owner_run().is_some()
    }

    /// Deletes the cluster; an error for a cluster drill did not create.
    fn delete(&self) -> BoxFuture<'_, Result<()>>;

    /// The same cluster again, after it was deleted (the rebuild of `delete-cluster`).
    fn recreate(&self) -> BoxFuture<'_, Result<Arc<dyn ClusterProvider>>>;

    /// The container of a node, when the provider's nodes are containers drill may touch.
    fn node_container(&self, node: &str) -> Option<String>;
}

/// A client for `context` of `kubeconfig` (None: the file's current context).
pub async fn client_for(kubeconfig: &Path, context: Option<String>) -> Result<kube::Client> {
    let file = kube::config::Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("failed to read kubeconfig {}", kubeconfig.display()))?;
    let options = kube::config::KubeConfigOptions {
        context,
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(file, &options)
        .await
        .with_context(|| format!("invalid kubeconfig {}", kubeconfig.display()))?;
    kube::Client::try_from(config).context("failed to build a Kubernetes client")
}
