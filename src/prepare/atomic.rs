//! Durable file replacement: a reader (the runtime, a restarted plugin) sees the old file or
//! the new one, never a torn mix, and a power cut after return cannot undo the change.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Suffix of the temporary files; CDI loaders ignore it (they read `*.json` and `*.yaml`).
const TEMP_SUFFIX: &str = ".tmp";

/// How far a write must survive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Survives a power cut: the file and the directory entry are fsynced.
    PowerLoss,
    /// Survives the process dying (the page cache keeps it), not a power cut. For files
    /// that are meaningless after a reboot anyway, where two fsyncs would only add latency.
    ProcessCrash,
}

/// Replace `path` with `bytes`: temp file in the same directory → write → (fsync) → rename
/// → (fsync the directory, so the rename itself survives a power cut).
pub fn write(path: &Path, bytes: &[u8], durability: Durability) -> io::Result<()> {
    let dir = parent(path)?;
    let temp = temp_path(path)?;
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&temp)?;
        file.write_all(bytes)?;
        if durability == Durability::PowerLoss {
            file.sync_all()?;
        }
        fs::rename(&temp, path)?;
        if durability == Durability::PowerLoss {
            sync_dir(dir)?;
        }
        Ok(())
    })();
    if written.is_err() {
        // Best effort: a leftover temp file is also removed by `remove_temps` at start.
        let _ = fs::remove_file(&temp);
    }
    written
}

/// Delete `path`. Returns whether it existed; a missing file is not an error, so removal is
/// idempotent.
pub fn remove(path: &Path, durability: Durability) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => {
            if durability == Durability::PowerLoss {
                sync_dir(parent(path)?)?;
            }
            Ok(true)
        }
        // No file, or no directory to hold one: nothing to remove.
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Delete temp files a crash left in `dir` whose names start with `.{prefix}`.
pub fn remove_temps(dir: &Path, prefix: &str) -> io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(removed),
        Err(e) => return Err(e),
    };
    let lead = format!(".{prefix}");
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(&lead) && name.ends_with(TEMP_SUFFIX) {
            fs::remove_file(entry.path())?;
            removed.push(entry.path());
        }
    }
    Ok(removed)
}

fn parent(path: &Path) -> io::Result<&Path> {
    path.parent().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} has no parent directory", path.display()),
        )
    })
}

/// `.<name>.tmp` beside `path`: hidden, so the kubelet's plugin watcher and CDI loaders skip it.
fn temp_path(path: &Path) -> io::Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} has no file name", path.display()),
        )
    })?;
    Ok(parent(path)?.join(format!(".{}{TEMP_SUFFIX}", name.to_string_lossy())))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_files_and_removes_idempotently() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write(&path, b"one", Durability::PowerLoss).unwrap();
        write(&path, b"two", Durability::ProcessCrash).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temp file left: {names:?}");
        assert!(remove(&path, Durability::PowerLoss).unwrap());
        assert!(!remove(&path, Durability::PowerLoss).unwrap());
    }

    #[test]
    fn a_write_into_a_missing_directory_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            write(
                &dir.path().join("nope/state.json"),
                b"x",
                Durability::PowerLoss
            )
            .is_err()
        );
    }

    #[test]
    fn leftover_temps_are_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(".checkpoint.json.tmp"), b"half").unwrap();
        fs::write(dir.path().join("checkpoint.json"), b"keep").unwrap();
        let removed = remove_temps(dir.path(), "checkpoint").unwrap();
        assert_eq!(removed.len(), 1);
        assert!(dir.path().join("checkpoint.json").exists());
    }
}
