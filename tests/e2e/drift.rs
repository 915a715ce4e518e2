//! Drift, rehearsed by both engines: a hand edit is self-healed while expected drift is
//! kept, expected drift the engine reverts is reported as noise, and the seed replay
//! finds the change that broke the app.

use crate::harness::{assert_run_left_nothing, assertion, drill_run, step};

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
