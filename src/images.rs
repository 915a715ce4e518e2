//! Which images a rebuild needs, so they can be preloaded or mirrored: read from the
//! engine's install manifest and from the fleet's files that the scenario's entry folder
//! reaches. Pure file reading, no cluster, no rendering: Helm values and inline
//! `values:` count when they name an `image:` as one string, which covers the charts that
//! take a full reference. A previous run's report is the exact list (`drill images
//! --report`); this one is the list before any run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use crate::fleet::reachable_files;

/// The install manifest a run of `plan` would use, without downloading anything: the
/// repo's own (`flux bootstrap`, or a self-managed Argo CD's folder, built), the
/// profile's, else a cached release of the version the scenario names.
pub fn install_of(plan: &crate::scenario::Plan, profile: &crate::profile::Profile) -> Option<std::path::PathBuf> {
    use crate::scenario::EngineKind;
    let (install, version) = match plan.engine {
        EngineKind::Flux => (
            (plan.flux_layout.as_ref().map(|l| l.components.clone())).or(profile.flux_install.clone()),
            plan.scenario.engine.flux.as_ref().and_then(|f| f.version.clone()),
        ),
        EngineKind::Argocd => (
            (plan.argocd_install.as_deref())
                .and_then(|f| {
                    crate::engine::argocd::self_managed::built_for_listing(f, profile.argocd_install.as_deref())
                })
                .or(profile.argocd_install.clone()),
            plan.scenario.engine.argocd.as_ref().and_then(|a| a.version.clone()),
        ),
    };
    install.or_else(|| crate::engine::release::cached(plan.engine, version.as_deref()?))
}

/// One image and the files that name it (relative to the fleet, or the install manifest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeededImage {
    pub image: String,
    pub named_in: Vec<String>,
}

/// Images named in the engine install manifest and in the fleet files reachable from
/// `entry` (a folder inside `fleet`), sorted by image.
pub fn needed_images(install: Option<&Path>, fleet: &Path, entry: &str) -> Vec<NeededImage> {
    let mut found: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    if let Some(install) = install
        && let Ok(text) = std::fs::read_to_string(install)
    {
        let name = install
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for image in images_in(&text) {
            found
                .entry(image)
                .or_default()
                .insert(format!("engine install ({name})"));
        }
    }
    for (path, text) in reachable_files(fleet, entry) {
        let rel = path.strip_prefix(fleet).unwrap_or(&path).display().to_string();
        for image in images_in(&text) {
            found.entry(image).or_default().insert(rel.clone());
        }
    }
    found
        .into_iter()
        .map(|(image, named_in)| NeededImage {
            image,
            named_in: named_in.into_iter().collect(),
        })
        .collect()
}

/// Every `image:` string in a YAML (or JSON) text that looks like an image reference.
pub fn images_in(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    // Helm templates are not YAML until rendered; their values files are.
    if text.contains("{{") {
        return out;
    }
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).unwrap_or_default();
    for doc in &docs {
        collect(doc, &mut out);
    }
    out
}

fn collect(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            for (k, val) in map {
                if k == "image"
                    && let Some(s) = val.as_str()
                    && is_image_ref(s)
                {
                    out.insert(s.to_string());
                } else if k == "values"
                    && let Some(s) = val.as_str()
                {
                    // Argo CD's inline Helm values are a YAML string.
                    out.extend(images_in(s));
                } else {
                    collect(val, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect(i, out)),
        _ => {}
    }
}

fn is_image_ref(s: &str) -> bool {
    !s.is_empty()
        && !s.contains(char::is_whitespace)
        && !s.starts_with('-')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "./:-_@+".contains(c))
}

/// What a recorded run pulled, one line per image, slowest first (with `verbose`: its
/// time and how it went), and a summary line.
pub fn pulled_by(report: &crate::report::Report, verbose: bool) -> (Vec<String>, String) {
    let mut pulls = report.images.clone();
    pulls.sort_by_key(|p| std::cmp::Reverse(p.pull_ms.unwrap_or(0)));
    let mut seen = std::collections::BTreeSet::new();
    let mut lines = Vec::new();
    for p in pulls.iter().filter(|p| seen.insert(p.image.clone())) {
        if verbose {
            let took = p.pull_ms.map_or("-".into(), |ms| format!("{:.1}s", ms as f64 / 1000.0));
            let how = match (&p.failed, p.needed()) {
                (Some(why), _) => why.as_str(),
                (None, true) => "pulled",
                (None, false) => "already present",
            };
            lines.push(format!("{}\t{took}\t{how}", p.image));
        } else {
            lines.push(p.image.clone());
        }
    }
    let total = pulls.iter().filter_map(|p| p.pull_ms).fold(0u64, u64::saturating_add);
    let summary = format!(
        "{} image(s) in {} pull(s), {:.1}s of pulling in all (run {})",
        seen.len(),
        pulls.iter().filter(|p| p.needed()).count(),
        total as f64 / 1000.0,
        report.run_id
    );
    (lines, summary)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn fleet() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fleet")
    }

    fn images(entry: &str) -> Vec<String> {
        needed_images(None, &fleet(), entry)
            .into_iter()
            .map(|i| i.image)
            .collect()
    }

    #[test]
    fn the_demo_fleet_needs_its_three_app_images_and_not_the_broken_ones() {
        assert_eq!(
            images("clusters/demo"),
            [
                "docker.io/gitops-drill/demo-large:1.0",
                "docker.io/gitops-drill/demo-medium:1.0",
                "docker.io/gitops-drill/demo-small:1.0"
            ]
        );
        // The ghost app (an image that does not exist) is only reached from clusters/broken.
        assert!(images("clusters/broken").contains(&"docker.io/gitops-drill/demo-missing:1.0".to_string()));
        assert!(images("clusters/sealed").contains(&"docker.io/bitnami/sealed-secrets-controller:0.40.0".to_string()));
        assert!(!images("clusters/demo").iter().any(|i| i.contains("sealed-secrets")));
    }

    #[test]
    fn argo_cd_inline_helm_values_and_the_chart_values_count() {
        let needed = needed_images(None, &fleet(), "argocd/root");
        let large = needed
            .iter()
            .find(|i| i.image == "docker.io/gitops-drill/demo-large:1.0")
            .unwrap();
        assert!(
            large.named_in.iter().any(|f| f == "argocd/root/reports.yaml"),
            "{large:?}"
        );
    }

    #[test]
    fn the_install_manifest_names_the_engine_images() {
        let dir = tempfile::tempdir().unwrap();
        let install = dir.path().join("install.yaml");
        std::fs::write(
            &install,
            "kind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n        - image: ghcr.io/fluxcd/source-controller:v1.7.0\n          args: [--image=not-this]\n",
        )
        .unwrap();
        let needed = needed_images(Some(&install), &fleet(), "clusters/demo");
        let flux = needed.iter().find(|i| i.image.contains("source-controller")).unwrap();
        assert_eq!(flux.named_in, ["engine install (install.yaml)"]);
    }

    #[test]
    fn templates_and_non_references_are_skipped() {
        assert!(images_in("image: {{ .Values.image }}\n").is_empty());
        assert!(images_in("image: not an image\n").is_empty());
        assert_eq!(
            images_in("a:\n  image: redis:7\n").into_iter().collect::<Vec<_>>(),
            ["redis:7"]
        );
    }
}
