//! `drill doctor`: what this machine lacks for a rehearsal, and how to fix it.

use std::path::{Path, PathBuf};

use bollard::Docker;

use crate::profile::Profile;
use crate::resources::{Available, gib, needs, shortfalls};
use crate::scenario::Plan;

#[derive(Debug, serde::Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

pub async fn run(profile: &Profile, plan: Option<&Plan>) -> Vec<Check> {
    let mut checks = Checks(Vec::new());
    let docker = Docker::connect_with_local_defaults().ok();
    host(&mut checks, profile, docker.as_ref()).await;
    let root = match &docker {
        Some(d) => d.info().await.ok().and_then(|i| i.docker_root_dir).map(PathBuf::from),
        None => None,
    };
    let available = Available::read(root.as_deref());
    capacity(&mut checks, &available);
    if let Some(plan) = plan {
        for_plan(&mut checks, profile, plan, &available, docker.as_ref()).await;
    }
    installs(&mut checks, profile, docker.as_ref()).await;
    checks.0
}

/// The checks collected so far.
struct Checks(Vec<Check>);

impl Checks {
    fn add(&mut self, name: &str, ok: bool, detail: String) {
        self.0.push(Check {
            name: name.into(),
            ok,
            detail,
        });
    }
}

/// The machine: the profile in use, Docker, kind, cgroups.
async fn host(checks: &mut Checks, profile: &Profile, docker: Option<&Docker>) {
    let mut add = |name: &str, ok: bool, detail: String| checks.add(name, ok, detail);
    add(
        "mode",
        true,
        format!(
            "{}{}",
            profile.mode(),
            profile
                .source
                .as_ref()
                .map(|p| format!(" from {}", p.display()))
                .unwrap_or_default()
        ),
    );
    let version = match docker {
        Some(d) => d.version().await.ok(),
        None => None,
    };
    match &version {
        Some(v) => add(
            "docker",
            true,
            format!("engine {} answers", v.version.clone().unwrap_or_default()),
        ),
        None => add(
            "docker",
            false,
            "no Docker engine answers: start one (`./hack/testbed up` installs and starts it)".into(),
        ),
    }
    // Every binary drill calls: kind makes clusters; git pins and serves a local fleet.
    for (binary, version_arg, missing) in [
        (
            "kind",
            "version",
            "kind is not on PATH (the test bed builds it into its cache's bin/)",
        ),
        (
            "git",
            "--version",
            "git is not on PATH: drill pins and serves a local fleet checkout with it",
        ),
    ] {
        match std::process::Command::new(binary).arg(version_arg).output() {
            Ok(o) if o.status.success() => add(binary, true, String::from_utf8_lossy(&o.stdout).trim().to_string()),
            _ => add(binary, false, missing.into()),
        }
    }
    let cgroup = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "v2"
    } else {
        "v1"
    };
    add(
        "cgroups",
        true,
        format!(
            "{cgroup}{}",
            if cgroup == "v1" {
                " (Kubernetes <= 1.34 node images, or failCgroupV1: false)"
            } else {
                ""
            }
        ),
    );
}

/// Free disk and memory.
fn capacity(checks: &mut Checks, available: &Available) {
    let mut add = |name: &str, ok: bool, detail: String| checks.add(name, ok, detail);
    match &available.disk {
        Some((b, root)) if *b < 10 << 30 => add(
            "disk",
            false,
            format!(
                "{} free under {}: a cluster needs about 5 GiB, images more",
                gib(*b),
                root.display()
            ),
        ),
        Some((b, root)) => add("disk", true, format!("{} free under {}", gib(*b), root.display())),
        None => add("disk", false, "could not read free disk space".into()),
    }
    match available.memory {
        Some(m) => add("memory", true, format!("{} available", gib(m))),
        None => add("memory", false, "could not read /proc/meminfo".into()),
    }
}

/// Whether the scenario's cluster fits, and its mirror image is here.
async fn for_plan(checks: &mut Checks, profile: &Profile, plan: &Plan, available: &Available, docker: Option<&Docker>) {
    let mut add = |name: &str, ok: bool, detail: String| checks.add(name, ok, detail);
    let needs = needs(&plan.kind_nodes);
    let short = shortfalls(&needs, available);
    let detail = if short.is_empty() {
        format!(
            "{}: {} kind node(s) need about {} of memory and {} of disk",
            plan.scenario.name,
            needs.nodes,
            gib(needs.memory),
            gib(needs.disk)
        )
    } else {
        format!("{}: {}", plan.scenario.name, short.join("; "))
    };
    add("fits", short.is_empty(), detail);
    if plan.scenario.images == crate::scenario::ImageMode::Mirror {
        match crate::runner::mirror_settings(profile) {
            Ok((image, upstream)) => {
                // Offline, an image that is not here cannot be pulled either.
                let present = match docker {
                    Some(d) => d.inspect_image(&image).await.is_ok(),
                    None => false,
                };
                let detail = if present {
                    format!("cache image {image} present, in front of {upstream}")
                } else {
                    format!("cache image {image} is not on this machine (Docker pulls it, if it can)")
                };
                add("mirror", present, detail);
            }
            Err(err) => add("mirror", false, format!("{err:#}")),
        }
    }
}

/// What the profile installs from: the node image and the engine manifests.
async fn installs(checks: &mut Checks, profile: &Profile, docker: Option<&Docker>) {
    let mut add = |name: &str, ok: bool, detail: String| checks.add(name, ok, detail);
    if let Some(image) = &profile.node_image {
        let present = match docker {
            Some(d) => d.inspect_image(image).await.is_ok(),
            None => false,
        };
        add(
            "node image",
            present,
            if present {
                format!("{image} present")
            } else {
                format!("{image} missing: run ./hack/testbed up")
            },
        );
    }
    match &profile.flux_install {
        Some(p) if p.is_file() => add("flux install", true, p.display().to_string()),
        Some(p) => add("flux install", false, format!("{} does not exist", p.display())),
        // Not needed by a scenario naming `engine.flux.version` or a repo made by `flux bootstrap`.
        None => add(
            "flux install",
            true,
            "from the scenario: a `flux bootstrap` repo's gotk-components.yaml, or `engine.flux.version` \
             (fetched once, cached); DRILL_FLUX_INSTALL would pin a manifest on disk"
                .into(),
        ),
    }
}
