//! Mutating access to GPUs: create and destroy MIG instances, apply and clear sharing
//! settings. Discovery only reads; everything that changes a GPU goes through [`GpuControl`],
//! so the one sequencer (`state`) decides when.
//!
//! Implementations: [`FakeGpuControl`] (in-memory hardware, with injectable failures) for
//! tests, CI and `--fake-gpus`; `NvmlGpuControl` (cargo feature `nvml`) for real GPUs.

mod fake;
#[cfg(feature = "nvml")]
mod nvml;

pub use fake::{FakeGpuControl, FakeGpuState, FakeOp};
#[cfg(feature = "nvml")]
pub use nvml::NvmlGpuControl;

use thiserror::Error;

use super::device::{GpuRef, GpuSharing};
use crate::model::mig::Placement;

/// A failed hardware operation.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ControlError {
    /// The operation was attempted and failed.
    #[error("{op} on GPU {gpu} failed: {reason}")]
    Failed {
        /// Which operation (`create MIG instance`, `set time slice`, …).
        op: &'static str,
        /// GPU index.
        gpu: u32,
        /// The driver's or tool's message.
        reason: String,
    },
    /// The GPU could not be found by its UUID (removed, or fell off the bus).
    #[error("GPU {uuid} not found: {reason}")]
    GpuNotFound {
        /// UUID looked for.
        uuid: String,
        /// The driver's message.
        reason: String,
    },
}

/// A GPU instance on a GPU, as the driver lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigInstance {
    /// Profile name, e.g. `1g.10gb`.
    pub profile: String,
    /// Where it sits.
    pub placement: Placement,
    /// The MIG device's UUID; `None` for a GPU instance without a compute instance (a
    /// creation or destruction that stopped half-way).
    pub uuid: Option<String>,
}

/// Changes GPUs. Every method is blocking (NVML and `nvidia-smi` are) and idempotent where
/// undoing is concerned: destroying what is gone and clearing what is clear succeed.
pub trait GpuControl: Send + Sync + 'static {
    /// Create a GPU instance of `profile` (e.g. `1g.10gb`) at `placement`, with one compute
    /// instance spanning it. Returns the new MIG device's UUID.
    fn create_mig(
        &self,
        gpu: &GpuRef,
        profile: &str,
        placement: Placement,
    ) -> Result<String, ControlError>;

    /// Destroy the GPU instance of `profile` at `placement` and its compute instances.
    /// Nothing there is success.
    fn destroy_mig(
        &self,
        gpu: &GpuRef,
        profile: &str,
        placement: Placement,
    ) -> Result<(), ControlError>;

    /// Every GPU instance on the GPU, complete or not, so recovery can find instances no
    /// record accounts for.
    fn mig_instances(&self, gpu: &GpuRef) -> Result<Vec<MigInstance>, ControlError>;

    /// Put the GPU into the sharing mode shared devices need.
    fn apply_sharing(&self, gpu: &GpuRef, sharing: GpuSharing) -> Result<(), ControlError>;

    /// Put the GPU back to its default (default compute mode, time-slicing with the default
    /// interval).
    fn clear_sharing(&self, gpu: &GpuRef) -> Result<(), ControlError>;

    /// Device nodes a container needs for the GPU, or for its MIG device at `mig`.
    fn device_nodes(
        &self,
        gpu: &GpuRef,
        mig: Option<Placement>,
    ) -> Result<Vec<String>, ControlError>;
}
