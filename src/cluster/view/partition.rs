//! Each GPU of a node as the partition model sees it ([`PartitionGpu`]): what
//! `scoring::partition::fit` needs to say which piece of which GPU a pod would get.
//!
//! Built once per view rebuild, so a scheduling request passes `&view.partitions` to `fit`
//! without converting anything. The rules, per GPU (its devices grouped by index):
//!
//! | devices of the GPU | state |
//! |---|---|
//! | MIG devices consuming counters, or MIG devices next to the whole GPU (dynamic MIG) | shares allocated on its shared device → `Shared`; whole GPU allocated → `DynamicMig` with `whole_taken`; else `DynamicMig` with the allocated placements |
//! | MIG devices only (static MIG) | `StaticMig` with every advertised instance, allocated ones taken |
//! | a shared device and/or time-sliced replicas (no MIG) | whole GPU allocated → `Whole { taken }`; else `Shared`: the shared device's consumed memory and compute, plus each taken replica's `memory / N` and `100 / N` % compute |
//! | the whole GPU only | `Whole`, taken when allocated |
//!
//! The partition model gives a GPU one state, while the plugin may advertise a GPU whole,
//! cut and shared at once (counters keep them exclusive). An idle GPU is therefore modelled
//! by the most general piece it offers: dynamic MIG (MIG or whole), or shared (any share,
//! a whole GPU's worth included). A GPU whose MIG product is unknown to the catalog is
//! modelled by its whole or shared device only.

use tracing::debug;

use super::{DeviceRef, GpuDevices, NodeView};
use crate::cluster::slice::{Device, DeviceKind};
use crate::model::mig::{GpuProduct, MigLayout, profile, profiles};
use crate::model::partition::{COMPUTE_PERCENT, GpuPartitioning, PartitionGpu, StaticLayout};

const MIB: u64 = 1024 * 1024;

/// The partition state of every GPU of `view` that can be modelled, and for each of
/// `view.gpus` the index of its state (`None` when it cannot be modelled).
pub(super) fn partition_gpus(view: &NodeView) -> (Vec<PartitionGpu>, Vec<Option<usize>>) {
    let mut states = Vec::with_capacity(view.gpus.len());
    let mut index = Vec::with_capacity(view.gpus.len());
    for gpu in view.gpus.iter() {
        match partition_gpu(view, gpu) {
            Some(state) => {
                index.push(Some(states.len()));
                states.push(state);
            }
            None => index.push(None),
        }
    }
    (states, index)
}

/// One GPU's devices sorted by role.
struct Roles<'a> {
    whole: Option<(DeviceRef, &'a Device)>,
    shared: Option<(DeviceRef, &'a Device)>,
    migs: Vec<(DeviceRef, &'a Device)>,
    replicas: Vec<(DeviceRef, &'a Device)>,
}

fn roles<'a>(view: &'a NodeView, gpu: &GpuDevices) -> Roles<'a> {
    let mut roles = Roles {
        whole: None,
        shared: None,
        migs: Vec::new(),
        replicas: Vec::new(),
    };
    for &r in gpu.devices.iter() {
        let Some(d) = view.device(r) else { continue };
        match d.kind {
            DeviceKind::Gpu => {
                roles.whole.get_or_insert((r, d));
            }
            DeviceKind::Shared => {
                roles.shared.get_or_insert((r, d));
            }
            DeviceKind::Mig => roles.migs.push((r, d)),
            DeviceKind::Share => roles.replicas.push((r, d)),
            DeviceKind::Other => {}
        }
    }
    roles
}

fn partition_gpu(view: &NodeView, gpu: &GpuDevices) -> Option<PartitionGpu> {
    let roles = roles(view, gpu);
    let all = roles
        .whole
        .iter()
        .chain(roles.shared.iter())
        .chain(roles.migs.iter())
        .chain(roles.replicas.iter());
    let model = all
        .clone()
        .find_map(|(_, d)| d.model.as_deref())
        .unwrap_or_default()
        .to_owned();
    let product = GpuProduct::from_product_name(&model);
    let taken = |r: DeviceRef| view.is_allocated(r);

    if let (false, Some(product)) = (roles.migs.is_empty(), product) {
        let dynamic =
            roles.whole.is_some() || roles.migs.iter().any(|(_, d)| !d.consumes.is_empty());
        let memory_mib = roles
            .whole
            .and_then(|(_, d)| d.memory_bytes())
            .map(|b| b / MIB)
            .unwrap_or_else(|| full_gpu_mib(product));
        let state = if dynamic {
            match (roles.shared, roles.whole) {
                (Some((r, _)), _) if taken(r) => shared_use(view, r),
                (_, Some((r, _))) if taken(r) => GpuPartitioning::DynamicMig {
                    layout: MigLayout::new(product),
                    whole_taken: true,
                },
                _ => GpuPartitioning::DynamicMig {
                    layout: layout(
                        product,
                        roles.migs.iter().filter(|(r, _)| taken(*r)),
                        &view.name,
                    ),
                    whole_taken: false,
                },
            }
        } else {
            let placed = layout(product, roles.migs.iter(), &view.name);
            let mut instances = StaticLayout::new(placed);
            for (r, d) in roles.migs.iter().filter(|(r, _)| taken(*r)) {
                let Some((p, placement)) = mig_of(product, d) else {
                    continue;
                };
                if let Some(i) = instances.position(p, placement) {
                    // Two claims on one exclusive instance is the allocator's state to
                    // reconcile; taken is taken.
                    let _ = instances.set_taken(i, true);
                } else {
                    debug!(node = %view.name, device = %d.name, ?r, "allocated MIG instance not in the layout");
                }
            }
            GpuPartitioning::StaticMig { layout: instances }
        };
        return Some(PartitionGpu {
            model,
            memory_mib,
            state,
        });
    }

    if roles.shared.is_some() || !roles.replicas.is_empty() {
        if roles.whole.is_some_and(|(w, _)| taken(w)) {
            let memory_mib = roles.whole.and_then(|(_, d)| d.memory_bytes()).unwrap_or(0) / MIB;
            return Some(PartitionGpu {
                model,
                memory_mib,
                state: GpuPartitioning::Whole { taken: true },
            });
        }
        // The shared device's consumed capacity plus each taken replica's part: at the
        // consumable level a GPU advertises both, excluding each other only by memory.
        let (mut used_memory, mut used_compute) = match roles.shared {
            Some((r, _)) => (
                view.consumed(r, "memory").div_ceil(MIB),
                view.consumed(r, "compute"),
            ),
            None => (0, 0),
        };
        let n = u64::try_from(roles.replicas.len())
            .unwrap_or(u64::MAX)
            .max(1);
        let mut replica_memory = 0u64;
        let mut taken_replicas = 0u64;
        for (r, d) in &roles.replicas {
            let memory = d.memory_bytes().unwrap_or(0) / MIB;
            replica_memory = replica_memory.saturating_add(memory);
            if taken(*r) {
                used_memory = used_memory.saturating_add(memory);
                taken_replicas += 1;
            }
        }
        used_compute =
            used_compute.saturating_add((taken_replicas * u64::from(COMPUTE_PERCENT)).div_ceil(n));
        let memory_mib = roles
            .shared
            .and_then(|(_, d)| d.memory_bytes())
            .map(|b| b / MIB)
            .unwrap_or(replica_memory);
        return Some(PartitionGpu {
            model,
            memory_mib,
            state: GpuPartitioning::Shared {
                used_memory_mib: used_memory.min(memory_mib),
                used_compute_pct: u8::try_from(used_compute.min(u64::from(COMPUTE_PERCENT)))
                    .unwrap_or(COMPUTE_PERCENT),
            },
        });
    }

    roles.whole.map(|(r, d)| PartitionGpu {
        model,
        memory_mib: d.memory_bytes().unwrap_or(0) / MIB,
        state: GpuPartitioning::Whole { taken: taken(r) },
    })
}

/// A shared device's state: consumed memory (MiB, rounded up) and compute percent.
fn shared_use(view: &NodeView, r: DeviceRef) -> GpuPartitioning {
    let memory = view.consumed(r, "memory").div_ceil(MIB);
    let compute = view.consumed(r, "compute").min(u64::from(COMPUTE_PERCENT));
    GpuPartitioning::Shared {
        used_memory_mib: memory,
        used_compute_pct: u8::try_from(compute).unwrap_or(COMPUTE_PERCENT),
    }
}

/// The catalog profile and placement of a MIG device.
fn mig_of(
    product: GpuProduct,
    d: &Device,
) -> Option<(
    &'static crate::model::mig::MigProfile,
    crate::model::mig::Placement,
)> {
    let mig = d.mig.as_ref()?;
    Some((profile(product, &mig.profile)?, mig.placement?))
}

/// A layout with `devices` placed; ones the catalog does not know or that overlap are left
/// out (and logged): the layout can only hold what the driver could create.
fn layout<'a>(
    product: GpuProduct,
    devices: impl Iterator<Item = &'a (DeviceRef, &'a Device)>,
    node: &str,
) -> MigLayout {
    let mut layout = MigLayout::new(product);
    for (_, d) in devices {
        let placed = mig_of(product, d).map(|(p, placement)| layout.place(p, placement));
        if !matches!(placed, Some(Ok(()))) {
            debug!(node, device = %d.name, "MIG device left out of the partition model");
        }
    }
    layout
}

/// Memory of the whole GPU: the largest profile's (a full-GPU instance).
fn full_gpu_mib(product: GpuProduct) -> u64 {
    profiles(product)
        .iter()
        .map(|p| p.capacity_mib())
        .max()
        .unwrap_or(0)
}
