//! Stateful fleets: a PersistentVolumeClaim, a Job and a volume-bound pod
//! (`examples/fleet/clusters/stateful`), lost with their namespace and with a node.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::harness::*;

/// The ledger namespace is deleted: its claim, its Job, its Deployments. The run passes
/// only once Flux has restored every object Git declares, by the API server: a new
/// claim Bound, the Job run again to completion after the deletion.
#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn a_lost_claim_and_job_are_restored_bound_and_complete_by_the_api_server() {
    let reports = tempfile::tempdir().unwrap();
    let run = drill_run(
        "scenarios/flux-stateful-namespace-loss.yaml",
        &["--keep-cluster"],
        reports.path(),
    );
    let (name, kubeconfig) = kept_cluster(&run);
    let cleanup = KindClusterGuard(name);
    run.assert_passed();
    let complete = assertion(&run.report, "every object Git declares exists");
    assert_eq!(complete["passed"], true, "{complete}");
    let message = complete["message"].as_str().unwrap();
    assert!(message.contains("Jobs complete, claims Bound"), "{message}");
    let deleted = event_at(&run.dir, "disaster-injected");
    let recovered = event_at(&run.dir, "recovered");

    let job: Value = serde_json::from_str(&kubectl(
        &kubeconfig,
        &["get", "job", "-n", "ledger", "ledger-migrate", "-o", "json"],
    ))
    .unwrap();
    let created = timestamp(&job["metadata"]["creationTimestamp"]);
    let completed = timestamp(&job["status"]["completionTime"]);
    // The API reports whole seconds.
    assert!(
        created.as_second() >= deleted.as_second() - 1,
        "the Job is the one from before the deletion: created {created}, deleted {deleted}"
    );
    assert!(
        completed.as_second() <= recovered.as_second(),
        "recovered at {recovered} before the Job completed at {completed}"
    );
    let claim: Value = serde_json::from_str(&kubectl(
        &kubeconfig,
        &["get", "pvc", "-n", "ledger", "ledger-data", "-o", "json"],
    ))
    .unwrap();
    assert_eq!(claim["status"]["phase"], "Bound", "{claim}");
    assert!(timestamp(&claim["metadata"]["creationTimestamp"]).as_second() >= deleted.as_second() - 1);
    drop(cleanup);
    assert_run_left_nothing(&run);
}

/// The zone-a worker of three is removed for good (its Node left NotReady). ledger-web's
/// pods must run Ready on the other worker, made after the removal; ledger-store's
/// volume lived on the lost worker's disk, so drill names its pod as unable to come back
/// and stops waiting long before the budget: exit 1, the finding a team wants to see.
#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn a_removed_worker_reschedules_stateless_pods_and_names_the_one_bound_to_its_disk() {
    let reports = tempfile::tempdir().unwrap();
    let run = drill_run(
        "scenarios/flux-worker-removed.yaml",
        &["--keep-cluster"],
        reports.path(),
    );
    let (name, kubeconfig) = kept_cluster(&run);
    let cleanup = KindClusterGuard(name.clone());
    assert_eq!(run.code, 1, "an assertion failure: {}", verdict(&run.report));
    let (lost, other) = (format!("{name}-worker"), format!("{name}-worker2"));
    assert!(
        run.stderr.contains(&format!("removed {lost} for good;")),
        "{}",
        run.stderr
    );
    let stopped = run.report["stopped_early"].as_str().expect("stopped early");
    for part in [
        "Pod/ledger/ledger-store-",
        &format!("cannot come back after node {lost} was removed"),
        "PersistentVolumeClaim ledger/ledger-data",
        "waiting on it: Deployment/ledger/ledger-store",
    ] {
        assert!(stopped.contains(part), "{part:?} not in {stopped}");
    }
    let findings = run.report["findings"].to_string();
    assert!(findings.contains("cannot come back"), "{findings}");
    let removed = event_at(&run.dir, "disaster-injected");
    let waited = event_at(&run.dir, "stopped-early").duration_since(removed).as_secs();
    assert!(
        (60..240).contains(&waited),
        "stopped after the node was seen lost, well before the 5m budget: {waited} s"
    );

    // The API server: the Node is left, not Ready; the volume is pinned to it.
    let node: Value = serde_json::from_str(&kubectl(&kubeconfig, &["get", "node", &lost, "-o", "json"])).unwrap();
    let ready = node["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap();
    assert_ne!(ready["status"], "True", "{ready}");
    let pv_name = kubectl(
        &kubeconfig,
        &[
            "get",
            "pvc",
            "-n",
            "ledger",
            "ledger-data",
            "-o",
            "jsonpath={.spec.volumeName}",
        ],
    );
    let pv = kubectl(&kubeconfig, &["get", "pv", pv_name.trim(), "-o", "json"]);
    assert!(pv.contains(&format!("\"{lost}\"")), "the volume lived on {lost}: {pv}");

    // ledger-web: as many Ready pods as before, each made after the removal on the
    // other worker; ledger-store: a pod that cannot be scheduled.
    let pods: Value =
        serde_json::from_str(&kubectl(&kubeconfig, &["get", "pods", "-n", "ledger", "-o", "json"])).unwrap();
    let mut web_ready: BTreeMap<String, String> = BTreeMap::new();
    let mut store_unscheduled = false;
    for pod in pods["items"].as_array().unwrap() {
        let pod_name = pod["metadata"]["name"].as_str().unwrap();
        let node = pod["spec"]["nodeName"].as_str().unwrap_or_default();
        let terminating = !pod["metadata"]["deletionTimestamp"].is_null();
        let is_ready = condition(pod, "Ready") == Some("True");
        if pod_name.starts_with("ledger-web-") && is_ready && !terminating {
            let created = timestamp(&pod["metadata"]["creationTimestamp"]);
            assert!(
                created.as_second() >= removed.as_second() - 1,
                "{pod_name} was made before the removal"
            );
            assert_eq!(node, other, "{pod_name} runs on {node}");
            web_ready.insert(pod_name.to_string(), node.to_string());
        }
        if pod_name.starts_with("ledger-store-") && !terminating {
            store_unscheduled |= condition(pod, "PodScheduled") == Some("False");
        }
    }
    assert_eq!(web_ready.len(), 2, "ledger-web Ready elsewhere: {web_ready:?}");
    assert!(store_unscheduled, "ledger-store's new pod cannot be scheduled: {pods}");
    drop(cleanup);
    assert_run_left_nothing(&run);
}

fn timestamp(v: &Value) -> jiff::Timestamp {
    v.as_str().unwrap_or_else(|| panic!("not a time: {v}")).parse().unwrap()
}

fn condition<'a>(pod: &'a Value, kind: &str) -> Option<&'a str> {
    pod["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)?["status"]
        .as_str()
}
