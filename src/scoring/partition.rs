//! The partition fit: which piece of which GPU a demand gets on one node.
//!
//! [`fit`] is the one entry point the simulator and the extender both call. It is pure: the
//! node's GPUs go in as [`PartitionGpu`]s (built from the simulator's cluster or from
//! ResourceSlices and allocated claims), the answer comes out as a [`PartitionFit`], and
//! nothing changes until the caller commits it with [`apply`] (and later [`release`]s it).
//!
//! # How the choice is made
//!
//! Each requested GPU is answered in turn, on a GPU no earlier answer used:
//!
//! 1. **Kind**: the demand's preference order is walked (default: MIG, then share, then whole
//!    GPU — the smallest adequate piece first); the first kind that some GPU can give wins.
//!    `allow_mig == false` skips MIG.
//! 2. **Inside a kind**:
//!    - *MIG*: every adequate profile (memory ≥ the demand's, compute slices ≥ its fraction)
//!      at every placement still possible, on static GPUs every free adequate instance. The
//!      smallest profile wins (fewest memory slices, then compute slices, as fractions of the
//!      GPU so that products compare; a plain profile before its `+me` twin). Among equals,
//!      the placement that destroys the fewest other placements, largest profiles first
//!      ([`placement_loss`]): so a GPU already cut up is used before an untouched one, and
//!      inside a GPU a `1g` goes where it leaves a `4g` or `3g` possible. Then the tightest
//!      GPU (fewest free compute slices afterwards), then the lowest index.
//!    - *Share*: the shared GPU left with the least compute, then least memory (best fit).
//!    - *Whole*: a non-MIG GPU before a dynamic-MIG one (those can still be cut up for small
//!      demands), then the lowest index.

mod mig_choice;

pub use crate::model::partition::{
    Assignment, GpuPartitioning, Leftover, ModelFilter, Partition, PartitionDemand, PartitionError,
    PartitionFit, PartitionGpu, PartitionKind, apply, release,
};
pub use mig_choice::{LOSS_LEN, placement_loss};

use crate::model::partition::{COMPUTE_PERCENT, share_fraction};

/// Where `demand` would go on a node whose GPUs are `gpus`, or `None` if it does not fit
/// (or the demand is invalid: see [`PartitionDemand::validate`]).
///
/// The node's CPU and host memory are not looked at; the caller checks those.
pub fn fit(demand: &PartitionDemand, gpus: &[PartitionGpu]) -> Option<PartitionFit> {
    demand.validate().ok()?;
    if usize::from(demand.count) > gpus.len() {
        return None;
    }
    let mut used = vec![false; gpus.len()];
    let mut assignments = Vec::with_capacity(usize::from(demand.count));
    for _ in 0..demand.count {
        let (gpu, partition) = demand
            .preference
            .iter()
            .filter(|kind| demand.allow_mig || **kind != PartitionKind::Mig)
            .find_map(|kind| best_of_kind(*kind, demand, gpus, &used))?;
        if let Some(flag) = used.get_mut(gpu) {
            *flag = true;
        }
        let state = gpus.get(gpu)?;
        assignments.push(Assignment {
            gpu,
            partition,
            fraction: fraction(state, partition),
            left: leftover_after(state, partition)?,
        });
    }
    Some(PartitionFit { assignments })
}

/// The best partition of `kind` over the GPUs not yet `used`, as (GPU index, partition).
fn best_of_kind(
    kind: PartitionKind,
    demand: &PartitionDemand,
    gpus: &[PartitionGpu],
    used: &[bool],
) -> Option<(usize, Partition)> {
    let open = gpus
        .iter()
        .enumerate()
        .filter(|(i, _)| !used.get(*i).copied().unwrap_or(true))
        .filter(|(_, g)| demand.models.allows(&g.model));
    match kind {
        PartitionKind::Mig => mig_choice::best(demand, open),
        PartitionKind::Shared => best_share(demand, open),
        PartitionKind::Whole => best_whole(demand, open),
    }
}

fn best_whole<'a>(
    demand: &PartitionDemand,
    open: impl Iterator<Item = (usize, &'a PartitionGpu)>,
) -> Option<(usize, Partition)> {
    open.filter(|(_, g)| g.memory_mib >= demand.memory_mib)
        .filter_map(|(i, g)| match &g.state {
            GpuPartitioning::Whole { taken: false } => Some((false, i)),
            GpuPartitioning::DynamicMig {
                layout,
                whole_taken: false,
            } if layout.instances().is_empty() => Some((true, i)),
            _ => None,
        })
        .min()
        .map(|(_, i)| (i, Partition::Whole))
}

fn best_share<'a>(
    demand: &PartitionDemand,
    open: impl Iterator<Item = (usize, &'a PartitionGpu)>,
) -> Option<(usize, Partition)> {
    let pct = demand.compute_pct();
    open.filter_map(|(i, g)| match &g.state {
        GpuPartitioning::Shared {
            used_memory_mib,
            used_compute_pct,
        } => {
            let free_memory = g.memory_mib.checked_sub(*used_memory_mib)?;
            let free_compute = COMPUTE_PERCENT.checked_sub(*used_compute_pct)?;
            let left_memory = free_memory.checked_sub(demand.memory_mib)?;
            let left_compute = free_compute.checked_sub(pct)?;
            Some((left_compute, left_memory, i))
        }
        _ => None,
    })
    .min()
    .map(|(_, _, i)| {
        (
            i,
            Partition::Shared {
                memory_mib: demand.memory_mib,
                compute_pct: pct,
            },
        )
    })
}

/// The assignment's share of its GPU (see [`Assignment::fraction`]).
fn fraction(gpu: &PartitionGpu, partition: Partition) -> f64 {
    match partition {
        Partition::Whole => 1.0,
        Partition::Mig { profile, .. } => {
            let total = gpu
                .mig_product()
                .map_or(1, |p| p.total_compute_slices())
                .max(1);
            f64::from(profile.compute_slices) / f64::from(total)
        }
        Partition::Shared {
            memory_mib,
            compute_pct,
        } => share_fraction(gpu.memory_mib, memory_mib, compute_pct),
    }
}

/// What `gpu` has left once `partition` is taken from it.
fn leftover_after(gpu: &PartitionGpu, partition: Partition) -> Option<Leftover> {
    let mut after = gpu.clone();
    let assignment = Assignment {
        gpu: 0,
        partition,
        fraction: 0.0,
        left: Leftover {
            free_fraction: 0.0,
            free_memory_mib: 0,
            mig_placements: 0,
        },
    };
    apply(
        &PartitionFit {
            assignments: vec![assignment],
        },
        std::slice::from_mut(&mut after),
    )
    .ok()?;
    Some(leftover(&after))
}

/// What `gpu` has left as it is.
pub fn leftover(gpu: &PartitionGpu) -> Leftover {
    let free_fraction = (1.0 - gpu.used_fraction()).clamp(0.0, 1.0);
    let (free_memory_mib, mig_placements) = match &gpu.state {
        GpuPartitioning::Whole { .. } => (0, 0),
        GpuPartitioning::Shared {
            used_memory_mib, ..
        } => (gpu.memory_mib.saturating_sub(*used_memory_mib), 0),
        GpuPartitioning::StaticMig { layout } => {
            let free = layout.instances().filter(|(_, taken)| !taken);
            let (max, count) = free.fold((0, 0u32), |(max, count), (i, _)| {
                (u64::max(max, i.profile.capacity_mib()), count + 1)
            });
            (max, count)
        }
        GpuPartitioning::DynamicMig {
            layout,
            whole_taken,
        } => {
            if *whole_taken {
                (0, 0)
            } else {
                let available = layout.available();
                let max = available
                    .iter()
                    .map(|(p, _)| p.capacity_mib())
                    .max()
                    .unwrap_or(0);
                (max, u32::try_from(available.len()).unwrap_or(u32::MAX))
            }
        }
    };
    Leftover {
        free_fraction,
        free_memory_mib,
        mig_placements,
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod props;
