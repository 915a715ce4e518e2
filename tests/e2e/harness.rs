//! What the end-to-end tests share: running drill (and disturbing a run), reading what a
//! run reports, and checking that nothing of a run is left.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

pub struct Run {
    pub code: i32,
    pub stderr: String,
    pub report: Value,
    pub dir: PathBuf,
}

impl Run {
    /// Fails the test unless drill passed, saying why in a few lines (a CI log shows a
    /// job's tail: the whole report would push the reason out of it).
    pub fn assert_passed(&self) {
        if self.code != 0 {
            panic!("expected a pass, got exit {}:\n{}", self.code, verdict(&self.report));
        }
    }
}

/// A real report.json holds to the committed schema (docs/report.schema.json).
pub fn assert_holds_to_schema(report: &Value) {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/report.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(report).map(|e| e.to_string()).collect();
    assert!(
        errors.is_empty(),
        "report.json does not hold to its schema: {errors:#?}"
    );
}

/// A real JUnit file holds to Ant's and Jenkins' JUnit XSDs (fetched by the test bed,
/// hack/testbed.d/junit-xsd.sh), as xmllint reads them.
pub fn assert_junit_holds_to_xsds(junit: &Path) {
    let tools = profile().parent().unwrap().join("tools");
    let dir = std::fs::read_dir(&tools)
        .unwrap_or_else(|e| panic!("{}: {e} (./hack/testbed up fetches the JUnit XSDs)", tools.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("junit-xsd-"))
        .expect("the JUnit XSDs in the test bed's tools (./hack/testbed up)");
    for xsd in ["ant.xsd", "jenkins.xsd"] {
        let out = Command::new("xmllint")
            .args(["--noout", "--schema"])
            .arg(dir.join(xsd))
            .arg(junit)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{} does not hold to {xsd}: {}",
            junit.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The failed assertions, the error and every step's figures of a report, one per line.
pub fn verdict(r: &Value) -> String {
    let mut lines = vec![format!("result {} · {}", r["result"], r["error"])];
    for a in r["assertions"].as_array().into_iter().flatten() {
        if a["passed"] == false {
            lines.push(format!("✗ {} — {}", a["name"], a["message"]));
        }
    }
    for s in r["steps"].as_array().into_iter().flatten() {
        lines.push(format!(
            "step {} {}: started {} fetched {} recovered {} degraded {} timed out {}",
            s["step"].as_u64().map_or(0, |n| n + 1),
            s["kind"],
            s["started_ms"],
            s["fetched_ms"],
            s["recovered_ms"],
            s["degraded_ms"],
            s["timed_out"]
        ));
    }
    if let Some(why) = r["stopped_early"].as_str() {
        lines.push(format!("stopped early: {why}"));
    }
    lines.join("\n")
}

pub fn profile() -> PathBuf {
    if let Some(p) = std::env::var_os("DRILL_PROFILE") {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache"));
    cache.join("gitops-drill/testbed/profile.env")
}

pub fn kind_bin_path() -> String {
    let cache = profile().parent().unwrap().join("bin");
    format!("{}:{}", cache.display(), std::env::var("PATH").unwrap_or_default())
}

pub fn drill_run(scenario: &str, extra: &[&str], reports: &Path) -> Run {
    drill_run_env(scenario, extra, &[], reports)
}

/// `drill run SCENARIO --output json` as the tests run it.
pub fn drill_command(scenario: &str, extra: &[&str], env: &[(&str, &str)], reports: &Path) -> Command {
    let profile = profile();
    assert!(
        profile.is_file(),
        "no test bed profile at {}: run ./hack/testbed up",
        profile.display()
    );
    let mut command = Command::new(env!("CARGO_BIN_EXE_drill"));
    command
        .args(["run", scenario, "--output", "json", "--report-dir"])
        .arg(reports)
        .args(extra)
        .env("DRILL_PROFILE", &profile)
        .env("PATH", kind_bin_path())
        // Its stderr is read line by line: no diagnostics in between.
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    command
}

pub fn drill_run_env(scenario: &str, extra: &[&str], env: &[(&str, &str)], reports: &Path) -> Run {
    let out = drill_command(scenario, extra, env, reports).output().unwrap();
    ran(
        out.status,
        &out.stdout,
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// `kubectl --kubeconfig KUBECONFIG ARGS...` with the test bed's kubectl; its stdout,
/// trimmed. Fails the test (with kubectl's stderr) when kubectl fails.
pub fn kubectl(kubeconfig: &str, args: &[&str]) -> String {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .env("PATH", kind_bin_path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Runs `drill run SCENARIO` like [`drill_run`] and, beside it on its own thread,
/// `observer` with the run's kubeconfig path (it exists once drill has made the
/// cluster) and a flag set when drill has ended. Returns the run and what the observer
/// returned: an independent view to judge drill's figures against.
pub fn drill_run_beside<T: Send + 'static>(
    scenario: &str,
    reports: &Path,
    observer: impl FnOnce(PathBuf, std::sync::Arc<std::sync::atomic::AtomicBool>) -> T + Send + 'static,
) -> (Run, T) {
    use std::io::{BufRead as _, Read as _};
    let mut child = drill_command(scenario, &[], &[], reports)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().expect("drill printed nothing").unwrap();
    let run_id = first
        .split_once(" (run ")
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("no run id in {first:?}"))
        .to_string();
    let kubeconfig = std::env::temp_dir().join(format!("drill-{run_id}")).join("kubeconfig");
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watching = {
        let done = done.clone();
        std::thread::spawn(move || observer(kubeconfig, done))
    };
    // Read stderr on its own thread so drill never blocks on a full pipe.
    let stderr = std::thread::spawn(move || {
        std::iter::once(first)
            .chain(lines.map_while(Result::ok))
            .collect::<Vec<_>>()
            .join("\n")
    });
    let mut stdout = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut stdout).unwrap();
    let status = child.wait().unwrap();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = watching.join().expect("the observer panicked");
    (ran(status, &stdout, stderr.join().unwrap()), seen)
}

/// A finished run: its report (held to its schema, its JUnit to the XSDs) and folder.
pub fn ran(status: std::process::ExitStatus, stdout: &[u8], stderr: String) -> Run {
    eprintln!("{stderr}");
    let report: Value = serde_json::from_slice(stdout)
        .unwrap_or_else(|e| panic!("stdout is not a report ({e}): {}", String::from_utf8_lossy(stdout)));
    let dir = stderr
        .lines()
        .find_map(|l| l.strip_prefix("reports: "))
        .map(PathBuf::from)
        .expect("the reports folder is printed");
    assert_holds_to_schema(&report);
    let junit = dir.join("junit.xml");
    if junit.is_file() {
        assert_junit_holds_to_xsds(&junit);
    }
    Run {
        code: status.code().unwrap_or(-1),
        stderr,
        report,
        dir,
    }
}

/// Runs `drill gameday`; the report is read from the folder it prints.
pub fn drill_gameday(scenario: &str, operator: &str, extra: &[&str], reports: &Path) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_drill"))
        .args(["gameday", scenario, "--operator", operator, "--auto", "--report-dir"])
        .arg(reports)
        .args(extra)
        .env("DRILL_PROFILE", profile())
        .env("PATH", kind_bin_path())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    eprintln!("{stderr}");
    let dir = stderr
        .lines()
        .find_map(|l| l.strip_prefix("reports: "))
        .map(PathBuf::from)
        .expect("the reports folder is printed");
    let report = serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stderr,
        report,
        dir,
    }
}

pub fn phases(report: &Value, name: &str) -> Vec<u64> {
    report["phases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == name)
        .map(|p| p["duration_ms"].as_u64().unwrap_or(0))
        .collect()
}

pub fn step(report: &Value, n: usize) -> &Value {
    &report["steps"][n]
}

pub fn assertion<'a>(report: &'a Value, name_part: &str) -> &'a Value {
    report["assertions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"].as_str().unwrap().contains(name_part))
        .unwrap_or_else(|| panic!("no assertion named like {name_part:?}: {}", report["assertions"]))
}

/// The report's entry for one followed object.
pub fn app<'a>(report: &'a Value, kind: &str, name: &str) -> &'a Value {
    report["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == kind && a["name"] == name)
        .unwrap_or_else(|| panic!("{kind}/{name} is not followed: {}", report["apps"]))
}

/// The cluster a `--keep-cluster` run kept, and its kubeconfig, as the run printed them.
pub fn kept_cluster(run: &Run) -> (String, String) {
    let kept = run
        .stderr
        .lines()
        .find_map(|l| l.split("keeping cluster ").nth(1))
        .unwrap_or_else(|| panic!("no kept cluster printed: {}", run.stderr));
    let (name, kubeconfig) = kept.split_once(" (kubeconfig ").unwrap();
    (name.to_string(), kubeconfig.trim_end_matches(')').to_string())
}

/// The wall time of a run's first event of kind `event` (events.jsonl).
pub fn event_at(dir: &Path, event: &str) -> jiff::Timestamp {
    events_at(dir, event)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no {event} event"))
}

/// The wall times of a run's events of kind `event` (events.jsonl), in order.
pub fn events_at(dir: &Path, event: &str) -> Vec<jiff::Timestamp> {
    let text = std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] == event)
        .map(|e| e["at"].as_str().unwrap().parse().unwrap())
        .collect()
}

/// How far drill's time for a Ready may lie after the API server's: the API's transition
/// times have whole seconds (up to 1 s early), and a watch event reaches drill a moment
/// after the write (500 ms allowed for a loaded test machine).
pub const API_SLACK_MS: i64 = 1_500;

/// Every Ready drill recorded after the run's first step began, for objects of `kinds`
/// whose API object states its own transition time: (object, step, drill's time minus
/// the API server's, in ms). Read from events.jsonl, where each event carries the instant
/// its watcher received it and the API's own `lastTransitionTime`.
pub fn ready_times_against_api(dir: &Path, kinds: &[&str]) -> Vec<(String, usize, i64)> {
    let text = std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
    let mut step = None;
    let mut out = Vec::new();
    for e in text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()) {
        if e["event"] == "disaster-started" {
            step = Some(step.map_or(0, |s| s + 1));
        }
        let Some(step) = step else { continue };
        if e["event"] != "object-ready" || !kinds.contains(&e["object"]["kind"].as_str().unwrap()) {
            continue;
        }
        let Some(api) = e["api_transition"].as_str() else {
            continue;
        };
        let api: jiff::Timestamp = api.parse().unwrap();
        let at: jiff::Timestamp = e["at"].as_str().unwrap().parse().unwrap();
        let o = &e["object"];
        out.push((
            format!(
                "{}/{}/{}",
                o["kind"].as_str().unwrap(),
                o["namespace"].as_str().unwrap(),
                o["name"].as_str().unwrap()
            ),
            step,
            at.duration_since(api).as_millis() as i64,
        ));
    }
    out
}

/// Every Ready of `kinds` drill recorded in a step agrees with the API server's own time,
/// and at least `at_least` were compared in each of `steps`.
pub fn assert_ready_times_agree_with_api(dir: &Path, kinds: &[&str], steps: &[usize], at_least: usize) {
    let compared = ready_times_against_api(dir, kinds);
    eprintln!("drill minus the API server's transition time (object, step, ms): {compared:?}");
    for (object, step, diff) in &compared {
        assert!(
            (-500..=API_SLACK_MS).contains(diff),
            "{object} in step {step}: drill's Ready is {diff} ms after the API server's"
        );
    }
    for s in steps {
        let n = compared.iter().filter(|(_, step, _)| step == s).count();
        assert!(
            n >= at_least,
            "step {s}: {n} Ready times compared with the API server's: {compared:?}"
        );
    }
}

/// Nothing of this run's cluster is left: no node container, no pull-through cache.
/// Scoped to the run id, never to the scenario: two tests may rehearse one scenario at
/// once, and a Docker daemon that outlived an earlier, killed suite may still list its
/// stopped containers.
pub fn assert_run_left_nothing(run: &Run) {
    let name = gitops_drill::runner::cluster_name(
        run.report["scenario"].as_str().unwrap(),
        run.report["run_id"].as_str().unwrap(),
    );
    assert_nothing_left_of(&name);
}

/// Nothing of cluster `name` is left: no node container, no pull-through cache.
pub fn assert_nothing_left_of(name: &str) {
    for filter in [
        format!("label=io.x-k8s.kind.cluster={name}"),
        format!("label=io.gitops-drill.mirror-of={name}"),
        format!("name=^{name}-"),
    ] {
        let out = Command::new("docker")
            .args(["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"])
            .output()
            .unwrap();
        let left = String::from_utf8_lossy(&out.stdout);
        assert!(left.trim().is_empty(), "{filter}: left behind: {left}");
    }
}

/// Deletes a kind cluster when dropped, so a failed assertion leaves nothing behind.
/// Fails the test unless Docker runs node container `node` (`after`: what ran before).
pub fn assert_node_running(node: &str, after: &str) {
    let out = Command::new("docker")
        .args(["ps", "--filter", &format!("name=^{node}$"), "--format", "{{.Names}}"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        node,
        "node {node} is still running after {after}"
    );
}

/// `kind delete cluster`, tried three times 5 s apart: a test's own cleanup of what it
/// left on purpose. Docker can refuse once under load (seen: "tried to kill container,
/// but did not receive an exit event" for a node an interrupted `kind delete` was already
/// removing). Returns the last attempt's output.
pub fn kind_delete(cluster: &str) -> std::process::Output {
    let delete = || {
        Command::new("kind")
            .args(["delete", "cluster", "--name", cluster])
            .env("PATH", kind_bin_path())
            .output()
            .unwrap()
    };
    let mut out = delete();
    for _ in 0..2 {
        if out.status.success() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_secs(5));
        out = delete();
    }
    out
}

pub struct KindClusterGuard(pub String);

impl Drop for KindClusterGuard {
    fn drop(&mut self) {
        let _ = Command::new("kind")
            .args(["delete", "cluster", "--name", &self.0])
            .env("PATH", kind_bin_path())
            .output();
    }
}

pub type StderrLines = std::io::Lines<std::io::BufReader<std::process::ChildStderr>>;

/// `drill run SCENARIO` in the background, its progress lines to read (JSON on stdout,
/// unread: a run that ends in an error says it on stderr too), and its report folder.
pub fn spawn_run(scenario: &str) -> (std::process::Child, StderrLines, tempfile::TempDir) {
    use std::io::BufRead as _;
    let reports = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_drill"))
        .args(["run", scenario, "--output", "json", "--report-dir"])
        .arg(reports.path())
        .env("DRILL_PROFILE", profile())
        .env("PATH", kind_bin_path())
        .env("NO_COLOR", "1")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    (child, lines, reports)
}

/// Starts `drill run SCENARIO`, calls `act` with its pid once a progress line satisfies
/// `when`, and returns the exit code, the cluster the run named, and what it printed after.
pub fn disturb_run(
    scenario: &str,
    mut when: impl FnMut(&str) -> bool,
    act: impl FnOnce(u32),
) -> (Option<i32>, String, Vec<String>) {
    let (mut child, mut lines, _reports) = spawn_run(scenario);
    let mut seen = Vec::new();
    let mut cluster = None;
    let mut reached = false;
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push(line.clone());
        // "drill: <scenario> (run <id>)": the cluster's name derives from the run id.
        if let Some((name, id)) = line
            .split_once("drill: ")
            .and_then(|(_, rest)| rest.strip_suffix(')')?.split_once(" (run "))
        {
            cluster = Some(gitops_drill::runner::cluster_name(name, id));
        }
        if when(&line) {
            reached = true;
            break;
        }
    }
    assert!(reached, "the run never got there: {seen:?}");
    act(child.id());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    (status.code(), cluster.expect("the run id is printed first"), rest)
}

/// Starts `drill run SCENARIO`, sends `signal` once a progress line satisfies `when`,
/// and returns the exit code, the cluster the run named, and what it printed after.
pub fn interrupt_run(
    scenario: &str,
    signal: &str,
    when: impl FnMut(&str) -> bool,
) -> (Option<i32>, String, Vec<String>) {
    disturb_run(scenario, when, |pid| {
        Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()
            .unwrap();
    })
}

/// Serves examples/fleet (committed HEAD) on the kind network's gateway, as a remote
/// Git host would: drill's own server, used as a library. Keep all three alive.
pub fn serve_fleet(
    auth: Option<gitops_drill::secrets::RepoAuth>,
) -> (
    gitops_drill::gitserve::GitServer,
    tempfile::TempDir,
    tokio::runtime::Runtime,
) {
    use gitops_drill::gitserve::{GitServer, ServedRepo};
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let work = tempfile::tempdir().unwrap();
    let server = rt.block_on(async {
        let docker = bollard::Docker::connect_with_local_defaults().unwrap();
        let gateway = gitops_drill::cluster::kind::kind_network_gateway(&docker)
            .await
            .unwrap();
        let repo = ServedRepo::prepare(&root.join("examples/fleet"), "HEAD", work.path())
            .await
            .unwrap();
        GitServer::start(repo, std::net::SocketAddr::new(gateway, 0), auth)
            .await
            .unwrap()
    });
    (server, work, rt)
}

/// The run's report.html, opened in headless chromium by the test bed's
/// hack/testbed.d/report-shot.mjs: every section drew something, the timeline has bars,
/// and the page asked no network. Its screenshots land in `shots`.
pub fn assert_report_html_renders(run_dir: &Path, shots: &Path) {
    let tools = profile().parent().unwrap().join("tools");
    let playwright = std::fs::read_dir(&tools)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (./hack/testbed up installs the report viewer)",
                tools.display()
            )
        })
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("playwright-core-"))
        .expect("playwright-core in the test bed's tools (./hack/testbed up)");
    let html = run_dir.join("report.html");
    assert!(html.is_file(), "no report.html in {}", run_dir.display());
    std::fs::create_dir_all(shots).unwrap();
    let out = Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("hack/testbed.d/report-shot.mjs"))
        .arg(&html)
        .arg(shots)
        .env("PLAYWRIGHT_DIR", &playwright)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("report.html in chromium: {text}");
    assert!(out.status.success(), "report.html did not render: {text}");
}
