//! Which prepared claim holds which GPU or MIG instance, from prepare's checkpoint.
//!
//! The checkpoint is the plugin's own record of what it prepared; reading it takes no lock
//! (it is replaced atomically), so the usage sampler never waits behind a prepare.

use crate::prepare::checkpoint::{CheckpointData, ClaimState, DeviceRecord};
use crate::prepare::device::{DeviceKind, MpsLimits};

/// One prepared device of one claim, keyed by the UUID NVML reports its processes under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holding {
    /// Claim UID.
    pub claim_uid: String,
    /// Claim namespace (a pod only references claims in its own namespace).
    pub namespace: String,
    /// Claim name.
    pub claim: String,
    /// Published device name, e.g. `gpu-0-mig-1g10gb-0`.
    pub device: String,
    /// The device's `type` attribute: `gpu`, `mig`, `shared` or `share`.
    pub device_type: &'static str,
    /// `GPU-…` or `MIG-…`: where NVML lists the processes of this device.
    pub uuid: String,
    /// The physical GPU's `GPU-…` UUID (the inventory knows its model and memory).
    pub gpu_uuid: String,
    /// MIG profile of a `mig` device (or of the full-size instance a share of a dynamic-MIG
    /// GPU runs on), e.g. `1g.10gb`.
    pub profile: Option<String>,
    /// MPS client limits of a share run under MPS: what the share may use of the GPU.
    pub mps: Option<MpsLimits>,
}

impl Holding {
    /// Whether the device is held by one claim only (whole GPU, MIG instance): then the
    /// device's own utilization is this claim's.
    pub fn exclusive(&self) -> bool {
        matches!(self.device_type, "gpu" | "mig")
    }
}

/// Every device of every fully prepared claim. Half-prepared claims are skipped: their
/// containers cannot have started.
pub fn holdings(data: &CheckpointData) -> Vec<Holding> {
    let mut out = Vec::new();
    for (uid, claim) in &data.claims {
        if claim.state != ClaimState::PrepareCompleted {
            continue;
        }
        for device in &claim.devices {
            let Some(uuid) = visible_uuid(device) else {
                continue;
            };
            out.push(Holding {
                claim_uid: uid.clone(),
                namespace: claim.namespace.clone(),
                claim: claim.name.clone(),
                device: device.device.clone(),
                device_type: device_type(&device.kind),
                uuid,
                gpu_uuid: device.gpu.uuid.clone(),
                profile: profile(&device.kind),
                mps: device.sharing.and_then(|s| s.mps),
            });
        }
    }
    out
}

/// The `type` attribute the device was published with (DESIGN.md, device model).
pub fn device_type(kind: &DeviceKind) -> &'static str {
    match kind {
        DeviceKind::Whole => "gpu",
        DeviceKind::StaticMig { .. } | DeviceKind::DynamicMig { .. } => "mig",
        DeviceKind::Shared | DeviceKind::SharedMig { .. } => "shared",
        DeviceKind::Share { .. } => "share",
    }
}

fn profile(kind: &DeviceKind) -> Option<String> {
    match kind {
        DeviceKind::StaticMig { profile, .. }
        | DeviceKind::DynamicMig { profile, .. }
        | DeviceKind::SharedMig { profile, .. } => Some(profile.clone()),
        DeviceKind::Whole | DeviceKind::Shared | DeviceKind::Share { .. } => None,
    }
}

fn visible_uuid(device: &DeviceRecord) -> Option<String> {
    if let Some(uuid) = &device.visible_uuid {
        return Some(uuid.clone());
    }
    match &device.kind {
        DeviceKind::StaticMig { uuid, .. } => Some(uuid.clone()),
        DeviceKind::Whole | DeviceKind::Shared | DeviceKind::Share { .. } => {
            Some(device.gpu.uuid.clone())
        }
        // Not created yet: nothing can run on it.
        DeviceKind::DynamicMig { .. } | DeviceKind::SharedMig { .. } => None,
    }
}
