//! Argo CD rehearsals: namespace and cluster loss, a degraded child under a healthy parent,
//! break glass with a self-healing parent, and a history rollback that auto-sync undoes.
//! (Drift and repo credentials, rehearsed by both engines, are in `drift` and `secrets`.)

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::harness::{
    Run, app, assert_run_left_nothing, assertion, drill_run, drill_run_beside, kind_bin_path, kubectl, phases, step,
    verdict,
};

/// An observer of users-api's Service independent of drill: kubectl (its own process,
/// client and clock) asks the same proxy path every 500 ms until drill ends, and notes
/// every attempt with the wall time it began (as drill stamps its own) and whether it
/// was served.
fn users_api_served(kubeconfig: PathBuf, done: Arc<AtomicBool>) -> Vec<(jiff::Timestamp, bool)> {
    let mut changes = Vec::new();
    while !done.load(Ordering::SeqCst) {
        if kubeconfig.is_file() {
            let asked = jiff::Timestamp::now();
            let served = std::process::Command::new("kubectl")
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .args([
                    "get",
                    "--raw",
                    "/api/v1/namespaces/users/services/users-api:80/proxy/readyz",
                    "--request-timeout=2s",
                ])
                .env("PATH", kind_bin_path())
                .output()
                .is_ok_and(|o| o.status.success());
            changes.push((asked, served));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    changes
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn namespace_loss_recovers_with_every_application_synced_and_healthy() {
    let reports = tempfile::tempdir().unwrap();
    let (run, observed) = drill_run_beside("scenarios/argocd-namespace-loss.yaml", reports.path(), users_api_served);
    run.assert_passed();
    probe_downtime_brackets_the_recovery(&run.report, &observed);
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
    // Completeness from the Applications' resource lists: the ConfigMap and Services too.
    let complete = assertion(r, "every object Git declares exists");
    assert_eq!(complete["passed"], true, "{complete}");
    assert!(
        complete["message"].as_str().unwrap().contains("ConfigMap"),
        "{complete}"
    );
    assert_run_left_nothing(&run);
}

/// users-api's probe saw one outage in step 1: from the namespace's deletion to
/// users-api's Deployment Ready again (the API server's own time), within the recovery,
/// and the independent observer saw the same outage at both ends, within drill's
/// interval (1 s; 2 s after a timed-out attempt) plus the observer's own gap between the two attempts that bracket
/// each end (kubectl is a process per attempt: on a loaded machine, more than 500 ms).
fn probe_downtime_brackets_the_recovery(r: &serde_json::Value, observed: &[(jiff::Timestamp, bool)]) {
    let probe = &r["probes"][0];
    assert_eq!(probe["name"], "users-api", "{probe}");
    let outages = probe["outages"].as_array().unwrap();
    assert_eq!(outages.len(), 1, "one outage, the step's: {probe}");
    let o = &outages[0];
    assert_eq!(o["step"], 0, "{o}");
    let (from, to) = (o["from_ms"].as_u64().unwrap(), o["to_ms"].as_u64().unwrap());
    let started = step(r, 0)["started_ms"].as_u64().unwrap();
    let rto = r["recoveries"][0]["rto_ms"].as_u64().unwrap();
    assert!(
        from >= started && from <= started + 10_000,
        "down from the damage: {from} vs step at {started}"
    );
    assert!(
        to <= started + rto + 3_000,
        "served again by the recovery: {to} vs {}",
        started + rto
    );
    let deployment = app(r, "Deployment", "users-api");
    let api_ready = deployment["api_ready_ms"].as_i64().unwrap() as u64;
    assert!(
        to + 3_000 >= started + api_ready,
        "served no earlier than users-api was Ready by the API server: {to} vs {}",
        started + api_ready
    );
    assert_eq!(probe["served_at_end"], true, "{probe}");
    let attempts = probe["attempts"].as_u64().unwrap();
    assert!(attempts > 0 && probe["served"].as_u64().unwrap() < attempts, "{probe}");
    assert_eq!(assertion(r, "probe users-api")["passed"], true);

    // The observer's outage after the damage, in run time.
    let run_start: jiff::Timestamp = r["started_at"].as_str().unwrap().parse().unwrap();
    let run_ms = |t: &jiff::Timestamp| t.duration_since(run_start).as_millis() as i64;
    let down = observed
        .iter()
        .position(|(t, served)| !served && run_ms(t) >= started as i64)
        .unwrap_or_else(|| panic!("the observer saw no outage after the damage: {observed:?}"));
    let up = down
        + observed[down..]
            .iter()
            .position(|(_, served)| *served)
            .unwrap_or_else(|| panic!("the observer never saw it served again: {observed:?}"));
    let (obs_from, obs_to) = (run_ms(&observed[down].0), run_ms(&observed[up].0));
    // Each side's uncertainty at each end: the time since its previous attempt. drill's
    // is its interval (1 s), or its timeout (2 s) after an attempt that got no answer;
    // the observer's is measured.
    let gap = |i: usize| run_ms(&observed[i].0) - run_ms(&observed[i.saturating_sub(1)].0);
    let (slack_from, slack_to) = (1_000 + gap(down), 2_000 + gap(up));
    eprintln!("probe outage: drill {from}..{to} ms, observer {obs_from}..{obs_to} ms (slack {slack_from}, {slack_to})");
    assert!(
        (from as i64 - obs_from).abs() <= slack_from,
        "start: drill {from}, observer {obs_from}"
    );
    assert!(
        (to as i64 - obs_to).abs() <= slack_to,
        "end: drill {to}, observer {obs_to}"
    );
}

/// The whole cluster lost: drill makes a new one and installs Argo CD, its repository
/// secret and the root Application again, then waits for every app. Run on the Argo CD
/// cluster of `reuse.rs`, which it takes up and whose rebuilt cluster the next rehearsal
/// takes up: one cluster made (the rebuild's), the engine and secret applied twice
/// (taking up the cluster, then the rebuild).
pub fn cluster_loss_rebuilds_install_secret_root_app_and_waits(run: &Run) {
    run.assert_passed();
    let r = &run.report;
    let engine = r["versions"]["engine"].as_str().unwrap_or_default();
    assert!(
        engine.starts_with("argocd v3."),
        "the engine's image tag: {}",
        r["versions"]
    );
    assert_eq!(phases(r, "cluster-create").len(), 1, "the rebuild's cluster");
    for name in ["engine-install", "secret-bootstrap"] {
        assert_eq!(
            phases(r, name).len(),
            2,
            "{name} timed on the cluster taken up and the rebuilt one"
        );
    }
    let path: Vec<&str> = r["critical_path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(path[0], "cluster-create", "{path:?}");
    // Through the app-of-apps: the root first, then the child (ApplicationSet or
    // Application) with its sync wave, not a lone Application.
    let root = path.iter().position(|p| *p == "Application/argocd/root");
    let waved = path
        .iter()
        .position(|p| p.starts_with("Application") && p.contains("(wave "));
    assert!(
        matches!((root, waved), (Some(r), Some(w)) if r < w),
        "the parent chain with waves: {path:?}"
    );
    let paths = r["critical_paths"].as_array().unwrap();
    assert_eq!(paths.len(), 2, "the initial sync's and the rebuild's: {paths:?}");
    assert!(paths[0]["step"].is_null() && paths[1]["step"] == 0, "{paths:?}");
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn a_degraded_child_under_a_healthy_parent_fails_and_is_named() {
    let reports = tempfile::tempdir().unwrap();
    // No timeout flag: the missing image settles the verdict (fail fast).
    let run = drill_run("scenarios/argocd-child-degraded.yaml", &[], reports.path());
    assert_eq!(
        run.code,
        1,
        "an assertion failure, not an error: {}",
        verdict(&run.report)
    );
    assert!(run.report["stopped_early"].is_string(), "{}", verdict(&run.report));
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
    // The reason from inside the Application: the resource of its tree that holds it.
    let ghost = apps
        .iter()
        .find(|a| a["kind"] == "Application" && a["name"] == "ghost")
        .unwrap();
    let why = ghost["not_ready_message"].as_str().unwrap_or_default();
    assert!(why.contains("held by Deployment/users/ghost"), "{ghost}");
    assert_run_left_nothing(&run);
}

/// scenarios/argocd-break-glass.yaml; run by
/// `reuse::argocd_rollback_seed_replay_break_glass_prune_cluster_loss_and_repo_credentials_take_turns_on_one_cluster`.
pub fn break_glass_pauses_the_self_healing_parent_too_and_git_and_cluster_agree(run: &Run) {
    run.assert_passed();
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
}

/// scenarios/argocd-history-rollback.yaml, on a cluster of its own; run by
/// `reuse::argocd_rollback_seed_replay_break_glass_prune_cluster_loss_and_repo_credentials_take_turns_on_one_cluster`.
pub fn history_rollback_is_undone_by_auto_sync_and_git_revert_fixes_it(run: &Run) {
    run.assert_passed();
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
}

/// Argo CD on a cluster drill did not create (`cluster: existing`): a cluster made and
/// kept by one run, its Git source then served by this test (with the credential its
/// repository Secret holds) as a team's Git host would keep serving it
/// (`shared::SharedCluster::argocd`). drill installs, restores and creates nothing there,
/// follows the cluster's own root Application (`root-app`), and judges the namespace loss
/// by every Application Synced and Healthy, which the API server confirms; the cluster is
/// never deleted by drill. Argo CD's hand-edit rehearsals (self-heal with expected drift
/// kept, then expected drift it reverts: noise) follow in place on the same cluster.
#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn argocd_on_an_existing_cluster_is_rehearsed_in_place_following_its_root_app() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let shared = crate::shared::SharedCluster::argocd();
    let (kubeconfig, context, reports) = (shared.kubeconfig.as_str(), &shared.context, &shared.reports);
    let work = tempfile::tempdir().unwrap();
    let scenario = work.path().join("argocd-existing.yaml");
    std::fs::write(
        &scenario,
        format!(
            "name: argocd-existing\ncluster:\n  existing:\n    context: {context}\n    kubeconfig: {kubeconfig}\n\
             engine:\n  argocd:\n    repo: {{path: {}}}\n    path: argocd/root\n    root-app: root\n\
             disasters:\n  - delete-namespace: {{namespaces: [users], operator-action: reconcile-now}}\nexpect:\n  rto: 5m\n",
            root.join("examples/fleet").display()
        ),
    )
    .unwrap();
    let run = drill_run(
        scenario.to_str().unwrap(),
        &["--allow-context", context],
        reports.path(),
    );
    run.assert_passed();
    let r = &run.report;
    for phase in ["cluster-create", "engine-install", "secret-bootstrap"] {
        assert!(
            phases(r, phase).is_empty(),
            "{phase}: nothing is created, installed or restored"
        );
    }
    for name in ["root", "users-db", "users-api"] {
        assert_eq!(app(r, "Application", name)["ready"], true, "Application {name}");
    }
    // The API server agrees: users-api is back and available, its Application Healthy.
    let available = kubectl(
        kubeconfig,
        &[
            "-n",
            "users",
            "get",
            "deploy",
            "users-api",
            "-o",
            "jsonpath={.status.availableReplicas}",
        ],
    );
    assert!(available.parse::<u32>().is_ok_and(|n| n >= 1), "{available:?}");
    let health = kubectl(
        kubeconfig,
        &[
            "-n",
            "argocd",
            "get",
            "application",
            "users-api",
            "-o",
            "jsonpath={.status.health.status}",
        ],
    );
    assert_eq!(health, "Healthy");
    assert!(
        run.stderr.contains("drill never deletes a cluster it did not create"),
        "{}",
        run.stderr
    );
    crate::drift::argocd_drift_is_self_healed_and_expected_drift_is_not_a_finding(
        &shared.rehearse("scenarios/argocd-drift-self-heal.yaml"),
    );
    crate::drift::expected_drift_that_the_engine_reverts_is_reported_as_noise(
        &shared.rehearse("scenarios/argocd-drift-noise.yaml"),
    );
    shared.finish();
}
