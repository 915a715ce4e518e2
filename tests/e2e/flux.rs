//! Flux rehearsals: namespace, cluster and node loss, a missing image, a bad commit and its
//! revert, the break-glass game day, and images preloaded or pulled through a cache.

use std::process::Command;

use serde_json::Value;

use crate::harness::{
    KindClusterGuard, Run, assert_ready_times_agree_with_api, assert_report_html_renders, assert_run_left_nothing,
    assertion, drill_run, event_at, events_at, kept_cluster, kind_bin_path, phases, step, verdict,
};

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn namespace_loss_recovers_within_budget_twice_at_once() {
    // Two runs of one scenario at the same time, into one report folder: nothing of
    // theirs may collide (cluster, Git server, report folder, history).
    let reports = tempfile::tempdir().unwrap();
    let scenario = "scenarios/flux-namespace-loss.yaml";
    let (run, other) = std::thread::scope(|s| {
        let other = s.spawn(|| drill_run(scenario, &[], reports.path()));
        let run = drill_run(scenario, &[], reports.path());
        (run, other.join().unwrap())
    });
    run.assert_passed();
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
    // expect.order: users-api's Kustomization (dependsOn users-db) came back after it, and
    // the Kustomizations after their source, in both runs; judged, not vacuous.
    for r in [&run, &other] {
        let order = crate::harness::assertion(&r.report, "order Git declares");
        assert_eq!(order["passed"], true, "{order}");
        let judged: u64 = order["message"]
            .as_str()
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(judged >= 2, "{order}");
        // Completeness: the users namespace's ConfigMap, Service, HPA and Backup (kinds
        // drill has no readiness rule for) are back too, by the API server.
        let complete = crate::harness::assertion(&r.report, "every object Git declares exists");
        assert_eq!(complete["passed"], true, "{complete}");
        let message = complete["message"].as_str().unwrap();
        for kind in ["ConfigMap", "Service", "HorizontalPodAutoscaler", "Backup"] {
            assert!(message.contains(kind), "{kind} checked for existence: {message}");
        }
    }
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

/// The whole cluster lost and rebuilt from Git, every phase timed. Run on the Flux
/// cluster of `reuse.rs`: it takes that cluster up, so the one cluster it makes is the
/// rebuild's (kept, and taken up by the next rehearsal).
pub fn cluster_loss_rebuilds_from_git_with_every_phase_timed(run: &Run) {
    run.assert_passed();
    let r = &run.report;
    // What it ran with, as the test bed built it (its profile names the versions).
    let v = &r["versions"];
    assert_eq!(v["drill"], env!("CARGO_PKG_VERSION"), "{v}");
    assert!(v["engine"].as_str().is_some_and(|e| e.starts_with("flux v2.")), "{v}");
    assert!(v["kubernetes"].as_str().is_some_and(|k| k.starts_with("v1.")), "{v}");
    assert!(v["node_image"].as_str().is_some_and(|i| i.contains("kind-node")), "{v}");
    // drill.log beside the report: drill's own diagnostics, each line in the run's span.
    let log = std::fs::read_to_string(run.dir.join("drill.log")).unwrap();
    let span = format!("run{{id={} scenario=flux-cluster-loss}}", r["run_id"].as_str().unwrap());
    for needle in [
        span.as_str(),
        "running kind",
        "git request",
        "observer started",
        "step{n=1}",
    ] {
        assert!(log.contains(needle), "drill.log lacks {needle:?}:\n{log}");
    }
    assert_eq!(
        phases(r, "cluster-create").len(),
        1,
        "taken up, then re-created after the loss"
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
    // users-api's probe: not served from the cluster's deletion until the rebuilt
    // cluster serves it, and served at the end.
    let probe = &r["probes"][0];
    let outages = probe["outages"].as_array().unwrap();
    assert_eq!(outages.len(), 1, "one outage, the step's: {probe}");
    let (from, to) = (
        outages[0]["from_ms"].as_u64().unwrap(),
        outages[0]["to_ms"].as_u64().unwrap(),
    );
    let started = step(r, 0)["started_ms"].as_u64().unwrap();
    let rto = r["recoveries"][0]["rto_ms"].as_u64().unwrap();
    assert!(
        from >= started && from <= started + 15_000,
        "down from the deletion: {from} vs {started}"
    );
    let rebuilt = r["phases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "cluster-create")
        .filter_map(|p| Some(p["start_ms"].as_u64()? + p["duration_ms"].as_u64()?))
        .max()
        .unwrap();
    assert!(
        to > rebuilt && to <= started + rto + 5_000,
        "served again on the rebuilt cluster ({rebuilt}), by the recovery ({}): {to}",
        started + rto
    );
    assert_eq!(probe["served_at_end"], true, "{probe}");
    assert_eq!(assertion(r, "probe users-api")["passed"], true);
}

/// A worker of three killed and booted again: the pods that ran on it start again after
/// the kill and before drill says recovered; the other worker's pods are untouched
/// (started before the kill), so the damage was that one node's. Judged from the API
/// server's pod records of the kept cluster.
#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn a_killed_worker_of_three_is_recovered_once_its_pods_run_again_and_only_they_restarted() {
    let reports = tempfile::tempdir().unwrap();
    let run = drill_run("scenarios/flux-worker-loss.yaml", &["--keep-cluster"], reports.path());
    let (name, kubeconfig) = kept_cluster(&run);
    let cleanup = KindClusterGuard(name.clone());
    run.assert_passed();
    let worker = format!("{name}-worker");
    assert!(
        run.stderr.contains(&format!("killed and restarted {worker};")),
        "{}",
        run.stderr
    );
    let killed = events_at(&run.dir, "disaster-injected")[0];
    let recovered = events_at(&run.dir, "recovered")[0];
    let (mut on_worker, mut elsewhere) = (0, 0);
    for (what, node, started) in fleet_containers(&kubeconfig) {
        // The API reports whole seconds.
        if node == worker {
            assert!(
                started.as_second() >= killed.as_second() - 1,
                "{what}, before the kill at {killed}"
            );
            assert!(
                started.as_second() <= recovered.as_second(),
                "{what}, after recovered at {recovered}"
            );
            on_worker += 1;
        } else if node.starts_with(&format!("{name}-worker")) {
            assert!(
                started.as_second() < killed.as_second(),
                "{what}: restarted though its node was not killed"
            );
            elsewhere += 1;
        }
    }
    assert!(
        on_worker >= 1 && elsewhere >= 1,
        "pods on the killed worker {on_worker}, on the other {elsewhere}"
    );
    drop(cleanup);
    assert_run_left_nothing(&run);
}

/// A node killed and booted again (its API server too, so every watch drops): drill
/// reconnects, and says "recovered" only once the pods really run again, never on the
/// statuses the workloads still report from before the kill. The cluster (`name`, at
/// `kubeconfig`) is still there, so the pods' own start times can be held against
/// drill's verdict. Run last on the Flux cluster of `reuse.rs` (a node loss leaves the
/// cluster standing: nothing in the story needs a cluster of its own).
pub fn killed_node_is_recovered_only_once_its_pods_run_again(run: &Run, name: &str, kubeconfig: &str) {
    run.assert_passed();
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
    // Step 0 deleted users-api's pods, step 1 killed the node: every Ready drill
    // recorded in either agrees with the API server's own transition time. Only step 0
    // must have one: in step 1 the API server itself was down, and the watches that
    // came back may list everything Ready already (its pods' start times are held
    // against the verdict below instead).
    assert_ready_times_agree_with_api(&run.dir, &["Deployment", "Kustomization", "HelmRelease"], &[0], 1);
    let killed = events_at(&run.dir, "disaster-injected")[1];
    let recovered = events_at(&run.dir, "recovered")[1];
    let mut checked = 0;
    for (what, _, started) in fleet_containers(kubeconfig) {
        // The API reports whole seconds.
        assert!(
            started.as_second() >= killed.as_second() - 1,
            "{what}, before the kill at {killed}"
        );
        assert!(
            started.as_second() <= recovered.as_second(),
            "{what}, after drill said recovered at {recovered}"
        );
        checked += 1;
    }
    assert!(checked >= 6, "the apps' and Flux's containers were checked: {checked}");
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn a_missing_image_fails_the_run_early_and_names_the_app() {
    // No timeout flag: the default bootstrap timeout is 10 minutes, and the registry's
    // "not found" on every attempt for a minute settles the verdict long before that.
    let reports = tempfile::tempdir().unwrap();
    let run = drill_run("scenarios/flux-missing-image.yaml", &[], reports.path());
    assert_eq!(
        run.code,
        1,
        "an assertion failure, not an error: {}",
        verdict(&run.report)
    );
    let r = &run.report;
    assert_eq!(r["result"], "fail");
    let stopped = r["stopped_early"].as_str().expect("the report says it stopped early");
    assert!(stopped.contains("demo-missing"), "names the image: {stopped}");
    assert!(
        stopped.contains("waiting on it: Deployment/users/ghost"),
        "names the workload first: {stopped}"
    );
    let waited = phases(r, "initial-sync")[0];
    assert!(
        waited > 60_000 && waited < 240_000,
        "stopped within a few minutes, not at the 10-minute timeout: {waited} ms"
    );
    assert!(
        run.stderr.contains("✗ stopped waiting: the registry has refused image"),
        "said on the terminal: {}",
        run.stderr
    );
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
    // The page a person opens: the failure drawn in red, named in "What went wrong".
    assert_report_html_renders(&run.dir, &reports.path().join("shots"));
    let page = std::fs::read_to_string(run.dir.join("report.html")).unwrap();
    assert!(
        page.contains("id=\"failures\"") && page.contains("Kustomization flux-system/ghost"),
        "report.html names the app"
    );
    assert!(page.contains("class=\"bar bad\""), "the never-Ready app is a red bar");
    // The evidence a person reads next, saved while the cluster still answered.
    let evidence: Vec<&str> = r["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    for file in ["evidence/events-users.txt", "evidence/status.json"] {
        assert!(evidence.contains(&file), "{file} in {evidence:?}");
    }
    let events = std::fs::read_to_string(run.dir.join("evidence/events-users.txt")).unwrap();
    assert!(
        events.contains("demo-missing") && events.contains("Failed"),
        "the pull failures, with the image: {events}"
    );
    let status = std::fs::read_to_string(run.dir.join("evidence/status.json")).unwrap();
    assert!(
        status.contains("Deployment/users/ghost") && status.contains("Kustomization/flux-system/ghost"),
        "{status}"
    );
    let summary = std::fs::read_to_string(run.dir.join("summary.md")).unwrap();
    assert!(
        summary.contains("[evidence/events-users.txt](evidence/events-users.txt)"),
        "{summary}"
    );
    assert_run_left_nothing(&run);
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn a_rebuild_without_damage_is_headed_by_its_rebuild_time_and_a_shared_image_is_pulled_once() {
    let reports = tempfile::tempdir().unwrap();
    let junit = reports.path().join("ci/junit.xml");
    // Three earlier passed runs in the history, each an hour: this run is judged against
    // their median by `expect.regression` (a failed run's hour would not count).
    let history = reports.path().join("flux-rebuild-wide");
    std::fs::create_dir_all(&history).unwrap();
    let line = |result: &str| {
        format!(
            r#"{{"schema":2,"run_id":"old","started_at":null,"result":"{result}","rto_ms":null,"rebuild_ms":3600000}}"#
        )
    };
    let lines = [line("pass"), line("fail"), line("pass"), line("pass")].join("\n") + "\n";
    std::fs::write(history.join("history.jsonl"), lines).unwrap();
    let run = drill_run(
        "scenarios/flux-rebuild-wide.yaml",
        &["--junit", junit.to_str().unwrap()],
        reports.path(),
    );
    run.assert_passed();
    let regression = crate::harness::assertion(&run.report, "of the recent median");
    assert_eq!(regression["passed"], true, "{regression}");
    assert!(
        regression["message"]
            .as_str()
            .unwrap()
            .contains("against the median 60m 00s of the last 3 passed runs"),
        "{regression}"
    );
    // The invocation's JUnit file: the rebuild's case timed by what it measured.
    crate::harness::assert_junit_holds_to_xsds(&junit);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("name=\"rebuilt from Git within RTO 10m\" time=\"") && !xml.contains("<failure"),
        "{xml}"
    );
    let r = &run.report;
    let rebuild = r["rebuild_ms"].as_i64().expect("the rebuild time is reported");
    // Held against the API server's clock: the last Ready transition it recorded
    // (lastTransitionTime, whole seconds) of any object, from the run's start.
    let last_api = r["apps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["api_ready_ms"].as_i64())
        .max()
        .expect("the API server's transition times");
    assert!(
        rebuild >= last_api - 1_000 && rebuild <= last_api + 5_000,
        "rebuild {rebuild} ms vs the API server's last Ready at {last_api} ms"
    );
    assert_eq!(assertion(r, "rebuilt from Git within RTO 10m")["passed"], true);
    let summary = std::fs::read_to_string(run.dir.join("summary.md")).unwrap();
    assert!(summary.contains("**rebuilt from Git in "), "{summary}");
    assert!(!summary.contains("not recovered"), "{summary}");

    // Twelve pods of one image: one row per (image, node), the real pull, every pod counted.
    let images = r["images"].as_array().unwrap();
    let shared: Vec<&Value> = images
        .iter()
        .filter(|i| i["image"].as_str().unwrap().contains("demo-medium:1.0"))
        .collect();
    assert_eq!(shared.len(), 1, "one row for the node: {images:?}");
    let row = shared[0];
    let pods = row["pulled"].as_u64().unwrap() + row["present"].as_u64().unwrap();
    assert!(pods >= 12, "every pod's pull is counted: {row}");
    assert!(
        row["pull_ms"].as_u64().unwrap() > 200,
        "a real pull of a 50 MB image, not a queued pod's milliseconds: {row}"
    );
    for i in images {
        assert!(
            i["pull_ms"].is_u64() || i["present"].as_u64() > Some(0),
            "nothing unfinished while every pod runs: {i}"
        );
    }
    assert_run_left_nothing(&run);
}

/// scenarios/flux-bad-commit-revert.yaml; run by
/// `reuse::flux_seed_replay_commits_prunes_break_glass_cluster_and_node_loss_take_turns_on_one_cluster`.
pub fn bad_commit_degrades_the_app_and_git_revert_restores_it(run: &Run) {
    run.assert_passed();
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
}

/// `drill gameday --auto --operator alice` of scenarios/flux-break-glass.yaml; run by
/// `reuse::flux_seed_replay_commits_prunes_break_glass_cluster_and_node_loss_take_turns_on_one_cluster`.
pub fn gameday_runs_break_glass_and_writes_the_incident_record(run: &Run) {
    run.assert_passed();
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
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn preloaded_images_are_pulled_before_the_engine_and_the_rebuild_pulls_nothing() {
    let reports = tempfile::tempdir().unwrap();
    let run = drill_run("scenarios/flux-cluster-loss-preloaded.yaml", &[], reports.path());
    run.assert_passed();
    let r = &run.report;
    let preload = phases(r, "image-preload");
    assert_eq!(preload.len(), 2, "preloaded into both clusters: {preload:?}");
    assert!(preload.iter().all(|&ms| ms > 0), "{preload:?}");
    // Every image was on the node before its pod started: the kubelet pulled nothing,
    // and said so ("already present") for the fleet's images in both builds.
    let images = r["images"].as_array().unwrap();
    assert!(
        images
            .iter()
            .all(|i| i["pulled"] == 0 && i["pull_ms"].is_null() && i["failed"].is_null()),
        "no pulls: {images:?}"
    );
    for image in ["demo-large", "source-controller"] {
        let present = images
            .iter()
            .filter(|i| i["image"].as_str().unwrap().contains(image) && i["present"].as_u64() > Some(0))
            .count();
        assert_eq!(present, 2, "{image} found present in each build: {images:?}");
    }
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
    run.assert_passed();
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
        .find_map(|l| {
            l.split_once(&format!("pull-through cache {cache} held "))
                .map(|(_, held)| held)
        })
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

/// `scenarios/flux-crd-loss.yaml`, rehearsed in place on the cluster of `kubeconfig` by
/// `shared::flux_hand_edits_noise_and_crd_loss_share_one_kept_cluster`.
pub fn crd_loss_recovers_only_once_the_crd_and_its_custom_resources_are_back(run: &Run, kubeconfig: &str) {
    run.assert_passed();
    let actions = step(&run.report, 0)["actions"].as_array().unwrap();
    let back = actions
        .iter()
        .find(|a| a["action"] == "the CRDs and their custom resources are back")
        .unwrap_or_else(|| panic!("no restore action: {actions:?}"));
    assert_eq!(back["ok"], true, "{back}");
    assert!(
        back["message"]
            .as_str()
            .unwrap()
            .contains("1 CRD(s) and 1 custom resource(s) back"),
        "the fleet's one Backup was counted: {back}"
    );
    // The API server, not drill, says when the CRD and the Backup were made again: after
    // the delete, and no later than drill said recovered (whole seconds).
    let injected = event_at(&run.dir, "disaster-injected");
    let recovered = event_at(&run.dir, "recovered");
    let created = |args: &[&str]| -> jiff::Timestamp {
        let out = Command::new("kubectl")
            .args(["--kubeconfig", kubeconfig, "get"])
            .args(args)
            .args(["-o", "jsonpath={.metadata.creationTimestamp}"])
            .env("PATH", kind_bin_path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    let crd = created(&["crd", "backups.demo.gitops-drill.io"]);
    let backup = created(&["-n", "users", "backup", "users-nightly"]);
    for (what, at) in [("CRD", crd), ("Backup", backup)] {
        assert!(
            at.as_second() >= injected.as_second() - 1,
            "{what} made {at}, before the delete finished at {injected}"
        );
        assert!(
            at.as_second() <= recovered.as_second(),
            "{what} made {at}, after drill said recovered at {recovered}"
        );
    }
    assert_eq!(
        assertion(&run.report, "Backup users/users-nightly")["passed"],
        true,
        "the object check read it from the live cluster"
    );
}

/// Every running container of the fleet's and Flux's pods (users, reports, flux-system)
/// by the API server: ("namespace/pod on node started T", node, start time).
fn fleet_containers(kubeconfig: &str) -> Vec<(String, String, jiff::Timestamp)> {
    let out = Command::new("kubectl")
        .args(["--kubeconfig", kubeconfig, "get", "pods", "-A", "-o", "json"])
        .env("PATH", kind_bin_path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pods: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut containers = Vec::new();
    for pod in pods["items"].as_array().unwrap() {
        let ns = pod["metadata"]["namespace"].as_str().unwrap();
        if !["users", "reports", "flux-system"].contains(&ns) {
            continue;
        }
        let node = pod["spec"]["nodeName"].as_str().unwrap_or_default().to_string();
        for c in pod["status"]["containerStatuses"].as_array().unwrap() {
            let started: jiff::Timestamp = c["state"]["running"]["startedAt"]
                .as_str()
                .unwrap_or_else(|| panic!("{ns}/{} not running: {c}", pod["metadata"]["name"]))
                .parse()
                .unwrap();
            let what = format!("{ns}/{} on {node} started {started}", pod["metadata"]["name"]);
            containers.push((what, node.clone(), started));
        }
    }
    containers
}
