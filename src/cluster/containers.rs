//! Docker's container inventory by label: how drill finds the nodes and caches it owns.

use std::collections::HashMap;

use anyhow::{Context, Result};
use bollard::Docker;
use bollard::models::ContainerSummary;
use bollard::query_parameters::ListContainersOptionsBuilder;

/// Containers carrying `label` (`key` or `key=value`); stopped ones too when `all`.
pub async fn labelled(docker: &Docker, label: &str, all: bool) -> Result<Vec<ContainerSummary>> {
    let filters = HashMap::from([("label".to_string(), vec![label.to_string()])]);
    docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(all)
                .filters(&filters)
                .build(),
        ))
        .await
        .context("failed to list Docker containers")
}

/// A container's name without Docker's leading slash.
pub fn name_of(c: &ContainerSummary) -> Option<String> {
    c.names.as_ref()?.first().map(|n| n.trim_start_matches('/').to_string())
}

/// The value of `key` among a container's labels.
pub fn label_of(c: &ContainerSummary, key: &str) -> Option<String> {
    c.labels.as_ref()?.get(key).cloned()
}
