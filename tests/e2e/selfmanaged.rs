//! A self-managed Argo CD fleet (examples/argocd-self-managed, made by
//! hack/argocd-self-managed-example): Argo CD installed from the repo's own install
//! folder, built by drill, with no profile install manifest; the `argocd` Application
//! then keeps that folder synced, as a team's Argo CD manages itself.

use std::path::Path;
use std::process::Command;

use crate::harness::{KindClusterGuard, drill_run_env, kept_cluster, kind_bin_path, profile};
use crate::repos::kubectl_json;

/// The test bed profile without its Argo CD install: a run can only take the repo's.
fn profile_without_argocd_install(dir: &Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(profile()).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("DRILL_ARGOCD_INSTALL="))
        .collect();
    let path = dir.join("profile.env");
    std::fs::write(&path, kept.join("\n") + "\n").unwrap();
    path
}

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .status()
        .unwrap();
    assert!(ok.success(), "git {args:?}");
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn a_self_managed_argocd_is_installed_from_its_repo_folder_through_namespace_and_cluster_loss() {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("platform");
    let made = Command::new("hack/argocd-self-managed-example")
        .arg(&repo)
        .env("DRILL_PROFILE", profile())
        .env("PATH", kind_bin_path())
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let bare_profile = profile_without_argocd_install(work.path());
    let env = [("DRILL_PROFILE", bare_profile.to_str().unwrap())];

    // What drill's build does not do is refused before any cluster, naming file and field.
    let kustomization = repo.join("argocd/install/kustomization.yaml");
    let good = std::fs::read_to_string(&kustomization).unwrap();
    std::fs::write(&kustomization, format!("{good}configMapGenerator: []\n")).unwrap();
    git(&repo, &["commit", "--quiet", "-am", "a generator"]);
    let reports = tempfile::tempdir().unwrap();
    let scenario = repo.join("drill/rehearsal.yaml");
    let run = drill_run_env(scenario.to_str().unwrap(), &[], &env, reports.path());
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("argocd/install/kustomization.yaml") && run.stderr.contains("configMapGenerator"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("cluster-create"), "{}", run.stderr);
    std::fs::write(&kustomization, &good).unwrap();
    git(&repo, &["commit", "--quiet", "-am", "no generator"]);

    let reports = tempfile::tempdir().unwrap();
    let run = drill_run_env(scenario.to_str().unwrap(), &["--keep-cluster"], &env, reports.path());
    let (name, kubeconfig) = kept_cluster(&run);
    let _cleanup = KindClusterGuard(name);
    run.assert_passed();
    assert_eq!(
        run.report["recoveries"].as_array().unwrap().len(),
        2,
        "namespace and cluster loss"
    );
    let from = run.report["versions"]["engine_from"].as_str().unwrap_or_default();
    assert!(
        from.starts_with("the repo's argocd/install (") && from.contains("built by drill"),
        "{}",
        run.report["versions"]
    );

    // The API server, on the rebuilt cluster: the repo's patches are what runs, and
    // Argo CD syncs its own install folder, Synced and Healthy.
    let params = kubectl_json(
        &kubeconfig,
        &["-n", "argocd", "get", "configmap", "argocd-cmd-params-cm"],
    );
    assert_eq!(
        params["data"]["controller.status.processors"], "10",
        "{}",
        params["data"]
    );
    let cm = kubectl_json(&kubeconfig, &["-n", "argocd", "get", "configmap", "argocd-cm"]);
    assert_eq!(
        cm["metadata"]["labels"]["platform.example.com/owner"], "platform-team",
        "the JSON 6902 patch: {}",
        cm["metadata"]
    );
    let argocd = kubectl_json(&kubeconfig, &["-n", "argocd", "get", "application", "argocd"]);
    assert_eq!(argocd["spec"]["source"]["path"], "argocd/install");
    assert_eq!(
        argocd["status"]["sync"]["status"], "Synced",
        "{}",
        argocd["status"]["sync"]
    );
    assert_eq!(
        argocd["status"]["health"]["status"], "Healthy",
        "{}",
        argocd["status"]["health"]
    );
    let guestbook = kubectl_json(&kubeconfig, &["-n", "argocd", "get", "application", "guestbook"]);
    assert_eq!(guestbook["status"]["health"]["status"], "Healthy");
}
