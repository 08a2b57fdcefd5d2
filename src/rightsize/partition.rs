//! What a device is worth as a share of its GPU, and the smallest adequate partition for a
//! measured need.
//!
//! Fractions follow the cost model the extender prices with (`model::partition::Assignment`):
//! 1 for a whole GPU, compute slices over the GPU's compute slices for MIG (3/7 for a `3g`),
//! the larger of the memory and compute shares for a share of a shared GPU.

use serde::Serialize;

use super::error::RightsizeError;
use crate::model::mig::{GpuProduct, profile, smallest_adequate};

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

/// Which partitions a recommendation may move a workload to (the whole GPU always stays
/// possible).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kinds {
    /// MIG instances (the GPU must run MIG: static instances of the profile, or dynamic MIG).
    pub mig: bool,
    /// Shares of a shared GPU (needs `DRAConsumableCapacity`, beta from Kubernetes 1.36).
    pub shared: bool,
}

impl Kinds {
    /// Parses a comma-separated list of `mig`, `shared` (an empty list allows only whole GPUs).
    pub fn parse(text: &str) -> Result<Self, RightsizeError> {
        let mut kinds = Kinds {
            mig: false,
            shared: false,
        };
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "mig" => kinds.mig = true,
                "shared" => kinds.shared = true,
                other => return Err(RightsizeError::Kind(other.to_owned())),
            }
        }
        Ok(kinds)
    }
}

/// The rules' settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rules {
    /// Memory kept above the peak, as a fraction of it (0.2: the partition must hold 1.2 ×
    /// peak).
    pub headroom: f64,
    /// Allowed target kinds.
    pub kinds: Kinds,
    /// Peak compute (percent of the device) at or below which a held device counts as unused.
    pub idle_threshold_percent: f64,
    /// How long a device must have been held and unused to be listed as idle, seconds.
    pub idle_for_seconds: f64,
}

impl Rules {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<(), RightsizeError> {
        if !(0.0..=4.0).contains(&self.headroom) {
            return Err(RightsizeError::Headroom(self.headroom));
        }
        if !(0.0..=100.0).contains(&self.idle_threshold_percent) {
            return Err(RightsizeError::IdleThreshold(self.idle_threshold_percent));
        }
        Ok(())
    }
}

/// What a device is (held now, or recommended).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Holds {
    /// `gpu`, `mig`, `shared` or `share`.
    #[serde(rename = "type")]
    pub device_type: String,
    /// MIG profile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Memory it gives, bytes, when known.
    pub memory_bytes: Option<u64>,
    /// Compute it gives, percent of the GPU, when known.
    pub compute_percent: Option<f64>,
    /// Its share of the GPU for cost, when known.
    pub fraction: Option<f64>,
}

impl Holds {
    /// A short human name: `gpu`, `mig 1g.10gb`, `shared 12Gi/20%`, `share`.
    pub fn label(&self) -> String {
        match (self.device_type.as_str(), &self.profile) {
            ("mig", Some(p)) => format!("mig {p}"),
            ("shared", _) => match (self.memory_bytes, self.compute_percent) {
                (Some(m), Some(c)) => format!("shared {}/{c:.0}%", gib_text(m)),
                (Some(m), None) => format!("shared {}", gib_text(m)),
                _ => "shared".to_owned(),
            },
            (t, _) => t.to_owned(),
        }
    }
}

fn gib_text(bytes: u64) -> String {
    if bytes.is_multiple_of(GIB) {
        format!("{}Gi", bytes / GIB)
    } else {
        format!("{:.1}Gi", bytes as f64 / GIB as f64)
    }
}

/// The share of its GPU a held device stands for, from what the node reported.
pub fn current(
    device_type: &str,
    gpu_model: &str,
    gpu_memory_bytes: Option<u64>,
    profile_name: Option<&str>,
    memory_bytes: Option<u64>,
    compute_percent: Option<f64>,
) -> Holds {
    // A MIG instance is sized from the profile table (exact sevenths), not the node's
    // rounded labels.
    let mig = match device_type {
        "mig" => GpuProduct::from_product_name(gpu_model)
            .zip(profile_name)
            .and_then(|(product, name)| {
                profile(product, name).map(|p| {
                    (
                        f64::from(p.compute_slices) / f64::from(product.total_compute_slices()),
                        p.capacity_mib() * MIB,
                    )
                })
            }),
        _ => None,
    };
    let (memory_bytes, compute_percent) = match mig {
        Some((fraction, bytes)) => (Some(bytes), Some(fraction * 100.0)),
        None => (memory_bytes, compute_percent),
    };
    let fraction = match device_type {
        "gpu" => Some(1.0),
        "mig" => mig.map(|(fraction, _)| fraction),
        "shared" => match (memory_bytes, gpu_memory_bytes, compute_percent) {
            (Some(m), Some(total), Some(c)) if total > 0 => {
                Some((m as f64 / total as f64).max(c / 100.0).min(1.0))
            }
            _ => None,
        },
        // A legacy share is 1/N of a GPU, but N is not on the node's record.
        _ => None,
    };
    Holds {
        device_type: device_type.to_owned(),
        profile: profile_name.map(str::to_owned),
        memory_bytes,
        compute_percent,
        fraction,
    }
}

impl Holds {
    /// Whether this device already meets `need`: memory at least the need and compute at least
    /// the need's share of the GPU. Unknown sizes are not adequate.
    pub fn meets(&self, need: Need) -> bool {
        self.memory_bytes
            .is_some_and(|m| m as f64 + 0.5 >= need.memory_bytes)
            && self
                .compute_percent
                .is_some_and(|c| c / 100.0 + 1e-9 >= need.compute_fraction)
    }
}

/// What a workload needs of one GPU of `gpu_model`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Need {
    /// Peak memory × (1 + headroom), bytes.
    pub memory_bytes: f64,
    /// p95 compute, as a fraction of the whole GPU (0..=1).
    pub compute_fraction: f64,
}

/// The smallest adequate partition for `need` on a GPU of `gpu_model` with `gpu_memory_bytes`,
/// in the project's preference order (the order of the chart's `firstAvailable` example and
/// DESIGN.md): the smallest adequate MIG profile (MIG-capable models: fewest memory slices
/// with the memory and at least the compute), else the smallest share (memory rounded up to
/// whole GiB, compute to whole percent), else the whole GPU. MIG comes first because it
/// isolates memory, SMs and faults in hardware; a share can be a little smaller but shares its
/// GPU's scheduler and fault domain. A MIG profile or share as large as the GPU is no saving
/// and is skipped. `None` when even the whole GPU is too small.
pub fn smallest(
    need: Need,
    gpu_model: &str,
    gpu_memory_bytes: Option<u64>,
    kinds: Kinds,
) -> Option<Holds> {
    let product = GpuProduct::from_product_name(gpu_model);
    let total_bytes = gpu_memory_bytes.or_else(|| product.map(full_memory_bytes));
    if let Some(total) = total_bytes
        && need.memory_bytes > total as f64
    {
        return None;
    }
    let below_whole = |h: &Holds| h.fraction.is_some_and(|f| f < 1.0 - 1e-9);
    if kinds.mig
        && let Some(product) = product
    {
        let memory_mib = (need.memory_bytes / MIB as f64).ceil() as u64;
        if let Some(p) = smallest_adequate(product, memory_mib, need.compute_fraction - 1e-9) {
            let total = f64::from(product.total_compute_slices());
            let mig = Holds {
                device_type: "mig".to_owned(),
                profile: Some(p.name.to_owned()),
                memory_bytes: Some(p.capacity_mib() * MIB),
                compute_percent: Some(f64::from(p.compute_slices) * 100.0 / total),
                fraction: Some(f64::from(p.compute_slices) / total),
            };
            if below_whole(&mig) {
                return Some(mig);
            }
        }
    }
    if kinds.shared
        && let Some(total) = total_bytes.filter(|t| *t >= GIB)
    {
        let gib = ((need.memory_bytes / GIB as f64).ceil() as u64).max(1);
        let compute = (need.compute_fraction * 100.0 - 1e-9)
            .ceil()
            .clamp(1.0, 100.0);
        let memory = gib * GIB;
        if memory <= total {
            let share = Holds {
                device_type: "shared".to_owned(),
                profile: None,
                memory_bytes: Some(memory),
                compute_percent: Some(compute),
                fraction: Some((memory as f64 / total as f64).max(compute / 100.0).min(1.0)),
            };
            if below_whole(&share) {
                return Some(share);
            }
        }
    }
    Some(Holds {
        device_type: "gpu".to_owned(),
        profile: None,
        memory_bytes: total_bytes,
        compute_percent: Some(100.0),
        fraction: Some(1.0),
    })
}

/// A MIG product's full memory, from its largest profile, for GPUs whose size the node did
/// not report.
fn full_memory_bytes(product: GpuProduct) -> u64 {
    crate::model::mig::profiles(product)
        .iter()
        .map(|p| p.capacity_mib() * MIB)
        .max()
        .unwrap_or(0)
}
