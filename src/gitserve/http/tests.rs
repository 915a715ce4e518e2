//! The server against hostile peers, on loopback only: bodies built to exhaust memory,
//! garbage negotiations, slow and idle connections by the thousand. After each, a normal
//! clone must still work.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::*;

async fn served() -> (tempfile::TempDir, ServedRepo) {
    let dir = tempfile::tempdir().unwrap();
    let fleet = dir.path().join("fleet");
    std::fs::create_dir_all(&fleet).unwrap();
    std::fs::write(fleet.join("app.yaml"), "kind: ConfigMap\n").unwrap();
    for args in [
        &["init", "--quiet"][..],
        &["add", "."],
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "--quiet",
            "-m",
            "fleet",
        ],
    ] {
        assert!(
            std::process::Command::new("git")
                .current_dir(&fleet)
                .args(args)
                .status()
                .unwrap()
                .success()
        );
    }
    let repo = ServedRepo::prepare(&fleet, "HEAD", &dir.path().join("work"))
        .await
        .unwrap();
    (dir, repo)
}

fn test_limits() -> Limits {
    Limits {
        connections: 16,
        negotiations: 2,
        body_bytes: 1 << 20,
        header_read: Duration::from_secs(1),
        connection: Duration::from_secs(30),
        upload_pack: Duration::from_secs(5),
    }
}

async fn start(limits: Limits) -> (tempfile::TempDir, GitServer) {
    let (dir, repo) = served().await;
    let server = GitServer::start_with(repo, "127.0.0.1:0".parse().unwrap(), None, limits)
        .await
        .unwrap();
    (dir, server)
}

/// One raw HTTP exchange on a blocking socket (the server runs on the test's runtime).
async fn raw(addr: SocketAddr, request: Vec<u8>) -> String {
    tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(&request).unwrap();
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).to_string()
    })
    .await
    .unwrap()
}

fn post(name: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "POST /{name}.git/git-upload-pack HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

async fn clone_works(server: &GitServer) {
    let dest = tempfile::tempdir().unwrap();
    let url = server.url();
    let out = tokio::process::Command::new("git")
        .args(["clone", "--quiet", &url])
        .arg(dest.path().join("c"))
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "clone after the abuse: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dest.path().join("c/app.yaml").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzip_bomb_and_an_oversized_body_are_refused_with_413_not_truncated() {
    let (_dir, server) = start(test_limits()).await;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![b'0'; 8 << 20]).unwrap();
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 64 << 10, "the bomb is small on the wire: {}", bomb.len());
    let answer = raw(
        server.addr,
        post(&server.repo.name, "Content-Encoding: gzip\r\n", &bomb),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let answer = raw(server.addr, post(&server.repo.name, "", &vec![b'0'; 2 << 20])).await;
    assert!(
        answer.starts_with("HTTP/1.1 413"),
        "{}",
        &answer[..answer.len().min(200)]
    );
    clone_works(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_pkt_lines_get_an_error_not_a_hang() {
    let (_dir, server) = start(test_limits()).await;
    for body in [
        &b"zzzz this is not a pkt-line"[..],
        b"0032want 0000000000000000000000000000000000000000\n",
        b"ffff",
        b"",
    ] {
        let started = Instant::now();
        let answer = raw(server.addr, post(&server.repo.name, "", body)).await;
        let status = answer.lines().next().unwrap_or_default().to_string();
        assert!(status.starts_with("HTTP/1.1 "), "{body:?}: {answer}");
        assert!(!status.starts_with("HTTP/1.1 200"), "{body:?} was served: {answer}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{body:?} took {:?}",
            started.elapsed()
        );
    }
    clone_works(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_peers_are_disconnected_and_dropping_the_server_closes_every_connection() {
    let (_dir, server) = start(test_limits()).await;
    let addr = server.addr;
    // Slowloris: headers started, never finished. The header timeout (1 s) closes it.
    let closed_after = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /x.git/info/refs HTTP/1.1\r\nHost: t\r\nX-Slow: ")
            .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let started = Instant::now();
        let mut buf = [0u8; 256];
        let _ = s.read(&mut buf);
        started.elapsed()
    })
    .await
    .unwrap();
    assert!(
        closed_after < Duration::from_secs(5),
        "a slow peer held its connection {closed_after:?}"
    );

    // A connection in the middle of nothing is closed when the server goes.
    let idle = TcpStream::connect(addr).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(server);
    let closed = tokio::task::spawn_blocking(move || {
        let mut idle = idle;
        idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 16];
        matches!(idle.read(&mut buf), Ok(0) | Err(_))
    })
    .await
    .unwrap();
    assert!(closed, "the connection outlived the server");
}

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_idle_sockets_hold_no_more_than_the_cap_and_a_clone_still_works() {
    let limits = Limits {
        header_read: Duration::from_secs(30),
        ..test_limits()
    };
    let (_dir, server) = start(limits).await;
    let addr = server.addr;
    let (fds_before, rss_before) = (open_descriptors(), rss_kib());
    // Connected by the kernel (the accept queue), never sending a byte. Beyond that
    // queue the kernel refuses to complete the handshake: those cost drill nothing.
    let attempts =
        (0..2000).map(|_| tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr)));
    let idle: Vec<tokio::net::TcpStream> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .filter_map(|r| r.ok().and_then(Result::ok))
        .collect();
    assert!(idle.len() > 4 * limits.connections, "only {} connected", idle.len());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let held_by_server = open_descriptors().saturating_sub(fds_before + idle.len());
    eprintln!(
        "{} idle peers connected; the server holds {held_by_server} descriptors",
        idle.len()
    );
    assert!(
        held_by_server <= limits.connections + 8,
        "{} idle peers made the server hold {held_by_server} descriptors (cap {})",
        idle.len(),
        limits.connections
    );
    let grown = rss_kib().saturating_sub(rss_before);
    assert!(
        grown < 64 * 1024,
        "{} idle peers grew memory by {grown} KiB",
        idle.len()
    );
    drop(idle);
    clone_works(&server).await;
}

/// Fuzzing the request side: requests made of plausible and random parts (methods,
/// paths, the headers that select code paths, gzip or plain bodies of pkt-lines and
/// garbage), each sent on its own connection whose write side is then closed. Every
/// one must get an HTTP answer or a close within the limits, and a clone still works
/// after all of them. Bounded cases (PROPTEST_CASES overrides), so CI time is fixed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzzed_requests_are_answered_or_closed_in_time_and_the_server_keeps_serving() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let (_dir, server) = start(test_limits()).await;
    let addr = server.addr;
    assert_eq!(server.repo.name, "fleet", "the paths below name it");
    // Weighted toward the requests a Git client sends, so the cases reach the negotiation.
    let method = prop_oneof![
        3 => Just("POST"),
        2 => Just("GET"),
        1 => prop::sample::select(vec!["PUT", "HEAD", "OPTIONS", "G\u{0}T", ""]),
    ];
    let path = prop::sample::select(vec![
        "/fleet.git/info/refs?service=git-upload-pack",
        "/fleet.git/info/refs?service=git-receive-pack",
        "/fleet.git/git-upload-pack",
        "/fleet.git/git-receive-pack",
        "/../../etc/passwd",
        "/fleet.git/info/refs?service=",
        "*",
        "",
    ]);
    let header = prop::sample::select(vec![
        "",
        "Content-Encoding: gzip\r\n",
        "Content-Encoding: deflate\r\n",
        "Git-Protocol: version=2\r\n",
        "Git-Protocol: version=\u{7f}\r\n",
        "Transfer-Encoding: chunked\r\n",
        "Content-Length: 99999999999999999999\r\n",
        "Content-Type: application/x-git-upload-pack-request\r\n",
    ]);
    let pkt = prop::sample::select(vec![
        "0000".to_string(),
        "0032want 0000000000000000000000000000000000000000\n".to_string(),
        "0009done\n".to_string(),
        "ffff".to_string(),
        "0014command=ls-refs\n0001".to_string(),
    ]);
    let body = prop_oneof![
        prop::collection::vec(pkt, 0..8).prop_map(|p| p.concat().into_bytes()),
        prop::collection::vec(any::<u8>(), 0..2048),
    ];
    let strategy = (
        method,
        path,
        prop::collection::vec(header, 0..3),
        body,
        any::<bool>(),
        any::<bool>(),
    );
    let mut runner = TestRunner::new(Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(96),
        failure_persistence: None,
        ..Config::default()
    });
    let handle = tokio::runtime::Handle::current();
    // The status lines seen: the cases must reach more than one answer of the server.
    let statuses = std::sync::Mutex::new(std::collections::BTreeSet::<String>::new());
    let outcome = tokio::task::block_in_place(|| {
        runner.run(&strategy, |(method, path, mut headers, body, gzip, typed)| {
            let body = if gzip {
                headers.push("Content-Encoding: gzip\r\n");
                gzipped(&body)
            } else {
                body
            };
            if typed {
                headers.push("Content-Type: application/x-git-upload-pack-request\r\n");
            }
            let mut request = format!(
                "{method} {path} HTTP/1.1\r\nHost: t\r\n{}Content-Length: {}\r\n\r\n",
                headers.concat(),
                body.len()
            )
            .into_bytes();
            request.extend_from_slice(&body);
            let started = Instant::now();
            let answer = handle.block_on(raw_then_close(addr, request));
            prop_assert!(
                answer.is_empty() || answer.starts_with("HTTP/1."),
                "not HTTP: {answer:?}"
            );
            prop_assert!(
                started.elapsed() < Duration::from_secs(12),
                "took {:?}",
                started.elapsed()
            );
            if let Some(status) = answer.get(9..12) {
                statuses.lock().unwrap().insert(status.to_string());
            }
            Ok(())
        })
    });
    if let Err(e) = outcome {
        panic!("{e}");
    }
    let statuses = statuses.into_inner().unwrap();
    assert!(
        statuses.len() >= 2,
        "the cases reached too little of the server: {statuses:?}"
    );
    eprintln!("statuses answered: {statuses:?}");
    clone_works(&server).await;
}

fn gzipped(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// Like [`raw`], but the write side is closed after the request: the peer is done, so a
/// server that keeps connections alive must answer and close, not wait.
async fn raw_then_close(addr: SocketAddr, request: Vec<u8>) -> String {
    tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        // A peer that stops reading (the server refused early) may reset the connection.
        let _ = s.write_all(&request);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).to_string()
    })
    .await
    .unwrap()
}
