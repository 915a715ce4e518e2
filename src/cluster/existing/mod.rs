//! The blast-radius guard for `cluster: existing`: drill damages a cluster it did not
//! create only when the user names its context twice (scenario and `--allow-context`),
//! and only when its API server is a container on this machine's Docker networks,
//! unless the user also consents to more. The decision is made from the kubeconfig and
//! Docker's own inventory, before any request reaches the cluster; then the answering
//! server must prove to be that kind cluster (its nodes are that cluster's containers),
//! so a proxy container in front of a real cluster does not pass. The kubeconfig is read
//! once: the run uses the checked copy, whatever happens to the file afterwards.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use bollard::Docker;

pub mod provider;

use provider::ExistingProvider;

/// What the user consented to on the command line.
#[derive(Debug, Clone, Default)]
pub struct Consent {
    /// `--allow-context`: must equal the scenario's context.
    pub allow_context: Option<String>,
    /// `--i-know-this-is-not-a-test-cluster`: the API server may be elsewhere.
    pub not_a_test_cluster: bool,
}

/// kind's label on every node container, naming its cluster.
pub const KIND_CLUSTER_LABEL: &str = "io.x-k8s.kind.cluster";

/// A running container's addresses, from Docker.
#[derive(Debug, Clone, Default)]
pub struct ContainerAddrs {
    pub name: String,
    /// The kind cluster it is a node of (its `io.x-k8s.kind.cluster` label).
    pub kind_cluster: Option<String>,
    /// Its addresses on Docker networks.
    pub ips: Vec<IpAddr>,
    /// Host ports published to it.
    pub published: Vec<u16>,
}

/// Which local container serves `host:port`, if any: a published port on a loopback
/// address (kind's default kubeconfig), or the container's own address on a Docker
/// network (kind's internal kubeconfig). Host names other than localhost are never
/// resolved: a name could point anywhere.
pub fn local_container<'a>(host: &str, port: u16, containers: &'a [ContainerAddrs]) -> Option<&'a ContainerAddrs> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = if host.eq_ignore_ascii_case("localhost") {
        IpAddr::from([127, 0, 0, 1])
    } else {
        host.parse().ok()?
    };
    if ip.is_loopback() {
        containers.iter().find(|c| c.published.contains(&port))
    } else {
        containers.iter().find(|c| c.ips.contains(&ip))
    }
}

/// The kubeconfig a context is read from: the scenario's (relative to it), else
/// $KUBECONFIG's first file, else ~/.kube/config.
pub fn kubeconfig_path(from_scenario: Option<&str>, scenario_dir: &Path) -> Result<PathBuf> {
    if let Some(p) = from_scenario {
        if let (Some(rest), Some(home)) = (p.strip_prefix("~/"), std::env::var_os("HOME")) {
            return Ok(PathBuf::from(home).join(rest));
        }
        return Ok(scenario_dir.join(p));
    }
    if let Some(first) = std::env::var_os("KUBECONFIG").and_then(|v| std::env::split_paths(&v).next())
        && !first.as_os_str().is_empty()
    {
        return Ok(first);
    }
    let home = std::env::var_os("HOME").context("no kubeconfig: set cluster.existing.kubeconfig or KUBECONFIG")?;
    Ok(PathBuf::from(home).join(".kube/config"))
}

/// The API server URL of `context` in `kubeconfig`.
pub fn server_of(kubeconfig: &Path, context: &str) -> Result<String> {
    PinnedKubeconfig::read(kubeconfig)?.server(context)
}

/// Splits `https://host:port/...` into host and port (443 when none is given).
pub fn host_and_port(server: &str) -> Result<(String, u16)> {
    let uri: hyper::Uri = server
        .parse()
        .with_context(|| format!("API server URL {server:?} is not a URL"))?;
    let host = uri
        .host()
        .with_context(|| format!("API server URL {server:?} has no host"))?
        .to_string();
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("http") { 80 } else { 443 });
    Ok((host, port))
}

/// Running containers and their addresses.
pub async fn containers(docker: &Docker) -> Result<Vec<ContainerAddrs>> {
    let list = docker
        .list_containers(None::<bollard::query_parameters::ListContainersOptions>)
        .await
        .context("failed to list Docker containers")?;
    Ok(list
        .into_iter()
        .map(|c| ContainerAddrs {
            name: c
                .names
                .and_then(|n| n.first().cloned())
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            ips: c
                .network_settings
                .and_then(|n| n.networks)
                .into_iter()
                .flatten()
                .filter_map(|(_, n)| n.ip_address.and_then(|ip| ip.parse().ok()))
                .collect(),
            published: c.ports.into_iter().flatten().filter_map(|p| p.public_port).collect(),
            kind_cluster: c.labels.and_then(|l| l.get(KIND_CLUSTER_LABEL).cloned()),
        })
        .collect())
}

/// The kind cluster the matched container is a node of; checked before any request is
/// sent to it.
pub fn kind_cluster_of(matched: &ContainerAddrs) -> Result<&str> {
    matched.kind_cluster.as_deref().with_context(|| {
        format!(
            "container {} answers for the API server but is not a kind node (no {KIND_CLUSTER_LABEL} label): \
             it may be a proxy in front of a real cluster",
            matched.name
        )
    })
}

/// The kind cluster whose API server answers: the matched container must be a kind node,
/// and every node the API server lists must be a container of that same kind cluster
/// (kind names node containers after their nodes). A proxy in front of another cluster
/// fails one or the other.
pub fn kind_identity(matched: &ContainerAddrs, nodes: &[String], containers: &[ContainerAddrs]) -> Result<String> {
    let cluster = kind_cluster_of(matched)?;
    let members: Vec<&str> = containers
        .iter()
        .filter(|c| c.kind_cluster.as_deref() == Some(cluster))
        .map(|c| c.name.as_str())
        .collect();
    let strangers: Vec<&str> = nodes
        .iter()
        .map(String::as_str)
        .filter(|n| !members.contains(n))
        .collect();
    if nodes.is_empty() || !strangers.is_empty() {
        bail!(
            "the API server behind container {} lists node(s) [{}] that are not containers of kind cluster {cluster} \
             ({}): it is not that cluster's API server",
            matched.name,
            if nodes.is_empty() {
                "none".to_string()
            } else {
                strangers.join(", ")
            },
            members.join(", ")
        );
    }
    Ok(cluster.to_string())
}

/// Checks consent and locality; returns the cluster handle (not owned: never deleted)
/// and a line saying what was found.
/// The first half of the guard, needing nothing but the command line: the context must
/// be named with `--allow-context`.
pub fn check_consent(context: &str, consent: &Consent) -> Result<()> {
    match consent.allow_context.as_deref() {
        Some(allowed) if allowed == context => Ok(()),
        Some(other) => bail!(
            "cluster: existing names context {context:?}, but --allow-context names {other:?}: drill damages only the context named in both"
        ),
        None => bail!(
            "cluster: existing names context {context:?}, a cluster drill did not create: pass --allow-context {context} to let drill damage it"
        ),
    }
}

pub async fn guard(
    context: &str,
    kubeconfig: &Path,
    consent: &Consent,
    docker: &Docker,
) -> Result<(ExistingProvider, String)> {
    check_consent(context, consent)?;
    // Read once: the copy checked here is the one the run uses.
    let pinned = PinnedKubeconfig::read(kubeconfig)?;
    let server = pinned.server(context)?;
    let (host, port) = host_and_port(&server)?;
    let found = containers(docker).await?;
    let provider = ExistingProvider::new(context, pinned.clone());
    let place = match local_container(&host, port, &found) {
        Some(c) if consent.not_a_test_cluster => {
            format!("its API server {server} is container {} on this machine", c.name)
        }
        Some(c) => {
            // No request reaches a container that is no kind node.
            kind_cluster_of(c).with_context(|| format!("context {context:?}"))?;
            let client = crate::cluster::provider::ClusterProvider::client(&provider).await?;
            let nodes = node_names(&client).await?;
            let cluster = kind_identity(c, &nodes, &found).with_context(|| format!("context {context:?}"))?;
            format!(
                "its API server {server} is container {} on this machine, a node of kind cluster {cluster} (nodes: {})",
                c.name,
                nodes.join(", ")
            )
        }
        None if consent.not_a_test_cluster => {
            format!(
                "its API server {server} is not a local container; going ahead on --i-know-this-is-not-a-test-cluster"
            )
        }
        None => bail!(
            "context {context:?}: its API server {server} is not a container on this machine's Docker networks, \
             so it may be a real cluster; drill refuses to damage it (pass --i-know-this-is-not-a-test-cluster \
             only if it is yours to break)"
        ),
    };
    Ok((provider, place))
}

/// The names of the cluster's nodes, as its API server lists them.
async fn node_names(client: &kube::Client) -> Result<Vec<String>> {
    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client.clone());
    let list = nodes
        .list(&kube::api::ListParams::default())
        .await
        .context("failed to list the cluster's nodes")?;
    Ok(list.items.into_iter().filter_map(|n| n.metadata.name).collect())
}

/// A kubeconfig read once, at the guard: clients and the run's copy come from it.
#[derive(Debug, Clone)]
pub struct PinnedKubeconfig {
    pub config: kube::config::Kubeconfig,
    /// Where it was read from, for messages.
    pub source: PathBuf,
}

impl PinnedKubeconfig {
    /// Reads it (relative file references made absolute, as kube does).
    pub fn read(source: &Path) -> Result<PinnedKubeconfig> {
        let config = kube::config::Kubeconfig::read_from(source)
            .with_context(|| format!("failed to read kubeconfig {}", source.display()))?;
        Ok(PinnedKubeconfig {
            config,
            source: source.to_path_buf(),
        })
    }

    /// The API server URL of `context`.
    pub fn server(&self, context: &str) -> Result<String> {
        let config = &self.config;
        let Some(ctx) = config.contexts.iter().find(|c| c.name == context) else {
            let known: Vec<&str> = config.contexts.iter().map(|c| c.name.as_str()).collect();
            bail!(
                "kubeconfig {} has no context {context:?} (it has: {})",
                self.source.display(),
                known.join(", ")
            );
        };
        let cluster_name = ctx.context.as_ref().map(|c| c.cluster.clone()).unwrap_or_default();
        config
            .clusters
            .iter()
            .find(|c| c.name == cluster_name)
            .and_then(|c| c.cluster.as_ref())
            .and_then(|c| c.server.clone())
            .with_context(|| format!("context {context:?} names cluster {cluster_name:?}, which has no server"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_node() -> ContainerAddrs {
        ContainerAddrs {
            name: "demo-control-plane".into(),
            ips: vec!["172.18.0.3".parse().unwrap()],
            published: vec![40123],
            kind_cluster: Some("demo".into()),
        }
    }

    #[test]
    fn only_a_kind_node_whose_cluster_lists_its_own_containers_as_nodes_passes() {
        let worker = ContainerAddrs {
            name: "demo-worker".into(),
            kind_cluster: Some("demo".into()),
            ..Default::default()
        };
        let others = [kind_node(), worker];
        let nodes = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(
            kind_identity(&others[0], &nodes(&["demo-control-plane", "demo-worker"]), &others).unwrap(),
            "demo"
        );
        // A proxy container (socat, kubectl proxy) publishing the port: no kind label.
        let proxy = ContainerAddrs {
            name: "api-proxy".into(),
            published: vec![40123],
            ..Default::default()
        };
        let e = kind_identity(&proxy, &nodes(&["prod-node-1"]), &others)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("api-proxy answers for the API server but is not a kind node"),
            "{e}"
        );
        // A container labelled as a kind node, but the server behind it lists other nodes.
        let e = kind_identity(&others[0], &nodes(&["ip-10-0-0-5.ec2.internal"]), &others)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[ip-10-0-0-5.ec2.internal] that are not containers of kind cluster demo"),
            "{e}"
        );
        let e = kind_identity(&others[0], &[], &others).unwrap_err().to_string();
        assert!(e.contains("[none]"), "{e}");
    }

    #[test]
    fn the_kubeconfig_is_read_once_and_a_rewrite_afterwards_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        let config = |server: &str| {
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: \"{server}\", certificate-authority: ca.crt}}\ncontexts:\n- name: kind-demo\n  context: {{cluster: c, user: u}}\nusers:\n- name: u\n  user: {{token: t}}\n"
            )
        };
        std::fs::write(&path, config("https://127.0.0.1:40123")).unwrap();
        let pinned = PinnedKubeconfig::read(&path).unwrap();
        std::fs::write(&path, config("https://prod.example.com:443")).unwrap();
        assert_eq!(pinned.server("kind-demo").unwrap(), "https://127.0.0.1:40123");
        // Relative file references point where the file was, not where drill runs.
        let ca = pinned.config.clusters[0]
            .cluster
            .as_ref()
            .unwrap()
            .certificate_authority
            .clone()
            .unwrap();
        assert_eq!(std::path::Path::new(&ca), dir.path().join("ca.crt"));
        assert!(
            pinned
                .server("other")
                .unwrap_err()
                .to_string()
                .contains("has no context \"other\"")
        );
    }

    #[test]
    fn only_servers_that_are_local_containers_count_as_local() {
        let nodes = [kind_node()];
        assert!(
            local_container("127.0.0.1", 40123, &nodes).is_some(),
            "kind's kubeconfig"
        );
        assert!(local_container("localhost", 40123, &nodes).is_some());
        assert!(
            local_container("172.18.0.3", 6443, &nodes).is_some(),
            "kind's internal kubeconfig"
        );
        assert!(
            local_container("127.0.0.1", 6443, &nodes).is_none(),
            "a port nothing publishes"
        );
        assert!(local_container("10.0.0.5", 6443, &nodes).is_none(), "another machine");
        assert!(
            local_container("prod.example.com", 443, &nodes).is_none(),
            "names are not resolved"
        );
        assert!(local_container("[::1]", 40123, &nodes).is_some());
    }

    #[test]
    fn the_server_is_read_from_the_named_context() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\nclusters:\n- name: prod\n  cluster: {server: 'https://prod.example.com'}\n\
             - name: kind-demo\n  cluster: {server: 'https://127.0.0.1:40123'}\ncontexts:\n\
             - name: prod\n  context: {cluster: prod, user: u}\n- name: kind-demo\n  context: {cluster: kind-demo, user: u}\n\
             users:\n- name: u\n  user: {}\ncurrent-context: prod\n",
        )
        .unwrap();
        assert_eq!(server_of(&path, "kind-demo").unwrap(), "https://127.0.0.1:40123");
        assert_eq!(
            host_and_port("https://127.0.0.1:40123").unwrap(),
            ("127.0.0.1".into(), 40123)
        );
        assert_eq!(
            host_and_port("https://prod.example.com").unwrap(),
            ("prod.example.com".into(), 443)
        );
        let err = server_of(&path, "staging").unwrap_err().to_string();
        assert!(
            err.contains("no context \"staging\" (it has: prod, kind-demo)"),
            "{err}"
        );
    }
}
