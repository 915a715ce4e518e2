//! Thawing node containers that a runc inside the node left frozen.
//!
//! On a cgroup v1 host, runc (1.1 in kind's node images) freezes a pod container's cgroup
//! to kill it; when that races with a `runc init` just joining the cgroup, the cgroup can
//! stay FROZEN with the `runc init` inside it. Nothing in it can die, so Docker can never
//! remove the node ("tried to kill container, but did not receive an exit event") and the
//! cluster would be orphaned. Writing THAWED lets the kill finish. cgroup v2 hosts have no
//! freezer hierarchy: then there is nothing to do.

use std::path::{Path, PathBuf};

/// The cgroup v1 freezer hierarchy of this host.
const FREEZER_ROOT: &str = "/sys/fs/cgroup/freezer";

/// Thaws every frozen cgroup under the freezer cgroups of the given containers (full
/// Docker ids); returns how many were thawed. Best effort: a cgroup that cannot be read
/// or written (no permission, gone meanwhile) is skipped.
pub fn thaw_containers(container_ids: &[String]) -> usize {
    thaw_containers_under(Path::new(FREEZER_ROOT), container_ids)
}

fn thaw_containers_under(root: &Path, container_ids: &[String]) -> usize {
    container_ids
        .iter()
        .flat_map(|id| container_cgroups(root, id))
        .flat_map(|dir| frozen_below(&dir))
        .filter(|state| std::fs::write(state, "THAWED").is_ok())
        .count()
}

/// Where Docker put container `id` in the freezer hierarchy: `docker/<id>` with the
/// cgroupfs driver, `system.slice/docker-<id>.scope` with the systemd driver.
fn container_cgroups(root: &Path, id: &str) -> Vec<PathBuf> {
    [
        root.join("docker").join(id),
        root.join("system.slice").join(format!("docker-{id}.scope")),
    ]
    .into_iter()
    .filter(|p| p.is_dir())
    .collect()
}

/// The `freezer.state` files at or below `dir` that read FROZEN.
fn frozen_below(dir: &Path) -> Vec<PathBuf> {
    let mut frozen = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let state = d.join("freezer.state");
        if std::fs::read_to_string(&state).is_ok_and(|s| s.trim() == "FROZEN") {
            frozen.push(state);
        }
        if let Ok(entries) = std::fs::read_dir(&d) {
            pending.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
        }
    }
    frozen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cgroup(root: &Path, rel: &str, state: &str) -> PathBuf {
        let dir = root.join(rel);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("freezer.state"), state).unwrap();
        dir.join("freezer.state")
    }

    #[test]
    fn thaws_frozen_cgroups_of_the_named_containers_only() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        cgroup(root, "docker/aaa", "THAWED\n");
        let pod = cgroup(root, "docker/aaa/kubelet.slice/pod1/cri-containerd-x.scope", "FROZEN\n");
        let systemd = cgroup(root, "system.slice/docker-bbb.scope/inner", "FROZEN\n");
        let other = cgroup(root, "docker/ccc/inner", "FROZEN\n");
        let n = thaw_containers_under(root, &["aaa".into(), "bbb".into(), "missing".into()]);
        assert_eq!(n, 2);
        assert_eq!(std::fs::read_to_string(pod).unwrap(), "THAWED");
        assert_eq!(std::fs::read_to_string(systemd).unwrap(), "THAWED");
        assert_eq!(
            std::fs::read_to_string(other).unwrap(),
            "FROZEN\n",
            "not ours: untouched"
        );
    }

    #[test]
    fn no_freezer_hierarchy_is_nothing_to_do() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(thaw_containers_under(&root.path().join("absent"), &["aaa".into()]), 0);
    }
}
