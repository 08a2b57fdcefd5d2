//! The node types of the synthetic cluster, the devices each GPU advertises (as the plugin
//! publishes them) and how claims are spread over those devices.

use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::cluster::testing::objects::{
    GpuFacts, consume, mig_device, share_device, shared_gpu, whole_gpu,
};
use crate::model::DeviceName;
use crate::model::mig::{GpuProduct, MigLayout, profile, profiles};

/// The node types, by how their GPUs are partitioned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flavor {
    DynamicMig,
    StaticMig,
    WholeShared,
    TimeSliced,
}

/// One node type.
pub(super) struct NodeType {
    pub(super) instance_type: &'static str,
    pub(super) model: &'static str,
    pub(super) memory_gib: u64,
    pub(super) flavor: Flavor,
    /// `status.allocatable.cpu`: the instance's vCPUs less what the kubelet and system
    /// reserve, as EKS reports it.
    pub(super) allocatable_cpu: &'static str,
    /// `status.allocatable.memory`: host memory less reservations and eviction threshold.
    pub(super) allocatable_memory: &'static str,
}

pub(super) const NODE_TYPES: [NodeType; 5] = [
    NodeType {
        instance_type: "p5.48xlarge",
        model: "NVIDIA H100 80GB HBM3",
        memory_gib: 80,
        flavor: Flavor::DynamicMig,
        allocatable_cpu: "191450m",
        allocatable_memory: "2011Gi",
    },
    NodeType {
        instance_type: "p4d.24xlarge",
        model: "NVIDIA A100-SXM4-40GB",
        memory_gib: 40,
        flavor: Flavor::StaticMig,
        allocatable_cpu: "95690m",
        allocatable_memory: "1106Gi",
    },
    NodeType {
        instance_type: "p4de.24xlarge",
        model: "NVIDIA A100-SXM4-80GB",
        memory_gib: 80,
        flavor: Flavor::WholeShared,
        allocatable_cpu: "95690m",
        allocatable_memory: "1106Gi",
    },
    NodeType {
        instance_type: "g6.48xlarge",
        model: "NVIDIA L4",
        memory_gib: 24,
        flavor: Flavor::WholeShared,
        allocatable_cpu: "191450m",
        allocatable_memory: "741Gi",
    },
    NodeType {
        instance_type: "g6e.48xlarge",
        model: "NVIDIA L40S",
        memory_gib: 48,
        flavor: Flavor::TimeSliced,
        allocatable_cpu: "191450m",
        allocatable_memory: "1490Gi",
    },
];

/// The static MIG layout of every `p4d` GPU: (profile, start).
pub(super) const STATIC_LAYOUT: [(&str, u8); 4] =
    [("2g.10gb", 0), ("1g.5gb", 2), ("1g.5gb", 3), ("3g.20gb", 4)];
/// Time-sliced replicas per GPU.
pub(super) const SHARES_PER_GPU: u32 = 4;

/// What one claim gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Grant {
    Whole,
    Mig { profile: &'static str },
    Shared { memory_gib: u64, compute: u32 },
    Replica,
}

impl Grant {
    /// The CPU (milli-cores) and memory (GiB) a pod holding this grant requests: ranges
    /// around the openb trace's ~11 cores per GPU for whole GPUs, less for a part of one.
    pub(super) fn pod_requests(&self, rng: &mut ChaCha8Rng) -> (u64, u64) {
        let (cpu, memory) = match self {
            Grant::Whole => (8_000..=16_000, 64..=160),
            Grant::Mig { .. } | Grant::Shared { .. } => (2_000..=8_000, 8..=48),
            Grant::Replica => (1_000..=4_000, 4..=24),
        };
        // Whole 500m steps, as people write them.
        let cpu = rng.random_range(cpu) / 500 * 500;
        (cpu, rng.random_range(memory))
    }
}

// === devices ===

/// The devices of one GPU, in the allocator's preference order: smallest partitions first.
pub(super) fn gpu_devices(
    t: &NodeType,
    gpu: GpuFacts<'_>,
) -> Vec<k8s_openapi::api::resource::v1::Device> {
    let set = format!("gpu-{}-counters", gpu.index);
    match t.flavor {
        Flavor::DynamicMig => {
            let product = GpuProduct::from_product_name(t.model);
            let total_memory = product.map_or(8, GpuProduct::total_memory_slices);
            let total_compute = product.map_or(7, GpuProduct::total_compute_slices);
            let all = counters_for(0, total_memory, total_compute);
            let all: Vec<(&str, &str)> =
                all.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let mut devices = Vec::new();
            for p in product.map_or(&[][..], profiles) {
                for placement in p.placements {
                    let memory = format!("{}Mi", p.capacity_mib());
                    let mut d = mig_device(
                        gpu,
                        p.name,
                        placement.start,
                        placement.size,
                        p.compute_slices,
                        &memory,
                    );
                    let used = counters_for(
                        placement.start,
                        placement.start + placement.size,
                        p.compute_slices,
                    );
                    let used: Vec<(&str, &str)> =
                        used.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                    consume(&mut d, &set, &used);
                    devices.push(d);
                }
            }
            let mut shared = shared_gpu(gpu);
            consume(&mut shared, &set, &all);
            devices.push(shared);
            let mut whole = whole_gpu(gpu);
            consume(&mut whole, &set, &all);
            devices.push(whole);
            devices
        }
        Flavor::StaticMig => {
            let product = GpuProduct::from_product_name(t.model);
            STATIC_LAYOUT
                .iter()
                .filter_map(|(name, start)| {
                    let p = profile(product?, name)?;
                    let memory = format!("{}Mi", p.capacity_mib());
                    Some(mig_device(
                        gpu,
                        p.name,
                        *start,
                        p.memory_slices,
                        p.compute_slices,
                        &memory,
                    ))
                })
                .collect()
        }
        Flavor::WholeShared => {
            // As the plugin publishes a MIG-off GPU at the consumable level: whole and shared
            // each take all of a `memory` counter, so they exclude each other.
            let mut shared = shared_gpu(gpu);
            consume(&mut shared, &set, &[("memory", gpu.memory)]);
            let mut whole = whole_gpu(gpu);
            consume(&mut whole, &set, &[("memory", gpu.memory)]);
            vec![shared, whole]
        }
        Flavor::TimeSliced => {
            let memory = format!("{}Gi", t.memory_gib / u64::from(SHARES_PER_GPU));
            (0..SHARES_PER_GPU)
                .map(|k| share_device(gpu, k, &memory))
                .collect()
        }
    }
}

/// Counters for memory slices `from..to` and `compute` compute slices.
pub(super) fn counters_for(from: u8, to: u8, compute: u8) -> Vec<(String, String)> {
    let mut counters: Vec<(String, String)> = (from..to)
        .map(|i| (format!("memory-slice-{i}"), "1".to_owned()))
        .collect();
    counters.push(("compute-slices".to_owned(), compute.to_string()));
    counters
}

/// A GPU's counter set on a node of type `t` (the plugin's counter names).
pub(super) fn counters(t: &NodeType, product: Option<GpuProduct>) -> Vec<(String, String)> {
    match t.flavor {
        Flavor::DynamicMig => counters_for(
            0,
            product.map_or(8, GpuProduct::total_memory_slices),
            product.map_or(7, GpuProduct::total_compute_slices),
        ),
        _ => vec![("memory".to_owned(), format!("{}Gi", t.memory_gib))],
    }
}

// === allocations ===

/// Up to `quota` grants on a node of type `t`: (device name, what it is). Each GPU gets a
/// random amount, but at least its share of what is still to place, so a node fills up to
/// its quota whenever its devices can hold it.
pub(super) fn plan(
    t: &NodeType,
    gpus: u32,
    quota: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<(String, Grant)> {
    let mut order: Vec<u32> = (0..gpus).collect();
    order.shuffle(rng);
    let mut grants = Vec::new();
    for (visited, gpu) in order.into_iter().enumerate() {
        let left = quota - grants.len();
        if left == 0 {
            break;
        }
        let gpus_left = usize::try_from(gpus).unwrap_or(usize::MAX) - visited;
        let need = left.div_ceil(gpus_left.max(1));
        match t.flavor {
            Flavor::DynamicMig => {
                let roll: f64 = rng.random();
                if roll < 0.25 && need <= 1 {
                    grants.push((DeviceName::Whole { gpu }.to_string(), Grant::Whole));
                } else if roll < 0.45 {
                    plan_shares(gpu, t.memory_gib, need, left, rng, &mut grants);
                } else {
                    plan_mig(gpu, t.model, need, left, rng, &mut grants);
                }
            }
            Flavor::StaticMig => {
                let mut instances: Vec<&(&str, u8)> = STATIC_LAYOUT.iter().collect();
                instances.shuffle(rng);
                let take = rng.random_range(1..=instances.len()).max(need).min(left);
                for (name, start) in instances.into_iter().take(take) {
                    let grant = Grant::Mig { profile: name };
                    grants.push((DeviceName::mig(gpu, name, *start).to_string(), grant));
                }
            }
            Flavor::WholeShared => {
                if need <= 1 && rng.random_bool(0.4) {
                    grants.push((DeviceName::Whole { gpu }.to_string(), Grant::Whole));
                } else {
                    plan_shares(gpu, t.memory_gib, need, left, rng, &mut grants);
                }
            }
            Flavor::TimeSliced => {
                let replicas = usize::try_from(SHARES_PER_GPU).unwrap_or(1);
                let take = rng
                    .random_range(1..=replicas)
                    .max(need)
                    .min(replicas)
                    .min(left);
                for replica in 0..u32::try_from(take).unwrap_or(0) {
                    grants.push((
                        DeviceName::Share { gpu, replica }.to_string(),
                        Grant::Replica,
                    ));
                }
            }
        }
    }
    grants
}

/// 2 to 6 shares (at least `need`) of a shared device, each an equal part of memory and
/// compute.
pub(super) fn plan_shares(
    gpu: u32,
    memory_gib: u64,
    need: usize,
    left: usize,
    rng: &mut ChaCha8Rng,
    grants: &mut Vec<(String, Grant)>,
) {
    let shares = rng.random_range(2..=6usize).max(need).min(6).min(left);
    let parts = u32::try_from(shares).unwrap_or(1).max(1);
    for _ in 0..shares {
        grants.push((
            DeviceName::Shared { gpu }.to_string(),
            Grant::Shared {
                memory_gib: (memory_gib / u64::from(parts)).max(1),
                compute: 100 / parts,
            },
        ));
    }
}

/// Small MIG instances (up to 3 compute slices; only 1-slice ones when `need` asks for
/// many) at random free placements, until the GPU is full or `left` are placed.
pub(super) fn plan_mig(
    gpu: u32,
    model: &str,
    need: usize,
    left: usize,
    rng: &mut ChaCha8Rng,
    grants: &mut Vec<(String, Grant)>,
) {
    let Some(product) = GpuProduct::from_product_name(model) else {
        return;
    };
    let largest = if need > 3 { 1 } else { 3 };
    let mut layout = MigLayout::new(product);
    let mut placed = 0;
    while placed < left {
        let options: Vec<_> = layout
            .available()
            .into_iter()
            .filter(|(p, _)| p.compute_slices <= largest && !p.media_extensions)
            .collect();
        if options.is_empty() {
            break;
        }
        let (p, placement) = options[rng.random_range(0..options.len())];
        if layout.place(p, placement).is_err() {
            break;
        }
        grants.push((
            DeviceName::mig(gpu, p.name, placement.start).to_string(),
            Grant::Mig { profile: p.name },
        ));
        placed += 1;
    }
}
