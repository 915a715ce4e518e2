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
    drill_run_env(scenario, extra, &[], reports)
}

fn drill_run_env(scenario: &str, extra: &[&str], env: &[(&str, &str)], reports: &Path) -> Run {
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
        .envs(env.iter().copied())
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

/// Nothing of this run's cluster is left: no node container, no pull-through cache.
/// Scoped to the run id, never to the scenario: two tests may rehearse one scenario at
/// once, and a Docker daemon that outlived an earlier, killed suite may still list its
/// stopped containers.
fn assert_run_left_nothing(run: &Run) {
    let name = gitops_drill::runner::cluster_name(
        run.report["scenario"].as_str().unwrap(),
        run.report["run_id"].as_str().unwrap(),
    );
    assert_nothing_left_of(&name);
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn flux_namespace_loss_recovers_within_budget_twice_at_once() {
    // Two runs of one scenario at the same time, into one report folder: nothing of
    // theirs may collide (cluster, Git server, report folder, history).
    let reports = tempfile::tempdir().unwrap();
    let scenario = "scenarios/flux-namespace-loss.yaml";
    let (run, other) = std::thread::scope(|s| {
        let other = s.spawn(|| drill_run(scenario, &[], reports.path()));
        let run = drill_run(scenario, &[], reports.path());
        (run, other.join().unwrap())
    });
    assert_eq!(run.code, 0, "expected a pass: {}", run.report);
    assert_eq!(other.code, 0, "the other run passes too: {}", other.report);
    assert_ne!(run.report["run_id"], other.report["run_id"]);
    assert_ne!(run.dir, other.dir, "each run has its own report folder");
    for r in [&run, &other] {
        let written: Value =
            serde_json::from_str(&std::fs::read_to_string(r.dir.join("report.json")).unwrap()).unwrap();
        assert_eq!(
            written["run_id"],
            r.report["run_id"],
            "{} holds its own run",
            r.dir.display()
        );
    }
    let history = std::fs::read_to_string(reports.path().join("flux-namespace-loss/history.jsonl")).unwrap();
    assert_eq!(history.lines().count(), 2, "{history}");
    let git_server = |r: &Run| {
        r.stderr
            .lines()
            .find_map(|l| l.split("Git server ").nth(1))
            .map(|rest| rest.split('/').nth(2).unwrap().to_string())
            .expect("the Git server is printed")
    };
    assert_ne!(
        git_server(&run),
        git_server(&other),
        "each run has its own Git server port"
    );
    let cluster_of = |r: &Run| {
        gitops_drill::runner::cluster_name(
            r.report["scenario"].as_str().unwrap(),
            r.report["run_id"].as_str().unwrap(),
        )
    };
    assert_ne!(cluster_of(&run), cluster_of(&other));
    assert_run_left_nothing(&other);
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
    assert_run_left_nothing(&run);
}

/// The cluster a `--keep-cluster` run kept, and its kubeconfig, as the run printed them.
fn kept_cluster(run: &Run) -> (String, String) {
    let kept = run
        .stderr
        .lines()
        .find_map(|l| l.split("keeping cluster ").nth(1))
        .unwrap_or_else(|| panic!("no kept cluster printed: {}", run.stderr));
    let (name, kubeconfig) = kept.split_once(" (kubeconfig ").unwrap();
    (name.to_string(), kubeconfig.trim_end_matches(')').to_string())
}

/// The wall time of a run's first event of kind `event` (events.jsonl).
fn event_at(dir: &Path, event: &str) -> jiff::Timestamp {
    let text = std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| e["event"] == event)
        .unwrap_or_else(|| panic!("no {event} event"))["at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// A node killed and booted again (its API server too, so every watch drops): drill
/// reconnects, and says "recovered" only once the pods really run again, never on the
/// statuses the workloads still report from before the kill. The cluster is kept so
/// the pods' own start times can be held against drill's verdict.
#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn a_killed_node_is_recovered_only_once_its_pods_run_again() {
    let reports = tempfile::tempdir().unwrap();
    let run = drill_run("scenarios/flux-node-loss.yaml", &["--keep-cluster"], reports.path());
    let (name, kubeconfig) = kept_cluster(&run);
    let cleanup = KindClusterGuard(name.clone());
    assert_eq!(run.code, 0, "expected a pass: {}", run.report);
    assert!(
        run.stderr
            .contains(&format!("killed and restarted {name}-control-plane")),
        "{}",
        run.stderr
    );
    assert!(
        run.report["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains(" watch failures (") && w.as_str().unwrap().contains("Deployment")),
        "the API server went away under the watches, one warning per cause: {}",
        run.report["warnings"]
    );
    let killed = event_at(&run.dir, "disaster-injected");
    let recovered = event_at(&run.dir, "recovered");
    let out = Command::new("kubectl")
        .args(["--kubeconfig", &kubeconfig, "get", "pods", "-A", "-o", "json"])
        .env("PATH", kind_bin_path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pods: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut checked = 0;
    for pod in pods["items"].as_array().unwrap() {
        let ns = pod["metadata"]["namespace"].as_str().unwrap();
        if !["users", "reports", "flux-system"].contains(&ns) {
            continue;
        }
        for c in pod["status"]["containerStatuses"].as_array().unwrap() {
            let started: jiff::Timestamp = c["state"]["running"]["startedAt"]
                .as_str()
                .unwrap_or_else(|| panic!("{ns}/{} not running: {c}", pod["metadata"]["name"]))
                .parse()
                .unwrap();
            // The API reports whole seconds.
            assert!(
                started.as_second() >= killed.as_second() - 1,
                "{ns}/{} started {started}, before the kill at {killed}",
                pod["metadata"]["name"]
            );
            assert!(
                started.as_second() <= recovered.as_second(),
                "{ns}/{} started {started}, after drill said recovered at {recovered}",
                pod["metadata"]["name"]
            );
            checked += 1;
        }
    }
    assert!(checked >= 6, "the apps' and Flux's containers were checked: {checked}");
    drop(cleanup);
    assert_run_left_nothing(&run);
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
    assert_run_left_nothing(&run);
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
    assert_run_left_nothing(&run);
}

fn kind_bin_path() -> String {
    let cache = profile().parent().unwrap().join("bin");
    format!("{}:{}", cache.display(), std::env::var("PATH").unwrap_or_default())
}

/// Starts `drill run SCENARIO`, sends `signal` once a progress line satisfies `when`,
/// and returns the exit code, the cluster the run named, and what it printed after.
fn interrupt_run(scenario: &str, signal: &str, when: impl FnMut(&str) -> bool) -> (Option<i32>, String, Vec<String>) {
    disturb_run(scenario, when, |pid| {
        Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()
            .unwrap();
    })
}

type StderrLines = std::io::Lines<std::io::BufReader<std::process::ChildStderr>>;

/// `drill run SCENARIO` in the background, its progress lines to read (JSON on stdout,
/// unread: a run that ends in an error says it on stderr too), and its report folder.
fn spawn_run(scenario: &str) -> (std::process::Child, StderrLines, tempfile::TempDir) {
    use std::io::BufRead as _;
    let reports = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_drill"))
        .args(["run", scenario, "--output", "json", "--report-dir"])
        .arg(reports.path())
        .env("DRILL_PROFILE", profile())
        .env("PATH", kind_bin_path())
        .env("NO_COLOR", "1")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    (child, lines, reports)
}

/// Starts `drill run SCENARIO`, calls `act` with its pid once a progress line satisfies
/// `when`, and returns the exit code, the cluster the run named, and what it printed after.
fn disturb_run(
    scenario: &str,
    mut when: impl FnMut(&str) -> bool,
    act: impl FnOnce(u32),
) -> (Option<i32>, String, Vec<String>) {
    let (mut child, mut lines, _reports) = spawn_run(scenario);
    let mut seen = Vec::new();
    let mut cluster = None;
    let mut reached = false;
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push(line.clone());
        // "drill: <scenario> (run <id>)": the cluster's name derives from the run id.
        if let Some((name, id)) = line
            .split_once("drill: ")
            .and_then(|(_, rest)| rest.strip_suffix(')')?.split_once(" (run "))
        {
            cluster = Some(gitops_drill::runner::cluster_name(name, id));
        }
        if when(&line) {
            reached = true;
            break;
        }
    }
    assert!(reached, "the run never got there: {seen:?}");
    act(child.id());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    (status.code(), cluster.expect("the run id is printed first"), rest)
}

/// Nothing of cluster `name` is left: no node container, no pull-through cache.
fn assert_nothing_left_of(name: &str) {
    for filter in [
        format!("label=io.x-k8s.kind.cluster={name}"),
        format!("label=io.gitops-drill.mirror-of={name}"),
        format!("name=^{name}-"),
    ] {
        let out = Command::new("docker")
            .args(["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"])
            .output()
            .unwrap();
        let left = String::from_utf8_lossy(&out.stdout);
        assert!(left.trim().is_empty(), "{filter}: left behind: {left}");
    }
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn sigterm_mid_run_deletes_the_cluster() {
    // Cancelled the way CI does, once the cluster exists (the engine is being installed).
    let (code, cluster, rest) = interrupt_run("scenarios/flux-bootstrap.yaml", "TERM", |l| {
        l.contains("✓ cluster-create")
    });
    assert_eq!(code, Some(2), "an interrupted run is an error: {rest:?}");
    assert!(
        rest.iter()
            .any(|l| l.contains(&format!("interrupted: deleting cluster {cluster}"))),
        "{rest:?}"
    );
    assert_nothing_left_of(&cluster);
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn sigint_while_kind_creates_the_cluster_or_while_waiting_for_sync_leaves_nothing() {
    // In the middle of `kind create`: the kind process is killed, then the cluster deleted
    // until Docker lists none of its containers.
    let (code, cluster, rest) = interrupt_run("scenarios/flux-bootstrap.yaml", "INT", |l| {
        l.contains("▶ cluster-create")
    });
    assert_eq!(code, Some(2), "{rest:?}");
    assert_nothing_left_of(&cluster);
    // Waiting for the first sync from Git (the engine runs, the watchers are open).
    let (code, cluster, rest) = interrupt_run("scenarios/flux-bootstrap.yaml", "INT", |l| {
        l.contains("✓ engine-install")
    });
    assert_eq!(code, Some(2), "{rest:?}");
    assert!(rest.iter().any(|l| l.contains("no report written")), "{rest:?}");
    assert_nothing_left_of(&cluster);
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn a_panic_mid_run_deletes_the_cluster_before_exit() {
    // A bug, simulated: debug builds panic right after the named phase.
    let reports = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_drill"))
        .args(["run", "scenarios/flux-bootstrap.yaml", "--report-dir"])
        .arg(reports.path())
        .env("DRILL_PROFILE", profile())
        .env("PATH", kind_bin_path())
        .env("NO_COLOR", "1")
        .env("DRILL_FAULT_PANIC_AFTER", "engine-install")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("DRILL_FAULT_PANIC_AFTER=engine-install: a deliberate panic"),
        "{err}"
    );
    let cluster = err
        .lines()
        .find_map(|l| l.strip_prefix("drill panicked (a bug; the message is above): deleting cluster "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("the cleanup names the cluster: {err}"));
    assert!(err.contains("no report written"), "{err}");
    assert_nothing_left_of(cluster);
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn a_second_sigint_skips_the_cleanup_and_says_how_to_finish_it() {
    let (mut child, mut lines, _reports) = spawn_run("scenarios/flux-bootstrap.yaml");
    let sigint = |pid: u32| {
        Command::new("kill").args(["-INT", &pid.to_string()]).status().unwrap();
    };
    let mut seen = Vec::new();
    let mut cluster = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push(line.clone());
        if line.contains("✓ cluster-create") {
            sigint(child.id());
        }
        // The cleanup has begun: the operator interrupts it.
        if let Some(rest) = line.strip_prefix("interrupted: deleting cluster ") {
            cluster = rest.split_whitespace().next().map(str::to_string);
            sigint(child.id());
            break;
        }
    }
    let cluster = cluster.unwrap_or_else(|| panic!("the cleanup never began: {seen:?}"));
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(2), "{rest:?}");
    assert!(
        rest.iter()
            .any(|l| l.contains(&format!("cleanup skipped: run `drill clean` to remove {cluster}"))),
        "{rest:?}"
    );
    // What the skipped cleanup left is the test's to remove (not `drill clean`: other
    // rehearsals run beside this one).
    let out = Command::new("kind")
        .args(["delete", "cluster", "--name", &cluster])
        .env("PATH", kind_bin_path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_nothing_left_of(&cluster);
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn sigint_during_a_rebuild_removes_the_new_cluster_and_the_pull_through_cache() {
    // The second cluster-create: the first cluster is gone, the cache still runs.
    let mut starts = 0;
    let (code, cluster, rest) = interrupt_run("scenarios/flux-cluster-loss-mirror.yaml", "INT", |l| {
        starts += usize::from(l.contains("▶ cluster-create"));
        starts == 2
    });
    assert_eq!(code, Some(2), "{rest:?}");
    assert_nothing_left_of(&cluster);
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn clean_removes_only_drills_clusters_and_is_idempotent() {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/kind-configs/testbed-1node.yaml");
    // A cluster drill did not create, named like one, with its own kubeconfig (never
    // the user's ~/.kube/config).
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let kubeconfig = kubeconfig.to_str().unwrap();
    let out = Command::new("kind")
        .args([
            "create",
            "cluster",
            "--name",
            "drill-lookalike",
            "--kubeconfig",
            kubeconfig,
        ])
        .args(["--config", config, "--wait", "0s"])
        .env("PATH", kind_bin_path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let _lookalike = KindClusterGuard("drill-lookalike".into());
    // A real orphan: a run killed outright (SIGKILL: no cleanup) once its cluster exists.
    let (code, orphan, _) = disturb_run(
        "scenarios/flux-bootstrap.yaml",
        |l| l.contains("✓ cluster-create"),
        |pid| {
            Command::new("kill").args(["-KILL", &pid.to_string()]).status().unwrap();
        },
    );
    assert_eq!(code, None, "killed by a signal");
    let drill = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_drill"))
            .args(args)
            .env("PATH", kind_bin_path())
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).to_string())
    };
    // A rehearsal pointed at the cluster drill did not create is refused before any
    // request reaches it, unless its context is named on the command line.
    let scenario = dir.path().join("existing.yaml");
    std::fs::write(
        &scenario,
        format!(
            "name: not-drills\ncluster:\n  existing:\n    context: kind-drill-lookalike\n    kubeconfig: {kubeconfig}\n\
             engine:\n  flux:\n    repo: {{path: {}}}\n    path: clusters/demo\n\
             disasters:\n  - delete-namespace: {{namespaces: [users]}}\nexpect:\n  rto: 5m\n",
            concat!(env!("CARGO_MANIFEST_DIR"), "/examples/fleet")
        ),
    )
    .unwrap();
    let refused = Command::new(env!("CARGO_BIN_EXE_drill"))
        .args(["run", scenario.to_str().unwrap(), "--report-dir"])
        .arg(dir.path().join("reports"))
        .env("PATH", kind_bin_path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&refused.stdout).to_string() + &String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(
        err.contains("a cluster drill did not create: pass --allow-context kind-drill-lookalike"),
        "{err}"
    );
    assert!(!err.contains("step 1 will"), "nothing listed or touched: {err}");

    let (code, out) = drill(&["clean", "--dry-run"]);
    assert_eq!(code, Some(0));
    assert!(out.contains(&format!("would delete cluster {orphan}\n")), "{out}");
    assert!(
        out.contains("left cluster drill-lookalike alone: its nodes carry no drill owner mark")
            && !out.contains("delete cluster drill-lookalike"),
        "{out}"
    );
    let (_, out) = drill(&["clean"]);
    assert!(out.contains(&format!("deleted cluster {orphan}\n")), "{out}");
    assert_nothing_left_of(&orphan);
    let (_, out) = drill(&["clean"]);
    assert!(out.contains("no drill clusters found"), "idempotent: {out}");
    let running = Command::new("docker")
        .args(["ps", "--format", "{{.Names}}"])
        .output()
        .unwrap();
    let running = String::from_utf8_lossy(&running.stdout).to_string();
    assert!(
        running.lines().any(|n| n == "drill-lookalike-control-plane"),
        "the cluster drill did not create is untouched: {running}"
    );
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn docker_daemon_restart_mid_run_is_an_error_and_clean_removes_the_rest() {
    // Alone in its suite step: it restarts the Docker daemon under every container.
    let (code, cluster, rest) = disturb_run(
        "scenarios/flux-namespace-loss.yaml",
        |l| l.contains("✓ engine-install"),
        |_| {
            let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/hack/testbed"))
                .arg("restart-docker")
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        },
    );
    assert_eq!(code, Some(2), "an error, not a verdict on the fleet: {rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("the Docker daemon went away mid-run")),
        "{rest:?}"
    );
    // Docker is back (restart-docker waits for it): what the run could not delete, clean does.
    let out = Command::new(env!("CARGO_BIN_EXE_drill"))
        .arg("clean")
        .env("PATH", kind_bin_path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_nothing_left_of(&cluster);
}

/// A report folder on a real filesystem with room for only part of a run's reports (a
/// 64 KiB tmpfs, nearly filled): drill says so, naming the folder, and leaves no
/// half-written report, no staging folder and no history line. Then, with room, the
/// same run writes its reports whole. No cluster: the run errors at once (no Flux
/// install manifest), and its error report is what is written.
#[test]
#[ignore = "needs root to mount a tmpfs: ./hack/test runs it"]
fn a_full_disk_leaves_no_half_written_report() {
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let mnt = tempfile::tempdir().unwrap();
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(mnt.path())
        .status()
        .unwrap();
    assert!(status.success(), "mount a tmpfs (root needed)");
    let _unmount = Unmount(mnt.path().to_path_buf());
    // 13 of the 16 pages: the first report files fit, the others do not.
    let filler = mnt.path().join("filler");
    std::fs::write(&filler, vec![0u8; 13 * 4096]).unwrap();
    let reports = mnt.path().join("reports");
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_drill"))
            .args(["run", "scenarios/flux-namespace-loss.yaml", "--report-dir"])
            .arg(&reports)
            .env_remove("DRILL_PROFILE")
            .env_remove("DRILL_FLUX_INSTALL")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap()
    };
    let out = run();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    assert!(err.contains(&reports.display().to_string()), "names the folder: {err}");
    let scenario_dir = reports.join("flux-namespace-loss");
    let left: Vec<_> = std::fs::read_dir(&scenario_dir)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "nothing half-written, no history line: {left:?}");

    std::fs::remove_file(&filler).unwrap();
    let out = run();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "the same error run: {err}");
    let dir = PathBuf::from(
        err.lines()
            .find_map(|l| l.strip_prefix("reports: "))
            .unwrap_or_else(|| panic!("written this time: {err}")),
    );
    for f in ["report.json", "junit.xml", "summary.md", "table.txt", "events.jsonl"] {
        assert!(dir.join(f).is_file(), "{f} written");
    }
    let history = std::fs::read_to_string(scenario_dir.join("history.jsonl")).unwrap();
    assert_eq!(history.lines().count(), 1);
}

/// Runs `drill gameday`; the report is read from the folder it prints.
fn drill_gameday(scenario: &str, operator: &str, reports: &Path) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_drill"))
        .args(["gameday", scenario, "--operator", operator, "--auto", "--report-dir"])
        .arg(reports)
        .env("DRILL_PROFILE", profile())
        .env("PATH", kind_bin_path())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    eprintln!("{stderr}");
    let dir = stderr
        .lines()
        .find_map(|l| l.strip_prefix("reports: "))
        .map(PathBuf::from)
        .expect("the reports folder is printed");
    let report = serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stderr,
        report,
        dir,
    }
}

fn step(report: &Value, n: usize) -> &Value {
    &report["steps"][n]
}

fn assertion<'a>(report: &'a Value, name_part: &str) -> &'a Value {
    report["assertions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"].as_str().unwrap().contains(name_part))
        .unwrap_or_else(|| panic!("no assertion named like {name_part:?}: {}", report["assertions"]))
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn drift_is_self_healed_and_expected_drift_is_not_a_finding() {
    let reports = tempfile::tempdir().unwrap();
    let run = drill_run("scenarios/flux-drift-self-heal.yaml", &[], reports.path());
    assert_eq!(run.code, 0, "expected a pass: {}", run.report);
    let r = &run.report;
    let healed = step(r, 0)["self_heal_ms"].as_u64().expect("self-heal timed");
    assert!(healed > 0 && healed <= 120_000, "self-heal {healed}");
    assert!(step(r, 0)["detection_ms"].as_u64().is_some(), "detection timed");
    assert_eq!(step(r, 1)["kept"], true, "HPA-owned replicas left alone");
    assert_eq!(assertion(r, "left the expected drift alone")["passed"], true);
    let drift = r["drift"].as_array().unwrap();
    assert_eq!(drift.len(), 2);
    assert_eq!(drift[0]["fields"][0]["field"], "/data/DB_HOST");
    assert_eq!(drift[0]["fields"][0]["git"], "users-db.users.svc.cluster.local");
    assert!(drift[0]["reverted_ms"].is_u64(), "Git's value came back");
    assert_eq!(drift[1]["kept"], true);
    assert_run_left_nothing(&run);
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn expected_drift_that_the_engine_reverts_is_reported_as_noise() {
    let reports = tempfile::tempdir().unwrap();
    let run = drill_run("scenarios/flux-drift-noise.yaml", &[], reports.path());
    assert_eq!(run.code, 1, "the noise case fails by design: {}", run.report);
    let a = assertion(&run.report, "left the expected drift alone");
    assert_eq!(a["passed"], false);
    assert!(a["message"].as_str().unwrap().contains("noise"), "{a}");
    assert!(run.report["drift"][0]["reverted_ms"].is_u64());
    assert_run_left_nothing(&run);
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn a_bad_commit_degrades_the_app_and_git_revert_restores_it() {
    let reports = tempfile::tempdir().unwrap();
    let run = drill_run("scenarios/flux-bad-commit-revert.yaml", &[], reports.path());
    assert_eq!(run.code, 0, "expected a pass: {}", run.report);
    let r = &run.report;
    let bad = step(r, 0);
    assert!(bad["degraded_ms"].is_u64(), "{bad}");
    let broken = bad["degraded"].to_string();
    assert!(
        broken.contains("Deployment/users/users-api"),
        "names the broken app: {broken}"
    );
    assert!(
        !broken.contains("DependencyNotReady"),
        "symptoms are not the breakage: {broken}"
    );
    let revert = step(r, 1);
    assert!(
        revert["recovered_ms"].as_u64().is_some(),
        "revert time measured: {revert}"
    );
    assert_ne!(bad["commit"], revert["commit"], "the revert is a new commit");
    assert_eq!(assertion(r, "git-revert: reverted to Healthy")["passed"], true);
    assert_run_left_nothing(&run);
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn gameday_auto_runs_break_glass_and_writes_the_incident_record() {
    let reports = tempfile::tempdir().unwrap();
    let run = drill_gameday("scenarios/flux-break-glass.yaml", "alice", reports.path());
    assert_eq!(run.code, 0, "expected a pass: {}", run.report);
    let actions = step(&run.report, 0)["actions"].as_array().unwrap().clone();
    let names: Vec<&str> = actions.iter().map(|a| a["action"].as_str().unwrap()).collect();
    for want in [
        "pause Kustomization/flux-system/users-api",
        "other apps still reconcile",
        "backport the mitigation to Git",
        "resume Kustomization/flux-system/users-api",
        "Git, engine and cluster agree",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    assert!(actions.iter().all(|a| a["ok"] == true), "{actions:?}");
    assert!(
        actions
            .iter()
            .any(|a| a["by"] == "alice" && a["action"].as_str().unwrap().starts_with("go-ahead")),
        "the operator's go-aheads are recorded: {names:?}"
    );
    let incident = std::fs::read_to_string(run.dir.join("incident.md")).unwrap();
    assert!(incident.contains("people: alice"), "{incident}");
    assert!(incident.contains("**Reconciliation commit:** `"), "{incident}");
    assert!(
        incident.contains("ConfigMap/users/users-api-env (/data/REPORTS_EXPORT"),
        "{incident}"
    );
    assert!(
        incident.contains("| alice | pause Kustomization/flux-system/users-api"),
        "{incident}"
    );
    assert_run_left_nothing(&run);
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn the_seed_replay_shows_the_drift_window_and_the_change_that_broke_the_app() {
    let reports = tempfile::tempdir().unwrap();
    let run = drill_run("scenarios/seed-configmap-drift.yaml", &[], reports.path());
    assert_eq!(run.code, 0, "expected a pass: {}", run.report);
    let r = &run.report;
    assert_eq!(
        step(r, 1)["kept"],
        true,
        "the hand edit survives while self-heal is off"
    );
    assert!(step(r, 4)["degraded_ms"].is_u64(), "resume breaks the app");
    assert!(step(r, 5)["degraded_ms"].is_u64(), "the image rollback does not fix it");
    assert!(step(r, 6)["recovered_ms"].is_u64(), "fixing DB_HOST in Git does");
    let drift = &r["drift"][0];
    assert_eq!(
        drift["reverted_in_step"], 4,
        "Git overwrote the edit when reconciliation resumed"
    );
    assert!(drift["age_ms"].as_u64().unwrap() > 20_000, "{drift}");
    let findings = r["findings"].to_string();
    assert!(findings.contains("the reverted commit did not cause it"), "{findings}");
    assert!(
        findings.contains("the app broke when Git overwrote the hand edit of ConfigMap/users/users-api-env"),
        "{findings}"
    );
    assert_run_left_nothing(&run);
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn argocd_seed_replay_the_hand_edit_keeps_the_app_alive_until_git_overwrites_it() {
    let reports = tempfile::tempdir().unwrap();
    let run = drill_run("scenarios/argocd-seed-configmap-drift.yaml", &[], reports.path());
    assert_eq!(run.code, 0, "expected a pass: {}", run.report);
    let r = &run.report;
    assert_eq!(
        step(r, 1)["kept"],
        true,
        "the hand edit survives while auto-sync is off"
    );
    assert!(
        step(r, 3)["recovered_ms"].is_u64(),
        "node churn while the edit lives: the new pod reads it and is Ready"
    );
    assert!(step(r, 5)["degraded_ms"].is_u64(), "resuming auto-sync breaks the app");
    assert!(
        step(r, 6)["degraded_ms"].is_u64(),
        "the next churn leaves no pod that read the hand edit"
    );
    assert!(
        step(r, 7)["degraded_ms"].is_u64(),
        "rolling the release back does not fix it"
    );
    assert!(step(r, 8)["recovered_ms"].is_u64(), "fixing DB_HOST in Git does");
    assert_eq!(
        r["drift"][0]["reverted_in_step"], 5,
        "Git overwrote the edit when auto-sync came back"
    );
    let findings = r["findings"].to_string();
    assert!(findings.contains("the reverted commit did not cause it"), "{findings}");
    assert!(
        findings.contains("the app broke when Git overwrote the hand edit of ConfigMap/users/users-api-env"),
        "{findings}"
    );
    assert_run_left_nothing(&run);
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn argocd_namespace_loss_recovers_with_every_application_synced_and_healthy() {
    let reports = tempfile::tempdir().unwrap();
    let run = drill_run("scenarios/argocd-namespace-loss.yaml", &[], reports.path());
    assert_eq!(run.code, 0, "expected a pass: {}", run.report);
    let r = &run.report;
    let apps = r["apps"].as_array().unwrap();
    for name in [
        "root",
        "infrastructure",
        "users-db",
        "users-api",
        "reports",
        "env-staging",
        "env-production",
    ] {
        let app = apps
            .iter()
            .find(|a| a["kind"] == "Application" && a["name"] == name)
            .unwrap_or_else(|| panic!("Application {name} followed: {apps:?}"));
        assert_eq!(app["ready"], true, "{app}");
    }
    assert!(
        !phases(r, "secret-bootstrap").is_empty(),
        "the repository secret is a timed phase"
    );
    assert!(r["rto_ms"].as_u64().unwrap() <= 300_000);
    assert_run_left_nothing(&run);
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn argocd_cluster_loss_rebuilds_install_secret_root_app_and_waits() {
    let reports = tempfile::tempdir().unwrap();
    let run = drill_run("scenarios/argocd-cluster-loss.yaml", &[], reports.path());
    assert_eq!(run.code, 0, "expected a pass: {}", run.report);
    let r = &run.report;
    for name in ["cluster-create", "engine-install", "secret-bootstrap"] {
        assert_eq!(phases(r, name).len(), 2, "{name} timed in both builds");
    }
    let path = r["critical_path"].as_array().unwrap();
    assert_eq!(path[0], "cluster-create", "{path:?}");
    assert!(
        path.iter().any(|p| p.as_str().unwrap().starts_with("Application/")),
        "{path:?}"
    );
    assert_run_left_nothing(&run);
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn argocd_a_degraded_child_under_a_healthy_parent_fails_and_is_named() {
    let reports = tempfile::tempdir().unwrap();
    let run = drill_run(
        "scenarios/argocd-child-degraded.yaml",
        &["--bootstrap-timeout", "150s"],
        reports.path(),
    );
    assert_eq!(run.code, 1, "an assertion failure, not an error: {}", run.report);
    let r = &run.report;
    let apps = r["apps"].as_array().unwrap();
    let root = apps
        .iter()
        .find(|a| a["kind"] == "Application" && a["name"] == "root")
        .unwrap();
    assert_eq!(root["ready"], true, "the parent looks fine: {root}");
    let failed = r["assertions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["passed"] == false)
        .map(|a| a["message"].as_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(failed.contains("Application/argocd/ghost"), "names the child: {failed}");
    assert_run_left_nothing(&run);
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn sops_key_is_restored_in_secret_bootstrap_and_never_leaks() {
    let reports = tempfile::tempdir().unwrap();
    let run = drill_run("scenarios/flux-cluster-loss-sops.yaml", &[], reports.path());
    assert_eq!(run.code, 0, "expected a pass: {}", run.report);
    let r = &run.report;
    assert_eq!(phases(r, "secret-bootstrap").len(), 2, "restored in both builds");
    assert_eq!(assertion(r, "Secret users/users-db-credentials")["passed"], true);
    let secrets_app = app(r, "Kustomization", "users-secrets");
    assert_eq!(secrets_app["ready"], true, "Flux decrypted it: {secrets_app}");

    // No byte of the key, nor the value it decrypts, in any output.
    let key = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/keys/demo.agekey")).unwrap();
    let identity = key
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .unwrap()
        .to_string();
    let needles = [
        identity.clone(),
        identity[16..48].to_string(),
        "drill-demo-password-5b9e1c".to_string(),
    ];
    assert_no_leaks(&run, &needles);
    assert_run_left_nothing(&run);
}

/// Every output of a run (stderr, report.json and every file in the run's folder), by name.
fn outputs_of(run: &Run) -> Vec<(String, String)> {
    let mut outputs = vec![
        ("stderr".to_string(), run.stderr.clone()),
        ("stdout".into(), run.report.to_string()),
    ];
    for entry in std::fs::read_dir(&run.dir).unwrap() {
        let path = entry.unwrap().path();
        outputs.push((path.display().to_string(), std::fs::read_to_string(&path).unwrap()));
    }
    outputs
}

/// The report's entry for one followed object.
fn app<'a>(report: &'a Value, kind: &str, name: &str) -> &'a Value {
    report["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == kind && a["name"] == name)
        .unwrap_or_else(|| panic!("{kind}/{name} is not followed: {}", report["apps"]))
}

/// No needle (key bytes, decrypted values) in any output of the run.
fn assert_no_leaks(run: &Run, needles: &[String]) {
    for (name, text) in outputs_of(run) {
        for needle in needles {
            assert!(!text.contains(needle.as_str()), "{name} leaks secret material");
        }
    }
}

/// Pieces of the sealed-secrets demo key backup and the value it unseals: none may leak.
fn sealed_secret_needles() -> Vec<String> {
    let backup = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/keys/sealed-secrets-key.yaml"
    ))
    .unwrap();
    let key = backup.lines().find_map(|l| l.trim().strip_prefix("tls.key: ")).unwrap();
    vec![
        key[..48].to_string(),
        key[200..248].to_string(),
        "sealed-demo-password-7f3a".into(),
    ]
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn sealed_secrets_key_is_restored_before_the_controller_starts_and_never_leaks() {
    let reports = tempfile::tempdir().unwrap();
    let run = drill_run("scenarios/sealed-secrets-key-restore.yaml", &[], reports.path());
    assert_eq!(run.code, 0, "expected a pass: {}", run.report);
    let r = &run.report;
    assert_eq!(phases(r, "secret-bootstrap").len(), 2, "restored in both builds");
    assert_eq!(assertion(r, "Secret users/users-db-password")["passed"], true);
    let sealed = app(r, "SealedSecret", "users-db-password");
    assert_eq!(
        sealed["ready"], true,
        "the controller unsealed it with the restored key: {sealed}"
    );
    assert_no_leaks(&run, &sealed_secret_needles());
    assert_run_left_nothing(&run);
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn a_rebuild_without_the_sealed_secrets_key_fails_and_names_the_sealed_secret() {
    let reports = tempfile::tempdir().unwrap();
    let run = drill_run("scenarios/sealed-secrets-key-lost.yaml", &[], reports.path());
    assert_eq!(run.code, 1, "expected an assertion failure: {}", run.report);
    let r = &run.report;
    assert_eq!(
        phases(r, "secret-bootstrap").len(),
        1,
        "restored in the first build only"
    );
    let sealed = app(r, "SealedSecret", "users-db-password");
    assert_eq!(sealed["ready"], false, "{sealed}");
    assert!(
        sealed["not_ready_message"]
            .as_str()
            .unwrap_or_default()
            .contains("no key could decrypt secret"),
        "{sealed}"
    );
    let recovered = assertion(r, "recovered within RTO");
    assert_eq!(recovered["passed"], false);
    let message = recovered["message"].as_str().unwrap();
    assert!(message.contains("SealedSecret/users/users-db-password"), "{message}");
    assert!(message.contains("no key could decrypt secret"), "{message}");
    assert!(
        run.stderr.contains("the rebuild goes without secrets.sealed-secrets"),
        "{}",
        run.stderr
    );
    assert_no_leaks(&run, &sealed_secret_needles());
    assert_run_left_nothing(&run);
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn preloaded_images_are_pulled_before_the_engine_and_the_rebuild_pulls_nothing() {
    let reports = tempfile::tempdir().unwrap();
    let run = drill_run("scenarios/flux-cluster-loss-preloaded.yaml", &[], reports.path());
    assert_eq!(run.code, 0, "expected a pass: {}", run.report);
    let r = &run.report;
    let preload = phases(r, "image-preload");
    assert_eq!(preload.len(), 2, "preloaded into both clusters: {preload:?}");
    assert!(preload.iter().all(|&ms| ms > 0), "{preload:?}");
    // Every image was on the node before its pod started: the kubelet pulled nothing.
    assert_eq!(r["images"].as_array().unwrap().len(), 0, "no pulls: {}", r["images"]);
    assert!(phases(r, "image-pulls").is_empty(), "{}", r["phases"]);
    // The preload comes between cluster create and the engine install, in each build.
    let names: Vec<&str> = r["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .filter(|n| ["cluster-create", "image-preload", "engine-install"].contains(n))
        .collect();
    assert_eq!(
        names,
        [
            "cluster-create",
            "image-preload",
            "engine-install",
            "cluster-create",
            "image-preload",
            "engine-install"
        ]
    );
    assert!(
        !r["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("could not preload")),
        "{}",
        r["warnings"]
    );
    assert_run_left_nothing(&run);
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn a_pull_through_cache_outlives_the_cluster_and_the_rebuild_pulls_through_it() {
    let reports = tempfile::tempdir().unwrap();
    let run = drill_run("scenarios/flux-cluster-loss-mirror.yaml", &[], reports.path());
    assert_eq!(run.code, 0, "expected a pass: {}", run.report);
    let r = &run.report;
    // Started with the first cluster; only re-pointed at after the rebuild.
    let names: Vec<&str> = r["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .filter(|n| ["cluster-create", "image-mirror", "engine-install"].contains(n))
        .collect();
    assert_eq!(
        names,
        [
            "cluster-create",
            "image-mirror",
            "engine-install",
            "cluster-create",
            "image-mirror",
            "engine-install"
        ]
    );
    let cluster = gitops_drill::runner::cluster_name(r["scenario"].as_str().unwrap(), r["run_id"].as_str().unwrap());
    let cache = format!("{cluster}-mirror");
    assert!(
        run.stderr.contains(&format!(
            "pulling through cache {cache} (in front of http://gitops-drill-registry:5000)"
        )),
        "{}",
        run.stderr
    );
    // Both clusters' nodes pulled (nothing was preloaded), and no pull failed ...
    let pulls_of = |image: &str| {
        r["images"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["image"].as_str().unwrap().contains(image) && i["failed"].is_null())
            .count()
    };
    assert_eq!(pulls_of("demo-large"), 2, "{}", r["images"]);
    assert_eq!(pulls_of("source-controller"), 2, "{}", r["images"]);
    assert!(
        r["images"].as_array().unwrap().iter().all(|i| i["failed"].is_null()),
        "{}",
        r["images"]
    );
    // ... and what went through the cache is the fleet's and Flux's images: the cache
    // only holds what nodes asked it for.
    let held = run
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix(&format!("pull-through cache {cache} held ")))
        .unwrap_or_else(|| panic!("the cache's content is reported: {}", run.stderr));
    for repo in ["ghcr.io/fluxcd/source-controller", "docker.io/gitops-drill/demo-large"] {
        assert!(held.contains(repo), "{repo} went through the cache: {held}");
    }
    // The cache went with the cluster.
    assert_run_left_nothing(&run);
    let out = Command::new("docker")
        .args([
            "ps",
            "-a",
            "--filter",
            &format!("label=io.gitops-drill.mirror-of={cluster}"),
            "--format",
            "{{.Names}}",
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).trim().is_empty(),
        "cache {cache} left behind"
    );
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn argocd_drift_goes_out_of_sync_and_is_self_healed_and_ignored_differences_are_kept() {
    let reports = tempfile::tempdir().unwrap();
    let run = drill_run("scenarios/argocd-drift-self-heal.yaml", &[], reports.path());
    assert_eq!(run.code, 0, "expected a pass: {}", run.report);
    let r = &run.report;
    let healed = step(r, 0)["self_heal_ms"].as_u64().expect("self-heal timed");
    assert!(healed > 0 && healed <= 120_000, "self-heal {healed}");
    let detected = step(r, 0)["detection_ms"]
        .as_u64()
        .expect("OutOfSync timed as detection");
    assert!(detected <= healed, "detected {detected} before healed {healed}");
    assert_eq!(step(r, 1)["kept"], true, "ignoreDifferences: replicas left alone");
    assert_eq!(assertion(r, "left the expected drift alone")["passed"], true);
    let drift = r["drift"].as_array().unwrap();
    assert_eq!(drift.len(), 2);
    assert_eq!(drift[0]["fields"][0]["git"], "users-db.users.svc.cluster.local");
    assert!(drift[0]["reverted_ms"].is_u64(), "Git's value came back");
    assert_eq!(drift[1]["kept"], true);
    assert_run_left_nothing(&run);
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn argocd_break_glass_pauses_the_self_healing_parent_too_and_git_and_cluster_agree() {
    let reports = tempfile::tempdir().unwrap();
    let run = drill_run("scenarios/argocd-break-glass.yaml", &[], reports.path());
    assert_eq!(run.code, 0, "expected a pass: {}", run.report);
    let actions = step(&run.report, 0)["actions"].as_array().unwrap().clone();
    let pause = actions
        .iter()
        .find(|a| a["action"] == "pause Application/argocd/users-api")
        .unwrap_or_else(|| panic!("{actions:?}"));
    // Without the root paused, its self-heal would have put users-api's policy back.
    assert!(
        pause.to_string().contains("Application/argocd/root paused too"),
        "{pause}"
    );
    for want in [
        "other apps still reconcile",
        "backport the mitigation to Git",
        "resume Application/argocd/users-api",
        "Git, engine and cluster agree",
    ] {
        assert!(
            actions.iter().any(|a| a["action"] == want),
            "{want} missing from {actions:?}"
        );
    }
    assert!(actions.iter().all(|a| a["ok"] == true), "{actions:?}");
    assert_eq!(assertion(&run.report, "/data/REPORTS_EXPORT")["passed"], true);
    assert_run_left_nothing(&run);
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn argocd_history_rollback_is_undone_by_auto_sync_and_git_revert_fixes_it() {
    let reports = tempfile::tempdir().unwrap();
    let run = drill_run("scenarios/argocd-history-rollback.yaml", &[], reports.path());
    assert_eq!(run.code, 0, "expected a pass: {}", run.report);
    let r = &run.report;
    assert!(step(r, 0)["degraded_ms"].is_u64(), "the bad commit broke users-api");
    let actions = step(r, 1)["actions"].as_array().unwrap().clone();
    let find = |name: &str| {
        actions
            .iter()
            .find(|a| a["action"].as_str().unwrap().starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing from {actions:?}"))
            .clone()
    };
    let rollback = find("roll back Application/argocd/users-api to history");
    let synced = find("Argo CD synced the rollback");
    let reapplied = find("auto-sync re-applied Git's revision");
    assert_eq!(synced["ok"], true, "{synced}");
    assert_eq!(reapplied["ok"], true, "{reapplied}");
    // The rollback went to the commit before the bad one, and auto-sync came back to the bad one.
    let bad = step(r, 0)["commit"].as_str().unwrap();
    assert!(
        rollback["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("from {}", &bad[..12])),
        "{rollback}"
    );
    assert!(
        reapplied["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{} again", &bad[..12])),
        "{reapplied}"
    );
    assert!(reapplied["at_ms"].as_u64() > synced["at_ms"].as_u64());
    assert!(
        step(r, 2)["recovered_ms"].is_u64(),
        "git revert recovered it: {}",
        step(r, 2)
    );
    assert_run_left_nothing(&run);
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn argocd_expected_drift_without_an_ignore_rule_is_reported_as_noise() {
    let reports = tempfile::tempdir().unwrap();
    let run = drill_run("scenarios/argocd-drift-noise.yaml", &[], reports.path());
    assert_eq!(run.code, 1, "the noise case fails by design: {}", run.report);
    let a = assertion(&run.report, "left the expected drift alone");
    assert_eq!(a["passed"], false);
    assert!(a["message"].as_str().unwrap().contains("noise"), "{a}");
    assert!(run.report["drift"][0]["reverted_ms"].is_u64());
    assert_run_left_nothing(&run);
}

/// A repo token made for one test run, and what it looks like in every form it could
/// leak in (as is, and inside a basic-auth header).
fn repo_token(test: &str) -> (String, Vec<String>) {
    use base64::Engine as _;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let token = format!("drill-e2e-{test}-{nanos:x}");
    let header = base64::engine::general_purpose::STANDARD.encode(format!("drill:{token}"));
    let needles = vec![token.clone(), header, token[token.len() - 10..].to_string()];
    (token, needles)
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn repo_credentials_are_restored_for_flux_and_never_leak() {
    let reports = tempfile::tempdir().unwrap();
    let (token, needles) = repo_token("flux");
    let env = [("DRILL_REPO_USER", "drill"), ("DRILL_REPO_TOKEN", token.as_str())];
    let run = drill_run_env("scenarios/repo-credentials-restore.yaml", &[], &env, reports.path());
    assert_eq!(run.code, 0, "expected a pass: {}", run.report);
    let r = &run.report;
    assert_eq!(phases(r, "secret-bootstrap").len(), 2, "restored in both builds");
    let source = app(r, "GitRepository", "flux-system");
    assert_eq!(source["ready"], true, "Flux fetched with the restored token: {source}");
    assert_no_leaks(&run, &needles);
    assert_run_left_nothing(&run);
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn argocd_repo_credentials_go_into_the_repository_secret() {
    let reports = tempfile::tempdir().unwrap();
    let (token, needles) = repo_token("argocd");
    let env = [("DRILL_REPO_USER", "drill"), ("DRILL_REPO_TOKEN", token.as_str())];
    let run = drill_run_env(
        "scenarios/repo-credentials-restore.yaml",
        &["--engine", "argocd"],
        &env,
        reports.path(),
    );
    assert_eq!(run.code, 0, "expected a pass: {}", run.report);
    let r = &run.report;
    assert_eq!(phases(r, "secret-bootstrap").len(), 2, "restored in both builds");
    let root = app(r, "Application", "root");
    assert_eq!(root["ready"], true, "{root}");
    assert_no_leaks(&run, &needles);
    assert_run_left_nothing(&run);
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn a_rebuild_without_the_repo_credentials_fails_at_the_source_and_names_it() {
    let reports = tempfile::tempdir().unwrap();
    let (token, needles) = repo_token("lost");
    let env = [("DRILL_REPO_USER", "drill"), ("DRILL_REPO_TOKEN", token.as_str())];
    let run = drill_run_env("scenarios/repo-credentials-lost.yaml", &[], &env, reports.path());
    assert_eq!(run.code, 1, "expected an assertion failure: {}", run.report);
    let r = &run.report;
    assert_eq!(
        phases(r, "secret-bootstrap").len(),
        1,
        "restored in the first build only"
    );
    let source = app(r, "GitRepository", "flux-system");
    assert_eq!(source["ready"], false, "{source}");
    let why = source["not_ready_message"].as_str().unwrap_or_default();
    assert!(
        why.contains("flux-system"),
        "the source names its missing secret: {source}"
    );
    let recovered = assertion(r, "recovered within RTO");
    assert_eq!(recovered["passed"], false);
    let message = recovered["message"].as_str().unwrap();
    assert!(
        message.contains("source failing: GitRepository/flux-system/flux-system"),
        "the source is the finding, not the apps behind it: {message}"
    );
    assert!(
        run.stderr.contains("the rebuild goes without repo.credentials"),
        "{}",
        run.stderr
    );
    assert_no_leaks(&run, &needles);
    assert_run_left_nothing(&run);
}

/// Serves examples/fleet (committed HEAD) on the kind network's gateway, as a remote
/// Git host would: drill's own server, used as a library. Keep all three alive.
fn serve_fleet(
    auth: Option<gitops_drill::secrets::RepoAuth>,
) -> (
    gitops_drill::gitserve::GitServer,
    tempfile::TempDir,
    tokio::runtime::Runtime,
) {
    use gitops_drill::gitserve::{GitServer, ServedRepo};
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let work = tempfile::tempdir().unwrap();
    let server = rt.block_on(async {
        let docker = bollard::Docker::connect_with_local_defaults().unwrap();
        let gateway = gitops_drill::cluster::kind::kind_network_gateway(&docker)
            .await
            .unwrap();
        let repo = ServedRepo::prepare(&root.join("examples/fleet"), "HEAD", work.path())
            .await
            .unwrap();
        GitServer::start(repo, std::net::SocketAddr::new(gateway, 0), auth)
            .await
            .unwrap()
    });
    (server, work, rt)
}

/// Deletes a kind cluster when dropped, so a failed assertion leaves nothing behind.
struct KindClusterGuard(String);

impl Drop for KindClusterGuard {
    fn drop(&mut self) {
        let _ = Command::new("kind")
            .args(["delete", "cluster", "--name", &self.0])
            .env("PATH", kind_bin_path())
            .output();
    }
}

/// The blast-radius guard with a cluster drill did not create for this run: a kind
/// cluster left running (with Flux syncing from a Git server this test owns), then a
/// rehearsal in place. drill refuses it unless its context is named on the command
/// line, refuses it when the kubeconfig points elsewhere, lists what it will delete,
/// recovers, and leaves the cluster running.
#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn an_existing_cluster_is_rehearsed_in_place_only_behind_the_guard_and_never_deleted() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (server, work, _rt) = serve_fleet(None);
    let setup = work.path().join("existing-setup.yaml");
    std::fs::write(
        &setup,
        format!(
            "name: existing-setup\ncluster:\n  kind:\n    config: {}\nengine:\n  flux:\n    repo: {{url: {}, ref: main}}\n    path: clusters/demo\n    interval: 1m\nexpect:\n  rto: 10m\n",
            root.join("kind-configs/1node.yaml").display(),
            server.url()
        ),
    )
    .unwrap();
    let reports = tempfile::tempdir().unwrap();
    let made = drill_run(setup.to_str().unwrap(), &["--keep-cluster"], reports.path());
    let (name, kubeconfig) = kept_cluster(&made);
    let _cleanup = KindClusterGuard(name.clone());
    assert_eq!(made.code, 0, "setup failed: {}", made.report);
    let kubeconfig = kubeconfig.as_str();
    let context = format!("kind-{name}");

    let scenario_with = |kubeconfig: &str, file: &str| {
        let path = work.path().join(file);
        std::fs::write(
            &path,
            format!(
                "name: existing-namespace-loss\ncluster:\n  existing:\n    context: {context}\n    kubeconfig: {kubeconfig}\n\
                 engine:\n  flux:\n    repo: {{path: {}}}\n    path: clusters/demo\n\
                 disasters:\n  - delete-namespace: {{namespaces: [users]}}\nexpect:\n  rto: 5m\n",
                root.join("examples/fleet").display()
            ),
        )
        .unwrap();
        path.to_str().unwrap().to_string()
    };

    // The same context, pointed at an address that is no container of this machine.
    let text = std::fs::read_to_string(kubeconfig).unwrap();
    let elsewhere = work.path().join("elsewhere-kubeconfig");
    let moved: String = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("server: ") {
                "    server: https://10.255.255.1:6443".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_ne!(moved, text);
    std::fs::write(&elsewhere, moved).unwrap();
    let refused = drill_run(
        &scenario_with(elsewhere.to_str().unwrap(), "elsewhere.yaml"),
        &["--allow-context", &context],
        reports.path(),
    );
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("is not a container on this machine's Docker networks"),
        "{}",
        refused.stderr
    );

    let scenario = scenario_with(kubeconfig, "existing.yaml");
    let unallowed = drill_run(&scenario, &[], reports.path());
    assert_eq!(unallowed.code, 2, "{}", unallowed.stderr);
    assert!(
        unallowed.stderr.contains("pass --allow-context"),
        "{}",
        unallowed.stderr
    );

    let run = drill_run(&scenario, &["--allow-context", &context], reports.path());
    assert_eq!(run.code, 0, "expected a pass: {}", run.report);
    assert!(
        run.stderr
            .contains(&format!("is container {name}-control-plane on this machine")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("step 1 will: delete namespace(s) users"),
        "{}",
        run.stderr
    );
    assert!(phases(&run.report, "cluster-create").is_empty(), "nothing was created");
    assert!(
        phases(&run.report, "engine-install").is_empty(),
        "nothing was installed"
    );
    assert_eq!(app(&run.report, "Kustomization", "users-api")["ready"], true);
    let still = Command::new("docker")
        .args([
            "ps",
            "--filter",
            &format!("name=^{name}-control-plane$"),
            "--format",
            "{{.Names}}",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&still.stdout).trim(),
        format!("{name}-control-plane"),
        "drill must leave a cluster it did not create running"
    );
}

/// A `url:` repo: drill does not serve it, the cluster fetches it with the restored
/// credentials. The "remote" is a Git server this test starts on the kind network
/// (drill's own, as a library), the only address the cluster may reach.
#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn a_url_repo_is_fetched_with_the_restored_credentials_and_a_wrong_token_stops_at_preflight() {
    use gitops_drill::secrets::RepoAuth;

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (token, needles) = repo_token("url");
    let auth = RepoAuth {
        username: "drill".into(),
        password: token.clone(),
        origin: "the test".into(),
    };
    let (server, work, _rt) = serve_fleet(Some(auth));
    let scenario = work.path().join("url-repo.yaml");
    std::fs::write(
        &scenario,
        format!(
            "name: url-repo-namespace-loss
cluster:
  kind:
    config: {kind}
engine:
  flux:
    repo:
      url: {url}
      ref: main
      credentials: {{username-env: DRILL_REPO_USER, password-env: DRILL_REPO_TOKEN}}
    path: clusters/demo
    interval: 1m
disasters:
  - delete-namespace: {{namespaces: [users]}}
expect:
  rto: 5m
",
            kind = root.join("kind-configs/1node.yaml").display(),
            url = server.url()
        ),
    )
    .unwrap();
    let scenario = scenario.to_str().unwrap();

    let reports = tempfile::tempdir().unwrap();
    let wrong = [("DRILL_REPO_USER", "drill"), ("DRILL_REPO_TOKEN", "not-the-token")];
    let refused = drill_run_env(scenario, &[], &wrong, reports.path());
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("repo.url: cannot read"), "{}", refused.stderr);
    assert!(
        !refused.stderr.contains("cluster-create"),
        "nothing was created: {}",
        refused.stderr
    );

    let env = [("DRILL_REPO_USER", "drill"), ("DRILL_REPO_TOKEN", token.as_str())];
    let run = drill_run_env(scenario, &[], &env, reports.path());
    assert_eq!(run.code, 0, "expected a pass: {}", run.report);
    assert!(
        run.stderr
            .contains(&format!("branch main at {}", &server.repo.served_commit[..12])),
        "the run pins the remote's commit: {}",
        run.stderr
    );
    assert_eq!(phases(&run.report, "secret-bootstrap").len(), 1);
    assert_eq!(app(&run.report, "GitRepository", "flux-system")["ready"], true);
    assert_no_leaks(&run, &needles);
    drop(server);
    assert_run_left_nothing(&run);
}
