//! The blast-radius guard for `cluster: existing`: drill damages a cluster it did not
//! create only when the user names its context twice (scenario and `--allow-context`),
//! and only when its API server is a container on this machine's Docker networks,
//! unless the user also consents to more. The decision is made from the kubeconfig and
//! Docker's own inventory, before any request reaches the cluster.

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

/// A running container's addresses, from Docker.
#[derive(Debug, Clone, Default)]
pub struct ContainerAddrs {
    pub name: String,
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
    let config = kube::config::Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("failed to read kubeconfig {}", kubeconfig.display()))?;
    let Some(ctx) = config.contexts.iter().find(|c| c.name == context) else {
        let known: Vec<&str> = config.contexts.iter().map(|c| c.name.as_str()).collect();
        bail!(
            "kubeconfig {} has no context {context:?} (it has: {})",
            kubeconfig.display(),
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
        })
        .collect())
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
    let server = server_of(kubeconfig, context)?;
    let (host, port) = host_and_port(&server)?;
    let found = containers(docker).await?;
    let place = match local_container(&host, port, &found) {
        Some(c) => format!("its API server {server} is container {} on this machine", c.name),
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
    Ok((ExistingProvider::new(context, kubeconfig), place))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_node() -> ContainerAddrs {
        ContainerAddrs {
            name: "demo-control-plane".into(),
            ips: vec!["172.18.0.3".parse().unwrap()],
            published: vec![40123],
        }
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
