//! Engine install manifests by version (`engine.flux.version`, `engine.argocd.version`):
//! fetched once from the upstream release, checked against a SHA-256 (the one the user
//! pins in the scenario, else the one the release publishes), and kept in the user's
//! cache keyed by engine and version, so every later run is offline.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::model::EngineKind;

/// Where releases are downloaded from; tests and mirrors point it at their own server.
pub const BASE_ENV: &str = "DRILL_RELEASES_URL";
const DEFAULT_BASE: &str = "https://github.com";
const MAX_MANIFEST_BYTES: usize = 64 << 20;

/// The release's install manifest and the file of checksums published beside it.
pub fn urls(base: &str, engine: EngineKind, version: &str) -> (String, String) {
    let base = base.trim_end_matches('/');
    match engine {
        EngineKind::Flux => {
            let dir = format!("{base}/fluxcd/flux2/releases/download/{version}");
            let bare = version.trim_start_matches('v');
            (
                format!("{dir}/install.yaml"),
                format!("{dir}/flux_{bare}_checksums.txt"),
            )
        }
        EngineKind::Argocd => {
            let dir = format!("{base}/argoproj/argo-cd/releases/download/{version}");
            (format!("{dir}/install.yaml"), format!("{dir}/cli_checksums.txt"))
        }
    }
}

/// The cached manifest of `engine` at `version` under `cache_root`.
pub fn cache_path(cache_root: &Path, engine: EngineKind, version: &str) -> PathBuf {
    cache_root
        .join("releases")
        .join(engine.as_str())
        .join(version)
        .join("install.yaml")
}

/// drill's cache folder: `$XDG_CACHE_HOME/gitops-drill`, else `~/.cache/gitops-drill`.
pub fn cache_root() -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => {
            PathBuf::from(std::env::var_os("HOME").context("neither XDG_CACHE_HOME nor HOME is set")?).join(".cache")
        }
    };
    Ok(base.join("gitops-drill"))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The checksum of `name` in a `sha256sum`-style file ("<hex>  <name>" per line).
pub fn checksum_of(checksums: &str, name: &str) -> Option<String> {
    checksums.lines().find_map(|line| {
        let mut parts = line.split_whitespace();
        let (hex, file) = (parts.next()?, parts.next()?);
        (file.trim_start_matches('*') == name && hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| hex.to_ascii_lowercase())
    })
}

/// The install manifest of `engine` at `version`: from the cache when it is there and
/// still matches (no request is made), else downloaded, verified and cached. Nothing
/// unverified is ever written where a run would take it.
pub async fn install_manifest(engine: EngineKind, version: &str, pinned: Option<&str>) -> Result<PathBuf> {
    let path = cache_path(&cache_root()?, engine, version);
    let recorded = path.with_extension("yaml.sha256");
    if path.is_file() {
        let digest = sha256_hex(&std::fs::read(&path).with_context(|| format!("failed to read {}", path.display()))?);
        let expected = match pinned {
            Some(pin) => pin.to_ascii_lowercase(),
            None => std::fs::read_to_string(&recorded)
                .unwrap_or_default()
                .trim()
                .to_string(),
        };
        if digest == expected {
            return Ok(path);
        }
        bail!(
            "the cached {} {version} install {} has SHA-256 {digest}, not {expected}: delete it to fetch it again",
            engine.as_str(),
            path.display()
        );
    }
    let base = std::env::var(BASE_ENV).unwrap_or_else(|_| DEFAULT_BASE.to_string());
    let (manifest_url, checksums_url) = urls(&base, engine, version);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .context("failed to build an HTTP client")?;
    let body = fetch(&client, &manifest_url)
        .await
        .with_context(|| format!("{} {version}: no install manifest at {manifest_url}", engine.as_str()))?;
    let digest = sha256_hex(&body);
    let expected = match pinned {
        Some(pin) => pin.to_ascii_lowercase(),
        None => {
            let published = fetch(&client, &checksums_url).await.ok();
            let text = published
                .map(|b| String::from_utf8_lossy(&b).to_string())
                .unwrap_or_default();
            checksum_of(&text, "install.yaml").with_context(|| {
                format!(
                    "{} {version}: {checksums_url} publishes no checksum of install.yaml; pin one in the scenario \
                     (engine.{}.sha256) after checking it against a source you trust (this download's is {digest})",
                    engine.as_str(),
                    engine.as_str()
                )
            })?
        }
    };
    if digest != expected {
        bail!(
            "{} {version}: {manifest_url} has SHA-256 {digest}, but {expected} was expected: not installed, not cached",
            engine.as_str()
        );
    }
    write_atomically(&path, &body)?;
    write_atomically(&recorded, format!("{digest}\n").as_bytes())?;
    Ok(path)
}

/// The cached install of `engine` at `version`, if it is cached (never downloads: for
/// listing what a run would use).
pub fn cached(engine: EngineKind, version: &str) -> Option<PathBuf> {
    let path = cache_path(&cache_root().ok()?, engine, version);
    path.is_file().then_some(path)
}

async fn fetch(client: &reqwest::Client, url: &str) -> Result<Vec<u8>> {
    let response = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("GET {url} failed"))?;
    let status = response.status();
    if !status.is_success() {
        bail!("GET {url}: HTTP {status}");
    }
    if response.content_length().is_some_and(|n| n > MAX_MANIFEST_BYTES as u64) {
        bail!("GET {url}: larger than {} MiB", MAX_MANIFEST_BYTES >> 20);
    }
    let body = response
        .bytes()
        .await
        .with_context(|| format!("GET {url}: reading the body failed"))?;
    if body.len() > MAX_MANIFEST_BYTES {
        bail!("GET {url}: larger than {} MiB", MAX_MANIFEST_BYTES >> 20);
    }
    Ok(body.to_vec())
}

/// Written beside, then renamed: a reader sees the whole file or none.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().context("cache path without a folder")?;
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("failed to write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("failed to move {} into place", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_urls_follow_each_projects_asset_names() {
        let (m, c) = urls("https://github.com/", EngineKind::Flux, "v2.9.5");
        assert_eq!(
            m,
            "https://github.com/fluxcd/flux2/releases/download/v2.9.5/install.yaml"
        );
        assert_eq!(
            c,
            "https://github.com/fluxcd/flux2/releases/download/v2.9.5/flux_2.9.5_checksums.txt"
        );
        let (m, c) = urls("http://127.0.0.1:9", EngineKind::Argocd, "v3.2.11");
        assert_eq!(
            m,
            "http://127.0.0.1:9/argoproj/argo-cd/releases/download/v3.2.11/install.yaml"
        );
        assert_eq!(
            c,
            "http://127.0.0.1:9/argoproj/argo-cd/releases/download/v3.2.11/cli_checksums.txt"
        );
    }

    #[test]
    fn a_checksum_is_found_by_its_file_name_only() {
        let sums = format!(
            "{a}  flux_2.9.5_linux_amd64.tar.gz\n{b} *install.yaml\nnot-hex  other\n",
            a = "a".repeat(64),
            b = "B".repeat(64)
        );
        assert_eq!(checksum_of(&sums, "install.yaml"), Some("b".repeat(64)));
        assert_eq!(checksum_of(&sums, "manifests.tar.gz"), None);
        assert_eq!(checksum_of("zz  install.yaml\n", "install.yaml"), None);
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
