//! Drift, rehearsed by both engines: a hand edit is self-healed while expected drift is
//! kept, expected drift the engine reverts is reported as noise, and the seed replay
//! finds the change that broke the app. Each story is one function; an engine case holds
//! what the engines report differently. The hand-edit rehearsals run in place on a cluster
//! each engine's test shares (`shared.rs`); the seed replays, with commits, on their own.

use crate::harness::{Run, assertion, step};

/// Self-heal and expected drift, as one engine reports them.
struct SelfHealCase {
    /// What step 0's detection time is with this engine (the message when it is missing).
    detection: &'static str,
    /// Whether detection is asserted to come no later than the heal (Argo CD's OutOfSync).
    detected_before_healed: bool,
    /// Why step 1's drift (the replicas) is kept with this engine.
    kept: &'static str,
    /// The field the first drift names, where asserted.
    drifted_field: Option<&'static str>,
}

fn drift_is_self_healed_and_expected_drift_is_not_a_finding(case: &SelfHealCase, run: &Run) {
    run.assert_passed();
    let r = &run.report;
    let healed = step(r, 0)["self_heal_ms"].as_u64().expect("self-heal timed");
    assert!(healed > 0 && healed <= 120_000, "self-heal {healed}");
    let detected = step(r, 0)["detection_ms"].as_u64().expect(case.detection);
    if case.detected_before_healed {
        assert!(detected <= healed, "detected {detected} before healed {healed}");
    }
    assert_eq!(step(r, 1)["kept"], true, "{}", case.kept);
    assert_eq!(assertion(r, "left the expected drift alone")["passed"], true);
    let drift = r["drift"].as_array().unwrap();
    assert_eq!(drift.len(), 2);
    if let Some(field) = case.drifted_field {
        assert_eq!(drift[0]["fields"][0]["field"], field);
    }
    assert_eq!(drift[0]["fields"][0]["git"], "users-db.users.svc.cluster.local");
    assert!(drift[0]["reverted_ms"].is_u64(), "Git's value came back");
    assert_eq!(drift[1]["kept"], true);
}

/// Flux's case of `scenarios/flux-drift-self-heal.yaml`; rehearsed in place on a shared
/// cluster by `shared::flux_hand_edits_noise_and_crd_loss_share_one_kept_cluster`.
pub fn flux_drift_is_self_healed_and_expected_drift_is_not_a_finding(run: &Run) {
    drift_is_self_healed_and_expected_drift_is_not_a_finding(
        &SelfHealCase {
            detection: "detection timed",
            detected_before_healed: false,
            kept: "HPA-owned replicas left alone",
            drifted_field: Some("/data/DB_HOST"),
        },
        run,
    );
}

/// Argo CD goes OutOfSync (its detection), self-heals, and keeps what ignoreDifferences
/// names: `scenarios/argocd-drift-self-heal.yaml`, rehearsed in place on a shared cluster
/// by `argocd::argocd_on_an_existing_cluster_is_rehearsed_in_place_following_its_root_app`.
pub fn argocd_drift_is_self_healed_and_expected_drift_is_not_a_finding(run: &Run) {
    drift_is_self_healed_and_expected_drift_is_not_a_finding(
        &SelfHealCase {
            detection: "OutOfSync timed as detection",
            detected_before_healed: true,
            kept: "ignoreDifferences: replicas left alone",
            drifted_field: None,
        },
        run,
    );
}

/// Expected drift that the engine reverts (Argo CD: no ignore rule for it) fails the run as
/// noise. Nothing but the scenario differs between the engines; each engine's
/// (`scenarios/{flux,argocd}-drift-noise.yaml`) is rehearsed in place on a shared cluster,
/// by `shared::flux_hand_edits_noise_and_crd_loss_share_one_kept_cluster` and by
/// `argocd::argocd_on_an_existing_cluster_is_rehearsed_in_place_following_its_root_app`.
pub fn expected_drift_that_the_engine_reverts_is_reported_as_noise(run: &Run) {
    assert_eq!(run.code, 1, "the noise case fails by design: {}", run.report);
    let a = assertion(&run.report, "left the expected drift alone");
    assert_eq!(a["passed"], false);
    assert!(a["message"].as_str().unwrap().contains("noise"), "{a}");
    assert!(run.report["drift"][0]["reverted_ms"].is_u64());
}

/// The seed incident replayed by one engine: its steps differ, the findings do not.
struct SeedReplayCase {
    scenario: &'static str,
    /// Why step 1's hand edit survives (reconciliation is off).
    kept: &'static str,
    /// The later steps' verdicts, in order: (step, `degraded_ms` or `recovered_ms`, why).
    verdicts: &'static [(usize, &'static str, &'static str)],
    /// The step in which Git overwrote the hand edit, and why then.
    reverted_in_step: usize,
    reverted: &'static str,
    /// The hand edit's age when Git overwrote it is above this, where asserted.
    min_drift_age_ms: Option<u64>,
}

fn the_seed_replay_shows_the_drift_window_and_the_change_that_broke_the_app(case: &SeedReplayCase, run: &Run) {
    assert!(
        run.dir
            .to_string_lossy()
            .contains(case.scenario.trim_start_matches("scenarios/").trim_end_matches(".yaml"))
    );
    run.assert_passed();
    let r = &run.report;
    assert_eq!(step(r, 1)["kept"], true, "{}", case.kept);
    for &(n, verdict, why) in case.verdicts {
        assert!(step(r, n)[verdict].is_u64(), "{why}");
    }
    let drift = &r["drift"][0];
    assert_eq!(drift["reverted_in_step"], case.reverted_in_step, "{}", case.reverted);
    if let Some(min) = case.min_drift_age_ms {
        assert!(drift["age_ms"].as_u64().unwrap() > min, "{drift}");
    }
    let findings = r["findings"].to_string();
    assert!(findings.contains("the reverted commit did not cause it"), "{findings}");
    assert!(
        findings.contains("the app broke when Git overwrote the hand edit of ConfigMap/users/users-api-env"),
        "{findings}"
    );
}

/// scenarios/seed-configmap-drift.yaml; run by
/// `reuse::flux_seed_replay_commits_prunes_break_glass_cluster_and_node_loss_take_turns_on_one_cluster`.
pub fn flux_seed_replay_checks(run: &Run) {
    let case = SeedReplayCase {
        scenario: "scenarios/seed-configmap-drift.yaml",
        kept: "the hand edit survives while self-heal is off",
        verdicts: &[
            (
                3,
                "recovered_ms",
                "node churn while the edit lives: the new pod reads it and is Ready",
            ),
            (5, "degraded_ms", "resume breaks the app"),
            (6, "degraded_ms", "the next churn leaves no pod that read the hand edit"),
            (7, "degraded_ms", "the image rollback does not fix it"),
            (8, "recovered_ms", "fixing DB_HOST in Git does"),
        ],
        reverted_in_step: 5,
        reverted: "Git overwrote the edit when reconciliation resumed",
        min_drift_age_ms: Some(20_000),
    };
    the_seed_replay_shows_the_drift_window_and_the_change_that_broke_the_app(&case, run);
}

/// With Argo CD, node churn while the hand edit lives shows it keeping the app alive until
/// Git overwrites it. scenarios/argocd-seed-configmap-drift.yaml; run by
/// `reuse::argocd_rollback_seed_replay_break_glass_prune_cluster_loss_and_repo_credentials_take_turns_on_one_cluster`.
pub fn argocd_seed_replay_checks(run: &Run) {
    let case = SeedReplayCase {
        scenario: "scenarios/argocd-seed-configmap-drift.yaml",
        kept: "the hand edit survives while auto-sync is off",
        verdicts: &[
            (
                3,
                "recovered_ms",
                "node churn while the edit lives: the new pod reads it and is Ready",
            ),
            (5, "degraded_ms", "resuming auto-sync breaks the app"),
            (6, "degraded_ms", "the next churn leaves no pod that read the hand edit"),
            (7, "degraded_ms", "rolling the release back does not fix it"),
            (8, "recovered_ms", "fixing DB_HOST in Git does"),
        ],
        reverted_in_step: 5,
        reverted: "Git overwrote the edit when auto-sync came back",
        min_drift_age_ms: None,
    };
    the_seed_replay_shows_the_drift_window_and_the_change_that_broke_the_app(&case, run);
}
