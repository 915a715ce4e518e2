//! The kind config a scenario names, read as strictly as the scenario itself: only the
//! fields of kind's `kind.x-k8s.io/v1alpha4` Cluster, so a typo (`extraPortMapings`) is
//! an error at its own file, line and column before any cluster exists, not a kind
//! failure halfway through cluster-create. Values drill does not use are not modelled
//! (`IgnoredAny`): kind checks those itself.

use std::path::Path;

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::model::ScenarioError;

const API_VERSION: &str = "kind.x-k8s.io/v1alpha4";

// Fields serde fills only to accept them are never read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct Cluster {
    kind: Option<String>,
    api_version: Option<String>,
    name: Option<IgnoredAny>,
    #[serde(default)]
    nodes: Vec<Node>,
    networking: Option<Networking>,
    feature_gates: Option<IgnoredAny>,
    runtime_config: Option<IgnoredAny>,
    kubeadm_config_patches: Option<IgnoredAny>,
    #[serde(rename = "kubeadmConfigPatchesJSON6902")]
    kubeadm_config_patches_json6902: Option<IgnoredAny>,
    containerd_config_patches: Option<IgnoredAny>,
    #[serde(rename = "containerdConfigPatchesJSON6902")]
    containerd_config_patches_json6902: Option<IgnoredAny>,
}

#[derive(Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "kebab-case")]
enum Role {
    ControlPlane,
    Worker,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct Node {
    role: Option<Role>,
    image: Option<IgnoredAny>,
    labels: Option<IgnoredAny>,
    extra_mounts: Option<Vec<Mount>>,
    extra_port_mappings: Option<Vec<PortMapping>>,
    kubeadm_config_patches: Option<IgnoredAny>,
    #[serde(rename = "kubeadmConfigPatchesJSON6902")]
    kubeadm_config_patches_json6902: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct Networking {
    ip_family: Option<IgnoredAny>,
    api_server_port: Option<IgnoredAny>,
    api_server_address: Option<IgnoredAny>,
    pod_subnet: Option<IgnoredAny>,
    service_subnet: Option<IgnoredAny>,
    #[serde(rename = "disableDefaultCNI")]
    disable_default_cni: Option<IgnoredAny>,
    kube_proxy_mode: Option<IgnoredAny>,
    dns_search: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct Mount {
    container_path: Option<IgnoredAny>,
    host_path: Option<IgnoredAny>,
    read_only: Option<IgnoredAny>,
    selinux_relabel: Option<IgnoredAny>,
    propagation: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct PortMapping {
    container_port: Option<IgnoredAny>,
    host_port: Option<IgnoredAny>,
    listen_address: Option<IgnoredAny>,
    protocol: Option<IgnoredAny>,
}

/// The node container names kind will make from `text` (the config at `path`):
/// `control-plane`, `control-plane2`, ..., `worker`, `worker2`, ... Errors name `path`.
pub(super) fn node_names(text: &str, path: &Path) -> Result<Vec<String>, ScenarioError> {
    let cluster: Cluster = serde_saphyr::from_str(text).map_err(|e| ScenarioError::from_yaml(path, &e))?;
    if let Some(kind) = cluster.kind.as_deref().filter(|k| *k != "Cluster") {
        return Err(ScenarioError::in_file(
            path,
            format!("kind: {kind:?}: a kind config is `kind: Cluster`"),
        ));
    }
    if let Some(v) = cluster.api_version.as_deref().filter(|v| *v != API_VERSION) {
        return Err(ScenarioError::in_file(
            path,
            format!("apiVersion: {v:?}: kind reads `apiVersion: {API_VERSION}`"),
        ));
    }
    if cluster.nodes.is_empty() {
        return Ok(vec!["control-plane".into()]);
    }
    let (mut control_planes, mut workers) = (0, 0);
    Ok(cluster
        .nodes
        .iter()
        .map(|node| {
            let (role, count) = match node.role.unwrap_or(Role::ControlPlane) {
                Role::ControlPlane => ("control-plane", &mut control_planes),
                Role::Worker => ("worker", &mut workers),
            };
            *count += 1;
            match *count {
                1 => role.to_string(),
                n => format!("{role}{n}"),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Result<Vec<String>, String> {
        node_names(text, Path::new("kind-configs/x.yaml")).map_err(|e| e.to_string())
    }

    #[test]
    fn nodes_are_named_as_kind_names_their_containers() {
        let text = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n  - role: control-plane\n  - role: worker\n  - role: worker\n";
        assert_eq!(names(text).unwrap(), ["control-plane", "worker", "worker2"]);
        assert_eq!(names("kind: Cluster\n").unwrap(), ["control-plane"]);
    }

    #[test]
    fn every_field_the_shipped_configs_use_is_known() {
        for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/kind-configs")).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            node_names(&text, &path).unwrap_or_else(|e| panic!("{e}"));
        }
        let full = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nname: x\nnetworking:\n  podSubnet: 10.0.0.0/16\n  disableDefaultCNI: true\n  apiServerPort: 6443\nfeatureGates: {A: true}\nruntimeConfig: {api/alpha: \"false\"}\ncontainerdConfigPatches: [x]\nnodes:\n  - role: control-plane\n    image: a:1\n    labels: {a: b}\n    extraMounts: [{hostPath: /a, containerPath: /b, readOnly: true, propagation: None}]\n    extraPortMappings: [{containerPort: 80, hostPort: 8080, listenAddress: 127.0.0.1, protocol: TCP}]\n    kubeadmConfigPatches: [x]\n";
        assert_eq!(names(full).unwrap(), ["control-plane"]);
    }

    #[test]
    fn a_typo_is_an_error_at_its_own_line() {
        let err = names("kind: Cluster\nnodes:\n  - role: control-plane\n    extraPortMapings: []\n").unwrap_err();
        assert!(
            err.starts_with("kind-configs/x.yaml:4:5: unknown field `extraPortMapings`"),
            "{err}"
        );
        let err = names("kind: Cluster\nnetworkin: {}\n").unwrap_err();
        assert!(
            err.starts_with("kind-configs/x.yaml:2:1: unknown field `networkin`"),
            "{err}"
        );
        let err = names("kind: Cluster\nnodes:\n  - role: master\n").unwrap_err();
        assert!(
            err.contains("kind-configs/x.yaml:3:") && err.contains("unknown variant `master`"),
            "{err}"
        );
        let err = names("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha3\n").unwrap_err();
        assert!(err.contains("kind reads `apiVersion: kind.x-k8s.io/v1alpha4`"), "{err}");
    }
}
