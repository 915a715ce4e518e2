//! End-to-end rehearsals on the offline test bed: real kind clusters, real Flux.
//!
//! They need `./hack/testbed up` first, so `cargo test` skips them (`#[ignore]`);
//! `./hack/test` (and CI) runs them explicitly after bringing the test bed up:
//! `cargo test --test e2e_flux -- --ignored --test-threads=1`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

struct Run {
    code: i32,
    stderr: String,
    report: Value,
    dir: PathBuf,
}

fn profile() -> PathBuf {
    if let Some(p) = std::env::var_os("DRILL_PROFILE") {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache"));
    cache.join("gitops-drill/testbed/profile.env")
}

fn drill_run(scenario: &str, extra: &[&str], reports: &Path) -> Run {
    let profile = profile();
    assert!(
        profile.is_file(),
        "no test bed profile at {}: run ./hack/testbed up",
        profile.display()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_drill"))
        .args(["run", scenario, "--output", "json", "--report-dir"])
        .arg(reports)
        .args(extra)
        .env("DRILL_PROFILE", &profile)
        .env("PATH", kind_bin_path())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    eprintln!("{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not a report ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    let dir = stderr
        .lines()
        .find_map(|l| l.strip_prefix("reports: "))
        .map(PathBuf::from)
        .expect("the reports folder is printed");
    Run {
        code: out.status.code().unwrap_or(-1),
        stderr,
        report,
        dir,
    }
}

fn phases(report: &Value, name: &str) -> Vec<u64> {
    report["phases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == name)
        .map(|p| p["duration_ms"].as_u64().unwrap_or(0))
        .collect()
}

fn assert_no_drill_clusters_left() {
    let out = Command::new("docker")
        .args([
            "ps",
            "-a",
            "--filter",
            "label=io.x-k8s.kind.cluster",
            "--format",
            "{{.Names}}",
        ])
        .output()
        .unwrap();
    let names = String::from_utf8_lossy(&out.stdout);
    assert!(
        !names.lines().any(|n| n.starts_with("drill-")),
        "clusters left behind: {names}"
    );
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn flux_namespace_loss_recovers_within_budget() {
    let reports = tempfile::tempdir().unwrap();
    let run = drill_run("scenarios/flux-namespace-loss.yaml", &[], reports.path());
    assert_eq!(run.code, 0, "expected a pass: {}", run.report);
    let r = &run.report;
    assert_eq!(r["schema_version"], 1);
    assert_eq!(r["result"], "pass");
    let rto = r["rto_ms"].as_u64().unwrap();
    assert!(rto > 0 && rto <= 300_000, "rto {rto}");
    let apps = r["apps"].as_array().unwrap();
    let api = apps
        .iter()
        .find(|a| a["kind"] == "Deployment" && a["name"] == "users-api")
        .expect("users-api is followed");
    assert!(api["ready_ms"].as_u64().unwrap() > 0);
    for name in ["infrastructure", "users-db", "users-api", "reports"] {
        assert!(
            apps.iter().any(|a| a["kind"] == "Kustomization" && a["name"] == name),
            "Kustomization {name} missing"
        );
    }
    assert!(
        apps.iter()
            .any(|a| a["kind"] == "HelmRelease" && a["name"] == "reports")
    );
    assert!(
        r["assertions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"].as_str().unwrap().contains("/data/DB_HOST") && a["passed"] == true)
    );
    let critical = r["critical_path"].as_array().unwrap();
    assert!(!critical.is_empty(), "critical path named");
    for f in ["report.json", "junit.xml", "summary.md", "events.jsonl"] {
        assert!(run.dir.join(f).is_file(), "{f} written");
    }
    assert!(run.stderr.contains("delete namespace(s) users"));
    assert_no_drill_clusters_left();
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn flux_cluster_loss_rebuilds_from_git_with_every_phase_timed() {
    let reports = tempfile::tempdir().unwrap();
    let run = drill_run("scenarios/flux-cluster-loss.yaml", &[], reports.path());
    assert_eq!(run.code, 0, "expected a pass: {}", run.report);
    let r = &run.report;
    assert_eq!(
        phases(r, "cluster-create").len(),
        2,
        "created, then re-created after the loss"
    );
    for name in [
        "cluster-create",
        "engine-install",
        "source-ready",
        "reconcile",
        "workloads-ready",
        "image-pulls",
        "rto",
    ] {
        let d = phases(r, name);
        assert!(!d.is_empty() && d.iter().all(|&ms| ms > 0), "phase {name}: {d:?}");
    }
    let images = r["images"].as_array().unwrap();
    for img in ["demo-small", "demo-medium", "demo-large"] {
        assert!(
            images
                .iter()
                .any(|i| i["image"].as_str().unwrap().contains(img) && i["pull_ms"].as_u64().is_some()),
            "pull of {img} timed: {images:?}"
        );
    }
    let path = r["critical_path"].as_array().unwrap();
    assert_eq!(path[0], "cluster-create", "{path:?}");
    assert!(path.iter().any(|p| p == "engine-install"));
    assert_no_drill_clusters_left();
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn a_missing_image_fails_the_run_and_names_the_app() {
    let reports = tempfile::tempdir().unwrap();
    let run = drill_run(
        "scenarios/flux-missing-image.yaml",
        &["--bootstrap-timeout", "100s"],
        reports.path(),
    );
    assert_eq!(run.code, 1, "an assertion failure, not an error: {}", run.report);
    let r = &run.report;
    assert_eq!(r["result"], "fail");
    let failed: Vec<String> = r["assertions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["passed"] == false)
        .map(|a| a["message"].as_str().unwrap().to_string())
        .collect();
    let all = failed.join("\n");
    assert!(all.contains("Kustomization/flux-system/ghost"), "names the app: {all}");
    assert!(all.contains("Deployment/users/ghost"), "names the workload: {all}");
    let images = r["images"].as_array().unwrap();
    assert!(
        images
            .iter()
            .any(|i| i["image"].as_str().unwrap().contains("demo-missing") && i["failed"].is_string()),
        "the failed pull is listed: {images:?}"
    );
    assert_no_drill_clusters_left();
}

fn kind_bin_path() -> String {
    let cache = profile().parent().unwrap().join("bin");
    format!("{}:{}", cache.display(), std::env::var("PATH").unwrap_or_default())
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn sigterm_mid_run_deletes_the_cluster() {
    use std::io::{BufRead as _, BufReader};
    let reports = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_drill"))
        .args(["run", "scenarios/flux-namespace-loss.yaml", "--report-dir"])
        .arg(reports.path())
        .env("DRILL_PROFILE", profile())
        .env("PATH", kind_bin_path())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the cluster exists, then cancel the way CI does.
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut lines = stderr.lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push(line.clone());
        if line.contains("✓ cluster-create") {
            break;
        }
    }
    assert!(
        seen.iter().any(|l| l.contains("✓ cluster-create")),
        "the run never created its cluster: {seen:?}"
    );
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(2), "an interrupted run is an error: {rest:?}");
    assert!(
        rest.iter()
            .any(|l| l.contains("interrupted: deleting cluster drill-flux-namespace-loss-")),
        "{rest:?}"
    );
    assert_no_drill_clusters_left();
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn clean_removes_only_drills_clusters_and_is_idempotent() {
    let kind = |args: &[&str]| {
        let out = Command::new("kind")
            .args(args)
            .env("PATH", kind_bin_path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "kind {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/kind-configs/testbed-1node.yaml");
    kind(&[
        "create",
        "cluster",
        "--name",
        "drill-orphan-e2e",
        "--config",
        config,
        "--wait",
        "0s",
    ]);
    kind(&[
        "create",
        "cluster",
        "--name",
        "tb-not-drills",
        "--config",
        config,
        "--wait",
        "0s",
    ]);
    let drill = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_drill"))
            .args(args)
            .env("PATH", kind_bin_path())
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).to_string())
    };
    let (code, out) = drill(&["clean", "--dry-run"]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("would delete cluster drill-orphan-e2e") && !out.contains("tb-not-drills"),
        "{out}"
    );
    let (_, out) = drill(&["clean"]);
    assert!(out.contains("deleted cluster drill-orphan-e2e"), "{out}");
    let (_, out) = drill(&["clean"]);
    assert!(out.contains("no drill clusters found"), "idempotent: {out}");
    let others = Command::new("docker")
        .args(["ps", "--format", "{{.Names}}"])
        .output()
        .unwrap();
    let others = String::from_utf8_lossy(&others.stdout).to_string();
    kind(&["delete", "cluster", "--name", "tb-not-drills"]);
    assert!(
        others.contains("tb-not-drills-control-plane"),
        "a cluster drill did not create is untouched: {others}"
    );
    assert_no_drill_clusters_left();
}
