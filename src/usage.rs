//! Per-pod GPU usage: which pod and container use how much GPU memory and compute on the
//! devices this plugin prepared.
//!
//! ```text
//! UsageSource (NVML | fake) ──▶ DeviceSample (processes, memory, utilization)
//! host /proc/<pid>/cgroup ──▶ cgroup::owner (pod UID, container ID)
//! checkpoint (prepared claims) ──▶ holdings::Holding (device UUID → claim, device, type)
//!           └──────────────────────▶ attribute::attribute ──▶ UsageMetrics (Prometheus)
//! ```
//!
//! Reading is read-only everywhere: the usage source never changes a GPU setting, `/proc` is
//! only read, and the checkpoint is only loaded. `attribute` is pure (no I/O), so the whole
//! mapping is tested with a fake source and a fake `/proc` tree.

pub mod attribute;
pub mod cgroup;
mod error;
mod fake;
pub mod held;
pub mod holdings;
pub mod metrics;
#[cfg(feature = "nvml")]
mod nvml;
pub mod pods;
pub mod sampler;

pub use attribute::{Attribution, PodDirectory, PodNames, UsageRow, UtilizationSource, attribute};
pub use error::UsageError;
pub use fake::FakeUsageSource;
pub use held::{HeldDevice, held_devices};
pub use holdings::{Holding, holdings};
pub use metrics::UsageMetrics;
#[cfg(feature = "nvml")]
pub use nvml::NvmlUsageSource;
pub use pods::PodNamer;
pub use sampler::Sampler;

use serde::{Deserialize, Serialize};

/// Most devices one sample may report: 8 GPUs × 7 MIG instances plus the GPUs themselves,
/// with room for 16-GPU nodes.
pub const MAX_DEVICES: usize = 256;
/// Most processes one device may report; NVML's own lists are far shorter in practice.
pub const MAX_PROCESSES_PER_DEVICE: usize = 1024;

/// One GPU or MIG instance as the usage source saw it at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeviceSample {
    /// `GPU-…` for a whole GPU, `MIG-…` for a MIG instance.
    pub uuid: String,
    /// The parent GPU's UUID for a MIG instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_uuid: Option<String>,
    /// Percent of time a kernel ran over the driver's last sample period
    /// (`nvmlDeviceGetUtilizationRates`), or, for a MIG instance, the instance's own engine
    /// activity where the driver reports it. `None` when the driver does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utilization_percent: Option<u32>,
    /// Running compute processes (`nvmlDeviceGetComputeRunningProcesses`).
    #[serde(default)]
    pub processes: Vec<ProcessSample>,
}

impl DeviceSample {
    /// Whether this sample is a MIG instance.
    pub fn is_mig(&self) -> bool {
        self.parent_uuid.is_some()
    }
}

/// One compute process on one device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProcessSample {
    /// Host PID (NVML reports PIDs in the host's PID namespace).
    pub pid: u32,
    /// GPU memory the process holds on this device, in bytes; `None` where the driver hides
    /// it (NVML's "not available" value, e.g. without permission on some vGPU hosts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_memory_bytes: Option<u64>,
    /// The process's SM utilization in percent over the last sample window
    /// (`nvmlDeviceGetProcessUtilization`); never present inside a MIG instance, where the
    /// driver has no per-process samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sm_percent: Option<u32>,
}

/// A read-only view of what runs on this node's GPUs.
///
/// Calls block (NVML is synchronous); async callers run them on a blocking thread.
pub trait UsageSource: Send + Sync {
    /// Every GPU and MIG instance with its processes, bounded by [`MAX_DEVICES`] and
    /// [`MAX_PROCESSES_PER_DEVICE`].
    fn sample(&self) -> Result<Vec<DeviceSample>, UsageError>;

    /// A short description for logs.
    fn describe(&self) -> String;
}

#[cfg(test)]
mod tests;
