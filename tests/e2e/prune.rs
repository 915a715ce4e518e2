//! Prune, rehearsed by both engines: a ConfigMap made by hand with users-api's marks,
//! then a commit that drops users-api's HPA from Git. Each engine prunes the HPA; Flux
//! leaves the hand-made ConfigMap (it prunes only what its inventory lists), Argo CD
//! deletes it (its tracking annotation claims it). The clusters (taken turns on,
//! `reuse.rs`) are asked directly.

use serde_json::Value;

use crate::harness::*;

struct PruneCase {
    scenario: &'static str,
    /// Whether the engine deletes the hand-made ConfigMap.
    prunes_by_hand: bool,
}

fn what_the_engine_prunes_is_checked_by_the_api_server(case: &PruneCase, run: &Run, kubeconfig: &str) {
    assert!(
        run.report["scenario"] == case.scenario.trim_start_matches("scenarios/").trim_end_matches(".yaml"),
        "{}",
        run.report["scenario"]
    );
    run.assert_passed();
    let r = &run.report;
    let prunes = r["prunes"].as_array().expect("prunes[] in the report");
    let record = |kind: &str| {
        prunes
            .iter()
            .find(|p| p["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} checked: {prunes:?}"))
    };
    let hpa = record("HorizontalPodAutoscaler");
    assert_eq!(
        (hpa["by_hand"].as_bool(), hpa["pruned"].as_bool()),
        (Some(false), Some(true)),
        "{hpa}"
    );
    let flags = record("ConfigMap");
    assert_eq!(flags["by_hand"], true, "{flags}");
    assert_eq!(flags["pruned"], case.prunes_by_hand, "{flags}");
    assert_eq!(
        assertion(r, "HorizontalPodAutoscaler/users/users-api pruned")["passed"],
        true
    );
    let findings = r["findings"].to_string();
    assert!(
        findings.contains("HorizontalPodAutoscaler/users/users-api, dropped from Git, was pruned"),
        "{findings}"
    );
    // The commit took the HPA out of Git, and the engine reached it.
    assert!(run.stderr.contains("retire users-api's autoscaler"), "{}", run.stderr);

    // The API server, asked directly: the HPA is gone, the ConfigMap as the report says.
    let hpas: Value = serde_json::from_str(&kubectl(kubeconfig, &["get", "hpa", "-n", "users", "-o", "json"])).unwrap();
    assert_eq!(hpas["items"].as_array().unwrap().len(), 0, "{hpas}");
    let maps = kubectl(
        kubeconfig,
        &[
            "get",
            "configmap",
            "-n",
            "users",
            "--ignore-not-found",
            "feature-flags",
            "-o",
            "name",
        ],
    );
    assert_eq!(
        maps.trim().is_empty(),
        case.prunes_by_hand,
        "feature-flags by the API server: {maps:?}"
    );
}

/// scenarios/flux-prune.yaml, on the cluster `kubeconfig` names.
pub fn flux_prunes_what_left_git_and_leaves_what_a_person_made(run: &Run, kubeconfig: &str) {
    let case = PruneCase {
        scenario: "scenarios/flux-prune.yaml",
        prunes_by_hand: false,
    };
    what_the_engine_prunes_is_checked_by_the_api_server(&case, run, kubeconfig);
}

/// scenarios/argocd-prune.yaml, on the cluster `kubeconfig` names.
pub fn argocd_prunes_what_left_git_and_what_a_person_made_with_its_marks(run: &Run, kubeconfig: &str) {
    let case = PruneCase {
        scenario: "scenarios/argocd-prune.yaml",
        prunes_by_hand: true,
    };
    what_the_engine_prunes_is_checked_by_the_api_server(&case, run, kubeconfig);
}
