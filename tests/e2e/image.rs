//! drill's container image (the repo's Dockerfile, built offline by
//! `./hack/testbed drill-image` around this test's drill): a rehearsal run from the image
//! with the host's Docker socket, as a CI job that runs drill in a container would.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{Run, assert_run_left_nothing, kind_bin_path, profile, ran};

/// The image's own tools: the profile's kind and kubectl paths point into it.
const IMAGE_TOOLS: [(&str, &str); 2] = [
    ("DRILL_KIND", "/usr/local/bin/kind"),
    ("DRILL_KUBECTL", "/usr/local/bin/kubectl"),
];

fn build_image() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(root.join("hack/testbed"))
        .args(["drill-image", env!("CARGO_BIN_EXE_drill")])
        .env("PATH", kind_bin_path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "drill-image failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The test bed's profile for use inside the container: every file it names copied into
/// `dir` (mounted at /profile), kind and kubectl the image's own.
fn container_profile(dir: &Path) {
    let text = std::fs::read_to_string(profile()).unwrap();
    let mut lines = Vec::new();
    for line in text.lines() {
        let (key, value) = line.split_once('=').unwrap();
        if let Some((_, tool)) = IMAGE_TOOLS.iter().find(|(k, _)| *k == key) {
            lines.push(format!("{key}={tool}"));
        } else if value.starts_with('/') && Path::new(value).is_file() {
            let name = format!("{key}-{}", Path::new(value).file_name().unwrap().to_string_lossy());
            std::fs::copy(value, dir.join(&name)).unwrap();
            lines.push(format!("{key}=/profile/{name}"));
        } else {
            lines.push(line.to_string());
        }
    }
    std::fs::write(dir.join("profile.env"), lines.join("\n") + "\n").unwrap();
}

/// The checkout, and its Git directory when that lives outside it (a worktree): both are
/// mounted read-only at their own paths, so drill serves the same commit the host sees.
fn checkout_mounts() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("git")
        .args(["rev-parse", "--path-format=absolute", "--git-common-dir"])
        .current_dir(&root)
        .output()
        .unwrap();
    let common = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    let mut mounts = vec![root.clone()];
    if !common.starts_with(&root) {
        mounts.push(common);
    }
    mounts
}

fn socket_group() -> String {
    let out = Command::new("stat")
        .args(["-c", "%g", "/var/run/docker.sock"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// `docker run` of the image, as the Dockerfile's header says to, with `args` after the
/// image: reports on a bind mount at /reports, the profile at /profile.
fn docker_run(image: &str, reports: &Path, profile_dir: &Path, args: &[&str]) -> std::process::Output {
    let mut command = Command::new("docker");
    command.args(["run", "--rm", "--network", "host", "--group-add", &socket_group()]);
    command.args(["-v", "/var/run/docker.sock:/var/run/docker.sock"]);
    for path in checkout_mounts() {
        command.args(["-v", &format!("{0}:{0}:ro", path.display())]);
    }
    command
        .args(["-v", &format!("{}:/reports", reports.display())])
        .args(["-v", &format!("{}:/profile:ro", profile_dir.display())])
        .args(["-e", "DRILL_PROFILE=/profile/profile.env"])
        .args(["-w", env!("CARGO_MANIFEST_DIR")])
        .arg(image)
        .args(args);
    command.output().unwrap()
}

/// A rehearsal run from the image: its report on the host's bind mount, written by the
/// image's own user, and drill's exit code as the container's.
#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn the_container_image_rehearses_with_the_hosts_docker_and_passes_exit_codes_through() {
    let image = build_image();
    let reports = tempfile::tempdir().unwrap();
    // The image runs as uid 10001: the bind-mounted folder must be writable by it.
    std::fs::set_permissions(reports.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let profile_dir = tempfile::tempdir().unwrap();
    container_profile(profile_dir.path());

    let whoami = Command::new("docker")
        .args(["run", "--rm", "--entrypoint", "id", &image, "-u"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&whoami.stdout).trim(), "10001", "not root");

    // Bad input: exit 2 from the container, naming the file, before any cluster.
    let bad = reports.path().join("bad.yaml");
    std::fs::write(&bad, "name: bad\nclusterr: {}\n").unwrap();
    let out = docker_run(
        &image,
        reports.path(),
        profile_dir.path(),
        &["run", "/reports/bad.yaml"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("bad.yaml"), "{stderr}");

    // The nightly rebuild from Git, run from the image: exit 0, the report on the host.
    let out = docker_run(
        &image,
        reports.path(),
        profile_dir.path(),
        &[
            "run",
            "scenarios/flux-bootstrap.yaml",
            "--output",
            "json",
            "--report-dir",
            "/reports",
        ],
    );
    // The folder it prints is the container's: read it through the bind mount.
    let stderr = String::from_utf8_lossy(&out.stderr)
        .replace("reports: /reports/", &format!("reports: {}/", reports.path().display()));
    let run: Run = ran(out.status, &out.stdout, stderr);
    run.assert_passed();
    assert_eq!(run.report["result"], "pass");
    for file in ["report.json", "junit.xml", "summary.md"] {
        let meta = std::fs::metadata(run.dir.join(file)).unwrap();
        assert!(meta.len() > 0, "{file} is empty");
        assert_eq!(
            std::os::unix::fs::MetadataExt::uid(&meta),
            10001,
            "{file} written by the image's user"
        );
    }
    assert_run_left_nothing(&run);
}
