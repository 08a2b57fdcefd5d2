//! Device order = the allocator's preference order: the order the plugin publishes a node's
//! devices in (`publish::slices`), and the order the simulator's model of the scheduler's
//! allocator walks (`sim::mig::published`). One rule, used by both.
//!
//! The scheduler's allocator has no scoring: it takes the first device that fits, walking
//! each slice's devices in order, and the slices by name on Kubernetes 1.36+ with the default
//! gates (in an arbitrary order on 1.34/1.35: `docs/device-model.md`, "Device order"). So the
//! order *is* the placement policy inside a node:
//!
//! 1. MIG devices first, smallest first (memory slices, then compute slices, a plain profile
//!    before its `+me` twin, then memory): a request that any MIG size satisfies gets the
//!    smallest adequate one. Then legacy shares, then `shared` devices, then whole GPUs.
//! 2. Partitions and shares are packed from GPU 0 upwards; whole GPUs are handed out from
//!    the highest index down. With shared counters the two kinds then fill the node from
//!    opposite ends, and a whole-GPU request does not take the GPU that small requests are
//!    being packed onto.
//! 3. Among the placements of one profile on one GPU, the least fragmenting first: the one
//!    that overlaps the fewest placements of the product's catalog (so 1g instances fill
//!    from the top memory slices and leave slice 0, where only 4g/7g fit, for last), ties
//!    broken by the higher start.

use super::mig::{GpuProduct, MigProfile, Placement, profiles};

/// The kind of a published device, and its `type` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A MIG partition (static or dynamic).
    Mig,
    /// A legacy time-sliced replica.
    Share,
    /// The GPU shared through consumable capacity.
    Shared,
    /// The whole GPU.
    Whole,
}

impl Kind {
    /// The `type` attribute value.
    pub fn type_name(self) -> &'static str {
        match self {
            Kind::Mig => "mig",
            Kind::Share => "share",
            Kind::Shared => "shared",
            Kind::Whole => "gpu",
        }
    }
}

/// How a node's ordered devices are cut into device slices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Layout {
    /// One order across the node ([`OrderKey`]), cut into slices of at most 64 devices in
    /// that order: on 1.36+ (slices by name) the allocator walks exactly this order.
    #[default]
    KindMajor,
    /// Each dynamic-MIG GPU's MIG placements in a slice of their own, in [`OrderKey`] order,
    /// those slices in GPU order, after every other device (whole GPUs, shared GPUs, static
    /// MIG instances, replicas) cut as [`Layout::KindMajor`]. On 1.34/1.35 (slices in
    /// arbitrary order) whichever slice comes first still offers the smallest adequate
    /// partition of its GPU; a whole-GPU request never meets a dynamic-MIG GPU's placements
    /// and takes MIG-off GPUs first; a MIG request on 1.36+ takes an existing static instance
    /// before cutting a dynamic GPU.
    PerMigGpu,
}

impl Layout {
    /// What the plugin publishes: measured best on every release family
    /// (`docs/simulation.md`, "Publishing layout").
    pub const PUBLISHED: Layout = Layout::PerMigGpu;

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Layout::KindMajor => "kind-major",
            Layout::PerMigGpu => "per-mig-gpu",
        }
    }
}

/// Cuts devices (already sorted by [`OrderKey`]) into slices of at most `per_slice` under
/// `layout`: `gpu_of` gives a device's GPU index when it is a MIG placement of a dynamic-MIG
/// GPU (its own slice under [`Layout::PerMigGpu`]), `None` otherwise. Returns each slice's
/// device indices, in slice (name) order.
pub fn cut<T>(
    devices: &[T],
    layout: Layout,
    per_slice: usize,
    gpu_of: impl Fn(&T) -> Option<u32>,
) -> Vec<Vec<usize>> {
    let per_slice = per_slice.max(1);
    let mut slices: Vec<Vec<usize>> = Vec::new();
    let mut rest: Vec<usize> = Vec::new();
    match layout {
        Layout::KindMajor => rest.extend(0..devices.len()),
        Layout::PerMigGpu => {
            let mut by_gpu: std::collections::BTreeMap<u32, Vec<usize>> = Default::default();
            for (i, d) in devices.iter().enumerate() {
                match gpu_of(d) {
                    Some(gpu) => by_gpu.entry(gpu).or_default().push(i),
                    None => rest.push(i),
                }
            }
            slices.extend(rest.chunks(per_slice).map(<[usize]>::to_vec));
            for own in by_gpu.into_values() {
                slices.extend(own.chunks(per_slice).map(<[usize]>::to_vec));
            }
            return slices;
        }
    }
    slices.extend(rest.chunks(per_slice).map(<[usize]>::to_vec));
    slices
}

/// Sort key of a device; smaller sorts first. Field order is the precedence.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct OrderKey {
    kind: Kind,
    /// A whole GPU that could still be cut into MIG instances (dynamic MIG): handed out after
    /// every whole GPU that cannot.
    cuttable: bool,
    memory_slices: u8,
    compute_slices: u8,
    media_extensions: bool,
    memory_bytes: u64,
    gpu_rank: u32,
    placement_rank: u32,
    start_rank: u8,
    replica: u32,
}

impl OrderKey {
    /// The device's kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// A MIG device of `profile` (if the catalog knows it; else sizes from the device) at
    /// `placement` on GPU `gpu` of `product`.
    pub fn mig(
        gpu: u32,
        product: Option<GpuProduct>,
        profile: Option<&MigProfile>,
        placement: Placement,
        compute_slices: u8,
        memory_bytes: u64,
    ) -> Self {
        OrderKey {
            kind: Kind::Mig,
            cuttable: false,
            memory_slices: placement.size,
            compute_slices,
            media_extensions: profile.is_some_and(|p| p.media_extensions),
            memory_bytes,
            gpu_rank: gpu,
            placement_rank: product.map_or(0, |p| overlapping_placements(p, placement)),
            start_rank: u8::MAX - placement.start,
            replica: 0,
        }
    }

    /// Replica `replica` of GPU `gpu`, each of `memory_bytes`.
    pub fn share(gpu: u32, replica: u32, memory_bytes: u64) -> Self {
        OrderKey {
            kind: Kind::Share,
            memory_bytes,
            gpu_rank: gpu,
            replica,
            ..Self::base(Kind::Share)
        }
    }

    /// The `shared` device of GPU `gpu`.
    pub fn shared(gpu: u32) -> Self {
        OrderKey {
            gpu_rank: gpu,
            ..Self::base(Kind::Shared)
        }
    }

    /// The whole GPU `gpu`: highest index first.
    pub fn whole(gpu: u32) -> Self {
        OrderKey {
            gpu_rank: u32::MAX - gpu,
            ..Self::base(Kind::Whole)
        }
    }

    /// The whole GPU `gpu` of a dynamic-MIG GPU: after every whole GPU that cannot be cut
    /// (so a whole-GPU request keeps the MIG-capable capacity for MIG requests), highest
    /// index first.
    pub fn whole_cuttable(gpu: u32) -> Self {
        OrderKey {
            cuttable: true,
            ..Self::whole(gpu)
        }
    }

    fn base(kind: Kind) -> Self {
        OrderKey {
            kind,
            cuttable: false,
            memory_slices: 0,
            compute_slices: 0,
            media_extensions: false,
            memory_bytes: 0,
            gpu_rank: 0,
            placement_rank: 0,
            start_rank: 0,
            replica: 0,
        }
    }
}

/// How many (profile, placement) pairs of `product`'s catalog share a memory slice with
/// `placement`: the options a device at `placement` takes away from the GPU.
pub fn overlapping_placements(product: GpuProduct, placement: Placement) -> u32 {
    let n = profiles(product)
        .iter()
        .flat_map(|p| p.placements.iter())
        .filter(|q| q.overlaps(placement))
        .count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::mig::profile;

    fn order_of_starts(product: GpuProduct, name: &str) -> Vec<u8> {
        let p = profile(product, name).unwrap();
        let mut placements: Vec<_> = p.placements.to_vec();
        placements.sort_by_key(|pl| OrderKey::mig(0, Some(product), Some(p), *pl, 1, 0));
        placements.iter().map(|pl| pl.start).collect()
    }

    #[test]
    fn small_instances_fill_from_the_top_and_leave_slice_zero_last() {
        // Slice 6 is shared by the fewest placements (no 2g or 4g uses it).
        assert_eq!(
            order_of_starts(GpuProduct::H100_80GB, "1g.10gb"),
            [6, 5, 4, 3, 2, 1, 0]
        );
        assert_eq!(order_of_starts(GpuProduct::H100_80GB, "2g.20gb"), [4, 2, 0]);
        assert_eq!(order_of_starts(GpuProduct::H100_80GB, "3g.40gb"), [4, 0]);
        assert_eq!(
            order_of_starts(GpuProduct::A100_40GB, "1g.10gb"),
            [6, 4, 2, 0]
        );
    }

    #[test]
    fn kinds_sizes_and_gpus_sort_in_preference_order() {
        let h = GpuProduct::H100_80GB;
        let one = profile(h, "1g.10gb").unwrap();
        let one_me = profile(h, "1g.10gb+me").unwrap();
        let two = profile(h, "2g.20gb").unwrap();
        let mut keys = [
            ("whole0", OrderKey::whole(0)),
            ("whole1", OrderKey::whole(1)),
            ("shared0", OrderKey::shared(0)),
            ("share0", OrderKey::share(0, 0, 1)),
            (
                "2g",
                OrderKey::mig(0, Some(h), Some(two), Placement::new(4, 2), 2, 0),
            ),
            (
                "1gme",
                OrderKey::mig(0, Some(h), Some(one_me), Placement::new(6, 1), 1, 0),
            ),
            (
                "1g-gpu1",
                OrderKey::mig(1, Some(h), Some(one), Placement::new(6, 1), 1, 0),
            ),
            (
                "1g-gpu0",
                OrderKey::mig(0, Some(h), Some(one), Placement::new(0, 1), 1, 0),
            ),
        ];
        keys.sort_by(|a, b| a.1.cmp(&b.1));
        let names: Vec<_> = keys.iter().map(|k| k.0).collect();
        assert_eq!(
            names,
            [
                "1g-gpu0", "1g-gpu1", "1gme", "2g", "share0", "shared0", "whole1", "whole0"
            ]
        );
    }
}
