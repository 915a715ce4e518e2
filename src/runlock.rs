//! A run in progress holds an exclusive lock on `run.lock` in its work folder, so
//! `drill clean` (or anything else) can tell a live run from a dead one's leftovers.
//!
//! The lock is an advisory `flock` (std's `File::lock`): the kernel releases it when the
//! process ends however it ends, so a crashed run's lock is never stale and nothing has
//! to take it over. The file also holds the run's PID, to name the process in messages.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Write as _};
use std::path::Path;

use anyhow::{Context, Result};

pub const LOCK_FILE: &str = "run.lock";

/// Held for a run's life; dropping it releases the lock.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl RunLock {
    /// Takes the lock of the run whose work folder is `work_dir` (which must exist).
    pub fn acquire(work_dir: &Path) -> Result<RunLock> {
        let path = work_dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .read(true)
            .open(&path)
            .with_context(|| format!("failed to open {}", path.display()))?;
        file.try_lock().map_err(|err| match err {
            TryLockError::WouldBlock => anyhow::anyhow!("{} is held by another run", path.display()),
            TryLockError::Error(e) => anyhow::Error::from(e).context(format!("failed to lock {}", path.display())),
        })?;
        file.set_len(0)?;
        write!(file, "{}", std::process::id()).with_context(|| format!("failed to write {}", path.display()))?;
        Ok(RunLock { _file: file })
    }
}

/// Whether a run still holds `work_dir`'s lock: Some(its PID) while it runs, None when
/// no process does (finished, crashed, or a folder without a lock file).
pub fn holder(work_dir: &Path) -> Option<u32> {
    let mut file = File::open(work_dir.join(LOCK_FILE)).ok()?;
    match file.try_lock_shared() {
        // Free: nobody holds it (our shared lock is released when `file` drops).
        Ok(()) => None,
        Err(TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            Some(text.trim().parse().unwrap_or(0))
        }
        Err(TryLockError::Error(_)) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_names_its_process_and_is_free_once_dropped() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(holder(dir.path()), None, "no lock file: no run");
        let lock = RunLock::acquire(dir.path()).unwrap();
        assert_eq!(holder(dir.path()), Some(std::process::id()));
        let again = RunLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(again.contains("held by another run"), "{again}");
        drop(lock);
        assert_eq!(holder(dir.path()), None, "released with its holder");
        // A dead run's lock is taken over by the next without ceremony.
        let _next = RunLock::acquire(dir.path()).unwrap();
        assert_eq!(holder(dir.path()), Some(std::process::id()));
    }
}
