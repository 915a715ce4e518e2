//! Rehearsals that share one kept cluster. Making and bootstrapping a cluster is most of a
//! rehearsal's cost (a Flux drift rehearsal alone: 38 of its 46 CPU-s, docs/testbed.md
//! "Where a rehearsal's CPU goes"), so rehearsals whose damage an existing cluster allows
//! (hand edits, CRD loss: no commits, secrets or rebuilds) and which end with the cluster
//! as Git declares it run one after another in place on one cluster drill bootstrapped.
//! What they assert is the same as on a cluster of their own: the checks live with their
//! engine's story (`drift.rs`, `flux.rs`).

use std::path::Path;

use crate::harness::{
    KindClusterGuard, Run, assert_nothing_left_of, drill_run, kept_cluster, kubectl, phases, serve_fleet,
};

/// A kind cluster that drill made and bootstrapped from a Git server this test owns
/// (examples/fleet at HEAD), kept running; rehearsals run on it as `cluster: existing`,
/// behind the guard like any cluster drill did not make for that run.
pub struct SharedCluster {
    pub name: String,
    pub kubeconfig: String,
    pub context: String,
    /// Lines the engine section gains in place (Argo CD: the cluster's root Application).
    engine_extra: &'static str,
    work: tempfile::TempDir,
    pub reports: tempfile::TempDir,
    _server: gitops_drill::gitserve::GitServer,
    _rt: tokio::runtime::Runtime,
    guard: Option<KindClusterGuard>,
}

impl SharedCluster {
    /// Flux, bootstrapped from the test's Git server by URL.
    pub fn flux() -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let (server, work, rt) = serve_fleet(None);
        let setup = work.path().join("shared-flux.yaml");
        std::fs::write(
            &setup,
            format!(
                "name: shared-flux\ncluster:\n  kind:\n    config: {}\nengine:\n  flux:\n    repo: {{url: {}, ref: main}}\n    path: clusters/demo\n    interval: 1m\nexpect:\n  rto: 10m\n",
                root.join("kind-configs/1node.yaml").display(),
                server.url()
            ),
        )
        .unwrap();
        let reports = tempfile::tempdir().unwrap();
        let made = drill_run(setup.to_str().unwrap(), &["--keep-cluster"], reports.path());
        let (name, kubeconfig) = kept_cluster(&made);
        let guard = KindClusterGuard(name.clone());
        made.assert_passed();
        Self {
            context: format!("kind-{name}"),
            name,
            kubeconfig,
            engine_extra: "",
            work,
            reports,
            _server: server,
            _rt: rt,
            guard: Some(guard),
        }
    }

    /// Argo CD, bootstrapped by drill from its served checkout; the setup run's Git server
    /// is gone once it ends, so this test serves the same fleet with the credential the
    /// cluster's repository Secret holds, and points the cluster's Git Service at it, as a
    /// team's Git host would keep serving it.
    pub fn argocd() -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let reports = tempfile::tempdir().unwrap();
        let setup_dir = tempfile::tempdir().unwrap();
        let setup = setup_dir.path().join("shared-argocd.yaml");
        std::fs::write(
            &setup,
            format!(
                "name: shared-argocd\ncluster:\n  kind:\n    config: {}\nengine:\n  argocd:\n    repo: {{path: {}}}\n    path: argocd/root\nexpect:\n  rto: 10m\n",
                root.join("kind-configs/1node.yaml").display(),
                root.join("examples/fleet").display()
            ),
        )
        .unwrap();
        let made = drill_run(setup.to_str().unwrap(), &["--keep-cluster"], reports.path());
        let (name, kubeconfig) = kept_cluster(&made);
        let guard = KindClusterGuard(name.clone());
        made.assert_passed();

        let secret: serde_json::Value = serde_json::from_str(&kubectl(
            &kubeconfig,
            &["-n", "argocd", "get", "secret", "drill-fleet-repo", "-o", "json"],
        ))
        .unwrap();
        let decode = |key: &str| {
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(secret["data"][key].as_str().unwrap())
                .unwrap();
            String::from_utf8(bytes).unwrap()
        };
        let auth = gitops_drill::secrets::RepoAuth {
            username: decode("username"),
            password: decode("password"),
            origin: "the cluster's repository secret".into(),
        };
        let (server, work, rt) = serve_fleet(Some(auth));
        let port = server.addr.port();
        for (kind, path) in [
            ("service", "/spec/ports/0/targetPort"),
            ("endpointslice", "/ports/0/port"),
        ] {
            kubectl(
                &kubeconfig,
                &[
                    "-n",
                    "drill-system",
                    "patch",
                    kind,
                    "drill-git",
                    "--type=json",
                    "-p",
                    &format!(r#"[{{"op":"replace","path":"{path}","value":{port}}}]"#),
                ],
            );
        }
        Self {
            context: format!("kind-{name}"),
            name,
            kubeconfig,
            engine_extra: "    root-app: root\n",
            work,
            reports,
            _server: server,
            _rt: rt,
            guard: Some(guard),
        }
    }

    /// Runs `scenario` (a repository path, written for a kind cluster of its own) in place
    /// on this cluster: its `cluster:` section becomes this cluster, its repository the
    /// checkout's fleet; everything else (steps, budgets, checks) is the file's own.
    pub fn rehearse(&self, scenario: &str) -> Run {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(root.join(scenario)).unwrap();
        let mut out = String::new();
        let mut in_cluster = false;
        let mut in_engine = false;
        for line in text.lines() {
            if !line.starts_with(' ') {
                in_engine = line == "engine:";
            }
            if line == "cluster:" {
                in_cluster = true;
                out.push_str(&format!(
                    "cluster:\n  existing:\n    context: {}\n    kubeconfig: {}\n",
                    self.context, self.kubeconfig
                ));
                continue;
            }
            if in_cluster && line.starts_with(' ') {
                continue;
            }
            in_cluster = false;
            let fleet = root.join("examples/fleet");
            out.push_str(&line.replace("path: ../examples/fleet", &format!("path: {}", fleet.display())));
            out.push('\n');
            // The engine's own keys are indented by four: its root path ends them here.
            if in_engine && line.starts_with("    path: ") {
                out.push_str(self.engine_extra);
            }
        }
        assert!(out.contains("  existing:\n"), "{scenario} has no cluster: section");
        let file = self.work.path().join(Path::new(scenario).file_name().unwrap());
        std::fs::write(&file, out).unwrap();
        let run = drill_run(
            file.to_str().unwrap(),
            &["--allow-context", &self.context],
            self.reports.path(),
        );
        // In place: nothing was made or installed, and drill never deletes a cluster it
        // did not make for the run.
        for phase in ["cluster-create", "engine-install"] {
            assert!(
                phases(&run.report, phase).is_empty(),
                "{scenario} ran in place: no {phase}"
            );
        }
        crate::harness::assert_node_running(&format!("{}-control-plane", self.name), scenario);
        run
    }

    /// Deletes the cluster and checks that nothing of it is left.
    pub fn finish(mut self) {
        drop(self.guard.take());
        assert_nothing_left_of(&self.name);
    }
}

/// Flux's hand-edit rehearsals (self-heal with expected drift kept, then expected drift
/// Flux reverts: noise) and its CRD loss, in place on one kept cluster.
#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn flux_hand_edits_noise_and_crd_loss_share_one_kept_cluster() {
    let shared = SharedCluster::flux();
    crate::drift::flux_drift_is_self_healed_and_expected_drift_is_not_a_finding(
        &shared.rehearse("scenarios/flux-drift-self-heal.yaml"),
    );
    crate::drift::expected_drift_that_the_engine_reverts_is_reported_as_noise(
        &shared.rehearse("scenarios/flux-drift-noise.yaml"),
    );
    crate::flux::crd_loss_recovers_only_once_the_crd_and_its_custom_resources_are_back(
        &shared.rehearse("scenarios/flux-crd-loss.yaml"),
        &shared.kubeconfig,
    );
    shared.finish();
}
