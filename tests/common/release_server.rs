//! A release-shaped URL tree on loopback for drill's `engine.<name>.version` downloads,
//! shared by the CLI and end-to-end tests (each includes it with `#[path]`).
#![allow(dead_code)]

/// A release-shaped URL tree on loopback (`python3 -m http.server`), its request log
/// read from stderr. Killed when dropped.
pub struct ReleaseServer {
    child: std::process::Child,
    pub url: String,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ReleaseServer {
    pub fn start(root: &std::path::Path) -> ReleaseServer {
        use std::io::BufRead as _;
        let mut child = std::process::Command::new("python3")
            .args(["-u", "-m", "http.server", "--bind", "127.0.0.1", "0"])
            .current_dir(root)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .split(" port ")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_string();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (stderr, sink) = (child.stderr.take().unwrap(), log.clone());
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(l);
            }
        });
        ReleaseServer {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    pub fn requests(&self) -> Vec<String> {
        std::thread::sleep(std::time::Duration::from_millis(200));
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("\"GET "))
            .cloned()
            .collect()
    }
}

impl Drop for ReleaseServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
