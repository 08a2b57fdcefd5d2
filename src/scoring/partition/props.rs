//! Property tests: any sequence of fit / apply / release keeps every GPU valid, every fit
//! adequate and within capacity, and release restores the state exactly.

use proptest::prelude::*;

use super::*;
use crate::model::MILLI_PER_GPU;
use crate::model::mig::{GpuProduct, MigLayout, all_balanced, all_smallest};
use crate::model::partition::COMPUTE_PERCENT;

fn product() -> impl Strategy<Value = GpuProduct> {
    proptest::sample::select(GpuProduct::ALL.to_vec())
}

fn gpu() -> impl Strategy<Value = PartitionGpu> {
    prop_oneof![
        Just(PartitionGpu::whole("T4", 15_360)),
        (8_000u64..100_000).prop_map(|m| PartitionGpu::shared("L4", m)),
        product().prop_map(|p| PartitionGpu::dynamic_mig(p.name(), 81_920, p)),
        (product(), any::<bool>()).prop_map(|(p, balanced)| {
            let layout = if balanced {
                all_balanced(p)
            } else {
                all_smallest(p)
            };
            PartitionGpu::static_mig(
                p.name(),
                81_920,
                layout.unwrap_or_else(|_| MigLayout::new(p)),
            )
        }),
    ]
}

fn demand() -> impl Strategy<Value = PartitionDemand> {
    (
        1u8..=3,
        prop_oneof![Just(0u64), 0u64..100_000],
        0u16..=MILLI_PER_GPU,
        any::<bool>(),
        proptest::sample::subsequence(PartitionKind::DEFAULT_ORDER.to_vec(), 1..=3).prop_shuffle(),
    )
        .prop_map(
            |(count, memory_mib, compute_milli, allow_mig, preference)| PartitionDemand {
                count,
                memory_mib,
                compute_milli,
                models: ModelFilter::Any,
                allow_mig,
                preference,
            },
        )
}

#[derive(Debug, Clone)]
enum Op {
    Place(PartitionDemand),
    Release(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![3 => demand().prop_map(Op::Place), 1 => any::<usize>().prop_map(Op::Release)]
}

/// Every GPU obeys its state's rules.
fn check_gpu(gpu: &PartitionGpu) -> Result<(), TestCaseError> {
    match &gpu.state {
        GpuPartitioning::Whole { .. } => {}
        GpuPartitioning::Shared {
            used_memory_mib,
            used_compute_pct,
        } => {
            prop_assert!(*used_memory_mib <= gpu.memory_mib);
            prop_assert!(*used_compute_pct <= COMPUTE_PERCENT);
        }
        GpuPartitioning::StaticMig { layout } => check_layout(layout.layout())?,
        GpuPartitioning::DynamicMig {
            layout,
            whole_taken,
        } => {
            check_layout(layout)?;
            prop_assert!(!whole_taken || layout.instances().is_empty());
        }
    }
    let used = gpu.used_fraction();
    prop_assert!((0.0..=1.0 + 1e-12).contains(&used), "{used}");
    Ok(())
}

/// No two instances share a memory slice; counts and compute stay within the product's.
fn check_layout(layout: &MigLayout) -> Result<(), TestCaseError> {
    let instances = layout.instances();
    let product = layout.product();
    for (i, a) in instances.iter().enumerate() {
        for b in &instances[i + 1..] {
            prop_assert!(!a.placement.overlaps(b.placement), "{a:?} overlaps {b:?}");
        }
        let same = instances
            .iter()
            .filter(|x| x.profile.name == a.profile.name)
            .count();
        prop_assert!(same <= usize::from(a.profile.max_count));
        prop_assert!(a.placement.end() <= u16::from(product.total_memory_slices()));
    }
    let compute: u32 = instances
        .iter()
        .map(|i| u32::from(i.profile.compute_slices))
        .sum();
    prop_assert!(compute <= u32::from(product.total_compute_slices()));
    Ok(())
}

/// Every assignment meets the demand and sits on its own GPU.
fn check_fit(
    demand: &PartitionDemand,
    fit: &PartitionFit,
    gpus: &[PartitionGpu],
) -> Result<(), TestCaseError> {
    prop_assert_eq!(fit.assignments.len(), usize::from(demand.count));
    for (i, a) in fit.assignments.iter().enumerate() {
        prop_assert!(fit.assignments[..i].iter().all(|b| b.gpu != a.gpu));
        prop_assert!(demand.preference.contains(&a.partition.kind()));
        prop_assert!(demand.allow_mig || a.partition.kind() != PartitionKind::Mig);
        prop_assert!(a.fraction > 0.0 && a.fraction <= 1.0, "{}", a.fraction);
        prop_assert!((0.0..=1.0).contains(&a.left.free_fraction));
        let gpu = &gpus[a.gpu];
        match a.partition {
            Partition::Whole => prop_assert!(gpu.memory_mib >= demand.memory_mib),
            Partition::Mig { profile, .. } => {
                let product = gpu.mig_product().unwrap();
                prop_assert!(profile.capacity_mib() >= demand.memory_mib);
                prop_assert!(
                    u32::from(profile.compute_slices) * 1000
                        >= u32::from(demand.compute_milli)
                            * u32::from(product.total_compute_slices())
                );
            }
            Partition::Shared {
                memory_mib,
                compute_pct,
            } => {
                prop_assert_eq!(memory_mib, demand.memory_mib);
                prop_assert!(u32::from(compute_pct) * 10 >= u32::from(demand.compute_milli));
            }
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn fit_apply_release_sequences_keep_every_invariant(
        initial in proptest::collection::vec(gpu(), 1..6),
        ops in proptest::collection::vec(op(), 0..40),
    ) {
        let mut gpus = initial.clone();
        let mut held: Vec<PartitionFit> = Vec::new();
        for op in ops {
            match op {
                Op::Place(demand) => {
                    if let Some(fit) = fit(&demand, &gpus) {
                        check_fit(&demand, &fit, &gpus)?;
                        let before = gpus.clone();
                        apply(&fit, &mut gpus).map_err(|e| TestCaseError::fail(e.to_string()))?;
                        // Every GPU the fit named changed, and none gave anything back.
                        for a in &fit.assignments {
                            prop_assert_ne!(&gpus[a.gpu], &before[a.gpu]);
                            prop_assert!(gpus[a.gpu].used_fraction() >= before[a.gpu].used_fraction());
                        }
                        release(&fit, &mut gpus).map_err(|e| TestCaseError::fail(e.to_string()))?;
                        prop_assert_eq!(&gpus, &before, "release restores");
                        apply(&fit, &mut gpus).map_err(|e| TestCaseError::fail(e.to_string()))?;
                        // Applying the same fit again takes nothing twice: only shares
                        // can be given again, and a refusal changes nothing.
                        let after = gpus.clone();
                        let only_shares = fit
                            .assignments
                            .iter()
                            .all(|a| matches!(a.partition, Partition::Shared { .. }));
                        if apply(&fit, &mut gpus).is_ok() {
                            prop_assert!(only_shares);
                            release(&fit, &mut gpus).map_err(|e| TestCaseError::fail(e.to_string()))?;
                        }
                        prop_assert_eq!(&gpus, &after);
                        held.push(fit);
                    }
                }
                Op::Release(index) => {
                    if !held.is_empty() {
                        let fit = held.remove(index % held.len());
                        release(&fit, &mut gpus).map_err(|e| TestCaseError::fail(e.to_string()))?;
                    }
                }
            }
            for gpu in &gpus {
                check_gpu(gpu)?;
            }
        }
        for fit in held.iter().rev() {
            release(fit, &mut gpus).map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        prop_assert_eq!(gpus, initial, "releasing everything restores the node");
    }
}
