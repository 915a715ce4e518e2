//! Secrets restored into a rebuilt cluster (a SOPS age key, a sealed-secrets key, repo
//! credentials), what a rebuild without them reports, and that no output leaks them.

use std::path::Path;

use crate::harness::{Run, app, assert_run_left_nothing, assertion, drill_run, drill_run_env, phases, serve_fleet};

/// Every output of a run (stderr, report.json and every file in the run's folder), by name.
fn outputs_of(run: &Run) -> Vec<(String, String)> {
    let mut outputs = vec![
        ("stderr".to_string(), run.stderr.clone()),
        ("stdout".into(), run.report.to_string()),
    ];
    // Every file of the report folder, evidence/ and its logs included.
    let mut folders = vec![run.dir.clone()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else {
                outputs.push((path.display().to_string(), std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    outputs
}

/// No needle (key bytes, decrypted values) in any output of the run.
fn assert_no_leaks(run: &Run, needles: &[String]) {
    for (name, text) in outputs_of(run) {
        for needle in needles {
            assert!(!text.contains(needle.as_str()), "{name} leaks secret material");
        }
    }
}

/// Pieces of the sealed-secrets demo key backup and the value it unseals: none may leak.
fn sealed_secret_needles() -> Vec<String> {
    let backup = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/keys/sealed-secrets-key.yaml"
    ))
    .unwrap();
    let key = backup.lines().find_map(|l| l.trim().strip_prefix("tls.key: ")).unwrap();
    vec![
        key[..48].to_string(),
        key[200..248].to_string(),
        "sealed-demo-password-7f3a".into(),
        // The same value as the Secret holds it (base64), which a check compares.
        "c2VhbGVkLWRlbW8tcGFzc3dvcmQtN2YzYQ==".into(),
    ]
}

/// A repo token made for one test run, and what it looks like in every form it could
/// leak in (as is, and inside a basic-auth header).
fn repo_token(test: &str) -> (String, Vec<String>) {
    use base64::Engine as _;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let token = format!("drill-e2e-{test}-{nanos:x}");
    let header = base64::engine::general_purpose::STANDARD.encode(format!("drill:{token}"));
    let needles = vec![token.clone(), header, token[token.len() - 10..].to_string()];
    (token, needles)
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn sops_key_is_restored_in_secret_bootstrap_and_never_leaks() {
    let reports = tempfile::tempdir().unwrap();
    let run = drill_run("scenarios/flux-cluster-loss-sops.yaml", &[], reports.path());
    run.assert_passed();
    let r = &run.report;
    assert_eq!(phases(r, "secret-bootstrap").len(), 2, "restored in both builds");
    assert_eq!(assertion(r, "Secret users/users-db-credentials")["passed"], true);
    let secrets_app = app(r, "Kustomization", "users-secrets");
    assert_eq!(secrets_app["ready"], true, "Flux decrypted it: {secrets_app}");

    // No byte of the key, nor the value it decrypts, in any output.
    let key = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/keys/demo.agekey")).unwrap();
    let identity = key
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .unwrap()
        .to_string();
    let needles = [
        identity.clone(),
        identity[16..48].to_string(),
        "drill-demo-password-5b9e1c".to_string(),
    ];
    assert_no_leaks(&run, &needles);
    assert_run_left_nothing(&run);
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn sealed_secrets_key_is_restored_before_the_controller_starts_and_never_leaks() {
    let reports = tempfile::tempdir().unwrap();
    let run = drill_run("scenarios/sealed-secrets-key-restore.yaml", &[], reports.path());
    run.assert_passed();
    let r = &run.report;
    assert_eq!(phases(r, "secret-bootstrap").len(), 2, "restored in both builds");
    assert_eq!(assertion(r, "Secret users/users-db-password")["passed"], true);
    let value = assertion(r, "Secret users/users-db-password /data/password == <redacted>");
    assert_eq!(value["passed"], true, "{value}");
    let sealed = app(r, "SealedSecret", "users-db-password");
    assert_eq!(
        sealed["ready"], true,
        "the controller unsealed it with the restored key: {sealed}"
    );
    assert_no_leaks(&run, &sealed_secret_needles());
    assert_run_left_nothing(&run);
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn a_rebuild_without_the_sealed_secrets_key_fails_and_names_the_sealed_secret() {
    let reports = tempfile::tempdir().unwrap();
    let run = drill_run("scenarios/sealed-secrets-key-lost.yaml", &[], reports.path());
    assert_eq!(run.code, 1, "expected an assertion failure: {}", run.report);
    let r = &run.report;
    // Both builds restore the served repo's per-run credential; that the sealed-secrets
    // key was not restored in the second is what the SealedSecret says below.
    assert_eq!(
        phases(r, "secret-bootstrap").len(),
        2,
        "a secret-bootstrap in each build"
    );
    let sealed = app(r, "SealedSecret", "users-db-password");
    assert_eq!(sealed["ready"], false, "{sealed}");
    assert!(
        sealed["not_ready_message"]
            .as_str()
            .unwrap_or_default()
            .contains("no key could decrypt secret"),
        "{sealed}"
    );
    let recovered = assertion(r, "recovered within RTO");
    assert_eq!(recovered["passed"], false);
    let message = recovered["message"].as_str().unwrap();
    assert!(message.contains("SealedSecret/users/users-db-password"), "{message}");
    assert!(message.contains("no key could decrypt secret"), "{message}");
    // Settled once the controller has said so for a minute: not the 4-minute wait.
    let stopped = r["stopped_early"].as_str().unwrap_or_default();
    assert!(
        stopped.contains("SealedSecret/users/users-db-password has said \"no key could decrypt secret\""),
        "{stopped}"
    );
    assert!(
        run.stderr.contains("the rebuild goes without secrets.sealed-secrets"),
        "{}",
        run.stderr
    );
    assert_no_leaks(&run, &sealed_secret_needles());
    assert_run_left_nothing(&run);
}

/// Repo credentials restored into both builds, as one engine takes them.
struct RepoCredentialsCase {
    /// Names the test's own token.
    token_for: &'static str,
    args: &'static [&'static str],
    /// The object that fetches from the repo with the restored token (kind, name).
    fetcher: (&'static str, &'static str),
    /// What its readiness proves, before the object in the assertion's message.
    ready_because: &'static str,
}

/// scenarios/repo-credentials-restore.yaml, run by `rehearse` with the case's arguments
/// and the test's own token in the environment; returns the run.
fn repo_credentials_are_restored_and_never_leak(
    case: &RepoCredentialsCase,
    rehearse: impl FnOnce(&[&str], &[(&str, &str)]) -> Run,
) -> Run {
    let (token, needles) = repo_token(case.token_for);
    let env = [("DRILL_REPO_USER", "drill"), ("DRILL_REPO_TOKEN", token.as_str())];
    let run = rehearse(case.args, &env);
    run.assert_passed();
    let r = &run.report;
    assert_eq!(phases(r, "secret-bootstrap").len(), 2, "restored in both builds");
    let (kind, name) = case.fetcher;
    let fetcher = app(r, kind, name);
    assert_eq!(fetcher["ready"], true, "{}{fetcher}", case.ready_because);
    assert_no_leaks(&run, &needles);
    run
}

/// Flux takes them as its source's Secret.
#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn flux_repo_credentials_are_restored_and_never_leak() {
    let case = RepoCredentialsCase {
        token_for: "flux",
        args: &[],
        fetcher: ("GitRepository", "flux-system"),
        ready_because: "Flux fetched with the restored token: ",
    };
    let reports = tempfile::tempdir().unwrap();
    let run = repo_credentials_are_restored_and_never_leak(&case, |args, env| {
        drill_run_env("scenarios/repo-credentials-restore.yaml", args, env, reports.path())
    });
    assert_run_left_nothing(&run);
}

/// Argo CD takes them as its repository secret: the root Application syncs with them.
/// Run by `reuse::argocd_rollback_seed_replay_break_glass_prune_cluster_loss_and_repo_credentials_take_turns_on_one_cluster`.
pub fn argocd_repo_credentials_are_restored_and_never_leak(rehearse: impl FnOnce(&[&str], &[(&str, &str)]) -> Run) {
    let case = RepoCredentialsCase {
        token_for: "argocd",
        args: &["--engine", "argocd"],
        fetcher: ("Application", "root"),
        ready_because: "",
    };
    repo_credentials_are_restored_and_never_leak(&case, rehearse);
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn a_rebuild_without_the_repo_credentials_fails_at_the_source_and_names_it() {
    let reports = tempfile::tempdir().unwrap();
    let (token, needles) = repo_token("lost");
    let env = [("DRILL_REPO_USER", "drill"), ("DRILL_REPO_TOKEN", token.as_str())];
    let run = drill_run_env("scenarios/repo-credentials-lost.yaml", &[], &env, reports.path());
    assert_eq!(run.code, 1, "expected an assertion failure: {}", run.report);
    let r = &run.report;
    assert_eq!(
        phases(r, "secret-bootstrap").len(),
        1,
        "restored in the first build only"
    );
    let source = app(r, "GitRepository", "flux-system");
    assert_eq!(source["ready"], false, "{source}");
    let why = source["not_ready_message"].as_str().unwrap_or_default();
    assert!(
        why.contains("flux-system"),
        "the source names its missing secret: {source}"
    );
    let recovered = assertion(r, "recovered within RTO");
    assert_eq!(recovered["passed"], false);
    let message = recovered["message"].as_str().unwrap();
    assert!(
        message.contains("source failing: GitRepository/flux-system/flux-system"),
        "the source is the finding, not the apps behind it: {message}"
    );
    assert!(
        run.stderr.contains("the rebuild goes without repo.credentials"),
        "{}",
        run.stderr
    );
    assert_no_leaks(&run, &needles);
    assert_run_left_nothing(&run);
}

/// A `url:` repo: drill does not serve it, the cluster fetches it with the restored
/// credentials. The "remote" is a Git server this test starts on the kind network
/// (drill's own, as a library), the only address the cluster may reach.
#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn a_url_repo_is_fetched_with_the_restored_credentials_and_a_wrong_token_stops_at_preflight() {
    use gitops_drill::secrets::RepoAuth;

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (token, needles) = repo_token("url");
    let auth = RepoAuth {
        username: "drill".into(),
        password: token.clone(),
        origin: "the test".into(),
    };
    let (server, work, _rt) = serve_fleet(Some(auth));
    let scenario = work.path().join("url-repo.yaml");
    std::fs::write(
        &scenario,
        format!(
            "name: url-repo-namespace-loss
cluster:
  kind:
    config: {kind}
engine:
  flux:
    repo:
      url: {url}
      ref: main
      credentials: {{username-env: DRILL_REPO_USER, password-env: DRILL_REPO_TOKEN}}
    path: clusters/demo
    interval: 1m
disasters:
  - delete-namespace: {{namespaces: [users]}}
expect:
  rto: 5m
",
            kind = root.join("kind-configs/1node.yaml").display(),
            url = server.url()
        ),
    )
    .unwrap();
    let scenario = scenario.to_str().unwrap();

    let reports = tempfile::tempdir().unwrap();
    let wrong = [("DRILL_REPO_USER", "drill"), ("DRILL_REPO_TOKEN", "not-the-token")];
    let refused = drill_run_env(scenario, &[], &wrong, reports.path());
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("repo.url: cannot read"), "{}", refused.stderr);
    assert!(
        !refused.stderr.contains("cluster-create"),
        "nothing was created: {}",
        refused.stderr
    );

    let env = [("DRILL_REPO_USER", "drill"), ("DRILL_REPO_TOKEN", token.as_str())];
    let run = drill_run_env(scenario, &[], &env, reports.path());
    run.assert_passed();
    assert!(
        run.stderr
            .contains(&format!("branch main at {}", &server.repo.served_commit[..12])),
        "the run pins the remote's commit: {}",
        run.stderr
    );
    assert_eq!(phases(&run.report, "secret-bootstrap").len(), 1);
    assert_eq!(app(&run.report, "GitRepository", "flux-system")["ready"], true);
    assert_no_leaks(&run, &needles);
    drop(server);
    assert_run_left_nothing(&run);
}
