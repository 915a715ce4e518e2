//! Whether the Docker daemon under a kind cluster is still there. A daemon restarted
//! mid-run stops every node (no live-restore), so the watchers would only see a silent
//! API server and the run would time out as if the fleet were broken; instead drill
//! follows Docker's event stream, which breaks when the daemon goes away, and the run
//! ends with an error naming Docker (exit 2).

use std::time::Duration;

use bollard::Docker;
use futures::StreamExt as _;

/// Resolves (with a message) when the daemon stops answering; never resolves while it
/// runs. The stream is reopened when it ends while the daemon still answers (a client
/// timeout, not a restart). Follow only a daemon that answered at the start.
pub async fn lost(docker: Docker) -> String {
    loop {
        let mut events = docker.events(None::<bollard::query_parameters::EventsOptions>);
        let broke = loop {
            match events.next().await {
                Some(Ok(_)) => continue,
                Some(Err(e)) => break Some(e.to_string()),
                None => break None,
            }
        };
        // A daemon shutting down closes its API first; give a restart no chance to hide it.
        let answer = tokio::time::timeout(Duration::from_secs(5), docker.ping()).await;
        match answer {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return message(broke.as_deref(), &e.to_string()),
            Err(_) => return message(broke.as_deref(), "no answer to a ping within 5 s"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Why the daemon does not answer a fresh connection and ping (within 5 s), if it does not.
pub async fn unreachable() -> Option<String> {
    let docker = match Docker::connect_with_local_defaults() {
        Ok(d) => d,
        Err(e) => return Some(e.to_string()),
    };
    match tokio::time::timeout(Duration::from_secs(5), docker.ping()).await {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some("no answer to a ping within 5 s".into()),
    }
}

/// The run's error when the daemon went away: `stream` is how the event stream ended
/// (None: it closed), `ping` why the daemon did not answer.
pub fn message(stream: Option<&str>, ping: &str) -> String {
    format!(
        "the Docker daemon went away mid-run (event stream: {}; ping: {ping}): the cluster's nodes stopped with it; \
         once Docker is back, `drill clean` removes what is left",
        stream.unwrap_or("closed")
    )
}
