use std::path::Path;

use super::*;

const VALID: &str = r#"name: flux-namespace-loss
description: Delete the apps' namespaces and let Flux restore them.
cluster:
  kind:
    config: kind.yaml
engine:
  flux:
    repo:
      path: fleet
    path: clusters/demo
    interval: 30s
disasters:
  - delete-namespace:
      namespaces: [users]
      operator-action: reconcile-now
  - kill-node:
      node: worker
expect:
  rto: 3m
  phases:
    reconcile: 2m
  objects:
    - api-version: v1
      kind: ConfigMap
      namespace: users
      name: users-api-env
      field: /data/DB_HOST
      equals: users-db
"#;

/// A scenario folder with the kind config and a (fake) Git checkout the scenario names.
fn fixture(scenario: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("kind.yaml"),
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n  - role: control-plane\n  - role: worker\n  - role: worker\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("fleet/.git")).unwrap();
    let file = dir.path().join("scenario.yaml");
    std::fs::write(&file, scenario).unwrap();
    (dir, file)
}

fn error_of(scenario: &str) -> String {
    let (_dir, file) = fixture(scenario);
    let err = load(&file).unwrap_err().to_string();
    // Name the file by its last component so assertions do not depend on the temp dir.
    err.replace(&file.display().to_string(), "scenario.yaml")
}

#[test]
fn a_valid_scenario_becomes_a_plan() {
    let (dir, file) = fixture(VALID);
    let plan = load(&file).unwrap();
    assert_eq!(plan.scenario.name.as_str(), "flux-namespace-loss");
    assert_eq!(plan.kind_nodes, ["control-plane", "worker", "worker2"]);
    assert_eq!(
        plan.repo,
        RepoSource::Local {
            dir: dir.path().join("fleet"),
            git_ref: "HEAD".into(),
            credentials: None,
        }
    );
    assert_eq!(plan.scenario.expect.rto.as_millis(), 180_000);
    assert!(plan.scenario.expect.all_ready, "all-ready defaults to true");
    assert_eq!(
        plan.scenario.disasters[0].operator_action(),
        Some(OperatorAction::ReconcileNow)
    );
    assert_eq!(
        plan.scenario
            .expect
            .phases
            .get(&PhaseName::Reconcile)
            .map(|d| d.as_millis()),
        Some(120_000)
    );
}

#[test]
fn unknown_fields_are_rejected_with_line_and_column() {
    let err = error_of(&VALID.replace("    interval: 30s", "    interval: 30s\n    intervall: 1m"));
    assert!(err.starts_with("scenario.yaml:12:5: "), "{err}");
    assert!(err.contains("intervall"), "{err}");
}

#[test]
fn an_unknown_disaster_kind_names_the_choices() {
    let err = error_of(&VALID.replace("  - kill-node:", "  - kill-pod:"));
    assert!(
        err.starts_with("scenario.yaml:16:5: unknown variant `kill-pod`"),
        "{err}"
    );
    assert!(err.contains("kill-pod"), "{err}");
    assert!(
        err.contains("delete-namespace"),
        "the message should list what is accepted: {err}"
    );
}

#[test]
fn bad_durations_point_at_the_value() {
    let err = error_of(&VALID.replace("rto: 3m", "rto: 3 fortnights"));
    assert!(err.starts_with("scenario.yaml:19:8: invalid duration"), "{err}");
    assert!(err.contains("invalid duration"), "{err}");
    let err = error_of(&VALID.replace("rto: 3m", "rto: 48h"));
    assert!(err.contains("out of range"), "{err}");
}

#[test]
fn bad_names_point_at_the_value() {
    let err = error_of(&VALID.replace("namespaces: [users]", "namespaces: [Users_NS]"));
    assert!(
        err.starts_with("scenario.yaml:14:20: \"Users_NS\" is not a valid name"),
        "{err}"
    );
    assert!(err.contains("not a valid name"), "{err}");
}

#[test]
fn kill_node_must_name_a_node_of_the_kind_config() {
    let err = error_of(&VALID.replace("node: worker", "node: worker7"));
    assert!(err.starts_with("scenario.yaml:17:13: "), "{err}");
    assert!(err.contains("control-plane, worker, worker2"), "{err}");
}

#[test]
fn remove_node_takes_a_worker_of_the_kind_config() {
    let remove = |node: &str| {
        VALID.replace(
            "  - kill-node:\n      node: worker",
            &format!("  - remove-node:\n      node: {node}"),
        )
    };
    let err = error_of(&remove("control-plane"));
    assert!(err.starts_with("scenario.yaml:17:13: "), "{err}");
    assert!(err.contains("takes the cluster with it"), "{err}");
    let err = error_of(&remove("worker3"));
    assert!(
        err.contains("remove-node: the kind config has no node \"worker3\""),
        "{err}"
    );
    let (_dir, file) = fixture(&remove("worker2"));
    load(&file).expect("a worker may be removed");
}

#[test]
fn a_prune_makes_only_what_a_name_suffices_for_and_its_expectations_need_it() {
    let prune = |kind: &str| {
        VALID.replace(
            "  - kill-node:\n      node: worker",
            &format!(
                "  - prune:\n      message: retire\n      edits: []\n      by-hand:\n        - {{kind: {kind}, namespace: users, name: flags, labelled-as: users-api}}"
            ),
        )
    };
    let err = error_of(&prune("Deployment"));
    assert!(err.starts_with("scenario.yaml:20:18: "), "{err}");
    assert!(err.contains("use one of ConfigMap, Secret, ServiceAccount"), "{err}");
    // A ConfigMap passes that check; the fixture's empty edit list is what is refused next.
    let err = error_of(&prune("ConfigMap"));
    assert!(err.contains("prune: list at least one edit"), "{err}");
    let kept = "expect:\n  kept: [{kind: ConfigMap, namespace: users, name: flags}]\n";
    let err = error_of(&VALID.replace("expect:\n", kept));
    assert!(err.contains("add a prune step to disasters"), "{err}");
    let err = error_of(&prune("ConfigMap").replace("expect:\n", kept));
    assert!(!err.contains("add a prune step"), "{err}");
}

#[test]
fn protected_namespaces_are_refused() {
    let err = error_of(&VALID.replace("namespaces: [users]", "namespaces: [kube-system]"));
    assert!(err.starts_with("scenario.yaml:14:"), "{err}");
    assert!(err.contains("refusing to delete kube-system"), "{err}");
}

#[test]
fn delete_pods_needs_a_selector_and_spares_the_control_plane() {
    let step = "  - delete-pods:\n      namespace: users\n      selector: {}\n";
    let err = error_of(&VALID.replace("  - kill-node:\n", &format!("{step}  - kill-node:\n")));
    assert!(err.starts_with("scenario.yaml:18:"), "{err}");
    assert!(
        err.contains("delete-pods: the selector needs at least one label"),
        "{err}"
    );
    let step = "  - delete-pods:\n      namespace: kube-system\n      selector: {k8s-app: kube-dns}\n";
    let err = error_of(&VALID.replace("  - kill-node:\n", &format!("{step}  - kill-node:\n")));
    assert!(err.starts_with("scenario.yaml:17:"), "{err}");
    assert!(err.contains("refusing to delete pods in kube-system"), "{err}");
    let step = "  - delete-pods:\n      namespace: users\n      selector: {app: users-api}\n      expect: degraded\n";
    let (_dir, file) = fixture(&VALID.replace("  - kill-node:\n", &format!("{step}  - kill-node:\n")));
    let plan = load(&file).unwrap();
    let pods = &plan.scenario.disasters[1];
    assert_eq!((pods.kind(), pods.outcome()), ("delete-pods", StepOutcome::Degraded));
}

#[test]
fn delete_pods_waiting_for_nothing_cannot_be_the_last_step() {
    let step = "  - delete-pods:\n      namespace: users\n      selector: {app: users-api}\n      expect: nothing\n";
    let last = VALID.replace("expect:\n  rto", &format!("{step}expect:\n  rto"));
    let err = error_of(&last);
    assert!(err.starts_with("scenario.yaml:19:"), "{err}");
    assert!(
        err.contains("`expect: nothing` on the last step leaves the new pods unjudged"),
        "{err}"
    );
    // Before a step that waits, it is what `nothing` is for.
    let (_dir, file) = fixture(&VALID.replace("  - kill-node:\n", &format!("{step}  - kill-node:\n")));
    let plan = load(&file).unwrap();
    assert_eq!(plan.scenario.disasters[1].outcome(), StepOutcome::Nothing);
}

#[test]
fn delete_crds_names_crds_and_spares_the_engines_own() {
    let with = |crds: &str| {
        VALID.replace(
            "  - kill-node:\n",
            &format!("  - delete-crds:\n      crds: {crds}\n  - kill-node:\n"),
        )
    };
    let err = error_of(&with("[kustomizations.kustomize.toolkit.fluxcd.io]"));
    assert!(err.starts_with("scenario.yaml:17:"), "{err}");
    assert!(
        err.contains("refusing to delete kustomizations.kustomize.toolkit.fluxcd.io"),
        "{err}"
    );
    let err = error_of(&with("[Backups]"));
    assert!(err.contains("\"Backups\" is not a CRD name"), "{err}");
    let err = error_of(&with("[]"));
    assert!(err.contains("delete-crds: list at least one CRD"), "{err}");
    let (_dir, file) = fixture(&with("[backups.demo.gitops-drill.io]"));
    let plan = load(&file).unwrap();
    let step = &plan.scenario.disasters[1];
    assert_eq!((step.kind(), step.outcome()), ("delete-crds", StepOutcome::Recovered));
    assert_eq!(
        step.describe(&plan.scenario.disasters, None),
        "delete CRD(s) backups.demo.gitops-drill.io and every custom resource of them"
    );
}

#[test]
fn a_missing_kind_config_points_at_the_config_field() {
    let err = error_of(&VALID.replace("config: kind.yaml", "config: nope.yaml"));
    assert!(err.starts_with("scenario.yaml:5:13: "), "{err}");
    assert!(err.contains("cannot read kind config"), "{err}");
}

#[test]
fn repo_needs_exactly_one_of_path_and_url() {
    let err = error_of(&VALID.replace(
        "      path: fleet",
        "      path: fleet\n      url: https://git.example/fleet",
    ));
    assert!(err.contains("either `path:` or `url:`, not both"), "{err}");
    let err = error_of(&VALID.replace("      path: fleet", "      url: file:///srv/fleet"));
    assert!(err.contains("must start with http://, https:// or ssh://"), "{err}");
}

#[test]
fn an_ssh_url_needs_exactly_one_ssh_key() {
    let ssh = |extra: &str| {
        VALID.replace(
            "      path: fleet",
            &format!("      url: ssh://git@git.example/fleet{extra}"),
        )
    };
    let err = error_of(&ssh(""));
    assert!(err.contains("is ssh://, and the scenario gives no `ssh-key:`"), "{err}");
    let key = "\n      ssh-key: {key-file: k, known-hosts-env: HOSTS}";
    let err = error_of(&ssh(&format!(
        "{key}\n      credentials: {{username-env: U, password-env: P}}"
    )));
    assert!(
        err.contains("either `credentials:` (https, basic auth) or `ssh-key:` (ssh://)"),
        "{err}"
    );
    let err = error_of(&ssh(
        "\n      ssh-key: {key-file: k, key-env: K, known-hosts-env: HOSTS}",
    ));
    assert!(err.contains("give key-file or key-env, not both"), "{err}");
    let err = error_of(&ssh("\n      ssh-key: {key-file: k}"));
    assert!(err.contains("missing known-hosts-file or known-hosts-env"), "{err}");
    let err = error_of(&VALID.replace(
        "      path: fleet",
        &format!("      url: https://git.example/fleet{key}"),
    ));
    assert!(err.contains("`ssh-key:` is for an ssh:// url"), "{err}");
}

#[test]
fn a_self_managed_argocd_install_path_must_hold_a_kustomization_of_a_local_checkout() {
    let argocd = "name: a\ncluster: {kind: {config: kind.yaml}}\nengine:\n  argocd:\n    repo: {path: fleet}\n    path: argocd/root\n    install-path: argocd/install\ndisasters: [{delete-cluster: {}}]\nexpect: {rto: 5m}\n";
    let err = error_of(argocd);
    assert!(
        err.contains("engine.argocd.install-path: argocd/install:") && err.contains("holds no kustomization.yaml"),
        "{err}"
    );
    let err = error_of(&argocd.replace("{path: fleet}", "{url: https://git.example/fleet}"));
    assert!(err.contains("is built from a local checkout"), "{err}");
    let (dir, file) = fixture(argocd);
    std::fs::create_dir_all(dir.path().join("fleet/argocd/install")).unwrap();
    std::fs::write(
        dir.path().join("fleet/argocd/install/kustomization.yaml"),
        "resources: []\n",
    )
    .unwrap();
    let plan = load(&file).unwrap();
    assert_eq!(
        plan.argocd_install,
        Some(dir.path().join("fleet/argocd/install").canonicalize().unwrap())
    );
    assert!(
        plan.layout_note()
            .unwrap()
            .contains("installed from the repo's argocd/install")
    );
}

#[test]
fn existing_clusters_cannot_be_destroyed() {
    let text = VALID
        .replace("  kind:\n    config: kind.yaml", "  existing:\n    context: prod")
        .replace("  - kill-node:\n      node: worker\n", "  - delete-cluster: {}\n");
    let err = error_of(&text);
    assert!(
        err.contains("delete-cluster: drill can only destroy clusters it created"),
        "{err}"
    );
}

#[test]
fn existing_clusters_get_only_what_needs_nothing_of_drills_own() {
    let existing = VALID
        .replace(
            "  kind:\n    config: kind.yaml",
            "  existing:\n    context: kind-staging",
        )
        .replace("  - kill-node:\n      node: worker\n", "");
    let (_dir, file) = fixture(&existing);
    let plan = load(&file).unwrap();
    assert!(plan.kind_config.is_none());

    let with_secrets = existing.replace("disasters:", "secrets:\n  sops-age:\n    key-env: KEY\ndisasters:");
    let err = error_of(&with_secrets);
    assert!(
        err.contains("cluster: existing (context kind-staging): `secrets:`"),
        "{err}"
    );

    let preloaded = existing.replace("disasters:", "images: preloaded\ndisasters:");
    assert!(error_of(&preloaded).contains("`images: preloaded`"));

    // Argo CD runs in place too, following its root Application.
    let argocd = existing
        .replace("  flux:\n", "  argocd:\n")
        .replace("    interval: 30s\n", "    root-app: app-of-apps\n");
    let (_dir, file) = fixture(&argocd);
    let plan = load(&file).unwrap_or_else(|e| panic!("{e}"));
    let root = plan.scenario.engine.argocd.as_ref().and_then(|a| a.root_app.clone());
    assert_eq!(root.map(|r| r.to_string()).as_deref(), Some("app-of-apps"));

    let commit = existing.replace(
        "  - delete-namespace:",
        "  - commit:\n      message: m\n      edits: [{file: a.yaml, find: x, replace: y}]\n  - delete-namespace:",
    );
    let err = error_of(&commit);
    assert!(
        err.contains("drill never pushes to a remote or to an existing cluster's source"),
        "{err}"
    );
}

#[test]
fn object_checks_need_field_and_equals_together() {
    let err = error_of(&VALID.replace("      equals: users-db\n", ""));
    assert!(err.contains("`field` and `equals` go together"), "{err}");
}

#[test]
fn yaml_syntax_errors_have_a_position() {
    let err = error_of("name: [unclosed\n");
    assert!(err.starts_with("scenario.yaml:"), "{err}");
    let position = err.trim_start_matches("scenario.yaml:");
    assert!(position.chars().next().is_some_and(|c| c.is_ascii_digit()), "{err}");
}

#[test]
fn parse_never_panics_on_truncated_input() {
    // Every prefix of a valid file is either valid or a located error, never a panic.
    for end in 0..VALID.len() {
        if VALID.is_char_boundary(end) {
            let _ = parse_str(&VALID[..end], Path::new("s.yaml"));
        }
    }
}

#[test]
fn a_history_rollback_needs_argo_cd_and_lost_secrets_need_a_restore() {
    let flux_only = VALID.replace(
        "  - kill-node:\n      node: worker\n",
        "  - argocd-history-rollback:\n      app: users-api\n",
    );
    assert_ne!(flux_only, VALID);
    let err = error_of(&flux_only);
    assert!(
        err.starts_with("scenario.yaml:17:12: argocd-history-rollback: the scenario has no `engine.argocd:`"),
        "{err}"
    );
    let lost = VALID.replace(
        "  - kill-node:\n      node: worker\n",
        "  - delete-cluster:\n      lost-secrets: [sealed-secrets]\n",
    );
    let err = error_of(&lost);
    assert!(
        err.contains("lost-secrets names sealed-secrets, but secrets.sealed-secrets is not set"),
        "{err}"
    );
}

#[test]
fn engine_versions_are_release_tags_and_a_sha256_pins_one() {
    let with = |extra: &str| VALID.replace("    interval: 30s\n", &format!("    interval: 30s\n{extra}"));
    let (_dir, file) = fixture(&with(
        &("    version: v2.9.5-rc.1\n    sha256: ".to_string() + &"a".repeat(64) + "\n"),
    ));
    assert!(load(&file).is_ok());
    for (extra, wanted) in [
        (
            "    version: 2.9.5\n",
            "engine.flux.version: \"2.9.5\" is not a release tag like v2.9.5",
        ),
        ("    version: v2.9\n", "is not a release tag"),
        ("    version: v2.9.5-../../x\n", "is not a release tag"),
        (
            "    sha256: abc\n",
            "engine.flux.sha256 pins a `version:`, and there is none",
        ),
        (
            "    version: v2.9.5\n    sha256: xyz\n",
            "engine.flux.sha256: \"xyz\" is not 64 hex digits",
        ),
    ] {
        let e = error_of(&with(extra));
        assert!(e.contains(wanted), "{extra:?}: {e}");
    }
}
