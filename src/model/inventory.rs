//! What a node's GPUs are, as discovered: the input of publishing and of prepare.
//!
//! Discovery (NVML or a fake inventory) fills an [`Inventory`]; `publish` turns it into
//! ResourceSlices and `prepare` looks devices up in it. Nothing here touches hardware.

use serde::{Deserialize, Serialize};

use super::mig::{GpuProduct, Placement};

mod check;

pub use check::{
    InventoryError, MAX_INVENTORY_GPUS, MAX_MIG_DEVICES_PER_GPU, MAX_PROFILE_LEN, MAX_TEXT_LEN,
    is_pci_bus_id,
};

/// Every GPU of one node, in index order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Inventory {
    /// NVIDIA driver version as NVML reports it, e.g. `580.65.06`.
    pub driver_version: String,
    /// CUDA driver version, e.g. `13.0`.
    #[serde(default)]
    pub cuda_driver_version: Option<String>,
    /// The GPUs, sorted by [`Gpu::index`].
    pub gpus: Vec<Gpu>,
}

/// One physical GPU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gpu {
    /// NVML index (0-based, stable for a boot).
    pub index: u32,
    /// `GPU-…` UUID, stable across reboots.
    pub uuid: String,
    /// PCI bus ID in the `0000:3b:00.0` form Kubernetes' `pciBusID` attribute wants.
    pub pci_bus_id: String,
    /// Product name as NVML reports it, e.g. `NVIDIA H100 80GB HBM3`.
    pub product_name: String,
    /// Total framebuffer memory in bytes.
    pub memory_bytes: u64,
    /// Architecture name, e.g. `Hopper`, `Ampere`.
    pub architecture: String,
    /// CUDA compute capability `major.minor`, e.g. `9.0`.
    pub cuda_compute_capability: String,
    /// MIG state of this GPU.
    #[serde(default)]
    pub mig: MigState,
}

impl Gpu {
    /// The MIG catalog product of this GPU, if it is MIG-capable and known to the catalog.
    pub fn mig_product(&self) -> Option<GpuProduct> {
        GpuProduct::from_product_name(&self.product_name)
    }
}

/// Whether MIG is on, and what instances exist.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "mode")]
pub enum MigState {
    /// MIG is off (or the GPU cannot do MIG): the GPU is advertised whole and shared.
    #[default]
    Disabled,
    /// MIG is on and the admin created the instances: they are advertised as they are.
    Static {
        /// The existing MIG devices.
        devices: Vec<MigDevice>,
    },
    /// MIG is on and tessera creates instances on prepare: every valid placement is
    /// advertised, guarded by shared counters.
    Dynamic,
}

/// One existing MIG device (GPU instance with its compute instance).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MigDevice {
    /// `MIG-…` UUID.
    pub uuid: String,
    /// Profile name without the `MIG ` prefix, e.g. `1g.10gb`.
    pub profile: String,
    /// Where the GPU instance sits.
    pub placement: Placement,
    /// Memory of the instance in bytes.
    pub memory_bytes: u64,
}
