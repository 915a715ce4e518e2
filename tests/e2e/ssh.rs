//! A `flux bootstrap` repo as teams have it: gotk-sync.yaml points at an ssh:// Git host
//! that only a deploy key opens. The test bed's ssh Git host (sshd + git-shell, on the
//! kind network) stands in for GitHub; drill restores the key as Flux's `flux-system`
//! Secret, and a key the host does not know stops the run before any cluster.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{KindClusterGuard, drill_run_env, kept_cluster, kind_bin_path, kubectl, profile};
use crate::repos::{kubectl_json, profile_without_flux_install};

/// The ssh Git host's container: removed when the test ends, whatever happened.
struct GitHost {
    name: String,
    ip: String,
}

impl Drop for GitHost {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.name]).output();
    }
}

fn ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn keygen(path: &Path) -> String {
    ok(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "drill-e2e", "-f"])
        .arg(path));
    std::fs::read_to_string(path.with_extension("pub")).unwrap()
}

/// Starts the host with `keys` (host key, authorized_keys) and `repos` (bare
/// repositories) mounted read-only; returns it once sshd listens.
fn start_git_host(keys: &Path, repos: &Path) -> GitHost {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let image = ok(Command::new(root.join("hack/testbed"))
        .arg("git-ssh-image")
        .env("PATH", kind_bin_path()));
    let name = format!("drill-e2e-gitssh-{}", std::process::id());
    ok(Command::new("docker")
        .args(["run", "-d", "--name", &name, "--network", "kind"])
        .args(["--label", "io.gitops-drill.testbed=true"])
        .arg("-v")
        .arg(format!("{}:/srv/keys:ro", keys.display()))
        .arg("-v")
        .arg(format!("{}:/srv/repos:ro", repos.display()))
        .args([
            image.trim(),
            "/usr/sbin/sshd",
            "-D",
            "-e",
            "-f",
            "/etc/ssh/drill_sshd_config",
        ]));
    let ip = ok(Command::new("docker").args([
        "inspect",
        "-f",
        "{{(index .NetworkSettings.Networks \"kind\").IPAddress}}",
        &name,
    ]))
    .trim()
    .to_string();
    let host = GitHost { name, ip };
    for _ in 0..50 {
        if std::net::TcpStream::connect((host.ip.as_str(), 22)).is_ok() {
            return host;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let logs = Command::new("docker").args(["logs", &host.name]).output().unwrap();
    panic!("sshd never listened: {}", String::from_utf8_lossy(&logs.stderr));
}

fn git(dir: &Path, args: &[&str]) {
    ok(Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args));
}

/// The deploy key, rehearsed: namespace loss then cluster loss, Flux from the repo's own
/// gotk-components.yaml, synced from the ssh host (never from a copy of drill's), the key
/// restored as the Secret gotk-sync.yaml names and never shown; then a key the host does
/// not know is refused at the preflight, before any cluster.
#[test]
#[ignore = "needs the offline test bed: ./hack/test runs it"]
fn a_flux_bootstrap_repo_on_an_ssh_host_is_rebuilt_with_its_deploy_key() {
    let work = tempfile::tempdir().unwrap();
    let (keys, repos) = (work.path().join("keys"), work.path().join("repos"));
    for d in [&keys, &repos] {
        std::fs::create_dir_all(d).unwrap();
    }
    // The container's git user reads what the test's user wrote.
    for d in [work.path(), keys.as_path(), repos.as_path()] {
        std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    let host_public = keygen(&keys.join("host_ed25519"));
    let client = work.path().join("client");
    std::fs::create_dir_all(&client).unwrap();
    let deploy_public = keygen(&client.join("deploy_key"));
    keygen(&client.join("stranger_key"));
    std::fs::write(keys.join("authorized_keys"), &deploy_public).unwrap();
    // sshd (root in its container) reads its key only when no one else can.
    std::fs::set_permissions(
        keys.join("host_ed25519"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    std::fs::set_permissions(
        keys.join("authorized_keys"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let host = start_git_host(&keys, &repos);
    let url = format!("ssh://git@{}/srv/repos/fleet-infra.git", host.ip);
    let known_hosts = client.join("known_hosts");
    std::fs::write(&known_hosts, format!("{} {host_public}", host.ip)).unwrap();

    let repo = work.path().join("fleet-infra");
    let made = Command::new("hack/flux-bootstrap-example")
        .arg(&repo)
        .env("DRILL_PROFILE", profile())
        .env("PATH", kind_bin_path())
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let sync = repo.join("clusters/staging/flux-system/gotk-sync.yaml");
    let text = std::fs::read_to_string(&sync).unwrap();
    assert!(text.contains("ssh://git@github.com/example-org/fleet-infra"), "{text}");
    std::fs::write(
        &sync,
        text.replace("ssh://git@github.com/example-org/fleet-infra", &url),
    )
    .unwrap();
    let rehearsal = std::fs::read_to_string(repo.join("drill/rehearsal.yaml")).unwrap();
    let scenario_with = |key: &Path| {
        rehearsal
            .replace("name: flux-bootstrap-repo", "name: flux-bootstrap-ssh")
            .replace(
                "      path: ..\n",
                &format!(
                    "      path: ..\n      ssh-key:\n        key-file: {}\n        known-hosts-file: {}\n",
                    key.display(),
                    known_hosts.display()
                ),
            )
            .replace(
                "    path: clusters/staging\n",
                "    path: clusters/staging\n    keep-source-url: true\n",
            )
    };
    let good = scenario_with(&client.join("deploy_key"));
    assert!(
        good.contains("keep-source-url: true") && good.contains("delete-cluster"),
        "{good}"
    );
    std::fs::write(repo.join("drill/ssh.yaml"), &good).unwrap();
    std::fs::write(
        repo.join("drill/stranger.yaml"),
        scenario_with(&client.join("stranger_key")),
    )
    .unwrap();
    git(&repo, &["add", "--all"]);
    git(&repo, &["commit", "--quiet", "-m", "the ssh host"]);
    let bare: PathBuf = repos.join("fleet-infra.git");
    ok(Command::new("git")
        .args(["clone", "--quiet", "--bare"])
        .arg(&repo)
        .arg(&bare));
    ok(Command::new("chmod").args(["-R", "a+rX"]).arg(&bare));
    let commit = ok(Command::new("git").arg("-C").arg(&repo).args(["rev-parse", "HEAD"]))
        .trim()
        .to_string();

    let (bare_profile, _) = profile_without_flux_install(work.path());
    let env = [("DRILL_PROFILE", bare_profile.to_str().unwrap())];

    // A key the host does not know: refused before any cluster, naming the key's file.
    let reports = tempfile::tempdir().unwrap();
    let stranger = repo.join("drill/stranger.yaml");
    let run = drill_run_env(stranger.to_str().unwrap(), &[], &env, reports.path());
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(!run.stderr.contains("cluster-create"), "{}", run.stderr);
    assert!(
        run.stderr
            .lines()
            .any(|l| l.starts_with("error: repo.url with repo.ssh-key")
                && l.contains("stranger_key")
                && l.contains(&url)
                && l.contains("Permission denied (publickey)")),
        "names the URL and the key: {}",
        run.stderr
    );

    let reports = tempfile::tempdir().unwrap();
    let scenario = repo.join("drill/ssh.yaml");
    let run = drill_run_env(scenario.to_str().unwrap(), &["--keep-cluster"], &env, reports.path());
    let (name, kubeconfig) = kept_cluster(&run);
    let _cleanup = KindClusterGuard(name);
    run.assert_passed();
    assert_eq!(
        run.report["recoveries"].as_array().unwrap().len(),
        2,
        "namespace and cluster loss"
    );
    let source_line = run.report["versions"]["source"].as_str().unwrap_or_default();
    assert!(
        source_line.contains(&url) && source_line.contains("kept"),
        "{source_line}"
    );
    assert!(
        !run.stderr.contains("Git server http://"),
        "drill served nothing: {}",
        run.stderr
    );

    // The API server, on the rebuilt cluster: the source is the ssh host, at its commit,
    // read with the deploy key restored as the Secret gotk-sync.yaml names.
    let source = kubectl_json(
        &kubeconfig,
        &["-n", "flux-system", "get", "gitrepository", "flux-system"],
    );
    assert_eq!(source["spec"]["url"], url.as_str(), "{}", source["spec"]);
    assert_eq!(source["spec"]["secretRef"]["name"], "flux-system");
    let revision = source["status"]["artifact"]["revision"].as_str().unwrap();
    assert!(revision.ends_with(&commit), "{revision} is the host's commit {commit}");
    let secret = kubectl_json(&kubeconfig, &["-n", "flux-system", "get", "secret", "flux-system"]);
    let keys_held: Vec<&str> = secret["data"].as_object().unwrap().keys().map(String::as_str).collect();
    assert!(
        keys_held.contains(&"identity") && keys_held.contains(&"known_hosts"),
        "{keys_held:?}"
    );
    let guestbook = kubectl(&kubeconfig, &["get", "deploy", "-n", "guestbook", "-o", "name"]);
    assert!(!guestbook.trim().is_empty(), "the fleet was applied from the ssh host");

    // The private key never shows: not in drill's output, not in its reports.
    let private = std::fs::read_to_string(client.join("deploy_key")).unwrap();
    let secret_line = private
        .lines()
        .nth(1)
        .expect("an OpenSSH private key has a body")
        .to_string();
    assert!(!run.stderr.contains(&secret_line), "the key shows in drill's output");
    for entry in walk(&run.dir) {
        let text = String::from_utf8_lossy(&std::fs::read(&entry).unwrap()).to_string();
        assert!(!text.contains(&secret_line), "the key shows in {}", entry.display());
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
