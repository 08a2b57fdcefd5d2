//! The on-disk record of what prepare did, so that unprepare and a restarted plugin can undo
//! it: versioned, CRC-32 checksummed JSON, replaced atomically.
//!
//! ```json
//! {"version": 1, "checksum": 2302468743,
//!  "data": {"bootId": "…", "claims": {"<uid>": {"namespace": "…", "name": "…",
//!           "state": "PrepareCompleted", "devices": [ … ]}}}}
//! ```
//!
//! The checksum is CRC-32 (IEEE) of `data` serialised compactly, fields in declaration order
//! and claims sorted by UID (what `serde_json::to_vec` of [`CheckpointData`] gives).
//! Every optional field is skipped when empty, so adding one in a later version keeps the
//! checksums of files that do not use it (the NVIDIA driver's issue #1080).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::atomic::{self, Durability};
use super::claim::{ClaimRef, PreparedDevice, base_request};
use super::device::{DeviceKind, GpuRef, SharingPlan};
use super::sealed;

/// The format version this build reads and writes.
pub const CHECKPOINT_VERSION: u32 = 1;
/// File name inside the state directory.
pub const CHECKPOINT_FILE: &str = "checkpoint.json";
/// A checkpoint larger than this is not one we wrote (32 results × a few hundred claims).
const MAX_CHECKPOINT_BYTES: u64 = 16 << 20;
/// Corrupt checkpoints moved aside are named `checkpoint.json.corrupt-<n>`.
const CORRUPT_SUFFIX: &str = ".corrupt-";
/// At most this many corrupt checkpoints are kept beside the live one: enough to diagnose a
/// recurring fault, bounded so a disk that corrupts every write cannot fill the directory.
pub const MAX_CORRUPT_KEPT: usize = 8;

/// Why the checkpoint could not be read or written.
#[derive(Debug, Error)]
pub enum CheckpointError {
    /// The file could not be read or written.
    #[error("checkpoint {path}: {source}")]
    Io {
        /// The checkpoint file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The file is not a valid checkpoint. Calls fail with this until the next recovery
    /// (at start, then every minute) moves it aside and reconciles the GPUs.
    #[error(
        "checkpoint {path} is corrupt ({reason}); the next recovery moves it aside and removes what no claim accounts for"
    )]
    Corrupt {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A corrupt checkpoint cannot be moved aside: as many are kept as allowed.
    #[error(
        "checkpoint {path} is corrupt and {MAX_CORRUPT_KEPT} corrupt checkpoints are already kept beside it; inspect and remove them so the next recovery can move this one aside"
    )]
    TooManyCorrupt {
        /// The checkpoint file.
        path: PathBuf,
    },
    /// The file was written by another version of tessera.
    #[error(
        "checkpoint {path} has version {found}, this build reads version {CHECKPOINT_VERSION}; it was left untouched"
    )]
    WrongVersion {
        /// The checkpoint file.
        path: PathBuf,
        /// The version in the file.
        found: u64,
    },
}

/// Where a claim is in its life on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClaimState {
    /// Recorded before the first device change; devices may be half-prepared.
    PrepareStarted,
    /// Every device is prepared and the CDI spec is written.
    PrepareCompleted,
    /// Teardown began; devices may be half-released.
    UnprepareStarted,
}

/// One claim as prepare left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClaimRecord {
    /// Claim namespace.
    pub namespace: String,
    /// Claim name.
    pub name: String,
    /// Progress.
    pub state: ClaimState,
    /// The devices, in allocation-result order.
    pub devices: Vec<DeviceRecord>,
}

/// One device of a claim, with everything needed to undo its preparation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeviceRecord {
    /// Request (with subrequest) from the allocation result.
    pub request: String,
    /// Pool.
    pub pool: String,
    /// Device name.
    pub device: String,
    /// Share ID of a multiply-allocated device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_id: Option<String>,
    /// Admin access: no hardware change, no exclusivity.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub admin_access: bool,
    /// The GPU.
    pub gpu: GpuRef,
    /// What the device is.
    pub kind: DeviceKind,
    /// GPU-wide sharing this device needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharing: Option<SharingPlan>,
    /// UUID the container sees (GPU or MIG); for a dynamic MIG device, known once created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visible_uuid: Option<String>,
    /// Fully-qualified CDI device IDs.
    pub cdi_device_ids: Vec<String>,
}

impl ClaimRecord {
    /// The kubelet's view of a prepared claim.
    pub fn prepared_devices(&self) -> Vec<PreparedDevice> {
        self.devices
            .iter()
            .map(|d| PreparedDevice {
                request_names: vec![base_request(&d.request).to_owned()],
                pool: d.pool.clone(),
                device: d.device.clone(),
                cdi_device_ids: d.cdi_device_ids.clone(),
                share_id: d.share_id.clone(),
            })
            .collect()
    }

    /// `namespace/name (uid)` for messages.
    pub fn display(&self, uid: &str) -> String {
        ClaimRef::new(&self.namespace, &self.name, uid).to_string()
    }
}

/// Everything the checkpoint holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckpointData {
    /// `/proc/sys/kernel/random/boot_id` when written: after a reboot, nothing prepared
    /// before it exists any more.
    #[serde(default)]
    pub boot_id: String,
    /// By claim UID.
    #[serde(default)]
    pub claims: BTreeMap<String, ClaimRecord>,
}

impl CheckpointData {
    /// Claims whose preparation completed.
    pub fn completed(&self) -> usize {
        self.claims
            .values()
            .filter(|c| c.state == ClaimState::PrepareCompleted)
            .count()
    }
}

#[derive(Deserialize)]
struct EnvelopeIn {
    #[allow(dead_code)] // checked through VersionOnly first
    version: u64,
    checksum: u32,
    data: CheckpointData,
    /// Sections a later build may add beside `data` (see [`is_later_section`]); anything
    /// else is an unknown field.
    #[serde(flatten)]
    later: BTreeMap<String, serde_json::Value>,
}

/// Whether `key` names a section a later format version writes beside the version-1 `data`
/// (`v2`, `v3`, …), the way NVIDIA's DRA driver keeps `v1`, `v2` and `v3` side by side in
/// one file (`cmd/gpu-kubelet-plugin/checkpoint.go`): a build reads the newest section it
/// knows and ignores newer ones, so a later build that still writes `data` can be rolled
/// back to this one. Each such section carries its own checksum, which this build cannot
/// check and does not need: it never reads them.
fn is_later_section(key: &str) -> bool {
    key.strip_prefix('v').is_some_and(|n| {
        !n.is_empty() && !n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit()) && n != "1"
    })
}

#[derive(Deserialize)]
struct VersionOnly {
    version: Option<u64>,
}

/// The checkpoint file in a state directory.
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    path: PathBuf,
}

impl CheckpointStore {
    /// The store for `state_dir/checkpoint.json`.
    pub fn new(state_dir: &Path) -> Self {
        CheckpointStore {
            path: state_dir.join(CHECKPOINT_FILE),
        }
    }

    /// The checkpoint file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Read the checkpoint; a missing file is an empty checkpoint (first start).
    pub fn load(&self) -> Result<CheckpointData, CheckpointError> {
        let io_err = |source| CheckpointError::Io {
            path: self.path.clone(),
            source,
        };
        let corrupt = |reason: String| CheckpointError::Corrupt {
            path: self.path.clone(),
            reason,
        };
        match fs::metadata(&self.path) {
            Ok(meta) if meta.len() > MAX_CHECKPOINT_BYTES => {
                return Err(corrupt(format!("{} bytes is too large", meta.len())));
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(CheckpointData::default()),
            Err(e) => return Err(io_err(e)),
        }
        let bytes = fs::read(&self.path).map_err(io_err)?;
        let version: VersionOnly =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        match version.version {
            Some(v) if v == u64::from(CHECKPOINT_VERSION) => {}
            Some(found) => {
                return Err(CheckpointError::WrongVersion {
                    path: self.path.clone(),
                    found,
                });
            }
            None => return Err(corrupt("no version field".to_owned())),
        }
        let envelope: EnvelopeIn =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if let Some(unknown) = envelope.later.keys().find(|k| !is_later_section(k)) {
            return Err(corrupt(format!("unknown field `{unknown}`")));
        }
        if let Some(reason) = sealed::mismatch(envelope.checksum, &envelope.data) {
            return Err(corrupt(reason));
        }
        Ok(envelope.data)
    }

    /// Replace the checkpoint with `data`, durably.
    pub fn save(&self, data: &CheckpointData) -> Result<(), CheckpointError> {
        let io_err = |source| CheckpointError::Io {
            path: self.path.clone(),
            source,
        };
        let bytes =
            sealed::seal(CHECKPOINT_VERSION, data).map_err(|e| io_err(io::Error::other(e)))?;
        atomic::write(&self.path, &bytes, Durability::PowerLoss).map_err(io_err)
    }

    /// Rename a corrupt checkpoint to the first free `checkpoint.json.corrupt-<n>` beside it,
    /// durably, so the next load starts empty and the file stays for diagnosis.
    pub fn move_aside(&self) -> Result<PathBuf, CheckpointError> {
        let io_err = |source| CheckpointError::Io {
            path: self.path.clone(),
            source,
        };
        let free = (1..=MAX_CORRUPT_KEPT)
            .map(|n| self.corrupt_path(n))
            .find(|p| !p.exists())
            .ok_or_else(|| CheckpointError::TooManyCorrupt {
                path: self.path.clone(),
            })?;
        fs::rename(&self.path, &free).map_err(io_err)?;
        if let Some(dir) = self.path.parent() {
            fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io_err)?;
        }
        Ok(free)
    }

    /// The corrupt checkpoints kept beside this one, by number.
    pub fn corrupt_kept(&self) -> Vec<PathBuf> {
        (1..=MAX_CORRUPT_KEPT)
            .map(|n| self.corrupt_path(n))
            .filter(|p| p.exists())
            .collect()
    }

    fn corrupt_path(&self, n: usize) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(format!("{CORRUPT_SUFFIX}{n}"));
        PathBuf::from(name)
    }

    /// Delete temp files a crash mid-save left behind.
    pub fn remove_temps(&self) -> io::Result<Vec<PathBuf>> {
        match self.path.parent() {
            Some(dir) => atomic::remove_temps(dir, CHECKPOINT_FILE),
            None => Ok(Vec::new()),
        }
    }
}

#[cfg(test)]
pub(crate) mod previous_release;
#[cfg(test)]
mod tests;
