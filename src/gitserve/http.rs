//! The smart-HTTP side of the Git server: three exchanges framed around `git upload-pack
//! --stateless-rpc`, hardened for a hostile network: it listens on an address every
//! container of the kind network can reach, so a peer may be slow, idle, many, or send
//! bodies built to exhaust memory. Each is bounded (see [`Limits`]) and answered with a
//! refusal, never a hang or a silent truncation.

use std::convert::Infallible;
use std::io::Read as _;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpListener;
use tokio::process::Command;
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};

use super::ServedRepo;
use crate::repo_auth::RepoAuth;

/// What one server lets its peers hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once; more wait in the kernel's accept queue, holding no
    /// descriptor of drill's.
    pub connections: usize,
    /// Fetch negotiations (POST bodies) held in memory at once.
    pub negotiations: usize,
    /// A request body, compressed or not: larger is refused with 413.
    pub body_bytes: usize,
    /// Time to send a request's headers (slow or idle peers are disconnected).
    pub header_read: Duration,
    /// A whole connection, however busy.
    pub connection: Duration,
    /// One `git upload-pack`, input and output streamed both ways.
    pub upload_pack: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connections: 64,
            negotiations: 4,
            body_bytes: 16 << 20,
            header_read: Duration::from_secs(20),
            connection: Duration::from_secs(600),
            upload_pack: Duration::from_secs(300),
        }
    }
}

/// A running server; dropping it stops serving and closes every connection.
pub struct GitServer {
    pub addr: SocketAddr,
    pub repo: ServedRepo,
    task: JoinHandle<()>,
}

/// What every connection of one server shares.
struct Shared {
    repo: ServedRepo,
    auth: Option<RepoAuth>,
    limits: Limits,
    negotiations: Semaphore,
}

impl GitServer {
    /// Serves `repo` on `bind` (port 0 picks a free port). With `auth`, every request
    /// must carry those basic-auth credentials, as a private Git host demands.
    pub async fn start(repo: ServedRepo, bind: SocketAddr, auth: Option<RepoAuth>) -> Result<GitServer> {
        GitServer::start_with(repo, bind, auth, Limits::default()).await
    }

    pub async fn start_with(
        repo: ServedRepo,
        bind: SocketAddr,
        auth: Option<RepoAuth>,
        limits: Limits,
    ) -> Result<GitServer> {
        let listener = TcpListener::bind(bind)
            .await
            .with_context(|| format!("failed to listen on {bind} for the Git server"))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            repo: repo.clone(),
            auth,
            limits,
            negotiations: Semaphore::new(limits.negotiations),
        });
        let task = tokio::spawn(accept_loop(listener, shared));
        Ok(GitServer { addr, repo, task })
    }

    pub fn url(&self) -> String {
        format!("http://{}/{}.git", self.addr, self.repo.name)
    }
}

/// Accepts while a connection slot is free; the connections live in a `JoinSet` owned
/// by this task, so aborting it (dropping the server) aborts every one of them.
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let slots = Arc::new(Semaphore::new(shared.limits.connections));
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of descriptors or a reset peer: wait instead of spinning a core.
                tracing::debug!("git server accept failed: {err}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let shared = shared.clone();
        connections.spawn(async move {
            let _slot = slot;
            let limits = shared.limits;
            let service = hyper::service::service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(handle(&shared, req).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read)
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(limits.connection, connection).await {
                Ok(Err(err)) => tracing::debug!(%peer, "git client connection ended: {err}"),
                Err(_) => tracing::debug!(%peer, "git client connection closed after {:?}", limits.connection),
                Ok(Ok(())) => {}
            }
        });
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let repo = &shared.repo;
    if let Some(auth) = &shared.auth {
        let header = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if !auth.accepts(header) {
            tracing::debug!(path = %req.uri().path(), "git request without the repo credentials");
            let mut resp = plain(StatusCode::UNAUTHORIZED, "authentication required".into());
            resp.headers_mut().insert(
                hyper::header::WWW_AUTHENTICATE,
                hyper::header::HeaderValue::from_static("Basic realm=\"drill\""),
            );
            return resp;
        }
    }
    let base = format!("/{}.git", repo.name);
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let protocol = req
        .headers()
        .get("git-protocol")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    tracing::debug!(method = %req.method(), %path, "git request");
    let result = match (req.method(), path.strip_prefix(&base)) {
        (&Method::GET, Some("/info/refs")) if query.split('&').any(|q| q == "service=git-upload-pack") => {
            advertise(shared, protocol.as_deref()).await
        }
        (&Method::POST, Some("/git-upload-pack")) => upload_pack(shared, req, protocol.as_deref()).await,
        (_, Some(p)) if p.contains("receive-pack") => {
            Err((StatusCode::FORBIDDEN, "drill serves repositories read-only".into()))
        }
        _ => Err((StatusCode::NOT_FOUND, format!("no such repository path {path}"))),
    };
    result.unwrap_or_else(|(status, message)| plain(status, message))
}

type HandlerResult = std::result::Result<Response<Full<Bytes>>, (StatusCode, String)>;

async fn advertise(shared: &Shared, protocol: Option<&str>) -> HandlerResult {
    let deadline = shared.limits.upload_pack;
    let refs = upload_pack_process(&shared.repo, &["--advertise-refs"], protocol, Vec::new(), deadline).await?;
    let mut body = pkt_line("# service=git-upload-pack\n");
    body.extend_from_slice(b"0000");
    body.extend_from_slice(&refs);
    Ok(git_response("application/x-git-upload-pack-advertisement", body))
}

async fn upload_pack(shared: &Shared, req: Request<Incoming>, protocol: Option<&str>) -> HandlerResult {
    let limit = shared.limits.body_bytes;
    let too_large = || {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body over {limit} bytes"),
        )
    };
    let gzip = req
        .headers()
        .get("content-encoding")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    // Bodies are held in memory: only a few at once.
    let _held = shared
        .negotiations
        .acquire()
        .await
        .map_err(|_| (StatusCode::SERVICE_UNAVAILABLE, "shutting down".to_string()))?;
    let body = Limited::new(req.into_body(), limit)
        .collect()
        .await
        .map_err(|err| match err.downcast_ref::<http_body_util::LengthLimitError>() {
            Some(_) => too_large(),
            None => (StatusCode::BAD_REQUEST, format!("bad request body: {err}")),
        })?
        .to_bytes();
    let input = if gzip {
        // One byte past the limit tells a body that was cut from one that fits.
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&body[..])
            .take(limit as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|err| (StatusCode::BAD_REQUEST, format!("bad gzip body: {err}")))?;
        if out.len() > limit {
            return Err(too_large());
        }
        out
    } else {
        body.to_vec()
    };
    drop(body);
    let out = upload_pack_process(&shared.repo, &[], protocol, input, shared.limits.upload_pack).await?;
    Ok(git_response("application/x-git-upload-pack-result", out))
}

/// Runs `git upload-pack` with `input` written while its output is read (a long
/// negotiation would otherwise fill both pipes and hang), within `deadline`.
async fn upload_pack_process(
    repo: &ServedRepo,
    extra: &[&str],
    protocol: Option<&str>,
    input: Vec<u8>,
    deadline: Duration,
) -> std::result::Result<Vec<u8>, (StatusCode, String)> {
    let internal = |what: &str, err: std::io::Error| (StatusCode::INTERNAL_SERVER_ERROR, format!("{what}: {err}"));
    let mut cmd = Command::new("git");
    cmd.args(["upload-pack", "--stateless-rpc"])
        .args(extra)
        .arg(&repo.bare_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(p) = protocol {
        cmd.env("GIT_PROTOCOL", p);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| internal("failed to start git upload-pack", e))?;
    let stdin = child.stdin.take();
    let feed = async move {
        if let Some(mut stdin) = stdin {
            // upload-pack may stop reading early (bad input): its answer says why.
            let _ = stdin.write_all(&input).await;
        }
    };
    let run = async {
        let ((), output) = tokio::join!(feed, child.wait_with_output());
        output
    };
    let output = tokio::time::timeout(deadline, run)
        .await
        .map_err(|_| {
            (
                StatusCode::GATEWAY_TIMEOUT,
                format!("git upload-pack took over {deadline:?}"),
            )
        })?
        .map_err(|e| internal("git upload-pack failed", e))?;
    if !output.status.success() {
        return Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("git upload-pack: {}", String::from_utf8_lossy(&output.stderr).trim()),
        ));
    }
    Ok(output.stdout)
}

fn pkt_line(text: &str) -> Vec<u8> {
    format!("{:04x}{text}", text.len() + 4).into_bytes()
}

fn git_response(content_type: &str, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    let headers = resp.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_str(content_type)
            .unwrap_or(hyper::header::HeaderValue::from_static("application/octet-stream")),
    );
    headers.insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-cache"),
    );
    resp
}

fn plain(status: StatusCode, message: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(message + "\n")));
    *resp.status_mut() = status;
    resp
}

#[cfg(test)]
mod tests;
