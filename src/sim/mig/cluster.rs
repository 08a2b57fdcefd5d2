//! The MIG cluster: node types, how many of each, and their GPUs' partitioning per policy.
//!
//! Two node types, as AWS sells them (specifications from the instance-type pages that the
//! price catalog cites):
//!
//! | node | GPUs | CPU | memory |
//! |---|---|---|---|
//! | `p5.48xlarge` | 8 × H100 80GB (`H100-80GB`) | 192 vCPU | 2048 GiB |
//! | `p4d.24xlarge` | 8 × A100 40GB (`A100-40GB`) | 96 vCPU | 1152 GiB |
//!
//! The cluster has as many GPUs as the openb node list (6,212): half the 8-GPU nodes of each
//! type (H100 first for an odd count), and the remainder, if the count is not a multiple of
//! 8, on one smaller A100 node whose CPU and memory are scaled to its GPUs. For openb that is
//! 388 H100 nodes, 388 A100 nodes and one A100 node of 4 GPUs (48 vCPU, 576 GiB): 111,792
//! vCPU for pods asking 85,436 (the openb nodes have 107,018).

use crate::model::mig::{GpuProduct, all_balanced, all_smallest};
use crate::model::partition::PartitionGpu;

use super::{MigPolicy, MigSimError};

/// GPUs on a full node.
pub const GPUS_PER_NODE: u32 = 8;
/// Most GPUs a MIG cluster may be built with (bounds memory; openb has 6,212).
pub const MAX_CLUSTER_GPUS: u64 = 1_000_000;

/// One node type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeSpec {
    /// Cloud instance type the numbers come from.
    pub instance_type: &'static str,
    /// The GPUs' MIG catalog product.
    pub product: GpuProduct,
    /// Product name as NVML reports it (the device's `model` attribute).
    pub model: &'static str,
    /// Framebuffer per GPU, MiB.
    pub gpu_memory_mib: u64,
    /// CPU of a full node, milli-cores.
    pub cpu_milli: u64,
    /// Memory of a full node, MiB.
    pub memory_mib: u64,
}

/// `p5.48xlarge`: 8 × H100 80GB HBM3, 192 vCPU, 2048 GiB.
pub const H100_NODE: NodeSpec = NodeSpec {
    instance_type: "p5.48xlarge",
    product: GpuProduct::H100_80GB,
    model: "NVIDIA H100 80GB HBM3",
    gpu_memory_mib: 81_559,
    cpu_milli: 192_000,
    memory_mib: 2048 * 1024,
};

/// `p4d.24xlarge`: 8 × A100-SXM4-40GB, 96 vCPU, 1152 GiB.
pub const A100_NODE: NodeSpec = NodeSpec {
    instance_type: "p4d.24xlarge",
    product: GpuProduct::A100_40GB,
    model: "NVIDIA A100-SXM4-40GB",
    gpu_memory_mib: 40_960,
    cpu_milli: 96_000,
    memory_mib: 1152 * 1024,
};

/// The node types and GPU counts of a cluster of `total_gpus` GPUs (see the module docs).
pub fn cluster_shape(total_gpus: u64) -> Result<Vec<(NodeSpec, u32)>, MigSimError> {
    if total_gpus == 0 || total_gpus > MAX_CLUSTER_GPUS {
        return Err(MigSimError::ClusterSize {
            gpus: total_gpus,
            max: MAX_CLUSTER_GPUS,
        });
    }
    let full = total_gpus / u64::from(GPUS_PER_NODE);
    let remainder = u32::try_from(total_gpus % u64::from(GPUS_PER_NODE)).unwrap_or(0);
    let h100 = full.div_ceil(2);
    let a100 = full / 2;
    let mut shape = Vec::new();
    for _ in 0..h100 {
        shape.push((H100_NODE, GPUS_PER_NODE));
    }
    for _ in 0..a100 {
        shape.push((A100_NODE, GPUS_PER_NODE));
    }
    if remainder > 0 {
        shape.push((A100_NODE, remainder));
    }
    Ok(shape)
}

/// One node of the MIG cluster and what is free on it.
#[derive(Debug, Clone, PartialEq)]
pub struct MigNode {
    /// CPU capacity, milli-cores.
    pub cpu_capacity: u64,
    /// Free CPU, milli-cores.
    pub cpu_free: u64,
    /// Memory capacity, MiB.
    pub memory_capacity: u64,
    /// Free memory, MiB.
    pub memory_free: u64,
    /// The GPUs.
    pub gpus: Vec<PartitionGpu>,
}

impl MigNode {
    /// An empty node of `spec` with `gpus` GPUs (CPU and memory scaled to `gpus` of 8), each
    /// GPU made by `make`.
    fn new(spec: &NodeSpec, gpus: u32, make: impl Fn(&NodeSpec) -> PartitionGpu) -> Self {
        let scale = |x: u64| x * u64::from(gpus) / u64::from(GPUS_PER_NODE);
        let cpu = scale(spec.cpu_milli);
        let memory = scale(spec.memory_mib);
        MigNode {
            cpu_capacity: cpu,
            cpu_free: cpu,
            memory_capacity: memory,
            memory_free: memory,
            gpus: (0..gpus).map(|_| make(spec)).collect(),
        }
    }
}

/// The empty nodes of `shape` as `policy` sets them up.
///
/// Dynamic policies: MIG on every GPU, no instance yet. Static policies: of each node type,
/// `static_share` of the nodes (spread evenly over the name order) carry the layout on all
/// GPUs; the rest have MIG off and are given whole.
pub fn build_nodes(
    shape: &[(NodeSpec, u32)],
    policy: MigPolicy,
    static_share: f64,
) -> Result<Vec<MigNode>, MigSimError> {
    let share = if static_share.is_finite() {
        static_share.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let mut seen: Vec<(GpuProduct, u64)> = Vec::new();
    let mut nodes = Vec::with_capacity(shape.len());
    for (spec, gpus) in shape {
        let node = match policy {
            MigPolicy::DynamicFirstFit | MigPolicy::DynamicTessera => {
                MigNode::new(spec, *gpus, |s| {
                    PartitionGpu::dynamic_mig(s.model, s.gpu_memory_mib, s.product)
                })
            }
            MigPolicy::StaticSmallest | MigPolicy::StaticBalanced => {
                // The i-th node of a type is partitioned when ⌊(i+1)·share + ½⌋ > ⌊i·share + ½⌋:
                // an even spread of share × count nodes in total, rounded to nearest.
                let i = match seen.iter_mut().find(|(p, _)| *p == spec.product) {
                    Some((_, n)) => {
                        *n += 1;
                        *n - 1
                    }
                    None => {
                        seen.push((spec.product, 1));
                        0
                    }
                };
                let partitioned =
                    ((i + 1) as f64 * share + 0.5).floor() > (i as f64 * share + 0.5).floor();
                if partitioned {
                    let layout = if policy == MigPolicy::StaticSmallest {
                        all_smallest(spec.product)?
                    } else {
                        all_balanced(spec.product)?
                    };
                    MigNode::new(spec, *gpus, |s| {
                        PartitionGpu::static_mig(s.model, s.gpu_memory_mib, layout.clone())
                    })
                } else {
                    MigNode::new(spec, *gpus, |s| {
                        PartitionGpu::whole(s.model, s.gpu_memory_mib)
                    })
                }
            }
        };
        nodes.push(node);
    }
    Ok(nodes)
}
