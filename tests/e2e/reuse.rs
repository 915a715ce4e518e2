//! Rehearsals that take turns on one kind cluster (`--reuse-cluster`). The first makes
//! the cluster and keeps it (`--keep-cluster`); each one after takes it up: drill serves
//! the repo afresh, applies the engine, secrets and root sync again, and waits until
//! every app is Ready at the new served commit before its steps. So commits, reverts,
//! break-glass backports and prunes (which `cluster: existing` refuses) share a cluster,
//! and each one skips the cluster's creation and the engine's start (most of a
//! rehearsal's cost: docs/testbed.md "Where a rehearsal's CPU goes"). What each one
//! asserts is its own story's check, kept with it (`flux.rs`, `argocd.rs`, `prune.rs`,
//! `drift.rs`); this file adds what reuse itself must prove.

use crate::harness::{
    KindClusterGuard, Run, assert_nothing_left_of, drill_gameday, drill_run, drill_run_env, kept_cluster, phases,
};

/// A kind cluster the first rehearsal made and kept; the rest run on it.
pub struct ReusedCluster {
    pub name: String,
    pub kubeconfig: String,
    pub reports: tempfile::TempDir,
    guard: Option<KindClusterGuard>,
}

impl ReusedCluster {
    /// Runs `scenario` on a cluster of its own and keeps that cluster.
    pub fn first(scenario: &str) -> (Self, Run) {
        let reports = tempfile::tempdir().unwrap();
        let run = drill_run(scenario, &["--keep-cluster"], reports.path());
        let (name, kubeconfig) = kept_cluster(&run);
        let guard = Some(KindClusterGuard(name.clone()));
        assert!(
            !phases(&run.report, "cluster-create").is_empty(),
            "{scenario} made the cluster"
        );
        let cluster = Self {
            name,
            kubeconfig,
            reports,
            guard,
        };
        (cluster, run)
    }

    /// Runs `scenario` on this cluster.
    pub fn rehearse(&self, scenario: &str) -> Run {
        self.rehearse_with(scenario, &[], &[])
    }

    /// Runs `scenario` on this cluster with more arguments and environment.
    pub fn rehearse_with(&self, scenario: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut all = vec!["--reuse-cluster", self.name.as_str()];
        all.extend_from_slice(args);
        let run = drill_run_env(scenario, &all, env, self.reports.path());
        self.assert_reused(scenario, &run);
        run
    }

    /// Runs `scenario` as a game day (`--auto`) by `operator` on this cluster.
    pub fn gameday(&self, scenario: &str, operator: &str) -> Run {
        let run = drill_gameday(
            scenario,
            operator,
            &["--reuse-cluster", &self.name],
            self.reports.path(),
        );
        self.assert_reused(scenario, &run);
        run
    }

    /// What every reused run must show: no cluster made but by its rebuilds, the engine
    /// applied again, the report naming the cluster, the cluster still running, and, by
    /// the API server, the engine's root at this run's last commit (not an earlier run's)
    /// when the report has it Ready.
    fn assert_reused(&self, scenario: &str, run: &Run) {
        let r = &run.report;
        let rebuilds = (r["steps"].as_array().unwrap().iter())
            .filter(|s| s["kind"] == "delete-cluster")
            .count();
        assert_eq!(
            phases(r, "cluster-create").len(),
            rebuilds,
            "{scenario}: a cluster made by its rebuilds only"
        );
        assert_eq!(
            phases(r, "engine-install").len(),
            1 + rebuilds,
            "{scenario}: engine applied again, then installed in each rebuild"
        );
        let reused = r["versions"]["reused_cluster"].as_str().unwrap_or_default();
        assert!(
            reused.starts_with(&self.name),
            "{scenario}: the report names the cluster: {reused:?}"
        );
        assert!(
            run.stderr.contains("to reconcile the new served commit now"),
            "{scenario}: the engine is asked to take the new commit"
        );
        crate::harness::assert_node_running(&format!("{}-control-plane", self.name), scenario);
        let engine = r["versions"]["engine"].as_str().unwrap_or_default();
        let (kind, namespace, name, path) = if engine.starts_with("argocd") {
            ("Application", "argocd", "root", "{.status.sync.revision}")
        } else {
            (
                "GitRepository",
                "flux-system",
                "flux-system",
                "{.status.artifact.revision}",
            )
        };
        // A rehearsal that takes the source's credentials away ends with it never fetched.
        if crate::harness::app(r, kind, name)["ready"] != true {
            return;
        }
        let last = last_commit(&run.stderr);
        let jsonpath = format!("jsonpath={path}");
        // Read once, after drill is gone: a reconcile drill asked for and left pending
        // would be handled against a served repo no longer there, and Argo CD would show
        // the bare branch ("main") with its comparison failed (seen twice after a prune's
        // reconcile-now, before drill waited for its requests to be handled).
        let revision =
            crate::harness::kubectl(&self.kubeconfig, &["-n", namespace, "get", kind, name, "-o", &jsonpath]);
        let conditions = crate::harness::kubectl(
            &self.kubeconfig,
            &[
                "-n",
                namespace,
                "get",
                kind,
                name,
                "-o",
                "jsonpath={.status.conditions}",
            ],
        );
        assert!(
            revision.contains(&last),
            "{scenario}: the engine's root is at {revision:?}, not this run's last commit {last}; conditions: {conditions}"
        );
    }

    /// Deletes the cluster and checks that nothing of it is left.
    pub fn finish(mut self) {
        drop(self.guard.take());
        assert_nothing_left_of(&self.name);
    }
}

/// The run's last commit (12 digits): its last step's commit, else the one served.
fn last_commit(stderr: &str) -> String {
    let committed = stderr
        .lines()
        .filter_map(|l| l.split("  committed ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .next_back();
    let served = stderr
        .lines()
        .find_map(|l| l.split("(served as commit ").nth(1))
        .map(|rest| rest.trim_end_matches(')'));
    committed
        .or(served)
        .unwrap_or_else(|| panic!("no commit said: {stderr}"))
        .to_string()
}

/// A cluster that does not fit the scenario, or is not drill's, is refused before
/// anything is touched, saying why.
fn refusals_touch_nothing(cluster: &ReusedCluster) {
    let three_nodes = drill_refused("scenarios/flux-worker-loss.yaml", &cluster.name);
    assert!(
        three_nodes.contains("it has 1 node(s), and the scenario's kind config declares 3"),
        "{three_nodes}"
    );
    let missing = drill_refused("scenarios/flux-drift-self-heal.yaml", "drill-no-such-cluster");
    assert!(missing.contains("no kind cluster by that name"), "{missing}");
    let other_path = drill_refused("scenarios/flux-missing-image.yaml", &cluster.name);
    assert!(
        other_path.contains("it last synced flux clusters/demo, and this scenario syncs flux clusters/broken"),
        "{other_path}"
    );
    // Refused before the kept run's folder changed: its served copy, the kind config the
    // next reuse compares with, and what the cluster last synced are all still there.
    let folder = std::path::Path::new(&cluster.kubeconfig).parent().unwrap();
    let served = folder.join("git");
    assert!(served.is_dir(), "a refusal removed {}", served.display());
    for file in ["kind-config.json", "synced-path", "kubeconfig"] {
        assert!(
            folder.join(file).is_file(),
            "a refusal removed {file} from {}",
            folder.display()
        );
    }
    let synced = std::fs::read_to_string(folder.join("synced-path")).unwrap();
    assert_eq!(
        synced.trim(),
        "flux clusters/demo",
        "a refusal rewrote what the cluster synced"
    );
    crate::harness::assert_node_running(&format!("{}-control-plane", cluster.name), "the refusals");
}

/// `drill run SCENARIO --reuse-cluster NAME` that must end in an error (exit 2): what it said.
fn drill_refused(scenario: &str, name: &str) -> String {
    let reports = tempfile::tempdir().unwrap();
    let out = crate::harness::drill_command(scenario, &["--reuse-cluster", name], &[], reports.path())
        .output()
        .unwrap();
    // The error is the report's (stdout) and the progress's (stderr).
    let said = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{scenario} on {name}: {said}");
    said
}

/// Flux: the seed replay makes the cluster; a bad commit and its revert, a prune, the
/// break-glass game day, a cluster loss (its rebuilt cluster kept) and a killed node
/// follow (all of `clusters/demo`: another path is refused).
#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn flux_seed_replay_commits_prunes_break_glass_cluster_and_node_loss_take_turns_on_one_cluster() {
    let (cluster, seed) = ReusedCluster::first("scenarios/seed-configmap-drift.yaml");
    crate::drift::flux_seed_replay_checks(&seed);
    refusals_touch_nothing(&cluster);
    crate::flux::bad_commit_degrades_the_app_and_git_revert_restores_it(
        &cluster.rehearse("scenarios/flux-bad-commit-revert.yaml"),
    );
    crate::prune::flux_prunes_what_left_git_and_leaves_what_a_person_made(
        &cluster.rehearse("scenarios/flux-prune.yaml"),
        &cluster.kubeconfig,
    );
    crate::flux::gameday_runs_break_glass_and_writes_the_incident_record(
        &cluster.gameday("scenarios/flux-break-glass.yaml", "alice"),
    );
    // The cluster lost: its rebuilt successor is kept and taken up next.
    crate::flux::cluster_loss_rebuilds_from_git_with_every_phase_timed(
        &cluster.rehearse("scenarios/flux-cluster-loss.yaml"),
    );
    // Last: the node is killed and boots again, the cluster stays for the checks.
    crate::flux::killed_node_is_recovered_only_once_its_pods_run_again(
        &cluster.rehearse("scenarios/flux-node-loss.yaml"),
        &cluster.name,
        &cluster.kubeconfig,
    );
    cluster.finish();
}

/// Argo CD: the history rollback makes the cluster; the seed replay, break glass with a
/// self-healing parent, a prune, a cluster loss, and repo credentials through another
/// cluster loss follow (each rebuilt cluster is kept), all of `argocd/root`.
#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn argocd_rollback_seed_replay_break_glass_prune_cluster_loss_and_repo_credentials_take_turns_on_one_cluster() {
    let (cluster, rollback) = ReusedCluster::first("scenarios/argocd-history-rollback.yaml");
    crate::argocd::history_rollback_is_undone_by_auto_sync_and_git_revert_fixes_it(&rollback);
    crate::drift::argocd_seed_replay_checks(&cluster.rehearse("scenarios/argocd-seed-configmap-drift.yaml"));
    crate::argocd::break_glass_pauses_the_self_healing_parent_too_and_git_and_cluster_agree(
        &cluster.rehearse("scenarios/argocd-break-glass.yaml"),
    );
    crate::prune::argocd_prunes_what_left_git_and_what_a_person_made_with_its_marks(
        &cluster.rehearse("scenarios/argocd-prune.yaml"),
        &cluster.kubeconfig,
    );
    // Two cluster losses: each rebuilt cluster is kept, and the next rehearsal takes it up.
    crate::argocd::cluster_loss_rebuilds_install_secret_root_app_and_waits(
        &cluster.rehearse("scenarios/argocd-cluster-loss.yaml"),
    );
    crate::secrets::argocd_repo_credentials_are_restored_and_never_leak(|args, env| {
        cluster.rehearse_with("scenarios/repo-credentials-restore.yaml", args, env)
    });
    cluster.finish();
}
