//! Serves a Git repository to the cluster over smart HTTP, read-only.
//!
//! Rehearsing from a local checkout needs no Git hosting: drill takes the fleet's
//! folder at a pinned commit, makes it the root of a one-commit repository (so the
//! paths inside the fleet stay as its authors wrote them), and serves it on the kind
//! network. Flux's source-controller (go-git) fetches it like any smart-HTTP remote.
//! The protocol work is done by `git upload-pack --stateless-rpc`; this module only
//! frames the three HTTP exchanges of the smart protocol.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result, bail};
use tokio::process::Command;

use crate::repo_auth::RepoAuth;
use crate::repo_ssh::SshIdentity;

mod http;
pub use http::{GitServer, Limits};

/// The branch the served repository exposes; GitRepository objects point at it.
pub const BRANCH: &str = "main";

/// A checkout's folder at one commit, ready to serve.
#[derive(Debug, Clone)]
pub struct ServedRepo {
    /// The bare repository drill serves.
    pub bare_dir: PathBuf,
    /// Repository name in the URL (`/<name>.git`).
    pub name: String,
    /// The commit of the checkout that was pinned (what the user named with `ref:`).
    pub source_commit: String,
    /// The commit the cluster sees: the fleet folder as repository root.
    pub served_commit: String,
}

/// Runs `git` with a fixed identity and dates, so the served commit is reproducible.
async fn git(dir: &Path, args: &[&str]) -> Result<String> {
    run_git(dir, args, true).await
}

/// Reads the checkout the scenario names, with plumbing only (rev-parse, cat-file: no
/// hook, no fsmonitor runs). The user named it, so it is trusted whoever owns it: drill
/// in a container reads a bind-mounted checkout owned by the host's user, which git's
/// ownership check (meant for repositories found by walking up into someone else's
/// folder) would refuse. Git takes that trust from the command line only.
async fn read_checkout(folder: &Path, args: &[&str]) -> Result<String> {
    let trusted: Vec<&str> = ["-c", "safe.directory=*"]
        .into_iter()
        .chain(args.iter().copied())
        .collect();
    run_git(folder, &trusted, false).await
}

/// Runs `git` with drill's identity; `fixed_date` pins the dates to the epoch.
async fn run_git(dir: &Path, args: &[&str], fixed_date: bool) -> Result<String> {
    let mut cmd = Command::new("git");
    cmd.arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "drill")
        .env("GIT_AUTHOR_EMAIL", "drill@localhost")
        .env("GIT_COMMITTER_NAME", "drill")
        .env("GIT_COMMITTER_EMAIL", "drill@localhost")
        // Never read the user's config (hooks, signing, editors) in drill's scratch clones.
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(Stdio::null());
    if fixed_date {
        cmd.env("GIT_AUTHOR_DATE", "1970-01-01T00:00:00Z")
            .env("GIT_COMMITTER_DATE", "1970-01-01T00:00:00Z");
    }
    let output = cmd.output().await.context("failed to run git (is it installed?)")?;
    if !output.status.success() {
        bail!(
            "git {} failed in {}: {}",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

impl ServedRepo {
    /// Pins `folder` (anywhere inside a Git work tree) at `git_ref` and writes a bare
    /// repository under `work_dir` whose `main` holds exactly that folder's tree.
    pub async fn prepare(folder: &Path, git_ref: &str, work_dir: &Path) -> Result<ServedRepo> {
        let folder = folder
            .canonicalize()
            .with_context(|| format!("repo path {} does not exist", folder.display()))?;
        let source_commit = read_checkout(&folder, &["rev-parse", "--verify", &format!("{git_ref}^{{commit}}")])
            .await
            .with_context(|| {
                format!(
                    "ref {git_ref:?} is not a commit of the repository at {}",
                    folder.display()
                )
            })?;
        let prefix = read_checkout(&folder, &["rev-parse", "--show-prefix"]).await?;
        let tree_spec = match prefix.trim_end_matches('/') {
            "" => format!("{source_commit}^{{tree}}"),
            sub => format!("{source_commit}:{sub}"),
        };
        let not_committed = || {
            format!(
                "{} is not committed at {git_ref} (drill serves committed content only)",
                folder.display()
            )
        };
        let tree = read_checkout(&folder, &["rev-parse", "--verify", &tree_spec])
            .await
            .with_context(not_committed)?;
        if read_checkout(&folder, &["cat-file", "-t", &tree]).await? != "tree" {
            bail!(not_committed());
        }
        let name = folder
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("fleet")
            .to_string();
        let bare_dir = work_dir.join(format!("{name}.git"));
        tokio::fs::create_dir_all(work_dir)
            .await
            .with_context(|| format!("failed to create {}", work_dir.display()))?;
        if bare_dir.exists() {
            tokio::fs::remove_dir_all(&bare_dir).await?;
        }
        git(work_dir, &["init", "--quiet", "--bare", &format!("{name}.git")]).await?;
        let message = format!(
            "drill: {} at {source_commit}",
            if prefix.is_empty() {
                "."
            } else {
                prefix.trim_end_matches('/')
            }
        );
        // Objects come from the checkout's object store; the bare repo borrows them.
        let alternates = bare_dir.join("objects/info/alternates");
        let common = read_checkout(&folder, &["rev-parse", "--git-common-dir"]).await?;
        let objects = folder.join(common).join("objects").canonicalize()?;
        tokio::fs::write(&alternates, format!("{}\n", objects.display())).await?;
        let served_commit = git(&bare_dir, &["commit-tree", &tree, "-m", &message]).await?;
        git(
            &bare_dir,
            &["update-ref", &format!("refs/heads/{BRANCH}"), &served_commit],
        )
        .await?;
        git(&bare_dir, &["symbolic-ref", "HEAD", &format!("refs/heads/{BRANCH}")]).await?;
        // Make the bare repository self-contained, so the checkout can change under it.
        git(&bare_dir, &["repack", "-a", "-d", "-q"]).await?;
        tokio::fs::remove_file(&alternates).await?;
        Ok(ServedRepo {
            bare_dir,
            name,
            source_commit,
            served_commit,
        })
    }

    /// Fails unless the served commit has the folder `path` (the engine's entry point):
    /// a folder that exists only uncommitted would leave the engine failing for minutes.
    pub async fn require_folder(&self, path: &str) -> Result<()> {
        let path = path.trim_start_matches("./").trim_end_matches('/');
        let kind = git(
            &self.bare_dir,
            &["cat-file", "-t", &format!("{}:{path}", self.served_commit)],
        )
        .await;
        if kind.as_deref().ok() != Some("tree") {
            bail!(
                "{path} is not a folder of the served commit (source commit {}): drill serves committed content only; commit it first",
                &self.source_commit[..12.min(self.source_commit.len())]
            );
        }
        Ok(())
    }
}

/// One literal edit of a file in the served repo: `find` must occur exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEdit {
    pub file: String,
    pub find: String,
    pub replace: String,
}

impl ServedRepo {
    /// A work tree of the served repo, where drill makes its commits (cloned once).
    async fn work_tree(&self) -> Result<PathBuf> {
        let work = self.bare_dir.with_extension("work");
        if !work.join(".git").exists() {
            let parent = work.parent().context("served repo has no parent folder")?;
            let bare = self.bare_dir.to_string_lossy().to_string();
            let dest = work.to_string_lossy().to_string();
            git(parent, &["clone", "--quiet", &bare, &dest]).await?;
        }
        Ok(work)
    }

    /// Commits `edits` on the served branch (as a person would: a new commit on top)
    /// and returns the new commit. The cluster fetches it at its next poll.
    pub async fn commit_edits(&self, edits: &[FileEdit], message: &str) -> Result<String> {
        let work = self.work_tree().await?;
        run_git(&work, &["pull", "--quiet", "--ff-only"], false).await?;
        for edit in edits {
            let path = inside_work_tree(&work, &edit.file)?;
            let text = tokio::fs::read_to_string(&path)
                .await
                .with_context(|| format!("cannot edit {}: not in the served repo", edit.file))?;
            match text.matches(edit.find.as_str()).count() {
                1 => {}
                0 => bail!("cannot edit {}: it does not contain {:?}", edit.file, edit.find),
                n => bail!("cannot edit {}: {:?} occurs {n} times", edit.file, edit.find),
            }
            tokio::fs::write(&path, text.replacen(edit.find.as_str(), &edit.replace, 1))
                .await
                .with_context(|| format!("failed to write {}", path.display()))?;
        }
        run_git(&work, &["commit", "--quiet", "--all", "--message", message], false).await?;
        self.push(&work).await
    }

    /// Commits whole files (path in the repo, content) on the served branch; returns the
    /// new commit.
    pub async fn commit_files(&self, files: &[(String, String)], message: &str) -> Result<String> {
        let work = self.work_tree().await?;
        run_git(&work, &["pull", "--quiet", "--ff-only"], false).await?;
        for (file, content) in files {
            let path = inside_work_tree(&work, file)?;
            tokio::fs::write(&path, content)
                .await
                .with_context(|| format!("failed to write {}", path.display()))?;
        }
        run_git(&work, &["commit", "--quiet", "--all", "--message", message], false).await?;
        self.push(&work).await
    }

    /// `git revert`s `commit` (a new commit; history is never rewritten) and returns it.
    pub async fn revert(&self, commit: &str) -> Result<String> {
        let work = self.work_tree().await?;
        run_git(&work, &["pull", "--quiet", "--ff-only"], false).await?;
        run_git(&work, &["revert", "--no-edit", commit], false)
            .await
            .with_context(|| format!("git revert {commit} failed"))?;
        self.push(&work).await
    }

    async fn push(&self, work: &Path) -> Result<String> {
        run_git(work, &["push", "--quiet", "origin", &format!("HEAD:{BRANCH}")], false).await?;
        git(work, &["rev-parse", "HEAD"]).await
    }
}

/// The file an edit names, proven to be a regular file of the work tree: never in
/// `.git` (a hook or `core.fsmonitor` there would run code), never through a symlink
/// (the fleet's Git could point one anywhere drill may write).
fn inside_work_tree(work: &Path, file: &str) -> Result<PathBuf> {
    let rel = Path::new(file);
    if rel.is_absolute()
        || rel
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir) || c.as_os_str() == ".git")
    {
        bail!("cannot edit {file}: not a file of the fleet (absolute, '..' or inside .git)");
    }
    let mut at = work.to_path_buf();
    for part in rel.components() {
        at.push(part);
        let meta =
            std::fs::symlink_metadata(&at).with_context(|| format!("cannot edit {file}: not in the served repo"))?;
        if meta.file_type().is_symlink() {
            bail!("cannot edit {file}: {} is a symbolic link", at.display());
        }
    }
    if !std::fs::symlink_metadata(&at).is_ok_and(|m| m.is_file()) {
        bail!("cannot edit {file}: not a regular file");
    }
    Ok(at)
}

/// The commit `git_ref` names in a remote repository (`git ls-remote`), so a run pins
/// what the cluster must reach. Credentials go in the environment, never on the command
/// line, where other users could read them; git never prompts.
pub async fn remote_commit(
    url: &str,
    git_ref: &str,
    auth: Option<&RepoAuth>,
    ssh: Option<&SshIdentity>,
) -> Result<String> {
    let mut cmd = Command::new("git");
    cmd.args(["ls-remote", "--", url, git_ref])
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null());
    // The key's folder lives until ls-remote has answered.
    let _key_files = match ssh {
        Some(ssh) => {
            let (dir, command) = ssh.git_ssh_command()?;
            cmd.env("GIT_SSH_COMMAND", command).env_remove("SSH_AUTH_SOCK");
            Some(dir)
        }
        None => None,
    };
    if let Some(auth) = auth {
        cmd.env("GIT_CONFIG_COUNT", "1")
            .env("GIT_CONFIG_KEY_0", "http.extraHeader")
            .env("GIT_CONFIG_VALUE_0", format!("Authorization: {}", auth.basic_header()));
    }
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), cmd.output())
        .await
        .with_context(|| format!("git ls-remote {url} took over 60s"))?
        .context("failed to run git ls-remote")?;
    if !out.status.success() {
        bail!("cannot read {url}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let listing = String::from_utf8_lossy(&out.stdout);
    let wanted = [
        git_ref.to_string(),
        format!("refs/heads/{git_ref}"),
        format!("refs/tags/{git_ref}^{{}}"),
        format!("refs/tags/{git_ref}"),
    ];
    // A peeled tag (`^{}`) names the commit; prefer it over the tag object.
    for name in &wanted {
        if let Some(commit) = listing
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .find(|(_, r)| r == name)
            .map(|(c, _)| c.to_string())
        {
            return Ok(commit);
        }
    }
    bail!("{url} has no branch or tag {git_ref:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn sh(dir: &Path, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .current_dir(dir)
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "init.defaultBranch=trunk",
            ])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A checkout with the fleet in a subfolder, and a later commit that must not be served.
    async fn checkout() -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        sh(dir.path(), &["init", "-q"]).await;
        std::fs::create_dir_all(dir.path().join("examples/fleet/clusters/demo")).unwrap();
        std::fs::write(dir.path().join("examples/fleet/clusters/demo/app.yaml"), "version: 1\n").unwrap();
        std::fs::write(dir.path().join("README"), "outside the fleet\n").unwrap();
        sh(dir.path(), &["add", "."]).await;
        sh(dir.path(), &["commit", "-qm", "one"]).await;
        let pinned = sh(dir.path(), &["rev-parse", "HEAD"]).await;
        std::fs::write(dir.path().join("examples/fleet/clusters/demo/app.yaml"), "version: 2\n").unwrap();
        sh(dir.path(), &["commit", "-qam", "two"]).await;
        (dir, pinned)
    }

    #[tokio::test]
    async fn a_git_client_clones_the_pinned_folder_as_repository_root() {
        let (dir, pinned) = checkout().await;
        let work = tempfile::tempdir().unwrap();
        let repo = ServedRepo::prepare(&dir.path().join("examples/fleet"), &pinned, work.path())
            .await
            .unwrap();
        assert_eq!(repo.source_commit, pinned);
        let server = GitServer::start(repo, "127.0.0.1:0".parse().unwrap(), None)
            .await
            .unwrap();

        let clone_dir = tempfile::tempdir().unwrap();
        let url = server.url();
        let out = tokio::process::Command::new("git")
            .args(["clone", "-q", &url, "c"])
            .current_dir(clone_dir.path())
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "clone failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let cloned = clone_dir.path().join("c");
        assert_eq!(
            std::fs::read_to_string(cloned.join("clusters/demo/app.yaml")).unwrap(),
            "version: 1\n"
        );
        assert!(!cloned.join("README").exists(), "only the fleet folder is served");
        assert_eq!(sh(&cloned, &["rev-parse", "HEAD"]).await, server.repo.served_commit);
        assert_eq!(sh(&cloned, &["rev-parse", "--abbrev-ref", "HEAD"]).await, BRANCH);
    }

    #[tokio::test]
    async fn the_served_commit_is_reproducible_and_the_repo_is_read_only() {
        let (dir, pinned) = checkout().await;
        let (w1, w2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let a = ServedRepo::prepare(&dir.path().join("examples/fleet"), &pinned, w1.path())
            .await
            .unwrap();
        let b = ServedRepo::prepare(&dir.path().join("examples/fleet"), &pinned, w2.path())
            .await
            .unwrap();
        assert_eq!(a.served_commit, b.served_commit);
        let server = GitServer::start(a, "127.0.0.1:0".parse().unwrap(), None).await.unwrap();
        let push = tokio::process::Command::new("git")
            .args(["push", &server.url(), "HEAD:refs/heads/evil"])
            .current_dir(dir.path())
            .output()
            .await
            .unwrap();
        assert!(!push.status.success(), "pushes must be refused");
    }

    #[tokio::test]
    async fn edits_refuse_git_internals_and_symbolic_links() {
        let dir = tempfile::tempdir().unwrap();
        sh(dir.path(), &["init", "-q"]).await;
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("secret.txt");
        std::fs::write(&target, "version: 1\n").unwrap();
        std::fs::write(dir.path().join("app.yaml"), "version: 1\n").unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("link.yaml")).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("linked-dir")).unwrap();
        sh(dir.path(), &["add", "."]).await;
        sh(dir.path(), &["commit", "-qm", "one"]).await;
        let pinned = sh(dir.path(), &["rev-parse", "HEAD"]).await;
        let work = tempfile::tempdir().unwrap();
        let repo = ServedRepo::prepare(dir.path(), &pinned, work.path()).await.unwrap();
        for (file, why) in [
            ("link.yaml", "is a symbolic link"),
            ("linked-dir/secret.txt", "is a symbolic link"),
            (".git/config", "inside .git"),
        ] {
            let edit = FileEdit {
                file: file.into(),
                find: if file == ".git/config" { "[core]" } else { "version: 1" }.into(),
                replace: "version: 9".into(),
            };
            let err = format!("{:#}", repo.commit_edits(&[edit], "hostile").await.unwrap_err());
            assert!(err.contains(why), "{file}: {err}");
        }
        assert_eq!(
            std::fs::read_to_string(&target).unwrap(),
            "version: 1\n",
            "nothing outside was written"
        );
        // A plain file of the fleet is still edited.
        let edit = FileEdit {
            file: "app.yaml".into(),
            find: "version: 1".into(),
            replace: "version: 2".into(),
        };
        repo.commit_edits(&[edit], "fine").await.unwrap();
    }

    #[tokio::test]
    async fn commits_and_reverts_are_new_commits_a_client_fetches() {
        let (dir, pinned) = checkout().await;
        let work = tempfile::tempdir().unwrap();
        let repo = ServedRepo::prepare(&dir.path().join("examples/fleet"), &pinned, work.path())
            .await
            .unwrap();
        let edit = FileEdit {
            file: "clusters/demo/app.yaml".into(),
            find: "version: 1".into(),
            replace: "version: 9".into(),
        };
        let bad = repo
            .commit_edits(std::slice::from_ref(&edit), "break it")
            .await
            .unwrap();
        let err = repo.commit_edits(&[edit], "again").await.unwrap_err();
        assert!(format!("{err:#}").contains("does not contain"), "{err:#}");
        let reverted = repo.revert(&bad).await.unwrap();
        assert_ne!(bad, reverted);

        let server = GitServer::start(repo, "127.0.0.1:0".parse().unwrap(), None)
            .await
            .unwrap();
        let clone_dir = tempfile::tempdir().unwrap();
        let out = tokio::process::Command::new("git")
            .args(["clone", "-q", &server.url(), "c"])
            .current_dir(clone_dir.path())
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let cloned = clone_dir.path().join("c");
        assert_eq!(sh(&cloned, &["rev-parse", "HEAD"]).await, reverted);
        // History is kept: served commit, the bad one, its revert.
        let log = sh(&cloned, &["log", "--format=%s"]).await;
        assert_eq!(log.lines().count(), 3, "{log}");
        assert!(log.starts_with("Revert \"break it\""), "{log}");
        assert_eq!(
            std::fs::read_to_string(cloned.join("clusters/demo/app.yaml")).unwrap(),
            "version: 1\n"
        );
    }

    #[tokio::test]
    async fn with_credentials_only_an_authenticated_client_can_fetch() {
        let (dir, pinned) = checkout().await;
        let work = tempfile::tempdir().unwrap();
        let repo = ServedRepo::prepare(&dir.path().join("examples/fleet"), &pinned, work.path())
            .await
            .unwrap();
        let auth = RepoAuth {
            username: "drill".into(),
            password: "t0ken-for-the-test".into(),
            origin: "test".into(),
        };
        let served = repo.served_commit.clone();
        let server = GitServer::start(repo, "127.0.0.1:0".parse().unwrap(), Some(auth.clone()))
            .await
            .unwrap();
        let err = remote_commit(&server.url(), BRANCH, None, None).await.unwrap_err();
        assert!(format!("{err:#}").contains("cannot read"), "{err:#}");
        let wrong = RepoAuth {
            password: "guess".into(),
            ..auth.clone()
        };
        assert!(remote_commit(&server.url(), BRANCH, Some(&wrong), None).await.is_err());
        assert_eq!(
            remote_commit(&server.url(), BRANCH, Some(&auth), None).await.unwrap(),
            served
        );
        let err = remote_commit(&server.url(), "nope", Some(&auth), None)
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains("no branch or tag \"nope\""), "{err:#}");
    }

    #[tokio::test]
    async fn uncommitted_folders_and_bad_refs_are_clear_errors() {
        let (dir, pinned) = checkout().await;
        let work = tempfile::tempdir().unwrap();
        let err = ServedRepo::prepare(&dir.path().join("examples/fleet"), "no-such-ref", work.path())
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains("is not a commit"), "{err:#}");
        std::fs::create_dir_all(dir.path().join("examples/new")).unwrap();
        let err = ServedRepo::prepare(&dir.path().join("examples/new"), &pinned, work.path())
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains("is not committed"), "{err:#}");

        let repo = ServedRepo::prepare(&dir.path().join("examples/fleet"), &pinned, work.path())
            .await
            .unwrap();
        repo.require_folder("clusters/demo").await.unwrap();
        repo.require_folder("./clusters/demo/").await.unwrap();
        std::fs::create_dir_all(dir.path().join("examples/fleet/clusters/new")).unwrap();
        std::fs::write(dir.path().join("examples/fleet/clusters/new/a.yaml"), "a: 1\n").unwrap();
        let err = repo.require_folder("clusters/new").await.unwrap_err();
        assert!(
            format!("{err:#}").contains("clusters/new is not a folder of the served commit"),
            "{err:#}"
        );
        assert!(
            repo.require_folder("clusters/demo/app.yaml").await.is_err(),
            "a file is not a folder"
        );
    }
}
