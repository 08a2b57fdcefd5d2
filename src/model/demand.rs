//! What a pod asks for: CPU, memory and GPUs (whole or a share of one).

use serde::Serialize;

use super::gpu_model::ModelSet;
use super::node::{MAX_GPUS, MILLI_PER_GPU};

/// A pod's resource demand.
///
/// `gpu_milli` is per GPU, in thousandths: 1000 is a whole GPU; below 1000 only with
/// `gpus == 1` (a sharing pod). CPU-only pods have `gpus == 0` and `gpu_milli == 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Demand {
    /// CPU request in milli-cores.
    pub cpu_milli: u64,
    /// Memory request in MiB.
    pub memory_mib: u64,
    /// Number of GPUs.
    pub gpus: u8,
    /// Share of each GPU in thousandths.
    pub gpu_milli: u16,
    /// GPU models the pod accepts.
    pub models: ModelSet,
}

/// The affinity class of a pod, as GPU clustering groups them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum PodClass {
    /// No GPU.
    CpuOnly,
    /// A fraction of one GPU.
    Share,
    /// This many whole GPUs.
    Whole(u8),
}

impl PodClass {
    /// A dense index for per-class counters: 0 = share, n = n whole GPUs; CPU-only pods have none.
    pub fn counter_index(self) -> Option<usize> {
        match self {
            PodClass::CpuOnly => None,
            PodClass::Share => Some(0),
            PodClass::Whole(n) => Some(usize::from(n).min(MAX_GPUS)),
        }
    }
}

impl Demand {
    /// Whether the pod asks for a share of one GPU.
    pub fn is_sharing(&self) -> bool {
        self.gpus == 1 && self.gpu_milli < MILLI_PER_GPU
    }

    /// Whether the pod asks for no GPU.
    pub fn is_cpu_only(&self) -> bool {
        self.gpus == 0 || self.gpu_milli == 0
    }

    /// GPU milli over all requested GPUs.
    pub fn total_gpu_milli(&self) -> u64 {
        u64::from(self.gpus) * u64::from(self.gpu_milli)
    }

    /// The pod's affinity class.
    pub fn class(&self) -> PodClass {
        if self.is_cpu_only() {
            PodClass::CpuOnly
        } else if self.is_sharing() {
            PodClass::Share
        } else {
            PodClass::Whole(self.gpus)
        }
    }
}
