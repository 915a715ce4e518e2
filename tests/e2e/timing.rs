//! True times while a step is still running: one deleted namespace (`held`, made by the
//! test, not in Git) stays in Terminating because of a finalizer the test removes only
//! after the engine has brought the other deleted namespace's app back. drill's per-object times must be when things
//! happened (checked against the API server's transition times), not when the slow
//! step let the runner read them.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{API_SLACK_MS, KindClusterGuard, assert_run_left_nothing, kind_bin_path, kubectl, spawn_run};

struct Case {
    scenario: &'static str,
    /// The kinds whose API transition time drill reports beside its own.
    engine_kinds: &'static [&'static str],
}

/// The uid of users-api's Deployment and how many replicas are available ("" if none).
fn users_api(kubeconfig: &str) -> Option<(String, String)> {
    let out = Command::new("kubectl")
        .args(["--kubeconfig", kubeconfig, "get", "deploy", "users-api", "-n", "users"])
        .args(["-o", "jsonpath={.metadata.uid} {.status.availableReplicas}"])
        .env("PATH", kind_bin_path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (uid, available) = text.split_once(' ').unwrap_or((text.as_str(), ""));
    (out.status.success() && !uid.is_empty()).then(|| (uid.to_string(), available.trim().to_string()))
}

fn elapsed_of(events: &[Value], event: &str) -> u64 {
    events
        .iter()
        .find(|e| e["event"] == event)
        .and_then(|e| e["elapsed_ms"].as_u64())
        .unwrap_or_else(|| panic!("no {event} event"))
}

fn held_namespace_times_each_object_when_it_happened(case: Case) {
    let (mut child, mut lines, _reports) = spawn_run(case.scenario);
    let first = lines.next().expect("drill printed nothing").unwrap();
    let run_id = first
        .split_once(" (run ")
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("no run id in {first:?}"))
        .to_string();
    // Keep reading drill's progress so it never blocks on a full pipe.
    let reader = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());
    let scenario = case.scenario.trim_start_matches("scenarios/").trim_end_matches(".yaml");
    let cluster = gitops_drill::runner::cluster_name(scenario, &run_id);
    let cleanup = KindClusterGuard(cluster.clone());
    let kubeconfig = std::env::temp_dir()
        .join(format!("drill-{run_id}"))
        .join("kubeconfig")
        .display()
        .to_string();

    // As soon as the cluster answers (long before the initial sync ends and the step
    // begins), make the held namespace with an object that has a finalizer. Then note
    // the first users-api Deployment the engine makes: the old one.
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let made = Command::new("kubectl")
            .args(["--kubeconfig", &kubeconfig, "create", "namespace", "held"])
            .env("PATH", kind_bin_path())
            .output()
            .is_ok_and(|o| o.status.success());
        if made {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "drill ended before the cluster answered"
        );
        assert!(Instant::now() < deadline, "the cluster never answered");
        std::thread::sleep(Duration::from_millis(500));
    }
    kubectl(&kubeconfig, &["create", "configmap", "hold", "-n", "held"]);
    kubectl(
        &kubeconfig,
        &[
            "patch",
            "configmap",
            "hold",
            "-n",
            "held",
            "--type=merge",
            "-p",
            r#"{"metadata":{"finalizers":["gitops-drill.test/hold"]}}"#,
        ],
    );
    let held_at: jiff::Timestamp = kubectl(
        &kubeconfig,
        &[
            "get",
            "configmap",
            "hold",
            "-n",
            "held",
            "-o",
            "jsonpath={.metadata.creationTimestamp}",
        ],
    )
    .parse()
    .unwrap();

    let old_uid = loop {
        if let Some((uid, _)) = users_api(&kubeconfig) {
            break uid;
        }
        assert!(child.try_wait().unwrap().is_none(), "drill ended before the step");
        assert!(Instant::now() < deadline, "the initial sync never made users-api");
        std::thread::sleep(Duration::from_millis(250));
    };

    // Release the finalizer only once the engine has users-api back (a new Deployment,
    // available): drill's step is still waiting for held to go.
    loop {
        if let Some((uid, available)) = users_api(&kubeconfig)
            && uid != old_uid
            && available.parse::<u32>().unwrap_or(0) >= 1
        {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "drill ended before users-api was back"
        );
        assert!(Instant::now() < deadline, "the engine never brought users-api back");
        std::thread::sleep(Duration::from_secs(1));
    }
    let phase = kubectl(&kubeconfig, &["get", "ns", "held", "-o", "jsonpath={.status.phase}"]);
    assert_eq!(phase, "Terminating", "held is still held when users-api is back");
    kubectl(
        &kubeconfig,
        &[
            "patch",
            "configmap",
            "hold",
            "-n",
            "held",
            "--type=merge",
            "-p",
            r#"{"metadata":{"finalizers":null}}"#,
        ],
    );

    let status = child.wait().unwrap();
    let stderr = reader.join().unwrap().join("\n");
    eprintln!("{stderr}");
    assert_eq!(status.code(), Some(0), "expected a pass");
    let dir = stderr
        .lines()
        .find_map(|l| l.strip_prefix("reports: "))
        .map(PathBuf::from)
        .expect("the reports folder is printed");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    let events = gitops_drill::event::parse_jsonl(&std::fs::read_to_string(dir.join("events.jsonl")).unwrap())
        .unwrap()
        .into_iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect::<Vec<_>>();
    let started = elapsed_of(&events, "disaster-started");
    let step_began: jiff::Timestamp = events
        .iter()
        .find(|e| e["event"] == "disaster-started")
        .and_then(|e| e["at"].as_str())
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        held_at.as_second() <= step_began.as_second(),
        "the hold ({held_at}) was in place before the step began ({step_began})"
    );
    let injected = elapsed_of(&events, "disaster-injected");

    let apps = report["apps"].as_array().unwrap();
    let users_api = apps
        .iter()
        .find(|a| a["kind"] == "Deployment" && a["name"] == "users-api")
        .unwrap_or_else(|| panic!("users-api is followed: {apps:?}"));
    let ready = users_api["ready_ms"].as_u64().expect("users-api recovered in the step");
    assert!(
        ready < injected - started,
        "users-api was Ready {ready} ms into the step, before the step ended at {} ms: {users_api}",
        injected - started
    );

    // Every object drill saw recover in the step: its time agrees with the API server's.
    let mut compared = 0;
    for a in apps {
        let (Some(ready), Some(api)) = (a["ready_ms"].as_i64(), a["api_ready_ms"].as_i64()) else {
            continue;
        };
        let kind = a["kind"].as_str().unwrap();
        if kind != "Deployment" && !case.engine_kinds.contains(&kind) {
            continue;
        }
        assert!(
            (-500..=API_SLACK_MS).contains(&(ready - api)),
            "{kind}/{}: drill says {ready} ms, the API server {api} ms into the step",
            a["name"]
        );
        compared += 1;
    }
    assert!(
        compared >= 2,
        "objects compared with the API server: {compared}: {apps:?}"
    );
    drop(cleanup);
    assert_run_left_nothing(&crate::harness::Run {
        code: 0,
        stderr,
        report,
        dir,
    });
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn flux_times_each_object_when_it_recovered_while_a_namespace_is_held() {
    held_namespace_times_each_object_when_it_happened(Case {
        scenario: "scenarios/flux-namespace-held.yaml",
        engine_kinds: &["Kustomization", "HelmRelease"],
    });
}

#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn argocd_times_each_object_when_it_recovered_while_a_namespace_is_held() {
    held_namespace_times_each_object_when_it_happened(Case {
        scenario: "scenarios/argocd-namespace-held.yaml",
        // An Application's API time is when its last sync finished, not when it turned
        // Healthy: only its Deployments are compared.
        engine_kinds: &[],
    });
}
