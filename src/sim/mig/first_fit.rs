//! The first-fit baseline inside a node: the first GPU in index order that can give the
//! demand anything, the smallest adequate profile that still has a placement there, at its
//! first placement in `-lgipp` order (lowest start). No look-ahead: this is what placing
//! instances in creation order without a fragmentation rule does.

use crate::model::mig::{MigProfile, profiles};
use crate::model::partition::{
    GpuPartitioning, Partition, PartitionDemand, PartitionFit, PartitionGpu, PartitionKind,
};
use crate::scoring::partition::{assignment, mig_adequate};

/// First-fit answer for `demand` on a node whose GPUs are `gpus` (each requested GPU on a
/// different GPU, kinds in the demand's order).
pub(super) fn fit(demand: &PartitionDemand, gpus: &[PartitionGpu]) -> Option<PartitionFit> {
    demand.validate().ok()?;
    let mut used = vec![false; gpus.len()];
    let mut assignments = Vec::with_capacity(usize::from(demand.count));
    for _ in 0..demand.count {
        let (index, partition) = demand
            .preference
            .iter()
            .filter(|kind| demand.allow_mig || **kind != PartitionKind::Mig)
            .find_map(|kind| {
                gpus.iter().enumerate().find_map(|(i, gpu)| {
                    if used.get(i).copied().unwrap_or(true) || !demand.models.allows(&gpu.model) {
                        return None;
                    }
                    first_on(*kind, demand, gpu).map(|p| (i, p))
                })
            })?;
        if let Some(flag) = used.get_mut(index) {
            *flag = true;
        }
        assignments.push(assignment(index, gpus.get(index)?, partition)?);
    }
    Some(PartitionFit { assignments })
}

fn first_on(
    kind: PartitionKind,
    demand: &PartitionDemand,
    gpu: &PartitionGpu,
) -> Option<Partition> {
    match (kind, &gpu.state) {
        (
            PartitionKind::Mig,
            GpuPartitioning::DynamicMig {
                layout,
                whole_taken: false,
            },
        ) => {
            let product = layout.product();
            let mut rows: Vec<&'static MigProfile> = profiles(product)
                .iter()
                .filter(|p| mig_adequate(product, p, demand))
                .collect();
            rows.sort_by_key(|p| (p.memory_slices, p.compute_slices, p.media_extensions));
            rows.into_iter().find_map(|profile| {
                layout
                    .available_for(profile)
                    .first()
                    .map(|placement| Partition::Mig {
                        profile,
                        placement: *placement,
                    })
            })
        }
        (PartitionKind::Mig, GpuPartitioning::StaticMig { layout }) => {
            let product = layout.layout().product();
            layout
                .instances()
                .find(|(inst, taken)| !taken && mig_adequate(product, inst.profile, demand))
                .map(|(inst, _)| Partition::Mig {
                    profile: inst.profile,
                    placement: inst.placement,
                })
        }
        (PartitionKind::Whole, GpuPartitioning::Whole { taken: false }) => {
            (gpu.memory_mib >= demand.memory_mib).then_some(Partition::Whole)
        }
        (
            PartitionKind::Whole,
            GpuPartitioning::DynamicMig {
                layout,
                whole_taken: false,
            },
        ) => (layout.instances().is_empty() && gpu.memory_mib >= demand.memory_mib)
            .then_some(Partition::Whole),
        _ => None,
    }
}
