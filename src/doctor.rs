//! `drill doctor`: what this machine lacks for a rehearsal, and how to fix it.

use std::path::Path;

use bollard::Docker;

use crate::profile::Profile;

pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

pub async fn run(profile: &Profile) -> Vec<Check> {
    let mut out = Vec::new();
    let mut add = |name: &str, ok: bool, detail: String| {
        out.push(Check {
            name: name.into(),
            ok,
            detail,
        })
    };

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
    let docker = Docker::connect_with_local_defaults().ok();
    let version = match &docker {
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
    match std::process::Command::new("kind").arg("version").output() {
        Ok(o) if o.status.success() => add("kind", true, String::from_utf8_lossy(&o.stdout).trim().to_string()),
        _ => add(
            "kind",
            false,
            "kind is not on PATH (the test bed builds it into its cache's bin/)".into(),
        ),
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
    match free_bytes(Path::new("/var/lib/docker")).or_else(|| free_bytes(Path::new("/"))) {
        Some(b) if b < 10 << 30 => add(
            "disk",
            false,
            format!(
                "{:.1} GiB free for Docker: a cluster needs about 5 GiB, images more",
                b as f64 / (1u64 << 30) as f64
            ),
        ),
        Some(b) => add(
            "disk",
            true,
            format!("{:.1} GiB free for Docker", b as f64 / (1u64 << 30) as f64),
        ),
        None => add("disk", false, "could not read free disk space".into()),
    }
    if let Some(image) = &profile.node_image {
        let present = match &docker {
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
        None => add(
            "flux install",
            false,
            "DRILL_FLUX_INSTALL is not set: `flux install --export > flux.yaml` online, or use the test bed profile"
                .into(),
        ),
    }
    out
}

fn free_bytes(path: &Path) -> Option<u64> {
    let out = std::process::Command::new("df").args(["-Pk"]).arg(path).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let kb: u64 = text.lines().nth(1)?.split_whitespace().nth(3)?.parse().ok()?;
    Some(kb * 1024)
}
