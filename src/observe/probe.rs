//! Availability probes: a Service asked over HTTP through the API server's service proxy,
//! one attempt at a time, each result sent as an [`Update::Probe`] stamped when it came.
//! The proxy answers only from a ready endpoint of the Service, so "served" means what a
//! user of the Service would get: the Service exists, a pod behind it is ready and it
//! answered 2xx or 3xx in time.

use std::time::Duration;

use http_body_util::BodyExt as _;
use kube::Client;

use super::{Update, Updates};

/// What one probe asks (the runner builds it from `expect.probes`).
#[derive(Debug, Clone)]
pub struct ProbeTarget {
    pub name: String,
    pub namespace: String,
    pub service: String,
    /// The Service port's number or name.
    pub port: String,
    /// Absolute path (validated by the scenario: it stays under the Service).
    pub path: String,
    pub every: Duration,
    pub timeout: Duration,
}

impl ProbeTarget {
    /// The API server's proxy path to the Service's port.
    pub fn proxy_path(&self) -> String {
        format!(
            "/api/v1/namespaces/{}/services/{}:{}/proxy{}",
            self.namespace, self.service, self.port, self.path
        )
    }
}

/// Asks until the task is aborted (the observer is dropped): an attempt starts every
/// `every`, or as soon as a slower one ends. Each result is stamped with its attempt's
/// start: a user who asked then was served or not, however long the answer took (a
/// timed-out attempt would otherwise start its outage a whole timeout late).
pub async fn run(client: Client, target: ProbeTarget, tx: Updates) {
    loop {
        let started = tokio::time::Instant::now();
        let result = tokio::time::timeout(target.timeout, attempt(&client, &target)).await;
        let (served, detail) = match result {
            Ok(Ok(())) => (true, String::new()),
            Ok(Err(why)) => (false, why),
            Err(_) => (
                false,
                format!("no answer within {}", humantime::format_duration(target.timeout)),
            ),
        };
        let update = Update::Probe {
            probe: target.name.clone(),
            served,
            detail,
        };
        tx.send_at(update, started.into_std());
        tokio::time::sleep_until(started + target.every).await;
    }
}

/// One GET: Ok when the Service answered 2xx or 3xx, else why not (the status and the
/// start of the body, where the API server says e.g. "no endpoints available").
async fn attempt(client: &Client, target: &ProbeTarget) -> Result<(), String> {
    let request = hyper::Request::get(target.proxy_path())
        .body(kube::client::Body::empty())
        .map_err(|e| format!("bad request: {e}"))?;
    let response = client.send(request).await.map_err(|e| first_line(&e.to_string()))?;
    let status = response.status();
    if status.is_success() || status.is_redirection() {
        return Ok(());
    }
    let body = response
        .into_body()
        .collect()
        .await
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).to_string())
        .unwrap_or_default();
    Err(format!("HTTP {}: {}", status.as_u16(), first_line(&reason_of(&body))))
}

/// The API server's Status message when the body is one, else the body itself.
fn reason_of(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| body.to_string())
}

/// The first line, at most 160 characters: a reason for a table cell.
fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().chars().take(160).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proxy_path_names_the_service_port_and_path() {
        let target = ProbeTarget {
            name: "api".into(),
            namespace: "users".into(),
            service: "users-api".into(),
            port: "8080".into(),
            path: "/readyz".into(),
            every: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
        };
        assert_eq!(
            target.proxy_path(),
            "/api/v1/namespaces/users/services/users-api:8080/proxy/readyz"
        );
    }

    #[test]
    fn a_status_body_gives_its_message() {
        let body = r#"{"kind":"Status","message":"no endpoints available for service \"users-api\"","code":503}"#;
        assert_eq!(reason_of(body), "no endpoints available for service \"users-api\"");
        assert_eq!(reason_of("plain\nsecond"), "plain\nsecond");
        assert_eq!(first_line("plain\nsecond"), "plain");
    }
}
