//! `<state-dir>/mps-daemons.json`: which MPS control daemon runs for which device, as which
//! process, for which claims. Versioned, CRC-32 checksummed JSON replaced atomically, like
//! the checkpoint, and written under the same lock.
//!
//! A file of its own, beside `checkpoint.json` rather than inside it: the previous release
//! refuses any field it does not know anywhere in the checkpoint, and must still read what
//! this build writes (`docs/plugin.md`, "Compatibility across releases"). It never opens
//! this file. Nothing here is needed to undo a claim safely: the claims that need a daemon
//! come from the checkpoint, and a daemon with no record is found by its pipe directory.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::MpsError;
use crate::prepare::atomic::{self, Durability};
use crate::prepare::device::MpsLimits;
use crate::prepare::sealed;

/// File name inside the state directory.
pub const MPS_RECORD_FILE: &str = "mps-daemons.json";
/// The format version this build reads and writes.
const VERSION: u32 = 1;
/// A record larger than this is not one we wrote (one entry per GPU or MIG instance).
const MAX_BYTES: u64 = 4 << 20;

/// One running daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DaemonRecord {
    /// The GPU or MIG UUID it serves (its `CUDA_VISIBLE_DEVICES`).
    pub device: String,
    /// The daemon's PID (from its PID file).
    pub pid: u32,
    /// Its start time, `/proc/<pid>/stat` field 22: with the PID, its identity.
    pub start_time: u64,
    /// The PID namespace the PID belongs to (`/proc/self/ns/pid` of the plugin that started
    /// it, e.g. `pid:[4026532201]`). During a rolling update two plugin containers, each in
    /// its own PID namespace, share this record: a PID from another namespace says nothing
    /// here, so such a daemon is judged by whether it answers on its pipe directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_namespace: Option<String>,
    /// `CUDA_MPS_PIPE_DIRECTORY`.
    pub pipe_dir: PathBuf,
    /// `CUDA_MPS_LOG_DIRECTORY`.
    pub log_dir: PathBuf,
    /// UIDs of the claims whose MPS shares it serves.
    #[serde(default)]
    pub clients: BTreeSet<String>,
    /// The defaults last set on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults: Option<MpsLimits>,
    /// How often it was found dead and started again since the first start.
    #[serde(default)]
    pub restarts: u32,
}

/// Every daemon, by device UUID.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DaemonsData {
    /// By the GPU or MIG UUID they serve.
    #[serde(default)]
    pub daemons: BTreeMap<String, DaemonRecord>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvelopeIn {
    version: u32,
    checksum: u32,
    data: DaemonsData,
}

/// Read the record at `path`; a missing file is no daemons.
pub(super) fn load(path: &Path) -> Result<DaemonsData, MpsError> {
    let corrupt = |reason: String| MpsError::Corrupt {
        path: path.to_owned(),
        reason,
    };
    let io_err = |source| MpsError::Io {
        action: "read",
        path: path.to_owned(),
        source,
    };
    match fs::metadata(path) {
        Ok(meta) if meta.len() > MAX_BYTES => {
            return Err(corrupt(format!("{} bytes is too large", meta.len())));
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(DaemonsData::default()),
        Err(e) => return Err(io_err(e)),
    }
    let bytes = fs::read(path).map_err(io_err)?;
    let envelope: EnvelopeIn =
        serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    if envelope.version != VERSION {
        return Err(corrupt(format!(
            "version {}, this build reads version {VERSION}",
            envelope.version
        )));
    }
    if let Some(reason) = sealed::mismatch(envelope.checksum, &envelope.data) {
        return Err(corrupt(reason));
    }
    Ok(envelope.data)
}

/// Replace the record at `path` with `data`, durably.
pub(super) fn save(path: &Path, data: &DaemonsData) -> Result<(), MpsError> {
    let io_err = |source| MpsError::Io {
        action: "write",
        path: path.to_owned(),
        source,
    };
    let bytes = sealed::seal(VERSION, data).map_err(|e| io_err(io::Error::other(e)))?;
    atomic::write(path, &bytes, Durability::PowerLoss).map_err(io_err)
}
