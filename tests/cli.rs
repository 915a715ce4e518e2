//! The CLI as a user meets it, without a cluster: validation errors, exit codes, schema.

use std::process::Command;

fn drill(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_drill"))
        .args(args)
        .env_remove("RUST_LOG")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// A shipped scenario copied into `dir` with `edits` applied (each must match), its
/// relative paths made absolute; returns the copy's path.
fn shipped_copy(dir: &std::path::Path, scenario: &str, edits: &[(&str, &str)]) -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut text = std::fs::read_to_string(root.join("scenarios").join(scenario)).unwrap();
    for (find, replace) in edits {
        assert!(text.contains(find), "{scenario} has no {find:?}");
        text = text.replace(find, replace);
    }
    let text = text
        .replace("../examples", root.join("examples").to_str().unwrap())
        .replace("../kind-configs", root.join("kind-configs").to_str().unwrap());
    let copy = dir.join(scenario);
    std::fs::write(&copy, text).unwrap();
    copy
}

#[test]
fn shipped_scenarios_validate() {
    let mut files: Vec<String> = std::fs::read_dir("scenarios")
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|p| p.ends_with(".yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 9, "{files:?}");
    let out = Command::new(env!("CARGO_BIN_EXE_drill"))
        .arg("validate")
        .args(&files)
        .env("DRILL_REPO_USER", "drill")
        .env("DRILL_REPO_TOKEN", "validate-token")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let (code, out, err) = (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    );
    // One scenario is designed to stop at the secrets preflight, which validate runs too.
    assert_eq!(code, 2, "{out}{err}");
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error: ")).collect::<Vec<_>>(),
        [
            "error: scenarios/flux-sops-missing-key.yaml: secrets.sops-age: environment variable DRILL_AGE_KEY is not set: export the key there before the run"
        ],
        "{err}"
    );
    assert_eq!(
        out.lines().filter(|l| l.ends_with("secret(s) to restore)")).count(),
        files.len() - 1,
        "{out}"
    );
    // The fleet's SealedSecret is only deployed from clusters/sealed, whose scenarios
    // restore the key: no warning about it anywhere.
    assert!(!err.contains("warning"), "{err}");
    assert!(out.contains("sealed-secrets-key-restore.yaml: ok (sealed-secrets-key-restore, 1 disaster step(s), 1 secret(s) to restore)"), "{out}");
}

#[test]
fn a_sealed_secrets_key_backup_that_did_not_seal_the_fleet_is_refused_at_preflight() {
    let dir = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let wrong = root.join("tests/fixtures/wrong-sealed-secrets-key.yaml");
    let scenario = shipped_copy(
        dir.path(),
        "sealed-secrets-key-restore.yaml",
        &[("../examples/keys/sealed-secrets-key.yaml", wrong.to_str().unwrap())],
    );
    let rewritten = std::fs::read_to_string(&scenario).unwrap();
    let (code, _, err) = drill(&["validate", scenario.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("does not hold the key of sealed-secrets-cert.pem, the certificate the fleet's SealedSecrets were sealed with"),
        "{err}"
    );
    assert!(err.contains("wrong-sealed-secrets-key.yaml"), "{err}");
    // Neither the private key nor any other part of the backup is echoed.
    let backup = std::fs::read_to_string(&wrong).unwrap();
    let key = backup.lines().find_map(|l| l.trim().strip_prefix("tls.key: ")).unwrap();
    assert!(!err.contains(&key[..40]), "{err}");

    // Without the key restore at all, validate warns that the fleet's SealedSecret will not unseal.
    let (head, rest) = rewritten.split_once("secrets:\n").unwrap();
    let without = format!("{head}disasters:{}", rest.split_once("disasters:").unwrap().1);
    std::fs::write(&scenario, &without).unwrap();
    let (code, out, err) = drill(&["validate", scenario.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("the fleet has SealedSecrets (apps/users-sealed/users-db-password.yaml) but the scenario restores no sealed-secrets key"),
        "{err}"
    );
}

#[test]
fn gameday_without_a_terminal_needs_auto() {
    // `output()` gives the child a null stdin: not a terminal.
    let (code, _, err) = drill(&["gameday", "scenarios/flux-break-glass.yaml", "--operator", "alice"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a terminal; use --auto"), "{err}");
}

#[test]
fn quiet_step_errors_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("s.yaml");
    let fleet = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fleet");
    let kind = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("kind-configs/1node.yaml");
    let text = format!(
        "name: s\ncluster:\n  kind:\n    config: {}\nengine:\n  flux:\n    repo:\n      path: {}\n    path: clusters/demo\ndisasters:\n  - bad-commit:\n      message: m\n      edits:\n        - file: apps/users-api/deployment.yaml\n          find: not-in-the-file\n          replace: x\n  - git-revert:\n      step: 2\nexpect:\n  rto: 1m\n",
        kind.display(),
        fleet.display()
    );
    std::fs::write(&scenario, text).unwrap();
    let (code, _, err) = drill(&["validate", scenario.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        err.contains("s.yaml:14:9: bad-commit: apps/users-api/deployment.yaml does not contain \"not-in-the-file\""),
        "{err}"
    );
    std::fs::write(
        &scenario,
        std::fs::read_to_string(&scenario)
            .unwrap()
            .replace("not-in-the-file", "demo-small:1.0"),
    )
    .unwrap();
    let (code, _, err) = drill(&["validate", scenario.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        err.contains("s.yaml:18:13: git-revert: step 2 is not an earlier commit or bad-commit step"),
        "{err}"
    );
}

#[test]
fn malformed_scenarios_exit_2_with_file_line_and_column() {
    let (code, _, err) = drill(&["validate", "tests/scenarios/invalid/unknown-field.yaml"]);
    assert_eq!(code, 2);
    assert!(err.contains("tests/scenarios/invalid/unknown-field.yaml:9:5: unknown field `intervall`, expected one of repo, path, interval"), "{err}");
    let (code, _, err) = drill(&["validate", "tests/scenarios/invalid/bad-duration.yaml"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("tests/scenarios/invalid/bad-duration.yaml:10:8: invalid duration \"five minutes\""),
        "{err}"
    );
}

#[test]
fn run_refuses_a_malformed_scenario_before_touching_docker() {
    let (code, out, err) = drill(&["run", "tests/scenarios/invalid/unknown-field.yaml"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains(":9:5: unknown field"), "{err}");
    assert!(out.is_empty(), "nothing on stdout: {out}");
}

#[test]
fn the_schema_is_json_and_names_the_disasters() {
    let (code, out, _) = drill(&["schema"]);
    assert_eq!(code, 0);
    let schema: serde_json::Value = serde_json::from_str(&out).unwrap();
    let text = schema.to_string();
    for word in [
        "delete-namespace",
        "delete-cluster",
        "kill-node",
        "reconcile-now",
        "all-ready",
    ] {
        assert!(text.contains(word), "schema lacks {word}");
    }
}

#[test]
fn a_missing_file_is_an_error_not_a_panic() {
    let (code, _, err) = drill(&["validate", "no/such.yaml"]);
    assert_eq!(code, 2);
    assert!(err.contains("failed to read scenario no/such.yaml"), "{err}");
}

#[test]
fn the_committed_schema_matches_the_code() {
    let (_, out, _) = drill(&["schema"]);
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/scenario.schema.json")).unwrap();
    assert_eq!(
        out, committed,
        "docs/scenario.schema.json is stale: run `drill schema > docs/scenario.schema.json`"
    );
    let (_, out, _) = drill(&["schema", "--report"]);
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/report.schema.json")).unwrap();
    assert_eq!(
        out, committed,
        "docs/report.schema.json is stale: run `drill schema --report > docs/report.schema.json`"
    );
}

/// `drill run` with a profile that names a Flux manifest (never read: the preflight stops first).
fn drill_run_preflight(scenario: &str, env: &[(&str, &str)]) -> (i32, String) {
    let reports = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_drill"));
    cmd.args(["run", scenario, "--report-dir"])
        .arg(reports.path())
        .env_remove("DRILL_PROFILE")
        .env_remove("DRILL_AGE_KEY")
        .env_remove("DRILL_REPO_USER")
        .env_remove("DRILL_REPO_TOKEN")
        .env("DRILL_FLUX_INSTALL", "/nonexistent/flux.yaml")
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), all)
}

#[test]
fn a_missing_age_key_stops_the_run_at_preflight_naming_it() {
    let (code, out) = drill_run_preflight("scenarios/flux-sops-missing-key.yaml", &[]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("secrets.sops-age: environment variable DRILL_AGE_KEY is not set"),
        "{out}"
    );
    assert!(!out.contains("cluster-create"), "nothing was created: {out}");
}

#[test]
fn missing_repo_credentials_stop_the_run_at_preflight_naming_the_variable() {
    let (code, out) = drill_run_preflight(
        "scenarios/repo-credentials-restore.yaml",
        &[("DRILL_REPO_USER", "drill")],
    );
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("repo.credentials: $DRILL_REPO_TOKEN (the password or token) is not set"),
        "{out}"
    );
    assert!(!out.contains("cluster-create"), "nothing was created: {out}");
    // A lost secret must be one the scenario restores.
    let dir = tempfile::tempdir().unwrap();
    let scenario = shipped_copy(
        dir.path(),
        "sealed-secrets-key-lost.yaml",
        &[("lost-secrets: [sealed-secrets]", "lost-secrets: [repo-credentials]")],
    );
    let (code, _, err) = drill(&["validate", scenario.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("lost-secrets names repo-credentials, but repo.credentials is not set"),
        "{err}"
    );
}

#[test]
fn images_mirror_needs_a_registry_mirror_in_the_profile_and_a_cluster_drill_creates() {
    let (code, out) = drill_run_preflight("scenarios/flux-cluster-loss-mirror.yaml", &[]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("scenarios/flux-cluster-loss-mirror.yaml")
            && out.contains("this profile names none (DRILL_REGISTRY_MIRROR)"),
        "{out}"
    );
    assert!(!out.contains("cluster-create"), "nothing was created: {out}");
    // The same check for the command-line override.
    let reports = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_drill"))
        .args([
            "run",
            "scenarios/flux-cluster-loss.yaml",
            "--images",
            "mirror",
            "--report-dir",
        ])
        .arg(reports.path())
        .env_remove("DRILL_PROFILE")
        .env_remove("DRILL_REGISTRY_MIRROR")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("DRILL_REGISTRY_MIRROR"), "{err}");
    // A cluster drill did not create keeps its nodes' registry settings.
    let dir = tempfile::tempdir().unwrap();
    let scenario = existing_cluster_scenario(dir.path());
    let (code, _, err) = drill(&["run", scenario.to_str().unwrap(), "--images", "mirror"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("`images: mirror` changes the nodes of a kind cluster drill creates"),
        "{err}"
    );
}

#[test]
fn a_cluster_that_does_not_fit_on_this_machine_is_refused_before_it_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let mut config =
        String::from("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n  - role: control-plane\n");
    for _ in 0..1999 {
        config.push_str("  - role: worker\n");
    }
    std::fs::write(dir.path().join("huge.yaml"), config).unwrap();
    let scenario = shipped_copy(
        dir.path(),
        "flux-namespace-loss.yaml",
        &[("../kind-configs/1node.yaml", "huge.yaml")],
    );
    let (code, out) = drill_run_preflight(scenario.to_str().unwrap(), &[]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("the cluster does not fit on this machine: 2000 kind node(s) need about 1500.8 GiB of memory"),
        "{out}"
    );
    assert!(out.contains("--skip-resource-check"), "{out}");
    assert!(!out.contains("cluster-create"), "nothing was created: {out}");
    let (code, doctor, _) = drill(&["doctor", scenario.to_str().unwrap()]);
    assert_eq!(code, 2, "{doctor}");
    assert!(doctor.contains("✗ fits"), "{doctor}");
}

/// A scenario against `cluster: existing`, context `kind-staging` of a kubeconfig whose
/// API server is elsewhere (nothing listens there; drill must not even try).
fn existing_cluster_scenario(dir: &std::path::Path) -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::write(
        dir.join("kubeconfig"),
        "apiVersion: v1\nkind: Config\nclusters:\n- name: staging\n  cluster: {server: 'https://10.255.255.1:6443'}\n\
         contexts:\n- name: kind-staging\n  context: {cluster: staging, user: u}\nusers:\n- name: u\n  user: {token: x}\n\
         current-context: kind-staging\n",
    )
    .unwrap();
    let scenario = dir.join("existing.yaml");
    std::fs::write(
        &scenario,
        format!(
            "name: existing-namespace-loss\ncluster:\n  existing:\n    context: kind-staging\n    kubeconfig: kubeconfig\n\
             engine:\n  flux:\n    repo: {{path: {}}}\n    path: clusters/demo\n\
             disasters:\n  - delete-namespace: {{namespaces: [users]}}\nexpect:\n  rto: 5m\n",
            root.join("examples/fleet").display()
        ),
    )
    .unwrap();
    scenario
}

#[test]
fn an_existing_cluster_is_touched_only_with_its_context_named_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = existing_cluster_scenario(dir.path());
    let scenario = scenario.to_str().unwrap();
    let (code, out) = drill_run_preflight(scenario, &[]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("a cluster drill did not create: pass --allow-context kind-staging"),
        "{out}"
    );
    let reports = tempfile::tempdir().unwrap();
    let wrong = Command::new(env!("CARGO_BIN_EXE_drill"))
        .args(["run", scenario, "--allow-context", "kind-prod", "--report-dir"])
        .arg(reports.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&wrong.stdout).to_string() + &String::from_utf8_lossy(&wrong.stderr);
    assert_eq!(wrong.status.code(), Some(2), "{err}");
    assert!(err.contains("but --allow-context names \"kind-prod\""), "{err}");
    assert!(!err.contains("step 1 will"), "nothing was listed or touched: {err}");
}

#[test]
fn reuse_cluster_takes_up_only_a_kind_cluster_drill_kept() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = existing_cluster_scenario(dir.path());
    let reports = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_drill"))
        .args(["run", scenario.to_str().unwrap(), "--reuse-cluster", "drill-kept-ab12"])
        .args(["--allow-context", "kind-staging", "--report-dir"])
        .arg(reports.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--reuse-cluster drill-kept-ab12 takes up a kind cluster drill kept; this scenario names an existing cluster (context kind-staging)"),
        "{err}"
    );
    assert!(!err.contains("step 1 will"), "nothing was listed or touched: {err}");
    let (code, help, _) = drill(&["run", "--help"]);
    assert_eq!(code, 0);
    assert!(help.contains("--reuse-cluster <NAME>"), "{help}");
}

#[test]
fn a_wrong_age_key_names_the_file_it_cannot_decrypt_and_never_prints_the_key() {
    let wrong = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/wrong.agekey")).unwrap();
    let (code, out) = drill_run_preflight("scenarios/flux-sops-missing-key.yaml", &[("DRILL_AGE_KEY", &wrong)]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("cannot decrypt apps/users-secrets/db-credentials.yaml: it is encrypted for age1"),
        "{out}"
    );
    let secret_line = wrong.lines().find(|l| l.starts_with("AGE-SECRET-KEY-")).unwrap();
    assert!(!out.contains(secret_line), "the key leaked: {out}");
    assert!(!out.contains(&secret_line[20..40]), "part of the key leaked: {out}");
}

#[test]
fn engine_override_picks_a_configured_engine_and_refuses_a_missing_one() {
    let run = |scenario: &str, engine: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_drill"))
            .args(["run", scenario, "--engine", engine, "--report-dir"])
            .arg(std::env::temp_dir().join("drill-cli-engine-test"))
            .env_remove("DRILL_PROFILE")
            .env_remove("DRILL_ARGOCD_INSTALL")
            .env_remove("DRILL_FLUX_INSTALL")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), all)
    };
    let (code, err) = run("scenarios/flux-namespace-loss.yaml", "argocd");
    assert_eq!(code, Some(2));
    assert!(
        err.contains("--engine argocd: the scenario has no `engine.argocd:` section"),
        "{err}"
    );
    // Both configured: the override decides which install manifest is needed (and missing here).
    let (code, err) = run("scenarios/cluster-loss-both-engines.yaml", "argocd");
    assert_eq!(code, Some(2));
    assert!(err.contains("no Argo CD install manifest"), "{err}");
    let (_, err) = run("scenarios/cluster-loss-both-engines.yaml", "flux");
    assert!(err.contains("no Flux install manifest"), "{err}");
}

#[test]
fn images_lists_what_a_rebuild_needs_one_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let install = dir.path().join("flux-install.yaml");
    std::fs::write(
        &install,
        "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n        - image: ghcr.io/fluxcd/source-controller:v1.9.3\n",
    )
    .unwrap();
    let profile = dir.path().join("profile.env");
    std::fs::write(&profile, format!("DRILL_FLUX_INSTALL={}\n", install.display())).unwrap();
    let (code, out, err) = drill(&[
        "images",
        "scenarios/flux-cluster-loss.yaml",
        "--profile",
        profile.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "docker.io/gitops-drill/demo-large:1.0",
            "docker.io/gitops-drill/demo-medium:1.0",
            "docker.io/gitops-drill/demo-small:1.0",
            "ghcr.io/fluxcd/source-controller:v1.9.3",
        ]
    );
    assert!(err.contains("4 image(s)"), "{err}");
    let (code, out, _) = drill(&[
        "images",
        "scenarios/sealed-secrets-key-restore.yaml",
        "-v",
        "--profile",
        profile.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    assert!(
        out.contains("docker.io/bitnami/sealed-secrets-controller:0.40.0\tcontrollers/sealed-secrets/deployment.yaml"),
        "{out}"
    );
    let (code, _, err) = drill(&["images"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn diagnostics_are_off_by_default_and_on_with_v_or_rust_log() {
    let (code, _, quiet) = drill(&["validate", "scenarios/flux-bootstrap.yaml"]);
    assert_eq!(code, 0);
    assert!(!quiet.contains("DEBUG"), "{quiet}");
    let (code, _, verbose) = drill(&["validate", "scenarios/flux-bootstrap.yaml", "-v"]);
    assert_eq!(code, 0);
    assert!(
        verbose.contains("DEBUG") && verbose.contains("parsed scenario flux-bootstrap"),
        "{verbose}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_drill"))
        .args(["validate", "scenarios/flux-bootstrap.yaml"])
        .env("RUST_LOG", "gitops_drill::scenario=debug")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("gitops_drill::scenario"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "no colour codes when stderr is not a terminal: {stderr}"
    );
}

#[test]
fn a_timeout_out_of_range_is_refused_before_anything_runs() {
    let (code, _, stderr) = drill(&[
        "run",
        "scenarios/flux-bootstrap.yaml",
        "--bootstrap-timeout",
        "18446744073709551615s",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--bootstrap-timeout"), "names the option: {stderr}");
    assert!(stderr.contains("between 1s and 24h"), "says the range: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn report_renders_a_failed_run_and_exits_0() {
    use gitops_drill::assert::Assertion;
    use gitops_drill::report::Report;
    let dir = tempfile::tempdir().unwrap();
    let failed = Assertion {
        name: "all objects Ready".into(),
        passed: false,
        message: "Deployment/users/ghost never Ready".into(),
        measured_ms: None,
    };
    let report = Report::new(&gitops_drill::timeline::Timeline::default(), vec![failed], 60_000, None);
    std::fs::write(dir.path().join("report.json"), report.to_json()).unwrap();
    for format in ["table", "json", "markdown", "junit"] {
        let (code, out, err) = drill(&["report", dir.path().to_str().unwrap(), "--format", format]);
        assert_eq!(code, 0, "{format}: {err}");
        assert!(out.contains("ghost never Ready"), "{format}: {out}");
    }
    // -o/--output, as on every other command.
    for flag in ["-o", "--output"] {
        let (code, out, err) = drill(&["report", dir.path().to_str().unwrap(), flag, "json"]);
        assert_eq!(code, 0, "{flag}: {err}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&out).unwrap()["result"],
            "fail"
        );
    }
}

#[test]
fn completions_for_each_shell_know_every_command_and_option() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let (code, out, err) = drill(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        for word in ["gameday", "validate", "bootstrap-timeout", "no-fail-fast"] {
            assert!(out.contains(word), "{shell} completion lacks {word}");
        }
    }
    let (code, _, err) = drill(&["completions", "tcsh"]);
    assert_eq!(code, 2, "an unknown shell is a usage error: {err}");
    assert!(err.contains("tcsh"), "{err}");
}

#[test]
fn the_man_page_is_roff_with_every_command_and_the_exit_codes() {
    let (code, out, err) = drill(&["man"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(".TH drill 1"), "{}", &out[..out.len().min(300)]);
    for word in ["gameday", "completions", "143 terminated by SIGTERM"] {
        assert!(out.contains(word), "the man page lacks {word}");
    }
}

#[test]
fn a_typo_in_the_profile_is_named_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("profile.env");
    std::fs::write(&profile, "DRILL_NODE_IMAGES=kindest/node:v1.34.0\n").unwrap();
    let (_, _, err) = drill(&["doctor", "--profile", profile.to_str().unwrap()]);
    assert!(
        err.contains("line 1: unknown key DRILL_NODE_IMAGES; did you mean DRILL_NODE_IMAGE?"),
        "{err}"
    );
}

#[test]
fn output_json_is_one_document_per_answer_for_validate_doctor_and_clean() {
    let (code, out, _) = drill(&[
        "validate",
        "-o",
        "json",
        "scenarios/flux-bootstrap.yaml",
        "/nonexistent.yaml",
    ]);
    assert_eq!(code, 2, "one file failed: {out}");
    let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "JSON Lines, one per file: {out}");
    assert_eq!(lines[0]["ok"], true);
    assert_eq!(lines[0]["name"], "flux-bootstrap");
    assert_eq!(lines[1]["ok"], false);
    assert!(
        lines[1]["error"].as_str().unwrap().contains("/nonexistent.yaml"),
        "{out}"
    );

    let (code, out, _) = drill(&["doctor", "--output", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let all_ok = doc["checks"].as_array().unwrap().iter().all(|c| c["ok"] == true);
    assert_eq!(doc["ok"], all_ok, "{doc}");
    assert_eq!(code, if all_ok { 0 } else { 2 }, "{doc}");
    assert!(
        doc["checks"].as_array().unwrap().iter().any(|c| c["name"] == "docker"),
        "{doc}"
    );

    // Docker may be down here (CLI tests run before the test bed starts): a failure in
    // the document, and exit 2.
    let (code, out, _) = drill(&["clean", "--dry-run", "-o", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["dry_run"], true);
    for key in ["clusters", "mirrors", "left_alone", "in_use", "work_folders", "failed"] {
        assert!(doc[key].is_array(), "{key}: {doc}");
    }
    let failed = !doc["failed"].as_array().unwrap().is_empty();
    assert_eq!(code, if failed { 2 } else { 0 }, "{doc}");
}

/// report.json holds to the committed schema (checked by a real validator): here a report
/// with its optional parts filled; every e2e rehearsal checks its real report the same way.
#[test]
fn report_json_holds_to_its_schema() {
    use gitops_drill::assert::Assertion;
    use gitops_drill::report::Report;
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("docs/report.schema.json").unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let passed = Assertion {
        name: "rebuilt within budget".into(),
        passed: true,
        message: "1m 40s within 10m".into(),
        measured_ms: Some(100_000),
    };
    let mut report = Report::new(
        &gitops_drill::timeline::Timeline::default(),
        vec![passed],
        600_000,
        None,
    );
    report.versions.drill = Some("0.1.0".into());
    report.versions.engine = Some("flux v2.9.5".into());
    report.stopped_early = Some("image missing".into());
    report.error = Some("interrupted".into());
    report.findings.push("a finding".into());
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    let errors: Vec<String> = validator.iter_errors(&json).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // The validator finds what it should: a wrong type and a missing required field.
    let mut broken = json.clone();
    broken["rto_budget_ms"] = serde_json::json!("ten minutes");
    broken.as_object_mut().unwrap().remove("run_id");
    let errors: Vec<String> = validator.iter_errors(&broken).map(|e| e.to_string()).collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
}

/// `drill clean --dry-run` names the work folders of dead runs only: not a live run's
/// (its lock held), not one a run is just making (no lock yet, under a minute old).
#[test]
fn clean_names_only_dead_runs_work_folders() {
    let tmp = tempfile::tempdir().unwrap();
    // Named as runs name them: dead, live, young; and one that is not a run's at all.
    let (dead, live, young) = (
        "drill-20261204T100000Z-dead",
        "drill-20261204T100001Z-11fe",
        "drill-20261204T100002Z-0001",
    );
    for name in [dead, live, young, "drill-mine"] {
        std::fs::create_dir(tmp.path().join(name)).unwrap();
    }
    std::fs::write(tmp.path().join(dead).join("run.lock"), "1").unwrap();
    std::fs::write(tmp.path().join(live).join("run.lock"), "2").unwrap();
    let mut holder = Command::new("python3")
        .args([
            "-c",
            "import fcntl, sys, time; f = open(sys.argv[1]); fcntl.flock(f, fcntl.LOCK_EX); \
             print('held', flush=True); time.sleep(60)",
        ])
        .arg(tmp.path().join(live).join("run.lock"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut held = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(holder.stdout.take().unwrap()), &mut held).unwrap();
    assert_eq!(held.trim(), "held");
    let out = Command::new(env!("CARGO_BIN_EXE_drill"))
        .args(["clean", "--dry-run", "-o", "json"])
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    holder.kill().unwrap();
    holder.wait().unwrap();
    // Docker may be down here (CLI tests run before the test bed starts): that is one
    // failure in the document, and the work folders are judged all the same.
    let err = String::from_utf8_lossy(&out.stderr);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {err}"));
    let dead = tmp.path().join(dead);
    assert_eq!(
        doc["work_folders"],
        serde_json::json!([dead.display().to_string()]),
        "{doc}"
    );
    assert!(dead.exists(), "a dry run removes nothing");
}

/// `drill history` over ten recorded runs: its p50/p95/max equal the nearest-rank
/// percentiles computed here by counting, for the RTO and a phase; `--last` narrows it.
#[test]
fn history_prints_percentiles_that_match_an_independent_count() {
    let reports = tempfile::tempdir().unwrap();
    let folder = reports.path().join("flux-namespace-loss");
    std::fs::create_dir_all(&folder).unwrap();
    // Ten runs, oldest first, with a version-1 line (no phases) among them.
    let rtos: [u64; 10] = [
        61_000, 58_000, 75_000, 60_000, 59_000, 90_000, 62_000, 57_000, 64_000, 70_000,
    ];
    let mut lines = String::new();
    for (i, rto) in rtos.iter().enumerate() {
        let line = if i == 3 {
            serde_json::json!({"run_id": format!("r{i}"), "started_at": null, "result": "pass", "rto_ms": rto})
        } else {
            serde_json::json!({"schema": 2, "run_id": format!("r{i}"), "started_at": null, "result": "pass",
                "rto_ms": rto, "phases": {"reconcile (step 1)": rto - 20_000}})
        };
        lines.push_str(&(line.to_string() + "\n"));
    }
    std::fs::write(folder.join("history.jsonl"), lines).unwrap();
    let dir = reports.path().to_str().unwrap();

    // Nearest rank by counting: the smallest value with at least q% of values at or below.
    let by_count = |values: &[u64], q: f64| {
        let mut v = values.to_vec();
        v.sort();
        *v.iter()
            .find(|x| v.iter().filter(|y| y <= x).count() as f64 >= q / 100.0 * v.len() as f64)
            .unwrap()
    };
    let (code, out, err) = drill(&["history", "--report-dir", dir, "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(doc["scenario"], "flux-namespace-loss");
    assert_eq!(doc["runs"], 10);
    let figure = |name: &str| {
        doc["figures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["figure"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name}: {doc}"))
    };
    let rto = figure("rto");
    assert_eq!(rto["p50_ms"], by_count(&rtos, 50.0));
    assert_eq!(rto["p95_ms"], by_count(&rtos, 95.0));
    assert_eq!(rto["max_ms"], 90_000);
    assert_eq!(rto["last_ms"], 70_000);
    let phases: Vec<u64> = rtos
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3)
        .map(|(_, r)| r - 20_000)
        .collect();
    let reconcile = figure("phase reconcile (step 1)");
    assert_eq!(reconcile["runs"], 9, "the version-1 line has no phases");
    assert_eq!(reconcile["p50_ms"], by_count(&phases, 50.0));
    assert_eq!(reconcile["p95_ms"], by_count(&phases, 95.0));

    let (code, out, _) = drill(&["history", "flux-namespace-loss", "--report-dir", dir, "--last", "3"]);
    assert_eq!(code, 0);
    assert!(out.contains("flux-namespace-loss: the last 3 run(s)"), "{out}");
    assert!(
        !out.contains("1m 30s"),
        "the 90 s run is older than the last three: {out}"
    );

    let (code, _, err) = drill(&["history", "nope", "--report-dir", dir]);
    assert_eq!(code, 2);
    assert!(err.contains("no recorded runs of nope"), "{err}");
}

/// A checkout shaped as `flux bootstrap` leaves one (a stand-in install: validate reads
/// only its controllers' names), and a scenario rehearsing it.
fn bootstrap_repo(dir: &std::path::Path, keep_source_url: bool) -> std::path::PathBuf {
    let flux = dir.join("clusters/prod/flux-system");
    std::fs::create_dir_all(&flux).unwrap();
    std::fs::write(
        flux.join("gotk-components.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: source-controller\nspec:\n  template:\n    spec:\n      containers:\n      - image: ghcr.io/fluxcd/source-controller:v9.9.9\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: kustomize-controller\n",
    )
    .unwrap();
    std::fs::write(
        flux.join("gotk-sync.yaml"),
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: flux-system\n  namespace: flux-system\nspec:\n  ref: {branch: main}\n  secretRef: {name: flux-system}\n  url: ssh://git@github.com/acme/fleet\n---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: flux-system\n  namespace: flux-system\nspec:\n  path: ./clusters/prod\n  sourceRef: {kind: GitRepository, name: flux-system}\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.join(".git")).unwrap();
    std::fs::copy("kind-configs/1node.yaml", dir.join("kind.yaml")).unwrap();
    let scenario = dir.join("rehearsal.yaml");
    std::fs::write(
        &scenario,
        format!(
            "name: bootstrap\ncluster: {{kind: {{config: kind.yaml}}}}\nengine:\n  flux:\n    repo: {{path: .}}\n    path: clusters/prod\n    keep-source-url: {keep_source_url}\ndisasters: [{{delete-cluster: {{}}}}]\nexpect: {{rto: 5m}}\n"
        ),
    )
    .unwrap();
    scenario
}

#[test]
fn a_flux_bootstrap_layout_is_followed_and_a_partial_or_unreachable_one_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = bootstrap_repo(dir.path(), false);
    let (code, out, err) = drill(&["validate", scenario.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("flux bootstrap layout: Flux from the repo's clusters/prod/flux-system/gotk-components.yaml, source ssh://git@github.com/acme/fleet redirected to drill's served copy"),
        "{out}"
    );
    // What a rebuild pulls includes the Flux the repo pins, whatever the profile says.
    let (code, out, err) = drill(&["images", scenario.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines().any(|l| l == "ghcr.io/fluxcd/source-controller:v9.9.9"),
        "{out}"
    );

    // Keeping an ssh URL needs a deploy key: without one, said before any cluster.
    let scenario = bootstrap_repo(dir.path(), true);
    let (code, _, err) = drill(&["validate", scenario.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(
            "flux-system/gotk-sync.yaml: GitRepository flux-system: spec.url \"ssh://git@github.com/acme/fleet\""
        ),
        "{err}"
    );
    assert!(err.contains("gives no engine.flux.repo.ssh-key"), "{err}");
    // With one, the source is kept; a key for a checkout drill serves over HTTP is not.
    let key = dir.path().join("deploy_key");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "drill-test", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(made.success());
    let public = std::fs::read_to_string(dir.path().join("deploy_key.pub")).unwrap();
    std::fs::write(dir.path().join("known_hosts"), format!("github.com {public}")).unwrap();
    let with_key = std::fs::read_to_string(&scenario).unwrap().replace(
        "repo: {path: .}",
        "repo: {path: ., ssh-key: {key-file: deploy_key, known-hosts-file: known_hosts}}",
    );
    std::fs::write(&scenario, &with_key).unwrap();
    let (code, out, err) = drill(&["validate", scenario.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("ssh://git@github.com/acme/fleet"), "{out}");
    // A key with a passphrase cannot be used unattended: named with its file.
    let locked = dir.path().join("locked_key");
    std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "secret", "-f"])
        .arg(&locked)
        .status()
        .unwrap();
    std::fs::write(
        &scenario,
        with_key.replace("key-file: deploy_key", "key-file: locked_key"),
    )
    .unwrap();
    let (code, _, err) = drill(&["validate", scenario.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("locked_key") && err.contains("passphrase"), "{err}");
    std::fs::write(
        &scenario,
        with_key.replace("keep-source-url: true", "keep-source-url: false"),
    )
    .unwrap();
    let (code, _, err) = drill(&["validate", scenario.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("engine.flux.repo.ssh-key: drill serves this checkout to the cluster over HTTP"),
        "{err}"
    );

    // A partial folder names the file that is there and the one missing.
    std::fs::remove_file(dir.path().join("clusters/prod/flux-system/gotk-components.yaml")).unwrap();
    let scenario = bootstrap_repo(dir.path(), false);
    std::fs::remove_file(dir.path().join("clusters/prod/flux-system/gotk-components.yaml")).unwrap();
    let (code, _, err) = drill(&["validate", scenario.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("flux-system/gotk-sync.yaml: a partial flux-system folder: gotk-components.yaml"),
        "{err}"
    );
    let (code, _, err) = drill(&["run", scenario.to_str().unwrap()]);
    assert_eq!(code, 2, "run refuses it before any cluster: {err}");
    assert!(!err.contains("cluster-create"), "{err}");

    // keep-source-url on a fleet drill bootstraps itself is a mistake, said in the scenario.
    let plain = tempfile::tempdir().unwrap();
    let scenario = bootstrap_repo(plain.path(), true);
    std::fs::remove_dir_all(plain.path().join("clusters/prod/flux-system")).unwrap();
    let (code, _, err) = drill(&["validate", scenario.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("rehearsal.yaml: engine.flux.keep-source-url"), "{err}");
}

#[path = "common/release_server.rs"]
mod release_server;
use release_server::ReleaseServer;

#[test]
fn an_engine_version_is_fetched_verified_and_refused_on_a_bad_or_missing_release() {
    let tree = tempfile::tempdir().unwrap();
    let release = tree.path().join("fluxcd/flux2/releases/download/v2.9.5");
    std::fs::create_dir_all(&release).unwrap();
    let manifest = "apiVersion: v1\nkind: Namespace\nmetadata: {name: flux-system}\n";
    std::fs::write(release.join("install.yaml"), manifest).unwrap();
    // The published checksum is wrong: nothing may be installed or cached.
    std::fs::write(
        release.join("flux_2.9.5_checksums.txt"),
        format!("{}  install.yaml\n", "0".repeat(64)),
    )
    .unwrap();
    let server = ReleaseServer::start(tree.path());
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let scenario = shipped_copy(
        dir.path(),
        "flux-namespace-loss.yaml",
        &[("    interval: 1m\n", "    interval: 1m\n    version: v2.9.5\n")],
    );
    let no_profile = dir.path().join("empty.env");
    std::fs::write(&no_profile, "").unwrap();
    let env = [
        ("DRILL_RELEASES_URL", server.url.as_str()),
        ("XDG_CACHE_HOME", cache.path().to_str().unwrap()),
        ("DRILL_PROFILE", no_profile.to_str().unwrap()),
        // Empty is unset: no install manifest but the release's.
        ("DRILL_FLUX_INSTALL", ""),
    ];
    let (code, err) = drill_run_preflight(scenario.to_str().unwrap(), &env);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("releases/download/v2.9.5/install.yaml has SHA-256"),
        "{err}"
    );
    assert!(err.contains("not installed, not cached"), "{err}");
    assert!(
        !cache
            .path()
            .join("gitops-drill/releases/flux/v2.9.5/install.yaml")
            .exists()
    );
    assert!(!err.contains("cluster-create"), "{err}");

    // A version the release server does not have: exit 2, naming the URL.
    let other = tempfile::tempdir().unwrap();
    let missing = shipped_copy(
        other.path(),
        "flux-namespace-loss.yaml",
        &[("    interval: 1m\n", "    interval: 1m\n    version: v2.99.0\n")],
    );
    let (code, err) = drill_run_preflight(missing.to_str().unwrap(), &env);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!(
            "flux v2.99.0: no install manifest at {}/fluxcd/flux2/releases/download/v2.99.0/install.yaml",
            server.url
        )),
        "{err}"
    );
    assert!(err.contains("404"), "{err}");

    // No published checksum and no pin: refused, with the download's digest to check.
    std::fs::remove_file(release.join("flux_2.9.5_checksums.txt")).unwrap();
    let (code, err) = drill_run_preflight(scenario.to_str().unwrap(), &env);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("publishes no checksum of install.yaml; pin one in the scenario (engine.flux.sha256)"),
        "{err}"
    );
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.contains("/fluxcd/flux2/releases/download/")),
        "{:?}",
        server.requests()
    );
}

#[test]
fn a_probe_that_would_leave_its_service_or_repeats_a_name_is_refused_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let escaping = shipped_copy(
        dir.path(),
        "argocd-namespace-loss.yaml",
        &[("path: /readyz", "path: /../../secrets")],
    );
    let (code, _, err) = drill(&["validate", escaping.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    let line = std::fs::read_to_string(&escaping)
        .unwrap()
        .lines()
        .position(|l| l.contains("/../../secrets"))
        .unwrap()
        + 1;
    assert!(
        err.contains(&format!("argocd-namespace-loss.yaml:{line}:")) && err.contains("must not leave the Service"),
        "{err}"
    );
    let twice = shipped_copy(
        dir.path(),
        "flux-namespace-loss.yaml",
        &[(
            "      path: /readyz\n",
            "      path: /readyz\n    - {namespace: users, service: users-api, port: http}\n",
        )],
    );
    let (code, _, err) = drill(&["validate", twice.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("two probes are called \"users-api\""), "{err}");
}

/// A run killed while writing its reports leaves `.<run id>.partial`: `drill clean`
/// removes such folders once ten minutes old, and nothing else of the report folder.
#[test]
fn clean_removes_old_half_written_reports_only() {
    let reports = tempfile::tempdir().unwrap();
    let scenario = reports.path().join("flux-namespace-loss");
    let (old, fresh, other, report) = (
        scenario.join(".20261204T100000Z-abcd.partial"),
        scenario.join(".20261204T100001Z-abce.partial"),
        scenario.join(".not-a-run.partial"),
        scenario.join("20261204T100000Z"),
    );
    for dir in [&old, &fresh, &other, &report] {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("report.json"), "{}").unwrap();
    }
    for dir in [&old, &other, &report] {
        assert!(
            Command::new("touch")
                .args(["-d", "1 hour ago"])
                .arg(dir)
                .status()
                .unwrap()
                .success()
        );
    }
    let clean = |dry: bool| {
        let mut args = vec!["clean", "-o", "json", "--report-dir", reports.path().to_str().unwrap()];
        if dry {
            args.push("--dry-run");
        }
        // No Docker to reach: clusters are one failure in the answer, folders still judged.
        let out = Command::new(env!("CARGO_BIN_EXE_drill"))
            .args(&args)
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .env("TMPDIR", reports.path())
            .output()
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let expected = serde_json::json!([old.display().to_string()]);
    assert_eq!(clean(true)["partial_reports"], expected);
    assert!(old.exists(), "a dry run removes nothing");
    assert_eq!(clean(false)["partial_reports"], expected);
    assert!(!old.exists());
    assert!(fresh.exists() && other.exists() && report.exists());
}

/// `drill images` of a self-managed Argo CD lists the images of the repo's built install
/// folder (its `images:` pin included), not the upstream manifest's.
#[test]
fn images_of_a_self_managed_argocd_come_from_the_built_install_folder() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("fleet/.git")).unwrap();
    std::fs::create_dir_all(d.join("fleet/argocd/install")).unwrap();
    std::fs::create_dir_all(d.join("fleet/argocd/root")).unwrap();
    std::fs::write(
        d.join("fleet/argocd/install/install.yaml"),
        "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: argocd-application-controller}\nspec:\n  template:\n    spec:\n      containers:\n        - {name: c, image: quay.io/argoproj/argocd:v3.2.11}\n",
    )
    .unwrap();
    std::fs::write(
        d.join("fleet/argocd/install/kustomization.yaml"),
        "resources: [install.yaml]\nimages:\n  - {name: quay.io/argoproj/argocd, newTag: v3.2.12}\n",
    )
    .unwrap();
    std::fs::copy("kind-configs/1node.yaml", d.join("kind.yaml")).unwrap();
    let scenario = d.join("s.yaml");
    std::fs::write(
        &scenario,
        "name: s\ncluster: {kind: {config: kind.yaml}}\nengine:\n  argocd:\n    repo: {path: fleet}\n    path: argocd/root\n    install-path: argocd/install\ndisasters: [{delete-cluster: {}}]\nexpect: {rto: 5m}\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_drill"))
        .args(["images", scenario.to_str().unwrap()])
        .env_remove("DRILL_PROFILE")
        .env_remove("DRILL_ARGOCD_INSTALL")
        .env("XDG_CACHE_HOME", d.join("cache"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.lines().any(|l| l == "quay.io/argoproj/argocd:v3.2.12"),
        "{stdout}"
    );
    assert!(!stdout.contains("v3.2.11"), "{stdout}");
}
