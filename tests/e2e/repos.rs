//! Teams' own repos and CI as they are: a fleet made by `flux bootstrap`, rehearsed with
//! the Flux version it pins and the root sync it commits; an engine named by version; and
//! the commands of the CI recipes in examples/ci, run as a CI job would run them.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

#[path = "../common/release_server.rs"]
mod release_server;
use release_server::ReleaseServer;

use crate::harness::{
    API_SLACK_MS, KindClusterGuard, assert_report_html_renders, drill_run_env, kept_cluster, kind_bin_path, profile,
    ready_times_against_api,
};

pub(crate) fn kubectl_json(kubeconfig: &str, args: &[&str]) -> Value {
    let args: Vec<&str> = args.iter().copied().chain(["-o", "json"]).collect();
    serde_json::from_str(&crate::harness::kubectl(kubeconfig, &args)).unwrap()
}

/// The test bed profile without its Flux install: a run can only take the repo's.
pub(crate) fn profile_without_flux_install(dir: &Path) -> (std::path::PathBuf, String) {
    let text = std::fs::read_to_string(profile()).unwrap();
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix("DRILL_FLUX_VERSION="))
        .expect("the test bed profile names its Flux version")
        .trim_matches('"')
        .to_string();
    let kept: Vec<&str> = text.lines().filter(|l| !l.starts_with("DRILL_FLUX_INSTALL=")).collect();
    let path = dir.join("profile.env");
    std::fs::write(&path, kept.join("\n") + "\n").unwrap();
    (path, version)
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn a_flux_bootstrap_repo_is_rebuilt_with_its_own_flux_from_drills_served_copy() {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("fleet-infra");
    let made = Command::new("hack/flux-bootstrap-example")
        .arg(&repo)
        .env("DRILL_PROFILE", profile())
        .env("PATH", kind_bin_path())
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let (bare_profile, flux_version) = profile_without_flux_install(work.path());
    let reports = tempfile::tempdir().unwrap();
    let scenario = repo.join("drill/rehearsal.yaml");
    let run = drill_run_env(
        scenario.to_str().unwrap(),
        &["--keep-cluster"],
        &[("DRILL_PROFILE", bare_profile.to_str().unwrap())],
        reports.path(),
    );
    let (name, kubeconfig) = kept_cluster(&run);
    let _cleanup = KindClusterGuard(name);
    run.assert_passed();

    // The report says where Flux and the desired state came from.
    let v = &run.report["versions"];
    assert_eq!(v["engine"], format!("flux {flux_version}"), "{v}");
    assert_eq!(
        v["engine_from"], "the repo's clusters/staging/flux-system/gotk-components.yaml",
        "{v}"
    );
    assert!(
        v["source"]
            .as_str()
            .unwrap()
            .contains("(gotk-sync.yaml's ssh://git@github.com/example-org/fleet-infra redirected to it)"),
        "{v}"
    );
    assert_eq!(
        run.report["recoveries"].as_array().unwrap().len(),
        2,
        "namespace loss, then cluster loss"
    );

    // The API server's own view of the rebuilt cluster: Flux from the repo's file, its
    // root source on drill's served copy (kept there by Flux itself re-applying the
    // served gotk-sync.yaml), every Kustomization Ready at that revision, and the
    // staging overlay's two replicas serving.
    let controllers = kubectl_json(&kubeconfig, &["-n", "flux-system", "get", "deploy"]);
    for d in controllers["items"].as_array().unwrap() {
        assert_eq!(
            d["metadata"]["labels"]["app.kubernetes.io/version"],
            flux_version.as_str(),
            "{}",
            d["metadata"]
        );
    }
    let source = kubectl_json(
        &kubeconfig,
        &["-n", "flux-system", "get", "gitrepository", "flux-system"],
    );
    let url = source["spec"]["url"].as_str().unwrap();
    assert!(url.starts_with("http://") && url.ends_with("/fleet-infra.git"), "{url}");
    // No repo.credentials: drill's server asks the run's own, restored as that Secret.
    assert_eq!(source["spec"]["secretRef"]["name"], "flux-system", "{}", source["spec"]);
    let secret = kubectl_json(&kubeconfig, &["-n", "flux-system", "get", "secret", "flux-system"]);
    assert_eq!(
        secret["data"]["username"], "ZHJpbGw=",
        "user drill, the per-run credential"
    );
    let revision = source["status"]["artifact"]["revision"].as_str().unwrap().to_string();
    let kustomizations = kubectl_json(&kubeconfig, &["-n", "flux-system", "get", "kustomizations"]);
    let items = kustomizations["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "flux-system, infra-configs, apps");
    for k in items {
        assert_eq!(
            k["status"]["lastAppliedRevision"],
            revision.as_str(),
            "{}",
            k["metadata"]["name"]
        );
        let ready = k["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap();
        assert_eq!(ready["status"], "True", "{}: {ready}", k["metadata"]["name"]);
    }
    let guestbook = kubectl_json(&kubeconfig, &["-n", "guestbook", "get", "deploy", "guestbook"]);
    assert_eq!(guestbook["status"]["readyReplicas"], 2, "{}", guestbook["status"]);
    // The served revision is the commit drill made on top of the checkout, not the checkout's.
    let head = Command::new("git")
        .args(["-C"])
        .arg(&repo)
        .args(["rev-parse", "HEAD"])
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
    assert!(
        revision.starts_with("main@sha1:") && !revision.ends_with(&head),
        "{revision} vs checkout {head}"
    );

    // Every Ready drill saw happen agrees with the API server's own time. Not Flux's
    // controllers in the rebuild: they turn Available inside engine-install, before drill
    // watches the new cluster, so drill's time for them is its first sight (report.json
    // keeps the API's time beside it, `api_ready_ms`).
    let compared = ready_times_against_api(&run.dir, &["Deployment", "Kustomization"]);
    eprintln!("drill minus the API server's transition time (object, step, ms): {compared:?}");
    let watched: Vec<_> = compared
        .iter()
        .filter(|(object, step, _)| !(*step == 1 && object.starts_with("Deployment/flux-system/")))
        .collect();
    for (object, step, diff) in &watched {
        assert!(
            (-500..=API_SLACK_MS).contains(diff),
            "{object} in step {step}: drill's Ready is {diff} ms after the API's"
        );
    }
    for s in [0, 1] {
        let seen: Vec<&str> = watched
            .iter()
            .filter(|(_, step, _)| *step == s)
            .map(|(o, _, _)| o.as_str())
            .collect();
        assert!(
            seen.contains(&"Deployment/guestbook/guestbook") && seen.contains(&"Kustomization/flux-system/apps"),
            "step {s}: {seen:?}"
        );
    }
}

/// A scenario naming its Flux version, run with no install manifest in the profile:
/// Flux comes from the release server (a release-shaped tree on loopback holding the test
/// bed's install and its checksum), once; the second run (on the first one's cluster,
/// `--reuse-cluster`) takes it from the cache and sends no request at all (the server is
/// gone by then).
#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn an_engine_version_in_the_scenario_is_installed_from_its_release_then_from_the_cache() {
    let work = tempfile::tempdir().unwrap();
    let (bare_profile, version) = profile_without_flux_install(work.path());
    let profile_text = std::fs::read_to_string(profile()).unwrap();
    let install = profile_text
        .lines()
        .find_map(|l| l.strip_prefix("DRILL_FLUX_INSTALL="))
        .unwrap()
        .trim_matches('"');
    let bytes = std::fs::read(install).unwrap();
    let tree = work.path().join("releases");
    let dir = tree.join(format!("fluxcd/flux2/releases/download/{version}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("install.yaml"), &bytes).unwrap();
    let digest = gitops_drill::engine::release::sha256_hex(&bytes);
    std::fs::write(
        dir.join(format!("flux_{}_checksums.txt", version.trim_start_matches('v'))),
        format!("{}  flux_linux_amd64.tar.gz\n{digest}  install.yaml\n", "1".repeat(64)),
    )
    .unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scenario = work.path().join("flux-bootstrap.yaml");
    let text = std::fs::read_to_string(root.join("scenarios/flux-bootstrap.yaml"))
        .unwrap()
        .replace(
            "    interval: 1m\n",
            &format!("    interval: 1m\n    version: {version}\n"),
        )
        .replace("../", &format!("{}/", root.display()));
    assert!(text.contains("version: v"), "{text}");
    std::fs::write(&scenario, text).unwrap();
    let cache = work.path().join("cache");
    let server = ReleaseServer::start(&tree);
    let url = server.url.clone();
    let env = [
        ("DRILL_PROFILE", bare_profile.to_str().unwrap()),
        ("DRILL_RELEASES_URL", url.as_str()),
        ("XDG_CACHE_HOME", cache.to_str().unwrap()),
    ];
    let reports = tempfile::tempdir().unwrap();
    let first = drill_run_env(scenario.to_str().unwrap(), &["--keep-cluster"], &env, reports.path());
    let (cluster, _) = kept_cluster(&first);
    let guard = KindClusterGuard(cluster.clone());
    first.assert_passed();
    let asked = server.requests();
    assert_eq!(asked.len(), 2, "the manifest and its checksums, once: {asked:?}");
    let cached = cache.join(format!("gitops-drill/releases/flux/{version}/install.yaml"));
    assert_eq!(std::fs::read(&cached).unwrap(), bytes);
    let v = &first.report["versions"];
    assert_eq!(v["engine"], format!("flux {version}"), "{v}");
    assert!(
        v["engine_from"].as_str().unwrap().starts_with(&format!(
            "the flux {version} release (SHA-256 verified, cached at {}",
            cached.display()
        )),
        "{v}"
    );

    drop(server);
    // The second run takes up the first's cluster: installing the engine from the cache
    // is the subject, not making a cluster again.
    let second = drill_run_env(
        scenario.to_str().unwrap(),
        &["--reuse-cluster", &cluster],
        &env,
        reports.path(),
    );
    second.assert_passed();
    assert!(
        second.report["versions"]["reused_cluster"]
            .as_str()
            .is_some_and(|c| c.starts_with(&cluster)),
        "{}",
        second.report["versions"]
    );
    assert_eq!(
        second.report["versions"]["engine_from"],
        first.report["versions"]["engine_from"]
    );
    drop(guard);
    crate::harness::assert_nothing_left_of(&cluster);
}

/// The lines between a recipe's `# >>> drill commands` and `# <<< drill commands`
/// markers, without their indentation.
fn recipe_commands(file: &str) -> String {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.contains("# >>> drill commands"))
        .skip(1)
        .take_while(|l| !l.contains("# <<< drill commands"))
        .map(str::trim)
        .collect();
    assert!(!lines.is_empty(), "{file} has no drill commands block");
    lines.join("\n") + "\n"
}

/// Runs a recipe's commands with bash in `dir`, as the CI job's shell would, with drill
/// and the test bed's tools on PATH.
fn run_recipe(commands: &str, dir: &Path, scenario: &Path) -> (i32, String) {
    let drill_dir = Path::new(env!("CARGO_BIN_EXE_drill"))
        .parent()
        .unwrap()
        .display()
        .to_string();
    let out = Command::new("bash")
        .args(["-c", commands])
        .current_dir(dir)
        .env("DRILL_PROFILE", profile())
        .env("PATH", format!("{drill_dir}:{}", kind_bin_path()))
        .env("DRILL_SCENARIO", scenario)
        .env("DRILL_REPORTS", "reports")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{all}");
    (out.status.code().unwrap_or(-1), all)
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn the_ci_recipes_commands_rehearse_on_the_test_bed_and_fail_the_job_on_a_bad_scenario() {
    let commands = recipe_commands("examples/ci/github-actions.yaml");
    assert_eq!(
        commands,
        recipe_commands("examples/ci/gitlab-ci.yml"),
        "both recipes run the same commands"
    );
    assert!(commands.contains("drill run \"$DRILL_SCENARIO\""), "{commands}");

    // A broken scenario fails the job with exit 2, before any cluster exists.
    let job = tempfile::tempdir().unwrap();
    let bad = job.path().join("bad.yaml");
    std::fs::write(&bad, "name: bad\nclusterr: {}\n").unwrap();
    let (code, output) = run_recipe(&commands, job.path(), &bad);
    assert_eq!(code, 2, "{output}");
    assert!(output.contains("bad.yaml"), "{output}");
    assert!(
        !job.path().join("reports").exists(),
        "nothing rehearsed, nothing reported"
    );

    // The nightly rebuild passes, and leaves what the recipes keep and publish.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (code, output) = run_recipe(&commands, job.path(), &root.join("scenarios/flux-bootstrap.yaml"));
    assert_eq!(code, 0, "{output}");
    let junit = std::fs::read_to_string(job.path().join("reports/junit.xml")).unwrap();
    assert!(
        junit.contains("<testsuite") && junit.contains("failures=\"0\""),
        "{junit}"
    );
    let runs: Vec<_> = std::fs::read_dir(job.path().join("reports/flux-bootstrap"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().join("summary.md").is_file())
        .collect();
    assert_eq!(runs.len(), 1, "one run folder with its summary.md for the job summary");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(runs[0].path().join("report.json")).unwrap()).unwrap();
    assert_eq!(report["result"], "pass");
    assert_report_html_renders(&runs[0].path(), &job.path().join("shots"));
}

/// A nightly job's `--repeat 2 --junit PATH`: two rebuilds one after the other, one JSON
/// line each, two history lines, one JUnit file for both (unique case names, holding to
/// Ant's and Jenkins' XSDs), and the second run's summary.md and report.html show the
/// rebuild's trend over both.
#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn repeated_runs_each_report_share_one_junit_file_and_show_their_trend() {
    let reports = tempfile::tempdir().unwrap();
    let junit = reports.path().join("ci/junit.xml");
    let out = Command::new(env!("CARGO_BIN_EXE_drill"))
        .args([
            "run",
            "scenarios/flux-rebuild-wide.yaml",
            "--repeat",
            "2",
            "-o",
            "json",
            "--junit",
        ])
        .arg(&junit)
        .arg("--report-dir")
        .arg(reports.path())
        .env("DRILL_PROFILE", profile())
        .env("PATH", kind_bin_path())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let runs: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(runs.len(), 2, "one JSON line per run");
    assert_ne!(runs[0]["run_id"], runs[1]["run_id"]);
    for r in &runs {
        crate::harness::assert_holds_to_schema(r);
        assert_eq!(r["result"], "pass", "{}", crate::harness::verdict(r));
    }
    let history = std::fs::read_to_string(reports.path().join("flux-rebuild-wide/history.jsonl")).unwrap();
    assert_eq!(history.lines().count(), 2, "{history}");

    crate::harness::assert_junit_holds_to_xsds(&junit);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testsuite ").count(), 2, "{xml}");
    for r in &runs {
        assert!(
            xml.contains(r["run_id"].as_str().unwrap()),
            "each run's cases carry its id: {xml}"
        );
    }

    let dirs: Vec<&str> = stderr.lines().filter_map(|l| l.strip_prefix("reports: ")).collect();
    assert_eq!(dirs.len(), 2, "{stderr}");
    let second = Path::new(dirs[1]);
    let summary = std::fs::read_to_string(second.join("summary.md")).unwrap();
    let first_ms = runs[0]["rebuild_ms"].as_u64().unwrap();
    let second_ms = runs[1]["rebuild_ms"].as_u64().unwrap();
    let (lo, hi) = (first_ms.min(second_ms), first_ms.max(second_ms));
    let line = format!(
        "Rebuild over the last 2 runs: {} ({} … {}, this run last)",
        gitops_drill::report::trend::sparkline(&[first_ms, second_ms]),
        gitops_drill::human::ms(lo),
        gitops_drill::human::ms(hi)
    );
    assert!(summary.contains(&line), "{line:?} in:\n{summary}");
    let html = std::fs::read_to_string(second.join("report.html")).unwrap();
    assert!(html.contains("<svg class=\"trend\""), "the trend in report.html");
    let first = std::fs::read_to_string(Path::new(dirs[0]).join("summary.md")).unwrap();
    assert!(!first.contains("over the last"), "one run is no trend:\n{first}");
}

/// `engine.flux.keep-source-url`: a `flux bootstrap` repo whose gotk-sync.yaml names its
/// Git host (here a server of the test's on the kind network, asking basic auth, as a
/// private host does), rehearsed as it is: drill pins the host's commit, restores the
/// credentials as the `flux-system` Secret gotk-sync.yaml names, and the cluster syncs
/// from that URL, never from a copy of drill's. Judged by the API server's GitRepository.
#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn a_flux_bootstrap_repo_keeping_its_source_url_syncs_from_its_own_git_host() {
    use gitops_drill::gitserve::{GitServer, ServedRepo};
    use gitops_drill::secrets::RepoAuth;
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("fleet-infra");
    let made = Command::new("hack/flux-bootstrap-example")
        .arg(&repo)
        .env("DRILL_PROFILE", profile())
        .env("PATH", kind_bin_path())
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));

    // The host's address first (a port free now on the kind network's gateway), so the
    // committed gotk-sync.yaml can name it; then serve that commit there.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let gateway = rt.block_on(async {
        let docker = bollard::Docker::connect_with_local_defaults().unwrap();
        gitops_drill::cluster::kind::kind_network_gateway(&docker)
            .await
            .unwrap()
    });
    let port = std::net::TcpListener::bind((gateway, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://{gateway}:{port}/fleet-infra.git");
    let sync = repo.join("clusters/staging/flux-system/gotk-sync.yaml");
    let text = std::fs::read_to_string(&sync).unwrap();
    std::fs::write(
        &sync,
        text.replace("ssh://git@github.com/example-org/fleet-infra", &url),
    )
    .unwrap();
    let scenario = repo.join("drill/keep.yaml");
    let rehearsal = std::fs::read_to_string(repo.join("drill/rehearsal.yaml")).unwrap();
    let keep = rehearsal
        .replace("name: flux-bootstrap-repo", "name: flux-bootstrap-keep-url")
        .replace(
            "      path: ..\n",
            "      path: ..\n      credentials: {username-env: DRILL_REPO_USER, password-env: DRILL_REPO_TOKEN}\n",
        )
        .replace(
            "    path: clusters/staging\n",
            "    path: clusters/staging\n    keep-source-url: true\n",
        )
        .replace("  - delete-cluster: {}\n", "");
    assert!(
        keep.contains("keep-source-url: true") && keep.contains("credentials"),
        "{keep}"
    );
    std::fs::write(&scenario, keep).unwrap();
    for args in [
        &["add", "--all"][..],
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "--quiet",
            "-m",
            "host",
        ],
    ] {
        assert!(
            Command::new("git")
                .current_dir(&repo)
                .args(args)
                .status()
                .unwrap()
                .success()
        );
    }
    let token = format!("keep-{}", std::process::id());
    let auth = RepoAuth {
        username: "git".into(),
        password: token.clone(),
        origin: "the test".into(),
    };
    let server = rt.block_on(async {
        let served = ServedRepo::prepare(&repo, "HEAD", &work.path().join("host"))
            .await
            .unwrap();
        GitServer::start(served, std::net::SocketAddr::new(gateway, port), Some(auth))
            .await
            .unwrap()
    });
    assert_eq!(server.url(), url, "the host serves where gotk-sync.yaml points");

    let (bare_profile, _) = profile_without_flux_install(work.path());
    let reports = tempfile::tempdir().unwrap();
    let env = [
        ("DRILL_PROFILE", bare_profile.to_str().unwrap()),
        ("DRILL_REPO_USER", "git"),
        ("DRILL_REPO_TOKEN", token.as_str()),
    ];
    let run = drill_run_env(scenario.to_str().unwrap(), &["--keep-cluster"], &env, reports.path());
    let (name, kubeconfig) = kept_cluster(&run);
    let _cleanup = KindClusterGuard(name);
    run.assert_passed();
    let source_line = run.report["versions"]["source"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        source_line.contains(&url) && source_line.contains("kept"),
        "{source_line}"
    );
    assert!(
        !run.stderr.contains("Git server http://"),
        "drill served nothing: {}",
        run.stderr
    );

    let source = kubectl_json(
        &kubeconfig,
        &["-n", "flux-system", "get", "gitrepository", "flux-system"],
    );
    assert_eq!(source["spec"]["url"], url.as_str(), "{}", source["spec"]);
    assert_eq!(source["spec"]["secretRef"]["name"], "flux-system", "{}", source["spec"]);
    let revision = source["status"]["artifact"]["revision"].as_str().unwrap();
    assert!(
        revision.ends_with(&server.repo.served_commit),
        "{revision} is the host's commit"
    );
    assert!(!run.stderr.contains(&token), "the token never shows");
    drop(server);
}
