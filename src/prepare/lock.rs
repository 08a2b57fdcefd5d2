//! Serialises prepare and unprepare across plugin instances: during a DaemonSet rolling
//! update two pods share the state directory and the kubelet may call either.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use super::error::PrepareError;

/// File name of the lock, as the Go helper names it.
pub const LOCK_FILE: &str = "serialize.lock";

/// An exclusive `flock` on `serialize.lock`, released on drop (and by the kernel if the
/// process dies, so a crash never leaves the node locked).
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

impl StateLock {
    /// Block until the lock in `state_dir` is ours. Call from a blocking thread.
    pub fn acquire(state_dir: &Path) -> Result<StateLock, PrepareError> {
        let path: PathBuf = state_dir.join(LOCK_FILE);
        let err = |source| PrepareError::Lock {
            path: path.display().to_string(),
            source,
        };
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(err)?;
        file.lock().map_err(err)?;
        Ok(StateLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_waits_for_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let first = StateLock::acquire(dir.path()).unwrap();
        let path = dir.path().join(LOCK_FILE);
        let other = OpenOptions::new().write(true).open(&path).unwrap();
        assert!(other.try_lock().is_err(), "held by the first");
        drop(first);
        assert!(other.try_lock().is_ok());
    }
}
