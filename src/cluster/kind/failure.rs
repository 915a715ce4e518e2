//! What a failed `kind` command said that explains it. kind ends a failed `create` with
//! kubeadm's Go stack trace, so its last lines say where kubeadm stopped, not why; the
//! why is in kind's `ERROR:` line and kubeadm's checks and failed phase, earlier on.

/// Lines that say why, wherever they are in the output.
const TELLING: [&str; 6] = [
    "ERROR:",
    "error execution phase",
    "[kubelet-check]",
    "[control-plane-check]",
    "too many open files",
    "not healthy",
];

/// At most this many telling lines and this many last lines, each at most LINE_CHARS.
const TELLING_MAX: usize = 10;
const LAST_MAX: usize = 12;
const LINE_CHARS: usize = 400;

/// kind's telling lines, then its last lines without Go stack frames.
pub fn summary(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect();
    let telling: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| TELLING.iter().any(|t| l.to_lowercase().contains(&t.to_lowercase())))
        .collect();
    let telling = &telling[telling.len().saturating_sub(TELLING_MAX)..];
    let plain: Vec<&str> = lines.iter().copied().filter(|l| !is_stack_frame(l)).collect();
    let last = &plain[plain.len().saturating_sub(LAST_MAX)..];
    let mut out: Vec<String> = telling.iter().map(|l| clip(l)).collect();
    for l in last {
        if !telling.contains(l) {
            out.push(clip(l));
        }
    }
    out.join("\n")
}

/// A Go stack trace line: a file position (tab-indented) or a function (no spaces,
/// dotted: `github.com/spf13/cobra.(*Command).execute`, `main.main`).
fn is_stack_frame(line: &str) -> bool {
    line.starts_with('\t') || (!line.contains(' ') && line.contains('.') && !line.ends_with(':'))
}

fn clip(line: &str) -> String {
    match line.char_indices().nth(LINE_CHARS) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line.to_string(),
    }
}

/// Below kind's recommended inotify limit, nodes may fail to start ("too many open
/// files"): each node's kubelet and containerd take instances from the host user's
/// share, so several nodes, or several clusters at once, exhaust the default 128.
pub fn inotify_hint() -> Option<String> {
    let text = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_instances").ok()?;
    inotify_hint_for(text.trim().parse().ok()?)
}

fn inotify_hint_for(instances: u64) -> Option<String> {
    (instances < 512).then(|| {
        format!(
            "hint: fs.inotify.max_user_instances is {instances}; kind's known issues ask for 512, as \
             nodes share it (more nodes or clusters at once exhaust it): \
             `sysctl -w fs.inotify.max_user_instances=512 fs.inotify.max_user_watches=524288`"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBEADM_TIMEOUT: &str = "Creating cluster \"drill-x\" ...
 ✓ Ensuring node image (gitops-drill/kind-node:v1.34.4) 🖼
 ✗ Starting control-plane 🕹️
Deleted nodes: [\"drill-x-control-plane\"]
ERROR: failed to create cluster: failed to init node with kubeadm: command \"docker exec --privileged drill-x-control-plane kubeadm init --config=/kind/kubeadm.conf --skip-token-print --v=6\" failed with error: exit status 1
Command Output: I1206 09:50:01.000000     200 initconfiguration.go:261] loading configuration from \"/kind/kubeadm.conf\"
[kubelet-check] Waiting for a healthy kubelet at http://127.0.0.1:10248/healthz. This can take up to 4m0s
[kubelet-check] The kubelet is not healthy after 4m0.000112s
error execution phase wait-control-plane: failed while waiting for the kubelet to start
k8s.io/kubernetes/cmd/kubeadm/app/cmd/phases/workflow.(*Runner).Run.func1
\tk8s.io/kubernetes@v1.34.4/cmd/kubeadm/app/cmd/phases/workflow/runner.go:260
github.com/spf13/cobra.(*Command).execute
\tgithub.com/spf13/cobra@v1.9.1/command.go:1015
main.main
\tk8s.io/kubernetes@v1.34.4/cmd/kubeadm/kubeadm.go:25
runtime.goexit
\truntime/asm_amd64.s:1771
";

    #[test]
    fn a_kubeadm_failure_shows_why_not_its_stack_trace() {
        let s = summary(KUBEADM_TIMEOUT);
        assert!(
            s.starts_with("ERROR: failed to create cluster: failed to init node with kubeadm"),
            "{s}"
        );
        assert!(
            s.contains("[kubelet-check] The kubelet is not healthy after 4m0.000112s"),
            "{s}"
        );
        assert!(s.contains("error execution phase wait-control-plane"), "{s}");
        assert!(
            !s.contains("cobra") && !s.contains("runtime.goexit") && !s.contains("main.main"),
            "{s}"
        );
        // Each telling line once, though it is also among the last lines.
        assert_eq!(s.matches("error execution phase").count(), 1, "{s}");
    }

    #[test]
    fn plain_output_keeps_its_last_lines() {
        let text: String = (1..=20).map(|i| format!("line {i}\n")).collect();
        let s = summary(&text);
        assert!(s.starts_with("line 9\n") && s.ends_with("line 20"), "{s}");
    }

    #[test]
    fn the_inotify_hint_only_below_kinds_recommendation() {
        assert!(inotify_hint_for(128).is_some_and(|h| h.contains("is 128")));
        assert_eq!(inotify_hint_for(512), None);
    }
}
