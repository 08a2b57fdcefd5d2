//! The scheduler's allocator on a MIG node, in partition terms: first fit over the devices
//! the plugin publishes for the node, in their published order.
//!
//! For a dynamic-MIG GPU at the `consumable` level the plugin publishes the whole GPU, every
//! placement of every profile, and the shared GPU, all on the GPU's counters
//! (`publish/slices/devices.rs`); the node's devices are sorted by [`OrderKey`] and cut into
//! device slices of [`DEVICES_PER_SLICE`] (`publish::slices::render`). An 8 × H100 node has
//! 216 devices in 4 slices, an 8 × A100-40GB node 152 in 3.
//!
//! The allocator tries a request's `firstAvailable` alternatives in order, and for each walks
//! the slices, each slice's devices in order, taking the first device that the demand finds
//! adequate and the GPU's counters still allow ([`assignment`] on the GPU's state). Slice order:
//!
//! - [`Release::NameOrder`] (1.36+): slices by name, i.e. in publishing order: one outcome;
//! - [`Release::Arbitrary`] (1.34/1.35): a random order per scheduling cycle. A one-device
//!   request then gets the first adequate device of whichever slice holding one comes first:
//!   each such slice's first fit is equally likely, and [`Published::outcomes`] lists them.
//!   For a request of several devices the outcome starting from each slice continues through
//!   the rest in publishing order (the exact distribution would need every permutation; the
//!   MIG experiment's multi-GPU requests take whole GPUs, which all sit in one slice).
//!
//! A test (`tests/placement_projection.rs`) checks these outcomes against the allocator model
//! run on the slices `tessera slices` publishes for the same node.

use crate::model::device_order::{Layout, OrderKey, cut};
use crate::model::mig::profiles;
use crate::model::partition::{
    Assignment, GpuPartitioning, Partition, PartitionDemand, PartitionFit, PartitionGpu,
    PartitionKind,
};
use crate::scoring::partition::{assignment, mig_adequate};
use crate::sim::placement::Release;

/// Devices per slice when any device consumes counters
/// (`ResourceSliceMaxDevicesWithAdvancedFeatures`), as the plugin cuts them.
pub const DEVICES_PER_SLICE: usize = 64;

const MIB: u64 = 1024 * 1024;

/// One published device: its GPU and what it hands out (`None`: the shared GPU, which no MIG
/// experiment request asks for but which takes its place in a slice).
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    gpu: usize,
    partition: Option<Partition>,
    /// Whether its GPU is dynamic MIG (its own slice under [`Layout::PerMigGpu`]).
    dynamic: bool,
}

/// A node's published devices, in order, and where the slices start.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    entries: Vec<Entry>,
    /// `(start, end)` of each slice in `entries`, in name order.
    slices: Vec<(usize, usize)>,
}

impl Published {
    /// What the plugin publishes for a node whose GPUs are `gpus` (their current state does
    /// not matter: devices are published whatever is allocated).
    pub fn of(gpus: &[PartitionGpu], layout: Layout) -> Self {
        let slice_layout = layout;
        let mut keyed: Vec<(OrderKey, Entry)> = Vec::new();
        for (i, gpu) in gpus.iter().enumerate() {
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            let dynamic = matches!(gpu.state, GpuPartitioning::DynamicMig { .. });
            if let GpuPartitioning::DynamicMig { layout, .. } = &gpu.state {
                let product = layout.product();
                for row in profiles(product) {
                    for &placement in row.placements {
                        let key = OrderKey::mig(
                            index,
                            Some(product),
                            Some(row),
                            placement,
                            row.compute_slices,
                            row.capacity_mib() * MIB,
                        );
                        let partition = Partition::Mig {
                            profile: row,
                            placement,
                        };
                        keyed.push((
                            key,
                            Entry {
                                gpu: i,
                                partition: Some(partition),
                                dynamic,
                            },
                        ));
                    }
                }
            }
            keyed.push((
                OrderKey::shared(index),
                Entry {
                    gpu: i,
                    partition: None,
                    dynamic,
                },
            ));
            keyed.push((
                if dynamic {
                    OrderKey::whole_cuttable(index)
                } else {
                    OrderKey::whole(index)
                },
                Entry {
                    gpu: i,
                    partition: Some(Partition::Whole),
                    dynamic,
                },
            ));
        }
        // Equal keys do not occur (GPU and placement are in the key); a stable sort keeps
        // the build order regardless.
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        let sorted: Vec<Entry> = keyed.into_iter().map(|(_, e)| e).collect();
        let cut = cut(&sorted, slice_layout, DEVICES_PER_SLICE, |e| {
            let placement = matches!(e.partition, Some(Partition::Mig { .. }));
            (e.dynamic && placement).then(|| u32::try_from(e.gpu).unwrap_or(u32::MAX))
        });
        // Entries regrouped slice by slice, so each slice is a range.
        let mut entries = Vec::with_capacity(sorted.len());
        let mut slices = Vec::with_capacity(cut.len());
        for slice in cut {
            let start = entries.len();
            entries.extend(slice.iter().filter_map(|i| sorted.get(*i).cloned()));
            slices.push((start, entries.len()));
        }
        Published { entries, slices }
    }

    /// Number of device slices.
    pub fn slice_count(&self) -> usize {
        self.slices.len()
    }

    /// The allocator's answer for `demand` on `gpus` with the slices tried in `order`
    /// (indices into the slices; every slice once), or `None` when nothing fits.
    pub fn first_fit(
        &self,
        demand: &PartitionDemand,
        gpus: &[PartitionGpu],
        order: &[usize],
    ) -> Option<PartitionFit> {
        demand.validate().ok()?;
        demand
            .preference
            .iter()
            .filter(|k| demand.allow_mig || **k != PartitionKind::Mig)
            .find_map(|kind| self.take(*kind, demand, gpus, order))
    }

    /// The equally likely outcomes for `demand` under `release` (one under name order; see
    /// the module docs), without repeats, in slice order; empty when nothing fits.
    pub fn outcomes(
        &self,
        demand: &PartitionDemand,
        gpus: &[PartitionGpu],
        release: Release,
    ) -> Vec<PartitionFit> {
        let natural: Vec<usize> = (0..self.slices.len()).collect();
        if release == Release::NameOrder {
            return self.first_fit(demand, gpus, &natural).into_iter().collect();
        }
        let Some(kind) = demand
            .preference
            .iter()
            .filter(|k| demand.allow_mig || **k != PartitionKind::Mig)
            .find(|k| self.take(**k, demand, gpus, &natural).is_some())
        else {
            return Vec::new();
        };
        let mut out: Vec<PartitionFit> = Vec::new();
        for first in 0..self.slices.len() {
            if !self.slice_has(first, *kind, demand, gpus) {
                continue;
            }
            let order: Vec<usize> = std::iter::once(first)
                .chain(natural.iter().copied().filter(|s| *s != first))
                .collect();
            if let Some(fit) = self.take(*kind, demand, gpus, &order)
                && !out.contains(&fit)
            {
                out.push(fit);
            }
        }
        out
    }

    /// `demand.count` devices of `kind`, first fit in `order`, each on a GPU no earlier one
    /// used (the partition model gives one assignment per GPU).
    fn take(
        &self,
        kind: PartitionKind,
        demand: &PartitionDemand,
        gpus: &[PartitionGpu],
        order: &[usize],
    ) -> Option<PartitionFit> {
        let mut used = vec![false; gpus.len()];
        let mut assignments = Vec::with_capacity(usize::from(demand.count));
        for _ in 0..demand.count {
            let found = order.iter().find_map(|s| {
                let (start, end) = *self.slices.get(*s)?;
                self.entries.get(start..end)?.iter().find_map(|e| {
                    if used.get(e.gpu).copied().unwrap_or(true) {
                        return None;
                    }
                    self.offer(e, kind, demand, gpus)
                })
            })?;
            if let Some(flag) = used.get_mut(found.gpu) {
                *flag = true;
            }
            assignments.push(found);
        }
        Some(PartitionFit { assignments })
    }

    /// Whether slice `s` holds a device of `kind` the demand could take now.
    fn slice_has(
        &self,
        s: usize,
        kind: PartitionKind,
        demand: &PartitionDemand,
        gpus: &[PartitionGpu],
    ) -> bool {
        self.slices.get(s).is_some_and(|(start, end)| {
            self.entries.get(*start..*end).is_some_and(|es| {
                es.iter()
                    .any(|e| self.offer(e, kind, demand, gpus).is_some())
            })
        })
    }

    /// The assignment `entry` gives `demand` as a device of `kind`, if adequate and free.
    fn offer(
        &self,
        entry: &Entry,
        kind: PartitionKind,
        demand: &PartitionDemand,
        gpus: &[PartitionGpu],
    ) -> Option<Assignment> {
        let partition = entry.partition?;
        if partition.kind() != kind {
            return None;
        }
        let gpu = gpus.get(entry.gpu)?;
        if !demand.models.allows(&gpu.model) {
            return None;
        }
        let adequate = match partition {
            Partition::Mig { profile, .. } => gpu
                .mig_product()
                .is_some_and(|p| mig_adequate(p, profile, demand)),
            Partition::Whole => gpu.memory_mib >= demand.memory_mib,
            Partition::Shared { .. } => false,
        };
        if !adequate {
            return None;
        }
        // The counters allow it exactly when the partition model can apply it, which
        // `assignment` tries on a copy of the GPU.
        assignment(entry.gpu, gpu, partition)
    }
}

#[cfg(test)]
mod tests;
