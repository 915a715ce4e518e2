//! Will the scenario's cluster fit on this machine? A kind cluster that does not fit
//! half-starts: nodes come up, pods are evicted or never scheduled, and the run times
//! out ten minutes later as if the fleet were broken. drill refuses early instead.
//!
//! The estimates are deliberately rough and on the generous side, from the test bed
//! (2026-11-23, Kubernetes 1.34, `docker stats` mid-run): a control-plane node running
//! Flux and the demo fleet used 580-650 MiB, one running Argo CD about 1 GiB. Pulled
//! images and etcd live in each node's volume.

use std::path::{Path, PathBuf};

/// Memory one control-plane node needs: the API server, etcd, controllers and the engine.
pub const CONTROL_PLANE_MEMORY: u64 = 1536 << 20;
/// Memory one worker node needs: kubelet, containerd and its share of the fleet.
pub const WORKER_MEMORY: u64 = 768 << 20;
/// Disk one node needs: its volume of pulled images, etcd and logs.
pub const NODE_DISK: u64 = 3 << 30;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needs {
    pub nodes: usize,
    pub memory: u64,
    pub disk: u64,
}

/// What a kind cluster with these nodes (kind's names: control-plane, worker, ...) needs.
pub fn needs(kind_nodes: &[String]) -> Needs {
    let control_planes = kind_nodes
        .iter()
        .filter(|n| n.starts_with("control-plane"))
        .count()
        .max(1);
    let workers = kind_nodes.len().saturating_sub(control_planes);
    Needs {
        nodes: control_planes + workers,
        memory: control_planes as u64 * CONTROL_PLANE_MEMORY + workers as u64 * WORKER_MEMORY,
        disk: (control_planes + workers) as u64 * NODE_DISK,
    }
}

/// What this machine has free; None where it cannot be read (then it is not judged).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Available {
    /// MemAvailable of /proc/meminfo.
    pub memory: Option<u64>,
    /// Free space under Docker's data root, and that root.
    pub disk: Option<(u64, PathBuf)>,
}

impl Available {
    /// Reads memory from /proc/meminfo and free disk under `docker_root` (Docker's
    /// `DockerRootDir`), falling back to `/` when that folder is not visible here.
    pub fn read(docker_root: Option<&Path>) -> Available {
        let memory = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|t| mem_available(&t));
        let root = docker_root
            .filter(|p| p.exists())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));
        let disk = free_bytes(&root).map(|b| (b, root));
        Available { memory, disk }
    }
}

fn mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

pub fn free_bytes(path: &Path) -> Option<u64> {
    let out = std::process::Command::new("df").args(["-Pk"]).arg(path).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let kb: u64 = text.lines().nth(1)?.split_whitespace().nth(3)?.parse().ok()?;
    Some(kb * 1024)
}

pub fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// What does not fit, one sentence each; empty when everything does.
pub fn shortfalls(needs: &Needs, available: &Available) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(memory) = available.memory
        && memory < needs.memory
    {
        out.push(format!(
            "{} kind node(s) need about {} of memory, and this machine has {} available",
            needs.nodes,
            gib(needs.memory),
            gib(memory)
        ));
    }
    if let Some((disk, root)) = &available.disk
        && *disk < needs.disk
    {
        out.push(format!(
            "{} kind node(s) need about {} of disk, and {} has {} free",
            needs.nodes,
            gib(needs.disk),
            root.display(),
            gib(*disk)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn needs_grow_with_the_nodes() {
        let one = needs(&nodes(&["control-plane"]));
        let three = needs(&nodes(&["control-plane", "worker", "worker2"]));
        assert_eq!(one.nodes, 1);
        assert_eq!(one.memory, CONTROL_PLANE_MEMORY);
        assert_eq!(three.nodes, 3);
        assert_eq!(three.memory, CONTROL_PLANE_MEMORY + 2 * WORKER_MEMORY);
        assert_eq!(three.disk, 3 * NODE_DISK);
        // A config without nodes is kind's default: one control plane.
        assert_eq!(needs(&[]), one);
    }

    #[test]
    fn a_cluster_that_does_not_fit_is_named_and_unknowns_are_not_judged() {
        let three = needs(&nodes(&["control-plane", "worker", "worker2"]));
        let roomy = Available {
            memory: Some(16 << 30),
            disk: Some((100 << 30, "/var/lib/docker".into())),
        };
        assert!(shortfalls(&three, &roomy).is_empty());
        let tight = Available {
            memory: Some(2 << 30),
            disk: Some((5 << 30, "/var/lib/docker".into())),
        };
        let found = shortfalls(&three, &tight);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].contains("3 kind node(s) need about 3.0 GiB of memory"),
            "{found:?}"
        );
        assert!(found[0].contains("2.0 GiB available"), "{found:?}");
        assert!(found[1].contains("/var/lib/docker has 5.0 GiB free"), "{found:?}");
        assert!(shortfalls(&three, &Available::default()).is_empty());
    }

    #[test]
    fn mem_available_is_read_from_meminfo() {
        let text = "MemTotal:       24000000 kB\nMemFree:         1000000 kB\nMemAvailable:   22520868 kB\n";
        assert_eq!(mem_available(text), Some(22_520_868 * 1024));
        assert_eq!(mem_available("MemTotal: 1 kB\n"), None);
    }
}
