//! A kind cluster drill created: owned (deleted at the end unless kept), marked with the
//! run's owner mark, rebuilt from the same config after a `delete-cluster` step.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use futures::FutureExt as _;
use futures::future::BoxFuture;

use super::{delete_cluster, kind};
use crate::cluster::provider::{ClusterProvider, client_for};

#[derive(Debug, Clone)]
pub struct KindProvider {
    name: String,
    kubeconfig: PathBuf,
    /// The effective kind config ([`super::effective_config`]), kept for a rebuild.
    config: PathBuf,
    /// The run whose owner mark ([`crate::cluster::owner`]) is on every node.
    run_id: String,
}

impl KindProvider {
    /// Creates cluster `name` from a config [`super::effective_config`] wrote for run `run_id`.
    pub async fn create(name: &str, config: &Path, kubeconfig: &Path, run_id: &str) -> Result<KindProvider> {
        let config_arg = config.to_string_lossy();
        let kc = kubeconfig.to_string_lossy();
        kind(&[
            "create",
            "cluster",
            "--name",
            name,
            "--config",
            &config_arg,
            "--kubeconfig",
            &kc,
            "--wait",
            "0s",
        ])
        .await
        .map_err(|err| match super::failure::inotify_hint() {
            // After kind's own words, so the hint reads as the last line.
            Some(hint) => anyhow::anyhow!("{err:#}\n{hint}"),
            None => err,
        })
        .with_context(|| format!("failed to create kind cluster {name}"))?;
        Ok(KindProvider {
            name: name.to_string(),
            kubeconfig: kubeconfig.to_path_buf(),
            config: config.to_path_buf(),
            run_id: run_id.to_string(),
        })
    }
}

impl KindProvider {
    /// Cluster `name`, made by run `run_id` from `config` and kept: taken up as it is
    /// (`--reuse-cluster`, after [`super::kept::find`] checked it).
    pub fn adopt(name: &str, config: &Path, kubeconfig: &Path, run_id: &str) -> KindProvider {
        KindProvider {
            name: name.to_string(),
            kubeconfig: kubeconfig.to_path_buf(),
            config: config.to_path_buf(),
            run_id: run_id.to_string(),
        }
    }
}

impl ClusterProvider for KindProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    fn client(&self) -> BoxFuture<'_, Result<kube::Client>> {
        client_for(&self.kubeconfig, None).boxed()
    }

    fn owner_run(&self) -> Option<&str> {
        Some(&self.run_id)
    }

    fn delete(&self) -> BoxFuture<'_, Result<()>> {
        delete_cluster(&self.name, Some(&self.kubeconfig)).boxed()
    }

    fn recreate(&self) -> BoxFuture<'_, Result<std::sync::Arc<dyn ClusterProvider>>> {
        async move {
            let rebuilt = KindProvider::create(&self.name, &self.config, &self.kubeconfig, &self.run_id).await?;
            Ok(std::sync::Arc::new(rebuilt) as std::sync::Arc<dyn ClusterProvider>)
        }
        .boxed()
    }

    /// kind names a node's container `<cluster>-<node>`, and the Kubernetes node the same.
    fn node_container(&self, node: &str) -> Option<String> {
        Some(format!("{}-{node}", self.name))
    }
}
