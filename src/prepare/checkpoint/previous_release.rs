//! The checkpoint reader of the previous release (format version 1, as first shipped), kept
//! as a test-only copy of its schema: proof that a checkpoint this build writes can still be
//! read after a rollback. It is strict exactly where that release is: any other version,
//! any unknown field and any checksum mismatch is refused.
//!
//! Frozen: do not change it to follow the current types. When the written format changes,
//! this copy is what says whether a rollback still works.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GpuRef {
    pub index: u32,
    pub uuid: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Placement {
    pub start: u8,
    pub size: u8,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum DeviceKind {
    Whole,
    #[serde(rename_all = "camelCase")]
    StaticMig {
        uuid: String,
        profile: String,
        placement: Placement,
    },
    #[serde(rename_all = "camelCase")]
    DynamicMig {
        profile: String,
        placement: Placement,
    },
    Shared,
    #[serde(rename_all = "camelCase")]
    SharedMig {
        profile: String,
        placement: Placement,
    },
    Share {
        replica: u32,
    },
}

#[derive(Debug, Serialize, Deserialize)]
pub enum TimeSliceInterval {
    Default,
    Short,
    Medium,
    Long,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "mode")]
pub enum GpuSharing {
    TimeSlicing { interval: TimeSliceInterval },
    Mps,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MpsLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_thread_percentage: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned_memory_limit_bytes: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SharingPlan {
    pub gpu: GpuSharing,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mps: Option<MpsLimits>,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum ClaimState {
    PrepareStarted,
    PrepareCompleted,
    UnprepareStarted,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeviceRecord {
    pub request: String,
    pub pool: String,
    pub device: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_id: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub admin_access: bool,
    pub gpu: GpuRef,
    pub kind: DeviceKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharing: Option<SharingPlan>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visible_uuid: Option<String>,
    pub cdi_device_ids: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClaimRecord {
    pub namespace: String,
    pub name: String,
    pub state: ClaimState,
    pub devices: Vec<DeviceRecord>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckpointData {
    #[serde(default)]
    pub boot_id: String,
    #[serde(default)]
    pub claims: BTreeMap<String, ClaimRecord>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvelopeIn {
    version: u64,
    checksum: u32,
    data: CheckpointData,
}

/// Read a checkpoint file's bytes as the previous release did, or say why it refuses.
pub fn load(bytes: &[u8]) -> Result<CheckpointData, String> {
    let envelope: EnvelopeIn = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if envelope.version != 1 {
        return Err(format!(
            "version {}, this build reads version 1",
            envelope.version
        ));
    }
    let computed = crc32fast::hash(&serde_json::to_vec(&envelope.data).map_err(|e| e.to_string())?);
    if computed != envelope.checksum {
        return Err(format!(
            "checksum mismatch: file says {}, content gives {computed}",
            envelope.checksum
        ));
    }
    Ok(envelope.data)
}
