//! What keeps drill safe to run: signals and panics delete the run's cluster, `drill clean`
//! removes only drill's orphans, a Docker daemon that goes away is an error, an existing
//! cluster is rehearsed only behind the guard, and a full disk leaves no half-written report.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{
    KindClusterGuard, app, assert_node_running, assert_nothing_left_of, assert_run_left_nothing, disturb_run,
    drill_run, drill_run_env, interrupt_run, kept_cluster, kind_bin_path, phases, profile, serve_fleet, spawn_run,
    verdict,
};

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn sigterm_mid_run_deletes_the_cluster() {
    // Cancelled the way CI does, once the cluster exists (the engine is being installed).
    let (code, cluster, rest) = interrupt_run("scenarios/flux-bootstrap.yaml", "TERM", |l| {
        l.contains("✓ cluster-create")
    });
    assert_eq!(code, Some(143), "128 + SIGTERM, after the cleanup: {rest:?}");
    assert!(
        rest.iter()
            .any(|l| l.contains(&format!("interrupted by SIGTERM: deleting cluster {cluster}"))),
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
    assert_eq!(code, Some(130), "128 + SIGINT, after the cleanup: {rest:?}");
    assert_nothing_left_of(&cluster);
    // Waiting for the first sync from Git (the engine runs, the watchers are open).
    let (code, cluster, rest) = interrupt_run("scenarios/flux-bootstrap.yaml", "INT", |l| {
        l.contains("✓ engine-install")
    });
    assert_eq!(code, Some(130), "{rest:?}");
    assert!(rest.iter().any(|l| l.contains("no report written")), "{rest:?}");
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
    assert_eq!(code, Some(130), "{rest:?}");
    assert_nothing_left_of(&cluster);
}

/// Interrupts a run once its cluster exists, then sends `more` signals one by one while
/// the cleanup runs, each after the line the previous one caused. Returns the cluster's
/// name, the lines after the last signal, and the exit status.
fn interrupt_during_cleanup(more: &[&str]) -> (String, Vec<String>, std::process::ExitStatus) {
    let (mut child, mut lines, _reports) = spawn_run("scenarios/flux-bootstrap.yaml");
    let send = |sig: &str, pid: u32| {
        Command::new("kill").args([sig, &pid.to_string()]).status().unwrap();
    };
    let mut seen = Vec::new();
    let mut cluster = None;
    let mut pending = more.iter();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push(line.clone());
        if line.contains("✓ cluster-create") {
            send("-INT", child.id());
        }
        if let Some(rest) = line.strip_prefix("interrupted by SIGINT: deleting cluster ") {
            cluster = rest.split_whitespace().next().map(str::to_string);
        }
        let cleaning =
            cluster.is_some() && (line.starts_with("interrupted by SIGINT") || line.starts_with("still deleting"));
        if cleaning {
            match pending.next() {
                Some(sig) => send(sig, child.id()),
                None => break,
            }
            if pending.len() == 0 {
                break;
            }
        }
    }
    let cluster = cluster.unwrap_or_else(|| panic!("the cleanup never began: {seen:?}"));
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    (cluster, rest, status)
}

/// What a CI cancel does (GitHub Actions: SIGINT, then SIGTERM seconds later): the second
/// signal does not stop the cleanup, and nothing of the run is left.
#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn a_ci_cancel_sigint_then_sigterm_still_deletes_the_cluster() {
    let (cluster, rest, status) = interrupt_during_cleanup(&["-TERM"]);
    assert_eq!(
        status.code(),
        Some(130),
        "the first signal sets the exit code: {rest:?}"
    );
    assert!(
        rest.iter()
            .any(|l| l == &format!("still deleting cluster {cluster} (one more interrupt skips it)")),
        "{rest:?}"
    );
    assert!(!rest.iter().any(|l| l.contains("cleanup skipped")), "{rest:?}");
    assert_nothing_left_of(&cluster);
}

/// A third signal is an operator who wants out now: the cleanup is skipped, and drill
/// says how to finish it.
#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn a_third_signal_skips_the_cleanup_and_says_how_to_finish_it() {
    let (cluster, rest, status) = interrupt_during_cleanup(&["-TERM", "-INT"]);
    assert_eq!(status.code(), Some(130), "{rest:?}");
    assert!(
        rest.iter()
            .any(|l| l.contains(&format!("cleanup skipped: run `drill clean` to remove {cluster}"))),
        "{rest:?}"
    );
    // What the skipped cleanup left is the test's to remove (not `drill clean`: other
    // rehearsals run beside this one).
    let out = crate::harness::kind_delete(&cluster);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_nothing_left_of(&cluster);
}

/// A watch that panics (a bug) stops observing what it followed: the run must not wait
/// out its timeout or pass on stale state. It ends as an error naming the watch, with
/// its report, and deletes its cluster.
#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn a_panicking_watch_ends_the_run_as_an_error_naming_it() {
    let reports = tempfile::tempdir().unwrap();
    let run = drill_run_env(
        "scenarios/flux-bootstrap.yaml",
        &[],
        &[("DRILL_FAULT_WATCH_PANIC", "Deployment")],
        reports.path(),
    );
    assert_eq!(run.code, 2, "{}", verdict(&run.report));
    let error = run.report["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("the Deployment watch panicked")
            && error.contains("DRILL_FAULT_WATCH_PANIC=Deployment: a deliberate panic"),
        "{error}"
    );
    // Stopped at the panic, not at the 10-minute bootstrap timeout.
    let took = run.report["duration_ms"].as_u64().unwrap();
    assert!(took < 300_000, "the run ended {took} ms in");
    assert_run_left_nothing(&run);
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

    // The killed run's work folder (its kubeconfig, its served repo) with its lock file.
    let suffix = &orphan[orphan.len() - 4..];
    let work = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            name.starts_with("drill-20") && name.ends_with(suffix) && p.join("run.lock").exists()
        })
        .unwrap_or_else(|| panic!("the killed run's work folder (drill-*-{suffix}) is left"));
    // While a process holds that lock, as a live run does, clean leaves the cluster alone.
    let mut holder = Command::new("python3")
        .args([
            "-c",
            "import fcntl, sys, time; f = open(sys.argv[1]); fcntl.flock(f, fcntl.LOCK_EX); \
             print('held', flush=True); time.sleep(600)",
        ])
        .arg(work.join("run.lock"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut held = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(holder.stdout.take().unwrap()), &mut held).unwrap();
    assert_eq!(held.trim(), "held");
    let (code, out) = drill(&["clean", "--dry-run"]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains(&format!("left cluster {orphan} alone: its run is still in progress")),
        "{out}"
    );
    assert!(
        !out.contains(&work.display().to_string()),
        "a live run's folder stays: {out}"
    );
    holder.kill().unwrap();
    holder.wait().unwrap();

    let (code, out) = drill(&["clean", "--dry-run"]);
    assert_eq!(code, Some(0));
    assert!(out.contains(&format!("would delete cluster {orphan}\n")), "{out}");
    assert!(
        out.contains(&format!(
            "would delete work folder {} (no run holds it)",
            work.display()
        )),
        "{out}"
    );
    assert!(
        out.contains("left cluster drill-lookalike alone: its nodes carry no drill owner mark")
            && !out.contains("delete cluster drill-lookalike"),
        "{out}"
    );
    let (_, out) = drill(&["clean"]);
    assert!(out.contains(&format!("deleted cluster {orphan}\n")), "{out}");
    assert_nothing_left_of(&orphan);
    assert!(!work.exists(), "the dead run's work folder is removed: {out}");
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
    let pointed_at = |server: &str, file: &str| {
        let moved: String = text
            .lines()
            .map(|l| {
                if l.trim_start().starts_with("server: ") {
                    format!("    server: {server}")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert_ne!(moved, text);
        let path = work.path().join(file);
        std::fs::write(&path, moved).unwrap();
        path
    };
    // Each refused with exit 2, naming why, before anything is touched.
    let refused = |server: &str, name: &str, why: &str| {
        let config = pointed_at(server, &format!("{name}-kubeconfig"));
        let run = drill_run(
            &scenario_with(config.to_str().unwrap(), &format!("{name}.yaml")),
            &["--allow-context", &context],
            reports.path(),
        );
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(run.stderr.contains(why), "{}", run.stderr);
    };
    refused(
        "https://10.255.255.1:6443",
        "elsewhere",
        "is not a container on this machine's Docker networks",
    );
    // A local container that is no kind node (the test bed's registry, publishing
    // 127.0.0.1:5001) stands where a proxy in front of a real cluster would.
    refused(
        "https://127.0.0.1:5001",
        "proxy",
        "gitops-drill-registry answers for the API server but is not a kind node",
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
    run.assert_passed();
    assert!(
        run.stderr
            .contains(&format!(
                "is container {name}-control-plane on this machine, a node of kind cluster {name} (nodes: {name}-control-plane)"
            )),
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
    // drill must leave a cluster it did not create running.
    assert_node_running(&format!("{name}-control-plane"), "the in-place run");

    // Interrupted with an app paused: the cluster is not drill's to delete, so drill says
    // exactly what it leaves there and how to undo it; the pause is really still there.
    let paused = work.path().join("paused.yaml");
    let text = std::fs::read_to_string(&scenario)
        .unwrap()
        .replace("disasters:\n", "disasters:\n  - suspend: {app: users-api}\n");
    std::fs::write(&paused, text).unwrap();
    let (code, rest) = interrupt_existing(paused.to_str().unwrap(), &context, "💥 step 2");
    assert_eq!(code, Some(130), "{rest:?}");
    let said = rest.join("\n");
    assert!(
        said.contains(&format!("context {context} is not drill's to delete; the run leaves there:"))
            && said.contains(
                "Kustomization/flux-system/users-api: paused by drill; resume it: flux resume kustomization users-api -n flux-system"
            ),
        "{said}"
    );
    let suspend = Command::new("kubectl")
        .args([
            "--kubeconfig",
            kubeconfig,
            "get",
            "kustomization",
            "users-api",
            "-n",
            "flux-system",
        ])
        .args(["-o", "jsonpath={.spec.suspend}"])
        .env("PATH", kind_bin_path())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&suspend.stdout),
        "true",
        "what it said it left is there"
    );
}

/// Runs SCENARIO on an existing cluster (`--allow-context`), sends SIGINT once a
/// progress line contains `at`, and returns the exit code and what it printed after.
fn interrupt_existing(scenario: &str, context: &str, at: &str) -> (Option<i32>, Vec<String>) {
    use std::io::BufRead as _;
    let reports = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_drill"))
        .args(["run", scenario, "--allow-context", context, "--report-dir"])
        .arg(reports.path())
        .env("DRILL_PROFILE", profile())
        .env("PATH", kind_bin_path())
        .env("NO_COLOR", "1")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let reached = lines.by_ref().map_while(Result::ok).any(|l| {
        seen.push(l.clone());
        l.contains(at)
    });
    assert!(reached, "the run never got to {at:?}: {seen:?}");
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    (child.wait().unwrap().code(), rest)
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

/// drill's Git server asks a per-run credential even when the scenario names none: while
/// the run lives, a clone without it (any local user or container reaching the kind
/// network's gateway could try) is refused with 401, a guessed one too, and the cluster,
/// given it as its source's Secret in the timed secret-bootstrap phase, syncs: the run passes.
#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn the_served_repo_refuses_a_clone_without_the_runs_own_credential() {
    use std::cell::RefCell;
    let url = RefCell::new(None::<String>);
    let answers = RefCell::new(Vec::new());
    let (code, _cluster, rest) = disturb_run(
        "scenarios/flux-bootstrap.yaml",
        |l| {
            let found = l
                .split_whitespace()
                .find(|w| w.starts_with("http://"))
                .map(str::to_string);
            *url.borrow_mut() = found;
            url.borrow().is_some()
        },
        |_| {
            let url = url.borrow().clone().unwrap();
            // wrong: base64("drill:guess").
            for header in ["", "Authorization: Basic ZHJpbGw6Z3Vlc3M=\r\n"] {
                answers.borrow_mut().push(first_line_of_refs(&url, header));
            }
        },
    );
    for status in answers.into_inner() {
        assert!(status.starts_with("HTTP/1.1 401"), "refused with 401: {status}");
    }
    assert_eq!(code, Some(0), "the run passes with its own credential: {rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("✓ secret-bootstrap")),
        "the credential is restored in the timed phase: {rest:?}"
    );
}

/// The status line the server answers a clone's first request with (`header` added).
fn first_line_of_refs(url: &str, header: &str) -> String {
    use std::io::{Read as _, Write as _};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut s = std::net::TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /{path}/info/refs?service=git-upload-pack HTTP/1.1\r\nHost: {host}\r\n{header}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.lines().next().unwrap_or_default().to_string()
}
