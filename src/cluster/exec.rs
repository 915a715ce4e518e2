//! Commands inside a kind node container, through Docker's exec API (no `docker` CLI):
//! how drill pulls images into nodes and edits their registry settings.

use anyhow::{Context, Result};
use bollard::Docker;
use bollard::exec::{CreateExecOptions, StartExecResults};
use futures::StreamExt as _;

/// What a command in a node printed (stdout and stderr, interleaved) and how it exited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub exit_code: Option<i64>,
    pub output: String,
}

impl ExecOutput {
    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
    }

    /// The last non-empty line, for an error message.
    pub fn last_line(&self) -> &str {
        self.output
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("no output")
    }
}

/// Runs `cmd` (argv, no shell) in container `node` and waits for it to exit.
pub async fn in_node(docker: &Docker, node: &str, cmd: Vec<&str>) -> Result<ExecOutput> {
    let program = cmd.first().copied().unwrap_or_default().to_string();
    let exec = docker
        .create_exec(
            node,
            CreateExecOptions {
                cmd: Some(cmd),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .with_context(|| format!("failed to exec {program} in node {node}"))?;
    let mut output = String::new();
    if let StartExecResults::Attached { output: mut stream, .. } = docker
        .start_exec(&exec.id, None)
        .await
        .with_context(|| format!("failed to start {program} in node {node}"))?
    {
        while let Some(chunk) = stream.next().await {
            if let Ok(chunk) = chunk {
                output.push_str(&chunk.to_string());
            }
        }
    }
    let inspect = docker
        .inspect_exec(&exec.id)
        .await
        .with_context(|| format!("failed to read {program}'s exit code in node {node}"))?;
    Ok(ExecOutput {
        exit_code: inspect.exit_code,
        output,
    })
}
