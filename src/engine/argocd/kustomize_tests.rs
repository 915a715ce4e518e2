use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::*;

const INSTALL: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cm
data:
  admin.enabled: "true"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: argocd-server
spec:
  template:
    spec:
      containers:
        - name: argocd-server
          image: quay.io/argoproj/argocd:v3.2.11
          args: [/usr/local/bin/argocd-server]
          env:
            - {name: A, value: "1"}
            - {name: B, value: "2"}
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: argocd-application-controller
spec:
  template:
    spec:
      containers:
        - name: argocd-application-controller
          image: quay.io/argoproj/argocd:v3.2.11
"#;

fn write(dir: &Path, file: &str, text: &str) {
    let path = dir.join(file);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn no_remote(url: &str) -> Result<PathBuf, String> {
    Err(format!("no remote in this test: {url}"))
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{kind}/{name} in {objects:?}"))
}

#[test]
fn a_self_managed_install_folder_is_built_with_its_patches_and_images() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "upstream/install.yaml", INSTALL);
    write(d, "upstream/kustomization.yaml", "resources: [install.yaml]\n");
    write(
        d,
        "install/kustomization.yaml",
        r#"apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: argocd
resources: [../upstream]
patchesStrategicMerge: [cm.yaml]
patches:
  - path: server-env.yaml
  - target: {kind: StatefulSet, name: argocd-application-controller}
    patch: |-
      - op: add
        path: /spec/template/spec/containers/0/args
        value: [--status-processors, "5"]
images:
  - {name: quay.io/argoproj/argocd, newTag: v3.2.12}
"#,
    );
    write(
        d,
        "install/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: argocd-cm}\ndata:\n  timeout.reconciliation: 60s\n  admin.enabled: null\n",
    );
    write(
        d,
        "install/server-env.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: argocd-server}\nspec:\n  template:\n    spec:\n      containers:\n        - name: argocd-server\n          env:\n            - {name: B, value: \"20\"}\n            - {name: C, value: \"3\"}\n            - {name: A, $patch: delete}\n",
    );
    let built = build(&d.join("install"), &no_remote).unwrap();
    assert_eq!(built.objects.len(), 3);
    let cm = find(&built.objects, "ConfigMap", "argocd-cm");
    assert_eq!(cm["data"], json!({"timeout.reconciliation": "60s"}));
    let server = &find(&built.objects, "Deployment", "argocd-server")["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        server["env"],
        json!([{"name": "B", "value": "20"}, {"name": "C", "value": "3"}])
    );
    assert_eq!(server["args"], json!(["/usr/local/bin/argocd-server"]), "untouched");
    assert_eq!(server["image"], "quay.io/argoproj/argocd:v3.2.12");
    let controller = &find(&built.objects, "StatefulSet", "argocd-application-controller")["spec"]["template"]["spec"]
        ["containers"][0];
    assert_eq!(controller["args"], json!(["--status-processors", "5"]));
    assert_eq!(controller["image"], "quay.io/argoproj/argocd:v3.2.12");
}

#[test]
fn a_remote_base_comes_from_the_resolver_and_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let url = "https://raw.githubusercontent.com/argoproj/argo-cd/v3.2.11/manifests/install.yaml";
    write(dir.path(), "kustomization.yaml", &format!("resources:\n  - {url}\n"));
    write(dir.path(), "cache/install.yaml", INSTALL);
    let cached = dir.path().join("cache/install.yaml");
    let resolve = |u: &str| -> Result<PathBuf, String> {
        assert_eq!(upstream_install(u), Some(("v3.2.11".to_string(), "install.yaml")));
        Ok(cached.clone())
    };
    let built = build(dir.path(), &resolve).unwrap();
    assert_eq!(built.objects.len(), 3);
    assert_eq!(built.remote, vec![(url.to_string(), cached.clone())]);
    let err = build(dir.path(), &no_remote).unwrap_err().to_string();
    assert!(
        err.contains("kustomization.yaml: resources: https://raw.githubusercontent.com"),
        "{err}"
    );
}

#[test]
fn what_the_subset_does_not_do_is_an_error_naming_the_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "install.yaml", INSTALL);
    let error_of = |kustomization: &str| {
        write(d, "kustomization.yaml", kustomization);
        build(d, &no_remote).unwrap_err().to_string()
    };
    let err = error_of("resources: [install.yaml]\nconfigMapGenerator: []\n");
    assert!(
        err.contains("kustomization.yaml") && err.contains("configMapGenerator"),
        "{err}"
    );
    let err = error_of("namespace: argo\nresources: [install.yaml]\n");
    assert!(
        err.contains("namespace: argo: drill installs Argo CD into namespace argocd"),
        "{err}"
    );
    let err = error_of("resources: [missing.yaml]\n");
    assert!(err.contains("resources: missing.yaml: no such file or folder"), "{err}");
    let err = error_of("resources: [install.yaml]\npatches:\n  - patch: |-\n      - {op: remove, path: /data}\n");
    assert!(err.contains("needs a `target`"), "{err}");
    let err = error_of(
        "resources: [install.yaml]\npatches:\n  - patch: |-\n      kind: ConfigMap\n      metadata: {name: nope}\n",
    );
    assert!(
        err.contains("the patch for ConfigMap/nope matches no resource"),
        "{err}"
    );
    let err = build(&d.join("nothing"), &no_remote).unwrap_err().to_string();
    assert!(err.contains("no kustomization.yaml"), "{err}");
}

#[test]
fn upstream_install_urls_name_their_version_and_file() {
    for (url, found) in [
        (
            "https://raw.githubusercontent.com/argoproj/argo-cd/v3.2.11/manifests/install.yaml",
            Some(("v3.2.11", "install.yaml")),
        ),
        (
            "https://raw.githubusercontent.com/argoproj/argo-cd/refs/tags/v3.1.0/manifests/core-install.yaml",
            Some(("v3.1.0", "core-install.yaml")),
        ),
        (
            "https://github.com/argoproj/argo-cd/releases/download/v2.14.2/install.yaml",
            Some(("v2.14.2", "install.yaml")),
        ),
        (
            "https://raw.githubusercontent.com/argoproj/argo-cd/stable/manifests/install.yaml",
            None,
        ),
        (
            "https://raw.githubusercontent.com/argoproj/argo-cd/v3.2.11/manifests/ha/install.yaml",
            None,
        ),
    ] {
        let found = found.map(|(v, f)| (v.to_string(), f));
        assert_eq!(upstream_install(url), found, "{url}");
    }
}

#[test]
fn image_names_split_from_tags_and_digests_past_a_registry_port() {
    assert_eq!(
        split_image("registry:5000/a/b:1.0"),
        ("registry:5000/a/b", Some(":1.0"))
    );
    assert_eq!(split_image("registry:5000/a/b"), ("registry:5000/a/b", None));
    assert_eq!(split_image("a/b@sha256:00"), ("a/b", Some("@sha256:00")));
}
