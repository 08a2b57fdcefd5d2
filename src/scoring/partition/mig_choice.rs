//! Choosing a MIG instance: smallest adequate profile, then the least fragmenting placement.

use crate::model::MILLI_PER_GPU;
use crate::model::mig::{GpuProduct, MigLayout, MigProfile, Placement, profiles};
use crate::model::partition::{GpuPartitioning, Partition, PartitionDemand, PartitionGpu};

/// Length of a [`placement_loss`] vector: more than any product's count of plain profiles.
pub const LOSS_LEN: usize = 8;

/// Common denominator of memory and compute slice fractions (8ths, 7ths and 4ths), so that
/// profile sizes of different products compare exactly.
const DENOM: u16 = 56;

/// How many placements of each plain (non-`+me`) profile of the layout's product stop being
/// possible when `profile` is placed at `placement`, largest profile first (by compute, then
/// memory slices). `None` if the placement is not possible.
///
/// Comparing these vectors lexicographically picks the placement that keeps the largest
/// profiles possible: on an empty H100 a `1g.10gb` at slot 6 keeps `4g.40gb` possible, at
/// slot 0 it does not.
pub fn placement_loss(
    layout: &MigLayout,
    profile: &MigProfile,
    placement: Placement,
) -> Option<[u8; LOSS_LEN]> {
    let mut after = layout.clone();
    after.place(profile, placement).ok()?;
    let before = counts(layout);
    let after = counts(&after);
    let mut loss = [0u8; LOSS_LEN];
    for ((slot, b), a) in loss.iter_mut().zip(before).zip(after) {
        *slot = b.saturating_sub(a);
    }
    Some(loss)
}

/// Possible placements per plain profile, largest profile first.
fn counts(layout: &MigLayout) -> [u8; LOSS_LEN] {
    let mut out = [0u8; LOSS_LEN];
    for (slot, row) in out.iter_mut().zip(by_size(layout.product())) {
        *slot = u8::try_from(layout.available_for(row).len()).unwrap_or(u8::MAX);
    }
    out
}

/// Plain profiles of `product`, largest first.
fn by_size(product: GpuProduct) -> Vec<&'static MigProfile> {
    let mut rows: Vec<&'static MigProfile> = profiles(product)
        .iter()
        .filter(|p| !p.media_extensions)
        .collect();
    rows.sort_by_key(|p| std::cmp::Reverse((p.compute_slices, p.memory_slices)));
    rows
}

/// Size of a profile as fractions of its GPU over [`DENOM`]: memory, then compute; a `+me`
/// profile ranks after its plain twin.
fn size_key(product: GpuProduct, profile: &MigProfile) -> (u16, u16, bool) {
    let mem = u16::from(profile.memory_slices) * DENOM / u16::from(product.total_memory_slices());
    let comp =
        u16::from(profile.compute_slices) * DENOM / u16::from(product.total_compute_slices());
    (mem, comp, profile.media_extensions)
}

/// Whether `profile` of `product` meets the demand's memory and compute.
fn adequate(product: GpuProduct, profile: &MigProfile, demand: &PartitionDemand) -> bool {
    profile.capacity_mib() >= demand.memory_mib
        && u32::from(profile.compute_slices) * u32::from(MILLI_PER_GPU)
            >= u32::from(demand.compute_milli) * u32::from(product.total_compute_slices())
}

/// One adequate MIG instance a GPU could give.
struct Found<'a> {
    gpu: usize,
    state: &'a PartitionGpu,
    profile: &'static MigProfile,
    placement: Placement,
    size: (u16, u16, bool),
    /// Compute slices the GPU has free afterwards, over [`DENOM`].
    free_after: u16,
}

/// The best MIG instance over `open` GPUs (see the module docs of `scoring::partition`).
pub(super) fn best<'a>(
    demand: &PartitionDemand,
    open: impl Iterator<Item = (usize, &'a PartitionGpu)>,
) -> Option<(usize, Partition)> {
    // Phase 1: every adequate (GPU, profile, placement), cheaply, with its size.
    let mut found: Vec<Found<'a>> = Vec::new();
    for (i, gpu) in open {
        match &gpu.state {
            GpuPartitioning::DynamicMig {
                layout,
                whole_taken: false,
            } => {
                let product = layout.product();
                let free = layout.free_compute_slices();
                for row in profiles(product) {
                    if !adequate(product, row, demand) {
                        continue;
                    }
                    for pl in layout.available_for(row) {
                        let left = free.saturating_sub(row.compute_slices);
                        found.push(Found {
                            gpu: i,
                            state: gpu,
                            profile: row,
                            placement: pl,
                            size: size_key(product, row),
                            free_after: scaled(product, left),
                        });
                    }
                }
            }
            GpuPartitioning::StaticMig { layout } => {
                let product = layout.layout().product();
                let free: u8 = layout
                    .instances()
                    .filter(|(_, taken)| !taken)
                    .map(|(inst, _)| inst.profile.compute_slices)
                    .sum();
                for (inst, taken) in layout.instances() {
                    if taken || !adequate(product, inst.profile, demand) {
                        continue;
                    }
                    let left = free.saturating_sub(inst.profile.compute_slices);
                    found.push(Found {
                        gpu: i,
                        state: gpu,
                        profile: inst.profile,
                        placement: inst.placement,
                        size: size_key(product, inst.profile),
                        free_after: scaled(product, left),
                    });
                }
            }
            _ => {}
        }
    }
    // Phase 2: only the smallest size competes; rank those by loss, tightness, index.
    let smallest = found.iter().map(|f| f.size).min()?;
    found
        .into_iter()
        .filter(|f| f.size == smallest)
        .filter_map(|f| {
            // A static instance exists already: taking it destroys no other placement.
            let loss = match &f.state.state {
                GpuPartitioning::DynamicMig { layout, .. } => {
                    placement_loss(layout, f.profile, f.placement)?
                }
                _ => [0; LOSS_LEN],
            };
            Some(((loss, f.free_after, f.gpu, f.placement.start), f))
        })
        .min_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, f)| {
            (
                f.gpu,
                Partition::Mig {
                    profile: f.profile,
                    placement: f.placement,
                },
            )
        })
}

fn scaled(product: GpuProduct, slices: u8) -> u16 {
    u16::from(slices) * DENOM / u16::from(product.total_compute_slices())
}
