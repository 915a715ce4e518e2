//! Getting a cluster to rehearse on: a kind cluster drill creates (serve the repo,
//! create, install the engine, restore the secrets, bootstrap, watch) or an existing
//! one let through the guard.

use std::collections::BTreeSet;

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use bollard::Docker;
use kube::Client;

use super::{Run, cluster_name, signals};
use crate::cluster::ClusterProvider;
use crate::cluster::kind::provider::KindProvider;
use crate::cluster::kind::{effective_config, kind_network_gateway};
use crate::engine::{self, Engine};
use crate::event::EventKind;
use crate::gitserve::{self, GitServer, ServedRepo};
use crate::observe::{Observer, Updates};
use crate::profile::Profile;
use crate::scenario::{ExistingCluster, RepoSource};

impl Run<'_> {
    /// A kind cluster of drill's own: create it, serve the repo, install the engine,
    /// restore the secrets, bootstrap the root sync, start watching.
    pub(super) async fn create_and_bootstrap(
        &mut self,
        kind_spec: &crate::scenario::KindCluster,
        docker: Result<Docker>,
        run_id: &str,
    ) -> Result<Docker> {
        let plan = self.plan;
        let kind_config = plan.kind_config.clone().context("no kind config")?;
        if plan.scenario.images == crate::scenario::ImageMode::Mirror {
            mirror_settings(&self.opts.profile)?;
        }
        if !self.opts.skip_resource_check {
            fits_on_this_machine(docker.as_ref().ok(), &plan.kind_nodes).await?;
        }
        let docker = &docker?;
        create_private_dir(&self.work_dir)?;
        self.lock = Some(crate::runlock::RunLock::acquire(&self.work_dir)?);

        // The repo the cluster syncs from, pinned before anything else can change it.
        let (served, commit) = self.pin_repo().await?;

        let name = cluster_name(plan.scenario.name.as_str(), run_id);
        let effective = self.work_dir.join("kind-config.json");
        effective_config(
            &kind_config,
            kind_spec.node_image.as_deref(),
            &self.opts.profile,
            (run_id, &crate::cluster::owner::source_dir()?),
            &effective,
        )?;
        let kubeconfig = self.work_dir.join("kubeconfig");
        // Another run's cluster by the same name (the run suffix is short) must not
        // become this run's to delete on an interrupt.
        let taken = crate::cluster::kind::containers_of(docker, &name).await?;
        if !taken.is_empty() {
            bail!(
                "a kind cluster named {name} already exists ({}): another run's; not touching it, run again for a new name",
                taken.join(", ")
            );
        }
        // Kept clusters stay after an interrupt or a panic too.
        if !self.opts.keeps_cluster() {
            signals::register_cluster(&name, &kubeconfig, &self.work_dir);
        }
        let cluster = self
            .phase(
                "cluster-create",
                KindProvider::create(&name, &effective, &kubeconfig, run_id),
            )
            .await?;
        let cluster: std::sync::Arc<dyn ClusterProvider> = std::sync::Arc::new(cluster);
        self.cluster = Some(cluster.clone());

        if let Some(served) = served {
            self.serve_on_kind_network(served, docker).await?;
        }
        let commit = self.rewrite_served_copy().await?.unwrap_or(commit);

        let client = self.install_engine(cluster.as_ref()).await?;
        self.start_observer(client).await?;
        self.mark_synced_path();
        self.commit = commit;
        Ok(docker.clone())
    }

    /// Serves the repo on kind's network, where the cluster's pods reach this host.
    pub(super) async fn serve_on_kind_network(&mut self, served: ServedRepo, docker: &Docker) -> Result<()> {
        let gateway = kind_network_gateway(docker).await?;
        let bind = std::net::SocketAddr::new(gateway, 0);
        let server = GitServer::start(served, bind, self.repo_auth.clone()).await?;
        self.note(&format!("  Git server {} on the kind network", server.url()));
        self.server = Some(server);
        Ok(())
    }

    /// Commits the engine's rewrites of the served copy (a `flux bootstrap` gotk-sync.yaml
    /// pointed at drill's server); returns the new commit the cluster must reach.
    pub(super) async fn rewrite_served_copy(&mut self) -> Result<Option<String>> {
        let (Some(server), Some(engine)) = (&self.server, &self.engine) else {
            return Ok(None);
        };
        let url = engine.repo_url(server.addr, &server.repo.name);
        let files = engine.served_rewrites(&url, &self.branch)?;
        if files.is_empty() {
            return Ok(None);
        }
        let names: Vec<&str> = files.iter().map(|(path, _)| path.as_str()).collect();
        let message = format!("drill: sync from the served copy ({})", names.join(", "));
        let commit = server.repo.commit_files(&files, &message).await?;
        self.note(&format!(
            "  {}: its source now drill's served copy (commit {})",
            names.join(", "),
            &commit[..12.min(commit.len())]
        ));
        Ok(Some(commit))
    }

    /// Pins the commit the cluster must reach: the local checkout prepared for serving,
    /// or the remote's current commit of its ref.
    pub(super) async fn pin_repo(&mut self) -> Result<(Option<ServedRepo>, String)> {
        let plan = self.plan;
        Ok(match &plan.repo {
            RepoSource::Local { dir, git_ref, .. } => {
                let served = ServedRepo::prepare(dir, git_ref, &self.work_dir.join("git")).await?;
                served.require_folder(&plan.entry_path().unwrap_or_default()).await?;
                let commit = served.served_commit.clone();
                self.note(&format!(
                    "serving {} at {} (served as commit {})",
                    dir.display(),
                    &served.source_commit[..12],
                    &commit[..12]
                ));
                let source = match &plan.flux_layout {
                    Some(l) => format!(
                        "drill's served copy of {} (gotk-sync.yaml's {} redirected to it)",
                        dir.display(),
                        l.source_url
                    ),
                    None => format!("drill's served copy of {}", dir.display()),
                };
                self.note_source(source);
                (Some(served), commit)
            }
            RepoSource::Remote { url, git_ref, .. } => {
                // Also the preflight of the credentials: a wrong token fails here, not
                // ten minutes into a wait.
                let commit = gitserve::remote_commit(url, git_ref, self.repo_auth.as_ref(), self.repo_ssh.as_ref())
                    .await
                    .with_context(|| match &self.repo_ssh {
                        // A refused deploy key is the likelier cause than the URL: name it.
                        Some(ssh) => format!("repo.url with repo.ssh-key ({})", ssh.origin),
                        None => "repo.url".to_string(),
                    })?;
                self.note(&format!(
                    "syncing from {url} branch {git_ref} at {}",
                    &commit[..12.min(commit.len())]
                ));
                let kept = if plan.flux_layout.is_some() {
                    " (gotk-sync.yaml's URL, kept)"
                } else {
                    ""
                };
                self.note_source(format!("{url} branch {git_ref}{kept}"));
                self.branch = git_ref.clone();
                (None, commit)
            }
        })
    }

    /// An existing cluster, let through the blast-radius guard: nothing is created or
    /// installed; its engine already syncs from its own source, at whatever revision.
    pub(super) async fn attach(&mut self, existing: &ExistingCluster, docker: Result<Docker>) -> Result<Docker> {
        let plan = self.plan;
        let base = plan.file.parent().map(std::path::Path::to_path_buf).unwrap_or_default();
        let kubeconfig = crate::cluster::existing::kubeconfig_path(existing.kubeconfig.as_deref(), &base)?;
        crate::cluster::existing::check_consent(&existing.context, &self.opts.consent)?;
        let docker = docker?;
        let (cluster, place) =
            crate::cluster::existing::guard(&existing.context, &kubeconfig, &self.opts.consent, &docker).await?;
        create_private_dir(&self.work_dir)?;
        self.lock = Some(crate::runlock::RunLock::acquire(&self.work_dir)?);
        self.note(&format!("existing cluster, context {}: {place}", existing.context));
        // What the steps change there and do not undo is said if an interrupt ends the run.
        super::left_behind::track(&existing.context);
        // Say what will be destroyed before anything is touched.
        for (i, d) in plan.scenario.disasters.iter().enumerate() {
            let what = d.describe(&plan.scenario.disasters, plan.reverts.get(&i).copied());
            self.note(&format!("  step {} will: {what}", i + 1));
        }
        let cluster: std::sync::Arc<dyn ClusterProvider> = std::sync::Arc::new(cluster);
        self.cluster = Some(cluster.clone());
        let client = cluster.client().await?;
        if let Some(engine) = self.engine.clone() {
            // Not installed by drill: its version is whatever the cluster runs.
            self.note_versions(&client, engine.as_ref(), false).await;
        }
        self.start_observer(client).await?;
        // No pinned commit: Ready at the revision the cluster's own source holds.
        self.commit = String::new();
        Ok(docker)
    }

    /// Records what is known at the start: drill's version, the node image it gives
    /// kind, the machine.
    pub(super) fn note_start_versions(&mut self) {
        let node_image = match &self.plan.scenario.cluster {
            crate::scenario::ClusterSpec::Kind(k) => {
                k.node_image.clone().or_else(|| self.opts.profile.node_image.clone())
            }
            _ => None,
        };
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty());
        self.emit(EventKind::Versions(crate::event::Versions {
            drill: Some(env!("CARGO_PKG_VERSION").to_string()),
            node_image,
            host,
            ..Default::default()
        }));
    }

    fn note_source(&mut self, source: String) {
        self.emit(EventKind::Versions(crate::event::Versions {
            source: Some(source),
            ..Default::default()
        }));
    }

    /// Records the API server's version and, when drill installed it, the engine's (from
    /// its install manifest). Best effort: a version drill cannot read is left out.
    async fn note_versions(&mut self, client: &Client, engine: &dyn Engine, installed: bool) {
        let kubernetes = client.apiserver_version().await.ok().map(|v| v.git_version);
        let engine_version = (installed.then(|| engine.install_manifest()).flatten())
            .and_then(|path| std::fs::read_to_string(path).ok())
            .and_then(|text| engine::manifest_version(&text, engine.kind()));
        let kind = engine.kind().as_str();
        self.emit(EventKind::Versions(crate::event::Versions {
            engine: Some(engine_version.map_or_else(|| kind.to_string(), |v| format!("{kind} {v}"))),
            kubernetes,
            ..Default::default()
        }));
    }

    /// Installs the engine (timed), restores the secrets outside Git (timed when there
    /// are any), and creates the root sync from the served repo.
    pub(super) async fn install_engine(&mut self, cluster: &dyn ClusterProvider) -> Result<Client> {
        let engine = self.engine.clone().context("no engine")?;
        match self.plan.scenario.images {
            crate::scenario::ImageMode::Cold => {}
            crate::scenario::ImageMode::Preloaded => self.preload_images(cluster, engine.as_ref()).await?,
            crate::scenario::ImageMode::Mirror => self.use_mirror(cluster, engine.as_ref()).await?,
        }
        let (url, served) = match (&self.server, &self.plan.repo) {
            (Some(server), _) => (engine.repo_url(server.addr, &server.repo.name), Some(server.addr)),
            (None, RepoSource::Remote { url, .. }) => (url.clone(), None),
            (None, RepoSource::Local { .. }) => return Err(anyhow!("no Git server for the local checkout")),
        };
        let client = cluster.client().await?;
        let (c, e) = (client.clone(), engine.clone());
        let ready = self.phase("engine-install", async move { e.install(&c).await }).await?;
        // Which controller a slow install waited for (a pull, a crash loop) shows here.
        self.note(&format!(
            "engine workloads ready, timed from the install's start, slowest last: {}",
            engine::available::summary(&ready)
        ));
        self.note_versions(&client, engine.as_ref(), true).await;
        let secrets: Vec<serde_json::Value> = self.secrets.iter().map(|(_, m)| m.clone()).collect();
        let auth = self.repo_auth.clone();
        if engine::has_secret_bootstrap(engine.as_ref(), &secrets, auth.as_ref()) {
            let (c, e, u) = (client.clone(), engine.clone(), url.clone());
            self.phase("secret-bootstrap", async move {
                engine::secret_bootstrap(e.as_ref(), &c, &u, &secrets, auth.as_ref()).await
            })
            .await?;
        }
        engine.bootstrap(&client, &url, served, &self.branch).await?;
        Ok(client)
    }

    /// `images: preloaded`: every image the rebuild needs, pulled into every node before
    /// the engine starts (timed); one that cannot be pulled is a warning, and the
    /// rebuild shows what it costs.
    pub(super) async fn preload_images(&mut self, cluster: &dyn ClusterProvider, engine: &dyn Engine) -> Result<()> {
        let RepoSource::Local { dir, .. } = &self.plan.repo else {
            return Ok(());
        };
        let entry = self.plan.entry_path().unwrap_or_default();
        let images: Vec<String> = crate::images::needed_images(engine.install_manifest(), dir, &entry)
            .into_iter()
            .map(|i| i.image)
            .collect();
        self.note(&format!("preloading {} image(s) into every node", images.len()));
        let docker = Docker::connect_with_local_defaults().context("failed to connect to Docker")?;
        let name = cluster.name().to_string();
        let failures = self
            .phase("image-preload", async move {
                crate::cluster::preload::preload(&docker, &name, &images).await
            })
            .await?;
        for f in failures {
            self.emit(EventKind::Warning {
                message: format!("could not preload {} into {}: {}", f.image, f.node, f.output),
            });
        }
        Ok(())
    }

    /// `images: mirror`: starts the pull-through cache with the first cluster, and points
    /// every node of this one at it (timed together as `image-mirror`). After a cluster
    /// loss only the pointing is left: the cache, and what it holds, survived.
    pub(super) async fn use_mirror(&mut self, cluster: &dyn ClusterProvider, engine: &dyn Engine) -> Result<()> {
        let (image, upstream) = mirror_settings(&self.opts.profile)?;
        let mut registries: BTreeSet<String> = BTreeSet::new();
        if let RepoSource::Local { dir, .. } = &self.plan.repo {
            let entry = self.plan.entry_path().unwrap_or_default();
            registries.extend(
                crate::images::needed_images(engine.install_manifest(), dir, &entry)
                    .iter()
                    .map(|i| crate::cluster::mirror::registry_of(&i.image)),
            );
        }
        let docker = Docker::connect_with_local_defaults().context("failed to connect to Docker")?;
        let existing = self.mirror.clone();
        let name = cluster.name().to_string();
        if existing.is_none() {
            signals::register_mirror(&name);
        }
        let cache = self
            .phase("image-mirror", async move {
                let cache = match existing {
                    Some(cache) => cache,
                    None => crate::cluster::mirror::start(&docker, &name, &image, &upstream).await?,
                };
                crate::cluster::mirror::point_nodes_at(&docker, &name, &cache, &registries).await?;
                Ok(cache)
            })
            .await?;
        if self.mirror.is_none() {
            self.note(&format!(
                "pulling through cache {} (in front of {}); it outlives the cluster",
                cache.container, cache.upstream
            ));
        }
        self.mirror = Some(cache);
        Ok(())
    }

    pub(super) async fn start_observer(&mut self, client: Client) -> Result<()> {
        let (tx, rx) = Updates::channel();
        let engine = self.engine.as_ref().context("no engine")?;
        let observer = Observer::start(client.clone(), engine.rules(), tx).await?;
        self.observer = Some((observer, rx));
        self.resume_probes(&client);
        Ok(())
    }
}

/// `images: mirror`'s cache image and upstream, from the profile; an error naming the
/// missing setting otherwise (before anything is created).
pub fn mirror_settings(profile: &Profile) -> Result<(String, String)> {
    let upstream = crate::cluster::mirror::upstream_for(profile.registry_mirror.as_deref()).context(
        "`images: mirror` puts a pull-through cache in front of the profile's registry mirror, \
         and this profile names none (DRILL_REGISTRY_MIRROR); `./hack/testbed up` writes one",
    )?;
    let image = profile
        .mirror_image
        .clone()
        .unwrap_or_else(|| crate::cluster::mirror::DEFAULT_IMAGE.to_string());
    Ok((image, upstream))
}

/// Refuses a cluster that would not fit in the free memory or disk: it would half-start
/// and the run would time out as if the fleet were broken.
async fn fits_on_this_machine(docker: Option<&Docker>, kind_nodes: &[String]) -> Result<()> {
    // Docker not answering is reported a moment later; memory is still judged.
    let root = match docker {
        Some(docker) => docker.info().await.ok().and_then(|i| i.docker_root_dir),
        None => None,
    }
    .map(std::path::PathBuf::from);
    let needs = crate::resources::needs(kind_nodes);
    let short = crate::resources::shortfalls(&needs, &crate::resources::Available::read(root.as_deref()));
    if short.is_empty() {
        return Ok(());
    }
    Err(anyhow!(
        "the cluster does not fit on this machine: {}. Use a kind config with fewer nodes, free memory or disk, \
         or pass --skip-resource-check",
        short.join("; ")
    ))
}

/// Where the engine's install comes from, decided before anything is created.
#[derive(Debug, Default)]
pub(super) struct Install {
    pub path: Option<PathBuf>,
    /// For the report: the repo's own, the profile's, or an upstream release.
    pub origin: Option<String>,
    /// The private folder of a manifest drill built (a self-managed Argo CD's install
    /// folder): removed when dropped.
    pub scratch: Option<tempfile::TempDir>,
}

/// The engine's install: the repo's own (a `flux bootstrap` layout), else the profile's
/// manifest (it wins: air-gapped use), else the release the scenario names (fetched once,
/// verified, cached). None for an existing cluster, which runs its own engine.
pub(super) async fn resolve_install(plan: &crate::scenario::Plan, profile: &Profile) -> Result<Install> {
    use crate::scenario::EngineKind;
    if matches!(plan.scenario.cluster, crate::scenario::ClusterSpec::Existing(_)) {
        return Ok(Install::default());
    }
    if let Some(layout) = &plan.flux_layout {
        return Ok(Install {
            path: Some(layout.components.clone()),
            origin: Some(format!("the repo's {}", layout.components_in_repo())),
            scratch: None,
        });
    }
    if let (Some(folder), Some(argocd)) = (&plan.argocd_install, &plan.scenario.engine.argocd) {
        let shown = argocd.install_path.as_ref().map_or("", |p| p.as_str());
        let release = argocd.version.as_deref().map(|v| (v, argocd.sha256.as_deref()));
        // Made before any cluster, so not in the run's work folder (created with it).
        let scratch = tempfile::Builder::new()
            .prefix("drill-argocd-install-")
            .tempdir()
            .context("failed to create a folder for the built Argo CD install")?;
        let out = scratch.path().join("install.yaml");
        let built = engine::argocd::self_managed::build_install(
            folder,
            shown,
            profile.argocd_install.as_deref(),
            release,
            &out,
        )
        .await?;
        return Ok(Install {
            path: Some(built.manifest),
            origin: Some(built.origin),
            scratch: Some(scratch),
        });
    }
    let (from_profile, release) = match plan.engine {
        EngineKind::Flux => (
            &profile.flux_install,
            plan.scenario.engine.flux.as_ref().map(|f| (&f.version, &f.sha256)),
        ),
        EngineKind::Argocd => (
            &profile.argocd_install,
            plan.scenario.engine.argocd.as_ref().map(|a| (&a.version, &a.sha256)),
        ),
    };
    if let Some(path) = from_profile {
        return Ok(Install {
            path: Some(path.clone()),
            origin: Some(format!("the profile's {}", path.display())),
            scratch: None,
        });
    }
    let Some((Some(version), sha256)) = release else {
        let (name, title) = match plan.engine {
            EngineKind::Flux => ("flux", "Flux"),
            EngineKind::Argocd => ("argocd", "Argo CD"),
        };
        bail!(
            "no {title} install manifest: set engine.{name}.version in the scenario (fetched once from the release, then cached), \
             DRILL_{}_INSTALL (a manifest on disk), or use a profile (--profile / DRILL_PROFILE)",
            name.to_ascii_uppercase()
        );
    };
    let path = engine::release::install_manifest(plan.engine, version, sha256.as_deref()).await?;
    Ok(Install {
        origin: Some(format!(
            "the {} {version} release (SHA-256 verified, cached at {})",
            plan.engine.as_str(),
            path.display()
        )),
        path: Some(path),
        scratch: None,
    })
}

/// The plan's engine, installed from `install`.
pub(super) fn engine_for(plan: &crate::scenario::Plan, install: Option<PathBuf>) -> Result<std::sync::Arc<dyn Engine>> {
    match plan.engine {
        crate::scenario::EngineKind::Flux => {
            let spec = plan
                .scenario
                .engine
                .flux
                .as_ref()
                .context("the scenario has no engine.flux")?;
            // drill's Git server asks a per-run credential when no other is named.
            let credentials = plan.repo.credentials().is_some() || plan.repo.ssh_key().is_some() || plan.serves_repo();
            let flux = engine::flux::Flux::new(install, spec.path.as_str().to_string(), spec.interval.0, credentials);
            Ok(match plan.flux_layout.clone() {
                Some(layout) => std::sync::Arc::new(flux.with_layout(layout)),
                None => std::sync::Arc::new(flux),
            })
        }
        crate::scenario::EngineKind::Argocd => {
            let spec = plan
                .scenario
                .engine
                .argocd
                .as_ref()
                .context("the scenario has no engine.argocd")?;
            let argocd = engine::argocd::ArgoCd::new(install, spec.path.as_str().to_string(), spec.sync_policy);
            Ok(std::sync::Arc::new(match &spec.root_app {
                Some(root) => argocd.with_root(root.as_str()),
                None => argocd,
            }))
        }
    }
}

/// The run's work folder (the fleet copy, the kubeconfig): made by this process alone
/// and readable by its user alone. A folder already there (another user may have made
/// it in the shared temp folder) is refused, not reused.
pub(crate) fn create_private_dir(path: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new().mode(0o700).create(path).with_context(|| {
        format!(
            "failed to create the work folder {} (it must not exist yet)",
            path.display()
        )
    })
}

#[cfg(test)]
mod private_dir_tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::create_private_dir;

    #[test]
    fn the_work_folder_is_private_and_never_one_made_before() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("drill-run");
        create_private_dir(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let again = create_private_dir(&dir).unwrap_err();
        assert!(format!("{again:#}").contains("must not exist yet"), "{again:#}");
    }
}
