//! The partitionable state of one GPU, what a pod asks of it, and what it was given.
//!
//! One truth for the simulator and the extender's cluster cache: both describe each GPU of a
//! node as a [`PartitionGpu`] — whole, MIG-partitioned (static or dynamic) or shared — and ask
//! [`crate::scoring::partition::fit`] where a [`PartitionDemand`] would go. The answer, a
//! [`PartitionFit`], is committed with [`apply`] and given back with [`release`], which
//! restores the state exactly.
//!
//! The four states follow the devices the plugin advertises (DESIGN.md, "Device model"):
//!
//! | state | advertised as | a demand may get |
//! |---|---|---|
//! | [`GpuPartitioning::Whole`] | `gpu-<i>` | the whole GPU, if free |
//! | [`GpuPartitioning::StaticMig`] | one `gpu-<i>-mig-…` per existing instance | one free instance |
//! | [`GpuPartitioning::DynamicMig`] | `gpu-<i>` and every valid placement, excluding each other through shared counters | a new instance at any placement still valid, or the whole GPU while no instance exists |
//! | [`GpuPartitioning::Shared`] | `gpu-<i>-shared` with consumable `memory` and `compute` | an amount of memory and compute percent |
//!
//! A static MIG GPU cannot be taken whole: with MIG on, the GPU is reachable only through its
//! instances (a static `7g` instance is the way to give it whole).

mod apply;
mod error;
mod static_layout;

pub use apply::{apply, release};
pub use error::PartitionError;
pub use static_layout::StaticLayout;

use serde::{Deserialize, Serialize};

use super::mig::{GpuProduct, MigLayout, MigProfile, Placement};
use super::node::{MAX_GPUS, MILLI_PER_GPU, NodeState};

/// Compute of a shared GPU, in percent of its SMs (the unit of the `compute` capacity).
pub const COMPUTE_PERCENT: u8 = 100;
/// Most model names one demand may list.
pub const MAX_MODEL_NAMES: usize = 64;
/// Longest model name a demand may list, in bytes.
pub const MAX_MODEL_NAME_LEN: usize = 256;

/// The kind of partition a demand may be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartitionKind {
    /// A MIG instance (static or created on demand).
    Mig,
    /// An amount of a shared GPU's memory and compute.
    Shared,
    /// A whole GPU.
    Whole,
}

impl PartitionKind {
    /// Smallest adequate first: a MIG slice, then a share, then a whole GPU.
    pub const DEFAULT_ORDER: [PartitionKind; 3] = [
        PartitionKind::Mig,
        PartitionKind::Shared,
        PartitionKind::Whole,
    ];
}

/// One GPU of a node and how it is partitioned now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionGpu {
    /// Product name as the device's `model` attribute says it (`NVIDIA H100 80GB HBM3`), or
    /// a trace's model code; what [`ModelFilter`] matches.
    pub model: String,
    /// Total framebuffer memory in MiB (what a whole GPU or a share offers).
    pub memory_mib: u64,
    /// Its partitioning and what is taken.
    pub state: GpuPartitioning,
}

/// How one GPU is partitioned, and what is taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "mode")]
pub enum GpuPartitioning {
    /// MIG off, not shared: given whole to one consumer.
    Whole {
        /// Whether a consumer holds it.
        taken: bool,
    },
    /// MIG on with instances the admin made; each is free or taken.
    StaticMig {
        /// The instances and which are taken.
        layout: StaticLayout,
    },
    /// MIG on, instances created on demand: `layout` holds the taken ones. The GPU may also
    /// be given whole while no instance exists.
    DynamicMig {
        /// Instances that exist, each held by a consumer.
        layout: MigLayout,
        /// Whether a consumer holds the whole GPU (then `layout` is empty).
        whole_taken: bool,
    },
    /// MIG off, shared: memory and compute percent are consumed by amounts.
    Shared {
        /// Memory given out, MiB.
        used_memory_mib: u64,
        /// Compute given out, percent of [`COMPUTE_PERCENT`].
        used_compute_pct: u8,
    },
}

impl PartitionGpu {
    /// A free GPU given whole (MIG off, not shared).
    pub fn whole(model: impl Into<String>, memory_mib: u64) -> Self {
        PartitionGpu {
            model: model.into(),
            memory_mib,
            state: GpuPartitioning::Whole { taken: false },
        }
    }

    /// A free dynamic-MIG GPU of `product` (no instance yet).
    pub fn dynamic_mig(model: impl Into<String>, memory_mib: u64, product: GpuProduct) -> Self {
        PartitionGpu {
            model: model.into(),
            memory_mib,
            state: GpuPartitioning::DynamicMig {
                layout: MigLayout::new(product),
                whole_taken: false,
            },
        }
    }

    /// A static-MIG GPU whose instances are `layout`'s, all free.
    pub fn static_mig(model: impl Into<String>, memory_mib: u64, layout: MigLayout) -> Self {
        PartitionGpu {
            model: model.into(),
            memory_mib,
            state: GpuPartitioning::StaticMig {
                layout: StaticLayout::new(layout),
            },
        }
    }

    /// A free shared GPU.
    pub fn shared(model: impl Into<String>, memory_mib: u64) -> Self {
        PartitionGpu {
            model: model.into(),
            memory_mib,
            state: GpuPartitioning::Shared {
                used_memory_mib: 0,
                used_compute_pct: 0,
            },
        }
    }

    /// The MIG product, for the MIG states.
    pub fn mig_product(&self) -> Option<GpuProduct> {
        match &self.state {
            GpuPartitioning::StaticMig { layout } => Some(layout.layout().product()),
            GpuPartitioning::DynamicMig { layout, .. } => Some(layout.product()),
            GpuPartitioning::Whole { .. } | GpuPartitioning::Shared { .. } => None,
        }
    }

    /// Share of the GPU's capacity held by consumers, 0.0..=1.0: 1 for a GPU taken whole,
    /// the compute slices of taken instances over the GPU's compute slices for MIG (the same
    /// measure as [`Assignment::fraction`]), and the larger of the compute and memory shares
    /// given out for a shared GPU.
    pub fn used_fraction(&self) -> f64 {
        match &self.state {
            GpuPartitioning::Whole { taken } => f64::from(u8::from(*taken)),
            GpuPartitioning::StaticMig { layout } => {
                let product = layout.layout().product();
                let used: u32 = layout
                    .instances()
                    .filter(|(_, taken)| *taken)
                    .map(|(i, _)| u32::from(i.profile.compute_slices))
                    .sum();
                f64::from(used) / f64::from(product.total_compute_slices())
            }
            GpuPartitioning::DynamicMig {
                layout,
                whole_taken,
            } => {
                if *whole_taken {
                    return 1.0;
                }
                let total = layout.product().total_compute_slices();
                let used = total.saturating_sub(layout.free_compute_slices());
                f64::from(used) / f64::from(total)
            }
            GpuPartitioning::Shared {
                used_memory_mib,
                used_compute_pct,
            } => share_fraction(self.memory_mib, *used_memory_mib, *used_compute_pct),
        }
    }

    /// Whether nothing on the GPU is held.
    pub fn is_idle(&self) -> bool {
        match &self.state {
            GpuPartitioning::Whole { taken } => !taken,
            GpuPartitioning::StaticMig { layout } => layout.instances().all(|(_, taken)| !taken),
            GpuPartitioning::DynamicMig {
                layout,
                whole_taken,
            } => !whole_taken && layout.instances().is_empty(),
            GpuPartitioning::Shared {
                used_memory_mib,
                used_compute_pct,
            } => *used_memory_mib == 0 && *used_compute_pct == 0,
        }
    }
}

/// The larger of the compute and memory shares of a shared GPU's capacity.
pub(crate) fn share_fraction(total_memory_mib: u64, memory_mib: u64, compute_pct: u8) -> f64 {
    let compute = f64::from(compute_pct) / f64::from(COMPUTE_PERCENT);
    let memory = if total_memory_mib == 0 {
        0.0
    } else {
        memory_mib as f64 / total_memory_mib as f64
    };
    compute.max(memory).min(1.0)
}

/// Which GPU models a demand accepts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ModelFilter {
    /// Any GPU.
    #[default]
    Any,
    /// Only these: a name matches a GPU whose [`PartitionGpu::model`] equals it (ASCII case
    /// ignored), and a catalog short name (`H100-80GB`, see [`GpuProduct::name`]) also
    /// matches every GPU whose product name NVML-style maps to that product
    /// (`NVIDIA H100 80GB HBM3`), so a ResourceSlice's `model` attribute and a user's short
    /// name agree.
    OneOf(Vec<String>),
}

impl ModelFilter {
    /// Whether a GPU of `model` is accepted.
    pub fn allows(&self, model: &str) -> bool {
        match self {
            ModelFilter::Any => true,
            ModelFilter::OneOf(names) => names.iter().any(|name| {
                name.eq_ignore_ascii_case(model)
                    || GpuProduct::from_name(name).is_some_and(|product| {
                        GpuProduct::from_product_name(model) == Some(product)
                    })
            }),
        }
    }
}

/// What a pod (or one request of a claim) asks for, per GPU.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartitionDemand {
    /// Number of GPUs; each gets its partition on a different GPU of the node.
    pub count: u8,
    /// GPU memory needed on each GPU, MiB (0: any).
    pub memory_mib: u64,
    /// Compute needed on each GPU, thousandths of a GPU (1000: a whole GPU's compute).
    pub compute_milli: u16,
    /// Accepted GPU models.
    pub models: ModelFilter,
    /// Whether a MIG instance is acceptable at all (workloads that need the whole device's
    /// features, e.g. peer-to-peer, say no).
    pub allow_mig: bool,
    /// Kinds to try, in order: the first kind that any GPU can give wins.
    pub preference: Vec<PartitionKind>,
}

impl PartitionDemand {
    /// `count` GPUs each with `memory_mib` and `compute_milli`, any model, MIG allowed, the
    /// default order (MIG, then share, then whole).
    pub fn new(count: u8, memory_mib: u64, compute_milli: u16) -> Self {
        PartitionDemand {
            count,
            memory_mib,
            compute_milli,
            models: ModelFilter::Any,
            allow_mig: true,
            preference: PartitionKind::DEFAULT_ORDER.to_vec(),
        }
    }

    /// Checks the bounds: 1..=16 GPUs, compute at most 1000 milli, a non-empty preference
    /// without repeats, and at most [`MAX_MODEL_NAMES`] names of at most
    /// [`MAX_MODEL_NAME_LEN`] bytes.
    pub fn validate(&self) -> Result<(), PartitionError> {
        let bad = |reason: String| Err(PartitionError::InvalidDemand { reason });
        if self.count == 0 || usize::from(self.count) > MAX_GPUS {
            return bad(format!("count must be 1..={MAX_GPUS}, got {}", self.count));
        }
        if self.compute_milli > MILLI_PER_GPU {
            return bad(format!(
                "compute must be at most {MILLI_PER_GPU} milli, got {}",
                self.compute_milli
            ));
        }
        if self.preference.is_empty() {
            return bad("the preference order is empty".to_owned());
        }
        for (i, kind) in self.preference.iter().enumerate() {
            if self.preference[..i].contains(kind) {
                return bad(format!("{kind:?} appears twice in the preference order"));
            }
        }
        if let ModelFilter::OneOf(names) = &self.models {
            if names.len() > MAX_MODEL_NAMES {
                return bad(format!(
                    "{} model names; at most {MAX_MODEL_NAMES}",
                    names.len()
                ));
            }
            if let Some(long) = names.iter().find(|n| n.len() > MAX_MODEL_NAME_LEN) {
                return bad(format!(
                    "model name of {} bytes; at most {MAX_MODEL_NAME_LEN}",
                    long.len()
                ));
            }
        }
        Ok(())
    }

    /// Compute percent a share must give: the demand's milli rounded up to whole percent,
    /// and at least 1 % — a share that takes nothing would let a shared GPU be handed out
    /// without bound.
    pub fn compute_pct(&self) -> u8 {
        let pct = u32::from(self.compute_milli).div_ceil(10).max(1);
        u8::try_from(pct.min(u32::from(COMPUTE_PERCENT))).unwrap_or(COMPUTE_PERCENT)
    }
}

/// The partition one requested GPU gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partition {
    /// The whole GPU.
    Whole,
    /// A MIG instance: an existing free one (static) or one to create (dynamic).
    Mig {
        /// Its profile, from the GPU product's table.
        profile: &'static MigProfile,
        /// Its placement.
        placement: Placement,
    },
    /// An amount of a shared GPU.
    Shared {
        /// Memory, MiB.
        memory_mib: u64,
        /// Compute, percent.
        compute_pct: u8,
    },
}

impl Partition {
    /// The kind of this partition.
    pub fn kind(&self) -> PartitionKind {
        match self {
            Partition::Whole => PartitionKind::Whole,
            Partition::Mig { .. } => PartitionKind::Mig,
            Partition::Shared { .. } => PartitionKind::Shared,
        }
    }
}

/// What is left on a GPU once an assignment is applied.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Leftover {
    /// Share of the GPU still unheld, 0.0..=1.0 (1 − [`PartitionGpu::used_fraction`]).
    pub free_fraction: f64,
    /// Memory a further consumer could still get, MiB: the shared GPU's free memory, the
    /// largest MIG instance still possible (dynamic) or free (static), 0 for a whole GPU.
    pub free_memory_mib: u64,
    /// MIG placements still possible (dynamic: every valid profile × placement; static: free
    /// instances); 0 for a non-MIG GPU.
    pub mig_placements: u32,
}

/// One requested GPU's answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Assignment {
    /// Index of the GPU in the slice given to `fit`.
    pub gpu: usize,
    /// The partition it gets.
    pub partition: Partition,
    /// Its share of the GPU, for cost: 1 whole; compute slices over the GPU's compute slices
    /// for MIG (e.g. 3/7 for a `3g`); the larger of compute and memory share for a share.
    pub fraction: f64,
    /// What the GPU has left afterwards.
    pub left: Leftover,
}

/// Where a demand would go on one node: one assignment per requested GPU, on distinct GPUs.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionFit {
    /// In request order.
    pub assignments: Vec<Assignment>,
}

impl PartitionFit {
    /// Sum of the assignments' fractions: GPUs' worth of capacity the demand holds.
    pub fn gpu_fraction(&self) -> f64 {
        self.assignments.iter().map(|a| a.fraction).sum()
    }
}

/// A node's GPUs in milli-GPU: each GPU's unheld share, rounded to the nearest milli.
pub fn milli_view(
    gpus: &[PartitionGpu],
    cpu_capacity_milli: u64,
    cpu_free_milli: u64,
    memory_capacity_mib: u64,
    memory_free_mib: u64,
) -> NodeState {
    let count = gpus.len().min(MAX_GPUS);
    // At most MAX_GPUS GPUs, so the count always fits and `new` cannot fail; the fallback
    // only satisfies the type.
    let mut state = NodeState::new(None, count as u32, cpu_capacity_milli, memory_capacity_mib)
        .unwrap_or_else(|_| empty_state());
    for (slot, gpu) in state.gpu_free_milli.iter_mut().zip(gpus) {
        let free = (1.0 - gpu.used_fraction()).clamp(0.0, 1.0);
        *slot = (free * f64::from(MILLI_PER_GPU)).round() as u16;
    }
    state.cpu_free = cpu_free_milli.min(cpu_capacity_milli);
    state.memory_free = memory_free_mib.min(memory_capacity_mib);
    state
}

fn empty_state() -> NodeState {
    NodeState {
        model: None,
        gpus: 0,
        cpu_capacity: 0,
        cpu_free: 0,
        memory_capacity: 0,
        memory_free: 0,
        gpu_free_milli: [0; MAX_GPUS],
        pods_by_class: [0; MAX_GPUS + 1],
    }
}

#[cfg(test)]
mod tests;
