//! The CLI as a user meets it, without a cluster: validation errors, exit codes, schema.

use std::process::Command;

fn drill(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_drill"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn shipped_scenarios_validate() {
    let (code, out, err) = drill(&[
        "validate",
        "scenarios/flux-namespace-loss.yaml",
        "scenarios/flux-cluster-loss.yaml",
        "scenarios/flux-missing-image.yaml",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out.lines().filter(|l| l.ends_with("disaster step(s))")).count(),
        3,
        "{out}"
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
}
