//! `images: mirror`: a pull-through cache on the kind network, in front of the registry
//! mirror the profile names (DRILL_REGISTRY_MIRROR), the way a site keeps a registry
//! cache next to its clusters. It is started with the run's first cluster and outlives
//! a `delete-cluster` step: the first bootstrap fills it, the rebuild pulls from it. It
//! is a container drill owns (named after the cluster, labelled [`LABEL`]); the run,
//! an interrupt or `drill clean` removes it with the cluster.
//!
//! Nodes are pointed at it through containerd's per-registry `hosts.toml` files, which
//! containerd reads on every pull (no restart): the cache is put first, the node's own
//! hosts stay behind it as the fallback.
//!
//! distribution's registry in proxy mode fronts one upstream, so the cache needs an
//! upstream that holds every registry's images under the registry name as path prefix
//! (ghcr.io/fluxcd/x is <upstream>/v2/ghcr.io/fluxcd/x), as the offline test bed's mirror
//! does. A cache per public registry (online) is not built.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder};

use super::exec;
use super::preload::{HOSTS_DIR, node_containers};

/// Label on the cache container; its value is the cluster it serves.
pub const LABEL: &str = "io.gitops-drill.mirror-of";
/// The registry image's listening port (distribution's default).
const PORT: u16 = 5000;
/// The cache image when the profile names none (DRILL_MIRROR_IMAGE).
pub const DEFAULT_IMAGE: &str = "registry:3";
/// The Docker network kind puts its nodes on.
const KIND_NETWORK: &str = "kind";

/// The cache of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullThroughCache {
    /// Container name; also its host name on the kind network.
    pub container: String,
    /// What it forwards misses to, e.g. http://gitops-drill-registry:5000.
    pub upstream: String,
}

impl PullThroughCache {
    /// The cache's address as the nodes reach it.
    pub fn host(&self) -> String {
        format!("{}:{PORT}", self.container)
    }
}

pub fn container_name(cluster: &str) -> String {
    format!("{cluster}-mirror")
}

/// The upstream for the profile's registry mirror (`host:port`, plain HTTP on the kind
/// network, as the test bed serves it); None when the profile names none.
pub fn upstream_for(registry_mirror: Option<&str>) -> Option<String> {
    let mirror = registry_mirror?.trim();
    if mirror.is_empty() {
        return None;
    }
    Some(if mirror.contains("://") {
        mirror.trim_end_matches('/').to_string()
    } else {
        format!("http://{mirror}")
    })
}

/// Starts the cache container for `cluster` on the kind network and waits until it
/// accepts connections.
pub async fn start(docker: &Docker, cluster: &str, image: &str, upstream: &str) -> Result<PullThroughCache> {
    let name = container_name(cluster);
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        env: Some(vec![
            // distribution reads any config key from REGISTRY_<PATH>: this makes it a cache.
            format!("REGISTRY_PROXY_REMOTEURL={upstream}"),
            "OTEL_TRACES_EXPORTER=none".to_string(),
        ]),
        labels: Some(HashMap::from([(LABEL.to_string(), cluster.to_string())])),
        host_config: Some(HostConfig {
            network_mode: Some(KIND_NETWORK.to_string()),
            ..Default::default()
        }),
        ..Default::default()
    };
    docker
        .create_container(Some(CreateContainerOptionsBuilder::default().name(&name).build()), body)
        .await
        .with_context(|| format!("failed to create the pull-through cache container {name} from image {image}"))?;
    docker
        .start_container(&name, None)
        .await
        .with_context(|| format!("failed to start the pull-through cache container {name}"))?;
    wait_listening(docker, &name).await?;
    Ok(PullThroughCache {
        container: name,
        upstream: upstream.to_string(),
    })
}

/// The cache listens within a second; a crash (bad image, bad config) is reported with
/// the container's state rather than as a slow pull later.
async fn wait_listening(docker: &Docker, name: &str) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let inspect = docker
            .inspect_container(name, None)
            .await
            .with_context(|| format!("failed to inspect {name}"))?;
        let state = inspect.state.as_ref();
        if state.and_then(|s| s.running) != Some(true) {
            let code = state.and_then(|s| s.exit_code).unwrap_or_default();
            bail!("pull-through cache {name} exited (code {code}); see `docker logs {name}`");
        }
        if let Some(ip) = kind_network_ip(&inspect)
            && tokio::net::TcpStream::connect((ip.as_str(), PORT)).await.is_ok()
        {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("pull-through cache {name} did not listen on :{PORT} within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn kind_network_ip(inspect: &bollard::models::ContainerInspectResponse) -> Option<String> {
    inspect
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
        .and_then(|n| n.get(KIND_NETWORK).and_then(|e| e.ip_address.clone()))
        .filter(|ip| !ip.is_empty())
}

/// The repositories the cache holds (its `/v2/_catalog`): what was pulled through it.
/// Asked from this machine at the container's address on the kind network.
pub async fn cached_repositories(docker: &Docker, cache: &PullThroughCache) -> Result<Vec<String>> {
    use http_body_util::BodyExt as _;
    let inspect = docker
        .inspect_container(&cache.container, None)
        .await
        .with_context(|| format!("failed to inspect {}", cache.container))?;
    let ip =
        kind_network_ip(&inspect).with_context(|| format!("{} has no address on the kind network", cache.container))?;
    let ask = async {
        let stream = tokio::net::TcpStream::connect((ip.as_str(), PORT)).await?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let request = hyper::Request::get("/v2/_catalog?n=1000")
            .header(hyper::header::HOST, cache.host())
            .body(http_body_util::Empty::<bytes::Bytes>::new())?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        anyhow::ensure!(status.is_success(), "HTTP {status}");
        let catalog: serde_json::Value = serde_json::from_slice(&body)?;
        anyhow::Ok(
            catalog["repositories"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r.as_str().map(str::to_string))
                .collect::<Vec<_>>(),
        )
    };
    tokio::time::timeout(Duration::from_secs(10), ask)
        .await
        .context("timed out")
        .and_then(|r| r)
        .with_context(|| format!("failed to read the catalog of pull-through cache {}", cache.container))
}

/// Points every node of `cluster` at the cache for each registry the node already has
/// settings for and each registry in `registries`.
pub async fn point_nodes_at(
    docker: &Docker,
    cluster: &str,
    cache: &PullThroughCache,
    registries: &BTreeSet<String>,
) -> Result<usize> {
    let nodes = node_containers(docker, cluster).await?;
    if nodes.is_empty() {
        bail!("kind cluster {cluster} has no running node containers");
    }
    for node in &nodes {
        let listing = exec::in_node(docker, node, vec!["sh", "-c", LIST_HOSTS_FILES]).await?;
        let mut files = parse_hosts_listing(&listing.output);
        for r in registries {
            files.entry(r.clone()).or_insert(None);
        }
        for (registry, existing) in files {
            let text = hosts_toml(existing.as_deref(), &registry, cache);
            let path = format!("{HOSTS_DIR}/{registry}/hosts.toml");
            // Path and content as arguments, never spliced into the script.
            let written = exec::in_node(
                docker,
                node,
                vec!["sh", "-c", WRITE_FILE, "sh", path.as_str(), text.as_str()],
            )
            .await?;
            if !written.success() {
                bail!("failed to write {path} in node {node}: {}", written.last_line());
            }
        }
    }
    Ok(nodes.len())
}

const LIST_HOSTS_FILES: &str = "for f in /etc/containerd/certs.d/*/hosts.toml; do \
     [ -f \"$f\" ] || continue; echo \"### $f\"; cat \"$f\"; echo; done";
const WRITE_FILE: &str = "mkdir -p \"$(dirname \"$1\")\" && printf '%s' \"$2\" > \"$1\"";

/// Registry name -> its hosts.toml text, from [`LIST_HOSTS_FILES`]'s output.
fn parse_hosts_listing(output: &str) -> BTreeMap<String, Option<String>> {
    let mut files = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in output.lines() {
        if let Some(path) = line.strip_prefix("### ") {
            if let Some((r, text)) = current.take() {
                files.insert(r, Some(text));
            }
            let registry = path
                .trim()
                .strip_prefix(&format!("{HOSTS_DIR}/"))
                .and_then(|p| p.strip_suffix("/hosts.toml"))
                .filter(|r| !r.is_empty() && !r.contains('/'));
            current = registry.map(|r| (r.to_string(), String::new()));
        } else if let Some((_, text)) = current.as_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    if let Some((r, text)) = current {
        files.insert(r, Some(text));
    }
    files
}

/// `registry`'s hosts.toml with the cache as the first host: the node's own settings
/// (its `server` and hosts) stay, after the cache. Already pointing at it: unchanged.
pub fn hosts_toml(existing: Option<&str>, registry: &str, cache: &PullThroughCache) -> String {
    let table = format!(
        "[host.\"http://{}/v2/{registry}\"]\n  capabilities = [\"pull\", \"resolve\"]\n  override_path = true\n",
        cache.host()
    );
    let Some(existing) = existing.filter(|e| !e.trim().is_empty()) else {
        return format!("server = \"{}\"\n\n{table}", default_server(registry));
    };
    if existing.contains(&format!("http://{}/", cache.host())) {
        return existing.to_string();
    }
    // Top-level keys (`server`) must come before the first table.
    let split = existing
        .lines()
        .scan(0, |offset, line| {
            let at = *offset;
            *offset += line.len() + 1;
            Some((at, line))
        })
        .find(|(_, line)| line.trim_start().starts_with('['))
        .map(|(at, _)| at.min(existing.len()))
        .unwrap_or(existing.len());
    let (head, tail) = existing.split_at(split);
    let mut out = head.trim_end().to_string();
    if !out.is_empty() {
        out.push_str("\n\n");
    }
    out.push_str(&table);
    if !tail.trim().is_empty() {
        out.push('\n');
        out.push_str(tail.trim_end());
        out.push('\n');
    }
    out
}

/// containerd's upstream for a registry with no hosts.toml.
fn default_server(registry: &str) -> String {
    match registry {
        "docker.io" => "https://registry-1.docker.io".to_string(),
        r => format!("https://{r}"),
    }
}

/// The registry an image reference pulls from (`nginx` -> docker.io).
pub fn registry_of(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => first.to_string(),
        _ => "docker.io".to_string(),
    }
}

/// Removes `cluster`'s cache container (and its storage); true if there was one.
pub async fn remove(docker: &Docker, cluster: &str) -> Result<bool> {
    let name = container_name(cluster);
    match docker
        .remove_container(
            &name,
            Some(RemoveContainerOptionsBuilder::default().force(true).v(true).build()),
        )
        .await
    {
        Ok(()) => Ok(true),
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(false),
        Err(e) => Err(e).with_context(|| format!("failed to remove the pull-through cache {name}")),
    }
}

/// Clusters whose cache containers exist (running or not), by [`LABEL`].
pub async fn caches(docker: &Docker) -> Result<BTreeSet<String>> {
    Ok(super::containers::labelled(docker, LABEL, true)
        .await?
        .iter()
        .filter_map(|c| super::containers::label_of(c, LABEL))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> PullThroughCache {
        PullThroughCache {
            container: "drill-x-ab12-mirror".into(),
            upstream: "http://gitops-drill-registry:5000".into(),
        }
    }

    #[test]
    fn the_cache_goes_first_and_the_nodes_own_hosts_stay_behind_it() {
        let baked = "server = \"http://gitops-drill-registry:5000\"\n\n[host.\"http://gitops-drill-registry:5000/v2/ghcr.io\"]\n  capabilities = [\"pull\", \"resolve\"]\n  override_path = true\n";
        let out = hosts_toml(Some(baked), "ghcr.io", &cache());
        let server = out.find("server = ").unwrap();
        let ours = out
            .find("[host.\"http://drill-x-ab12-mirror:5000/v2/ghcr.io\"]")
            .unwrap();
        let theirs = out
            .find("[host.\"http://gitops-drill-registry:5000/v2/ghcr.io\"]")
            .unwrap();
        assert!(server < ours && ours < theirs, "{out}");
        assert_eq!(out.matches("server = ").count(), 1, "{out}");
        // Applied twice (a second node, a retried run): the same file.
        assert_eq!(hosts_toml(Some(&out), "ghcr.io", &cache()), out);
    }

    #[test]
    fn a_registry_without_settings_gets_its_public_server_behind_the_cache() {
        let out = hosts_toml(None, "docker.io", &cache());
        assert!(out.starts_with("server = \"https://registry-1.docker.io\"\n"), "{out}");
        assert!(
            out.contains("[host.\"http://drill-x-ab12-mirror:5000/v2/docker.io\"]"),
            "{out}"
        );
        assert!(out.contains("override_path = true"), "{out}");
        let quay = hosts_toml(Some("  \n"), "quay.io", &cache());
        assert!(quay.starts_with("server = \"https://quay.io\""), "{quay}");
    }

    #[test]
    fn a_file_of_tables_only_keeps_them_after_the_cache() {
        let out = hosts_toml(
            Some("[host.\"https://other\"]\n  capabilities = [\"pull\"]\n"),
            "quay.io",
            &cache(),
        );
        assert!(
            out.starts_with("[host.\"http://drill-x-ab12-mirror:5000/v2/quay.io\"]"),
            "{out}"
        );
        assert!(
            out.ends_with("[host.\"https://other\"]\n  capabilities = [\"pull\"]\n"),
            "{out}"
        );
    }

    #[test]
    fn the_node_listing_is_read_per_registry() {
        let listing = "### /etc/containerd/certs.d/ghcr.io/hosts.toml\nserver = \"a\"\n\n### /etc/containerd/certs.d/quay.io/hosts.toml\nserver = \"b\"\n### /etc/containerd/certs.d/x/y/hosts.toml\nignored\n";
        let files = parse_hosts_listing(listing);
        assert_eq!(files.keys().collect::<Vec<_>>(), ["ghcr.io", "quay.io"]);
        assert_eq!(files["ghcr.io"].as_deref(), Some("server = \"a\"\n\n"));
        assert_eq!(files["quay.io"].as_deref(), Some("server = \"b\"\n"));
    }

    #[test]
    fn image_references_name_their_registry() {
        assert_eq!(registry_of("nginx:1.27"), "docker.io");
        assert_eq!(registry_of("gitops-drill/demo:1"), "docker.io");
        assert_eq!(registry_of("ghcr.io/fluxcd/source-controller:v1"), "ghcr.io");
        assert_eq!(registry_of("localhost:5001/x:1"), "localhost:5001");
        assert_eq!(registry_of("localhost/x"), "localhost");
    }

    #[test]
    fn the_upstream_is_the_profiles_mirror_over_plain_http_unless_it_names_a_scheme() {
        assert_eq!(
            upstream_for(Some("gitops-drill-registry:5000")).as_deref(),
            Some("http://gitops-drill-registry:5000")
        );
        assert_eq!(
            upstream_for(Some("https://mirror.example/")).as_deref(),
            Some("https://mirror.example")
        );
        assert_eq!(upstream_for(Some(" ")), None);
        assert_eq!(upstream_for(None), None);
    }
}
