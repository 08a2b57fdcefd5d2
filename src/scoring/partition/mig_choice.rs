//! Choosing a MIG instance: smallest adequate profile, then the least fragmenting placement.
//!
//! The rules of [`MigLayout::place`] are evaluated here on a bitmask copy of the layout
//! ([`Occupancy`]): the fit looks at every placement of every profile on every GPU, often
//! twice (before and after a candidate), and the layout's own checks are written for
//! clarity, not for that volume. A property test (`props.rs`) holds the two to the same
//! answers: every fit is applied through [`MigLayout::place`].

use std::sync::OnceLock;

use crate::model::MILLI_PER_GPU;
use crate::model::mig::{GpuProduct, MigLayout, MigProfile, Placement, profiles};
use crate::model::partition::{GpuPartitioning, Partition, PartitionDemand, PartitionGpu};

/// Length of a [`placement_loss`] vector: more than any product's count of plain profiles.
pub const LOSS_LEN: usize = 8;

/// Common denominator of memory and compute slice fractions (8ths, 7ths and 4ths), so that
/// profile sizes of different products compare exactly.
const DENOM: u16 = 56;

/// Most profiles one product has (index space of [`Occupancy::counts`]).
const MAX_PROFILES: usize = 16;

/// A layout reduced to what the placement rules read.
#[derive(Debug, Clone, Copy)]
struct Occupancy {
    /// Memory slices taken, bit i = slice i.
    mask: u32,
    /// Instances per profile, by the profile's index in the product's table.
    counts: [u8; MAX_PROFILES],
    /// Compute slices still free.
    free_compute: u8,
    /// Whether a `+me` instance holds the media extensions.
    media_taken: bool,
}

fn slice_mask(placement: Placement) -> u32 {
    let ones = 1u32
        .checked_shl(u32::from(placement.size))
        .map_or(u32::MAX, |b| b - 1);
    ones.checked_shl(u32::from(placement.start)).unwrap_or(0)
}

impl Occupancy {
    fn of(layout: &MigLayout) -> Self {
        let rows = profiles(layout.product());
        let mut occ = Occupancy {
            mask: 0,
            counts: [0; MAX_PROFILES],
            free_compute: layout.free_compute_slices(),
            media_taken: false,
        };
        for inst in layout.instances() {
            occ.mask |= slice_mask(inst.placement);
            occ.media_taken |= inst.profile.media_extensions;
            if let Some(slot) = rows
                .iter()
                .position(|r| std::ptr::eq(r, inst.profile) || r.name == inst.profile.name)
                .and_then(|i| occ.counts.get_mut(i))
            {
                *slot = slot.saturating_add(1);
            }
        }
        occ
    }

    /// Whether row `index` of the product's table (`row`) may be placed at `placement`, a
    /// placement the row lists.
    fn can(&self, index: usize, row: &MigProfile, placement: Placement) -> bool {
        self.mask & slice_mask(placement) == 0
            && self.counts.get(index).is_some_and(|c| *c < row.max_count)
            && row.compute_slices <= self.free_compute
            && !(row.media_extensions && self.media_taken)
    }

    fn with(mut self, index: usize, row: &MigProfile, placement: Placement) -> Self {
        self.mask |= slice_mask(placement);
        if let Some(c) = self.counts.get_mut(index) {
            *c = c.saturating_add(1);
        }
        self.free_compute = self.free_compute.saturating_sub(row.compute_slices);
        self.media_taken |= row.media_extensions;
        self
    }

    /// Possible placements per plain profile, largest profile first.
    fn placements_by_size(&self, product: GpuProduct) -> [u8; LOSS_LEN] {
        let rows = profiles(product);
        let mut out = [0u8; LOSS_LEN];
        for (slot, index) in out.iter_mut().zip(by_size(product)) {
            if let Some(row) = rows.get(index) {
                let n = row
                    .placements
                    .iter()
                    .filter(|pl| self.can(index, row, **pl))
                    .count();
                *slot = u8::try_from(n).unwrap_or(u8::MAX);
            }
        }
        out
    }
}

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
    let product = layout.product();
    let index = profiles(product).iter().position(|p| p == profile)?;
    let occ = Occupancy::of(layout);
    if !profile.placements.contains(&placement) || !occ.can(index, profile, placement) {
        return None;
    }
    Some(loss(
        product,
        &occ,
        occ.placements_by_size(product),
        index,
        profile,
        placement,
    ))
}

fn loss(
    product: GpuProduct,
    occ: &Occupancy,
    before: [u8; LOSS_LEN],
    index: usize,
    row: &MigProfile,
    placement: Placement,
) -> [u8; LOSS_LEN] {
    let after = occ.with(index, row, placement).placements_by_size(product);
    let mut out = [0u8; LOSS_LEN];
    for ((slot, b), a) in out.iter_mut().zip(before).zip(after) {
        *slot = b.saturating_sub(a);
    }
    out
}

/// Indices of the plain profiles of `product`, largest first.
///
/// Computed once per product: the fit asks for it twice per candidate placement, and a
/// request can weigh thousands of candidates.
fn by_size(product: GpuProduct) -> impl Iterator<Item = usize> {
    static ORDERS: OnceLock<Vec<Vec<usize>>> = OnceLock::new();
    let orders = ORDERS.get_or_init(|| GpuProduct::ALL.iter().map(|p| size_order(*p)).collect());
    GpuProduct::ALL
        .iter()
        .position(|p| *p == product)
        .and_then(|i| orders.get(i))
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .copied()
}

fn size_order(product: GpuProduct) -> Vec<usize> {
    let rows = profiles(product);
    let mut order: Vec<usize> = (0..rows.len())
        .filter(|i| rows.get(*i).is_some_and(|r| !r.media_extensions))
        .collect();
    order.sort_by_key(|i| {
        rows.get(*i)
            .map(|r| std::cmp::Reverse((r.compute_slices, r.memory_slices)))
    });
    order
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
pub(super) fn adequate(
    product: GpuProduct,
    profile: &MigProfile,
    demand: &PartitionDemand,
) -> bool {
    profile.capacity_mib() >= demand.memory_mib
        && u32::from(profile.compute_slices) * u32::from(MILLI_PER_GPU)
            >= u32::from(demand.compute_milli) * u32::from(product.total_compute_slices())
}

/// Every placement still possible on `layout` (all profiles, `+me` ones included) and the
/// largest memory among them, MiB.
pub(super) fn possible(layout: &MigLayout) -> (u32, u64) {
    let occ = Occupancy::of(layout);
    let mut count = 0u32;
    let mut largest = 0u64;
    for (index, row) in profiles(layout.product()).iter().enumerate() {
        let n = row
            .placements
            .iter()
            .filter(|pl| occ.can(index, row, **pl))
            .count();
        if n > 0 {
            count += u32::try_from(n).unwrap_or(u32::MAX);
            largest = largest.max(row.capacity_mib());
        }
    }
    (count, largest)
}

/// Whether `gpu` could give any adequate MIG instance now.
pub(super) fn any(demand: &PartitionDemand, gpu: &PartitionGpu) -> bool {
    match &gpu.state {
        GpuPartitioning::DynamicMig {
            layout,
            whole_taken: false,
        } => {
            let product = layout.product();
            let occ = Occupancy::of(layout);
            profiles(product).iter().enumerate().any(|(i, row)| {
                adequate(product, row, demand)
                    && row.placements.iter().any(|pl| occ.can(i, row, *pl))
            })
        }
        GpuPartitioning::StaticMig { layout } => {
            let product = layout.layout().product();
            layout
                .instances()
                .any(|(inst, taken)| !taken && adequate(product, inst.profile, demand))
        }
        _ => false,
    }
}

/// One adequate MIG instance a GPU could give.
struct Found {
    gpu: usize,
    /// The GPU's occupancy and per-size placement counts (dynamic MIG only: a static
    /// instance exists already, and taking it destroys no other placement).
    dynamic: Option<(GpuProduct, Occupancy, [u8; LOSS_LEN])>,
    index: usize,
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
    // Phase 1: every adequate (GPU, profile, placement), cheaply, with its size. A GPU in
    // the same state as an earlier one would only repeat its candidates with a higher
    // index, which never wins a tie: skip it.
    let mut seen: Vec<&'a GpuPartitioning> = Vec::new();
    let mut found: Vec<Found> = Vec::new();
    for (i, gpu) in open {
        if seen.contains(&&gpu.state) {
            continue;
        }
        seen.push(&gpu.state);
        match &gpu.state {
            GpuPartitioning::DynamicMig {
                layout,
                whole_taken: false,
            } => {
                let product = layout.product();
                let occ = Occupancy::of(layout);
                let mut counts = None;
                for (index, row) in profiles(product).iter().enumerate() {
                    if !adequate(product, row, demand) {
                        continue;
                    }
                    for pl in row.placements {
                        if !occ.can(index, row, *pl) {
                            continue;
                        }
                        let before = *counts.get_or_insert_with(|| occ.placements_by_size(product));
                        let left = occ.free_compute.saturating_sub(row.compute_slices);
                        found.push(Found {
                            gpu: i,
                            dynamic: Some((product, occ, before)),
                            index,
                            profile: row,
                            placement: *pl,
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
                        dynamic: None,
                        index: 0,
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
        .map(|f| {
            let lost = match &f.dynamic {
                Some((product, occ, before)) => {
                    loss(*product, occ, *before, f.index, f.profile, f.placement)
                }
                None => [0; LOSS_LEN],
            };
            ((lost, f.free_after, f.gpu, f.placement.start), f)
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
