//! drill.log: drill's own diagnostics (debug level, whatever `-v` says on stderr) kept
//! for the run in progress and written beside its report, so a failed nightly run can
//! be read afterwards without re-running it with `-v`.
//!
//! One buffer per process: runs of one invocation are sequential, and the caller takes
//! the buffer after each ([`take`]). Only drill's own targets are kept (not kube's or
//! hyper's request logs), at most [`LIMIT`] bytes, so a long run cannot eat memory.

use std::io::Write;
use std::sync::Mutex;

/// The most a run's log keeps; later lines are dropped and the log says so.
pub const LIMIT: usize = 8 * 1024 * 1024;

/// The run's log, and whether it reached the limit.
static BUFFER: Mutex<(Vec<u8>, bool)> = Mutex::new((Vec::new(), false));

/// Writes into the run's buffer (a `MakeWriter` for tracing-subscriber's fmt layer).
#[derive(Debug, Clone, Copy, Default)]
pub struct RunLogWriter;

impl Write for RunLogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut guard) = BUFFER.lock() {
            let (buffer, full) = &mut *guard;
            if !*full {
                if buffer.len() + bytes.len() <= LIMIT {
                    buffer.extend_from_slice(bytes);
                } else {
                    buffer.extend_from_slice(b"[drill.log: limit reached, later lines dropped]\n");
                    *full = true;
                }
            }
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RunLogWriter {
    type Writer = RunLogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

/// The log since the last call (the run that just ended), leaving the buffer empty.
pub fn take() -> Vec<u8> {
    BUFFER
        .lock()
        .map(|mut b| {
            b.1 = false;
            std::mem::take(&mut b.0)
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_kept_until_taken_and_the_buffer_is_bounded() {
        let _ = take();
        RunLogWriter.write_all(b"one\n").unwrap();
        assert_eq!(take(), b"one\n");
        assert!(take().is_empty(), "taken once");
        let big = vec![b'x'; LIMIT - 10];
        RunLogWriter.write_all(&big).unwrap();
        RunLogWriter.write_all(b"this line does not fit\n").unwrap();
        RunLogWriter.write_all(b"nor this\n").unwrap();
        let log = take();
        assert!(log.len() <= LIMIT + 64, "{}", log.len());
        let tail = String::from_utf8_lossy(&log[LIMIT - 20..]).to_string();
        assert!(
            tail.ends_with("[drill.log: limit reached, later lines dropped]\n"),
            "{tail}"
        );
        RunLogWriter.write_all(b"the next run\n").unwrap();
        assert_eq!(take(), b"the next run\n", "a new run starts empty and unbounded");
    }
}
