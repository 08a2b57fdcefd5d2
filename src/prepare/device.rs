//! What an allocated device name means on this node: which GPU, which kind of device, what
//! hardware it occupies (its footprint, to refuse double use) and how its GPU is shared.

use serde::{Deserialize, Serialize};

use super::claim::AllocatedDevice;
use super::config::{Sharing, TimeSliceInterval};
use super::error::PrepareError;
use super::quantity::parse_quantity;
use crate::model::mig::{MigProfile, Placement, profiles};
use crate::model::{DeviceName, Gpu, Inventory, MigState};

/// A physical GPU as prepare addresses it: NVML index for messages, UUID for the hardware.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GpuRef {
    /// NVML index.
    pub index: u32,
    /// `GPU-…` UUID.
    pub uuid: String,
}

/// What kind of device a name resolved to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum DeviceKind {
    /// The whole GPU, MIG off.
    Whole,
    /// A MIG device the admin created; prepare only hands it out.
    #[serde(rename_all = "camelCase")]
    StaticMig {
        /// `MIG-…` UUID.
        uuid: String,
        /// Profile name, e.g. `1g.10gb`.
        profile: String,
        /// Where it sits.
        placement: Placement,
    },
    /// A MIG device prepare creates, and unprepare destroys. The whole GPU of a GPU in
    /// dynamic MIG mode is the full-size profile.
    #[serde(rename_all = "camelCase")]
    DynamicMig {
        /// Profile name, e.g. `1g.10gb`.
        profile: String,
        /// Where it will sit.
        placement: Placement,
    },
    /// One share of the GPU shared by consumable capacity.
    Shared,
    /// One share of a GPU in dynamic MIG mode: the shares run on the full-size instance,
    /// which the first share creates and the last one destroys.
    #[serde(rename_all = "camelCase")]
    SharedMig {
        /// The full-size profile, e.g. `7g.80gb`.
        profile: String,
        /// Its placement (the whole GPU).
        placement: Placement,
    },
    /// One of N time-sliced replicas.
    Share {
        /// Replica number.
        replica: u32,
    },
}

/// A device name resolved against the inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedDevice {
    /// The GPU it lives on.
    pub gpu: GpuRef,
    /// What it is.
    pub kind: DeviceKind,
}

/// The GPU-wide setting shared devices need; one per GPU, agreed on by every holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "mode")]
pub enum GpuSharing {
    /// Time-slicing with this interval.
    TimeSlicing {
        /// The GPU's time slice.
        interval: TimeSliceInterval,
    },
    /// CUDA MPS clients.
    Mps,
}

impl std::fmt::Display for GpuSharing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GpuSharing::TimeSlicing { interval } => write!(f, "TimeSlicing({interval:?})"),
            GpuSharing::Mps => write!(f, "MPS"),
        }
    }
}

/// Per-client MPS limits, set in the container's environment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MpsLimits {
    /// `CUDA_MPS_ACTIVE_THREAD_PERCENTAGE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_thread_percentage: Option<u32>,
    /// `CUDA_MPS_PINNED_DEVICE_MEM_LIMIT`, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned_memory_limit_bytes: Option<u64>,
}

/// How a prepared device shares its GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SharingPlan {
    /// The GPU-wide setting.
    pub gpu: GpuSharing,
    /// Client limits when the GPU runs MPS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mps: Option<MpsLimits>,
}

/// The hardware a prepared device occupies on its GPU, for the double-use check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Footprint<'a> {
    /// All of the GPU, alone.
    Exclusive,
    /// These memory slices of a GPU in MIG mode.
    Slices(Placement),
    /// One share of the shared device, identified by its share ID.
    SharedUse(Option<&'a str>),
    /// One time-sliced replica.
    Replica(u32),
}

impl Footprint<'_> {
    /// Whether two devices on the same GPU, held by different claims, exclude each other.
    pub fn conflicts_with(&self, other: &Footprint<'_>) -> bool {
        use Footprint::{Exclusive, Replica, SharedUse, Slices};
        match (self, other) {
            (Exclusive, _) | (_, Exclusive) => true,
            (Slices(a), Slices(b)) => a.overlaps(*b),
            (Slices(_), _) | (_, Slices(_)) => true,
            // A share without an ID cannot be told apart from another one.
            (SharedUse(a), SharedUse(b)) => a.is_none() || b.is_none() || a == b,
            (Replica(a), Replica(b)) => a == b,
            (SharedUse(_), Replica(_)) | (Replica(_), SharedUse(_)) => false,
        }
    }
}

impl DeviceKind {
    /// What this device occupies; `share_id` tells shares of the shared device apart.
    pub fn footprint<'a>(&self, share_id: Option<&'a str>) -> Footprint<'a> {
        match self {
            DeviceKind::Whole => Footprint::Exclusive,
            DeviceKind::StaticMig { placement, .. } | DeviceKind::DynamicMig { placement, .. } => {
                Footprint::Slices(*placement)
            }
            DeviceKind::Shared | DeviceKind::SharedMig { .. } => Footprint::SharedUse(share_id),
            DeviceKind::Share { replica } => Footprint::Replica(*replica),
        }
    }
}

/// Resolve `name` (a published device name) on this node.
pub fn resolve(
    name: &str,
    inventory: &Inventory,
    share_replicas: u32,
) -> Result<ResolvedDevice, PrepareError> {
    let unknown = |reason: String| PrepareError::UnknownDevice {
        device: name.chars().take(80).collect(),
        reason,
    };
    let parsed: DeviceName = name.parse().map_err(|e| unknown(format!("{e}")))?;
    let gpu = inventory
        .gpus
        .iter()
        .find(|g| g.index == parsed.gpu())
        .ok_or_else(|| unknown(format!("this node has no GPU {}", parsed.gpu())))?;
    let gpu_ref = GpuRef {
        index: gpu.index,
        uuid: gpu.uuid.clone(),
    };
    let kind = match (&parsed, &gpu.mig) {
        (DeviceName::Whole { .. }, MigState::Disabled) => DeviceKind::Whole,
        (DeviceName::Whole { .. }, MigState::Dynamic) => {
            let full = full_gpu_profile(gpu).ok_or_else(|| {
                unknown(format!(
                    "GPU {} is in dynamic MIG mode but its product {:?} has no full-GPU profile in the catalog",
                    gpu.index, gpu.product_name
                ))
            })?;
            DeviceKind::DynamicMig {
                profile: full.0.name.to_owned(),
                placement: full.1,
            }
        }
        (DeviceName::Whole { .. }, MigState::Static { .. }) => {
            return Err(unknown(format!(
                "GPU {} is partitioned by its admin (static MIG); only its MIG devices can be prepared",
                gpu.index
            )));
        }
        (
            DeviceName::Mig {
                profile_label,
                start,
                ..
            },
            MigState::Static { devices },
        ) => {
            let found = devices
                .iter()
                .find(|d| {
                    crate::model::device_name::profile_label(&d.profile) == *profile_label
                        && d.placement.start == *start
                })
                .ok_or_else(|| unknown(format!("GPU {} has no such MIG device", gpu.index)))?;
            DeviceKind::StaticMig {
                uuid: found.uuid.clone(),
                profile: found.profile.clone(),
                placement: found.placement,
            }
        }
        (
            DeviceName::Mig {
                profile_label,
                start,
                ..
            },
            MigState::Dynamic,
        ) => {
            let (profile, placement) =
                catalog_placement(gpu, profile_label, *start).ok_or_else(|| {
                    unknown(format!(
                        "{:?} has no MIG profile {profile_label} placed at memory slice {start}",
                        gpu.product_name
                    ))
                })?;
            DeviceKind::DynamicMig {
                profile: profile.name.to_owned(),
                placement,
            }
        }
        (DeviceName::Mig { .. }, MigState::Disabled) => {
            return Err(unknown(format!("MIG is disabled on GPU {}", gpu.index)));
        }
        (DeviceName::Shared { .. }, MigState::Disabled) => DeviceKind::Shared,
        (DeviceName::Shared { .. }, MigState::Dynamic) => {
            let full = full_gpu_profile(gpu).ok_or_else(|| {
                unknown(format!(
                    "GPU {} is in dynamic MIG mode but its product {:?} has no full-GPU profile in the catalog",
                    gpu.index, gpu.product_name
                ))
            })?;
            DeviceKind::SharedMig {
                profile: full.0.name.to_owned(),
                placement: full.1,
            }
        }
        (DeviceName::Share { replica, .. }, MigState::Disabled) => {
            if *replica >= share_replicas {
                return Err(unknown(format!(
                    "this node advertises {share_replicas} replicas per GPU"
                )));
            }
            DeviceKind::Share { replica: *replica }
        }
        (DeviceName::Shared { .. }, MigState::Static { .. }) => {
            return Err(unknown(format!(
                "GPU {} is partitioned by its admin (static MIG); only its MIG devices can be prepared",
                gpu.index
            )));
        }
        (DeviceName::Share { .. }, _) => {
            return Err(unknown(format!(
                "GPU {} is in MIG mode; replicas are only made of GPUs with MIG off",
                gpu.index
            )));
        }
    };
    Ok(ResolvedDevice { gpu: gpu_ref, kind })
}

/// The profile and placement a dynamic MIG device name stands for.
fn catalog_placement(
    gpu: &Gpu,
    label: &str,
    start: u8,
) -> Option<(&'static MigProfile, Placement)> {
    let product = gpu.mig_product()?;
    profiles(product).iter().find_map(|p| {
        if crate::model::device_name::profile_label(p.name) != label {
            return None;
        }
        p.placements
            .iter()
            .find(|pl| pl.start == start)
            .map(|pl| (p, *pl))
    })
}

/// The profile spanning the whole GPU (e.g. `7g.80gb`), which is what a whole GPU in
/// dynamic MIG mode is.
fn full_gpu_profile(gpu: &Gpu) -> Option<(&'static MigProfile, Placement)> {
    let product = gpu.mig_product()?;
    profiles(product).iter().find_map(|p| {
        let full = p.compute_slices == product.total_compute_slices()
            && p.memory_slices == product.total_memory_slices()
            && !p.media_extensions;
        p.placements.first().filter(|_| full).map(|pl| (p, *pl))
    })
}

/// How `device` shares its GPU: `None` when it does not touch GPU-wide settings.
pub fn sharing_plan(
    device: &AllocatedDevice,
    kind: &DeviceKind,
) -> Result<Option<SharingPlan>, PrepareError> {
    let asked = device.config.sharing.as_ref();
    let sharing = match (kind, asked) {
        (DeviceKind::StaticMig { .. } | DeviceKind::DynamicMig { .. }, Some(_)) => {
            return Err(PrepareError::UnsupportedConfig {
                device: device.device.clone(),
                reason: "sharing settings apply to whole GPUs and shares; a MIG device is already an isolated partition".to_owned(),
            });
        }
        (DeviceKind::StaticMig { .. } | DeviceKind::DynamicMig { .. }, None)
        | (DeviceKind::Whole, None) => return Ok(None),
        (DeviceKind::Shared | DeviceKind::SharedMig { .. } | DeviceKind::Share { .. }, None) => {
            Sharing::TimeSlicing {
                interval: TimeSliceInterval::Default,
            }
        }
        (_, Some(s)) => s.clone(),
    };
    Ok(Some(match sharing {
        Sharing::TimeSlicing { interval } => SharingPlan {
            gpu: GpuSharing::TimeSlicing { interval },
            mps: None,
        },
        Sharing::Mps {
            active_thread_percentage,
            pinned_memory_limit_bytes,
        } => {
            // Without explicit limits, enforce what the allocation consumed.
            let consumed = |name: &str| -> Result<Option<u64>, PrepareError> {
                device
                    .consumed_capacity
                    .iter()
                    .find(|(k, _)| *k == name || k.ends_with(&format!("/{name}")))
                    .map(|(_, v)| {
                        parse_quantity(v).map_err(|e| PrepareError::UnsupportedConfig {
                            device: device.device.clone(),
                            reason: format!("consumed {name}: {e}"),
                        })
                    })
                    .transpose()
            };
            let percentage = match active_thread_percentage {
                Some(p) => Some(p),
                // A share that reserved no compute (the policy's default, 0) time-slices
                // instead of being capped at nothing.
                None => consumed("compute")?
                    .filter(|c| *c > 0)
                    .map(|c| c.min(100) as u32),
            };
            let pinned = match pinned_memory_limit_bytes {
                Some(b) => Some(b),
                None => consumed("memory")?,
            };
            SharingPlan {
                gpu: GpuSharing::Mps,
                mps: Some(MpsLimits {
                    active_thread_percentage: percentage,
                    pinned_memory_limit_bytes: pinned,
                }),
            }
        }
    }))
}

#[cfg(test)]
mod tests;
