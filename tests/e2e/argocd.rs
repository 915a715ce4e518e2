//! Argo CD rehearsals: namespace and cluster loss, a degraded child under a healthy parent,
//! break glass with a self-healing parent, and a history rollback that auto-sync undoes.
//! (Drift and repo credentials, rehearsed by both engines, are in `drift` and `secrets`.)

use crate::harness::{assert_run_left_nothing, assertion, drill_run, phases, step, verdict};

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn namespace_loss_recovers_with_every_application_synced_and_healthy() {
    let reports = tempfile::tempdir().unwrap();
    let run = drill_run("scenarios/argocd-namespace-loss.yaml", &[], reports.path());
    run.assert_passed();
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
fn cluster_loss_rebuilds_install_secret_root_app_and_waits() {
    let reports = tempfile::tempdir().unwrap();
    let run = drill_run("scenarios/argocd-cluster-loss.yaml", &[], reports.path());
    run.assert_passed();
    let r = &run.report;
    let engine = r["versions"]["engine"].as_str().unwrap_or_default();
    assert!(
        engine.starts_with("argocd v3."),
        "the engine's image tag: {}",
        r["versions"]
    );
    for name in ["cluster-create", "engine-install", "secret-bootstrap"] {
        assert_eq!(phases(r, name).len(), 2, "{name} timed in both builds");
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
    assert_run_left_nothing(&run);
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

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn break_glass_pauses_the_self_healing_parent_too_and_git_and_cluster_agree() {
    let reports = tempfile::tempdir().unwrap();
    let run = drill_run("scenarios/argocd-break-glass.yaml", &[], reports.path());
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
    assert_run_left_nothing(&run);
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn history_rollback_is_undone_by_auto_sync_and_git_revert_fixes_it() {
    let reports = tempfile::tempdir().unwrap();
    let run = drill_run("scenarios/argocd-history-rollback.yaml", &[], reports.path());
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
    assert_run_left_nothing(&run);
}
