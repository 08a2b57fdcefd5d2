use super::cluster::{A100_NODE, GPUS_PER_NODE, H100_NODE, build_nodes};
use super::demand::gpu_demand;
use super::*;
use crate::model::mig::GpuProduct;
use crate::model::partition::{GpuPartitioning, PartitionKind};
use crate::model::{Demand, ModelSet};
use crate::sim::test_util::{tnode, tpod};
use crate::trace::{TraceNode, TracePod};

fn demand(gpus: u8, milli: u16) -> Demand {
    Demand {
        cpu_milli: 1000,
        memory_mib: 1024,
        gpus,
        gpu_milli: milli,
        models: ModelSet::ANY,
    }
}

/// A small trace: 4 nodes of 8 GPUs, pods of every class, inflated by the protocol.
fn small() -> (Workload, MigWorkload) {
    let nodes: Vec<TraceNode> = (0..4).map(|i| tnode(&format!("n{i}"), 8, "G2")).collect();
    let shapes = [
        (4000, 1, 460),
        (2000, 1, 320),
        (2000, 1, 230),
        (1000, 1, 100),
        (8000, 1, 1000),
        (3000, 1, 810),
        (16_000, 2, 1000),
        (4000, 0, 0),
    ];
    let pods: Vec<TracePod> = (0..24)
        .map(|i| {
            let (cpu, g, m) = shapes[i % shapes.len()];
            tpod(&format!("p{i:03}"), cpu, g, m)
        })
        .collect();
    let workload = Workload::from_trace(&nodes, &pods).unwrap();
    let mig = MigWorkload::new(&workload, 95.0);
    (workload, mig)
}

#[test]
fn openb_sized_cluster_has_the_same_gpus_half_h100_half_a100() {
    let shape = cluster_shape(6212).unwrap();
    let count = |spec: NodeSpec, gpus: u32| {
        shape
            .iter()
            .filter(|(s, g)| *s == spec && *g == gpus)
            .count()
    };
    assert_eq!(count(H100_NODE, 8), 388);
    assert_eq!(count(A100_NODE, 8), 388);
    assert_eq!(count(A100_NODE, 4), 1);
    assert_eq!(shape.len(), 777);
    let gpus: u32 = shape.iter().map(|(_, g)| g).sum();
    assert_eq!(gpus, 6212);
    let nodes = build_nodes(&shape, MigPolicy::DynamicTessera, 0.0).unwrap();
    let cpu: u64 = nodes.iter().map(|n| n.cpu_capacity).sum();
    assert_eq!(cpu, 111_792_000, "as the cluster module documents");
    let small = nodes.last().unwrap();
    assert_eq!((small.cpu_capacity, small.gpus.len()), (48_000, 4));
    assert_eq!(
        cluster_shape(17).unwrap().len(),
        3,
        "8 H100 + 8 A100 + 1 A100"
    );
    assert!(cluster_shape(0).is_err());
    assert!(cluster_shape(cluster::MAX_CLUSTER_GPUS + 1).is_err());
}

#[test]
fn static_policies_partition_a_rounded_share_of_each_node_type() {
    let shape = cluster_shape(6212).unwrap();
    for policy in [MigPolicy::StaticSmallest, MigPolicy::StaticBalanced] {
        let nodes = build_nodes(&shape, policy, 0.125).unwrap();
        let partitioned = |product: GpuProduct| {
            nodes
                .iter()
                .filter(|n| {
                    n.gpus.iter().all(|g| {
                        g.mig_product() == Some(product)
                            && matches!(g.state, GpuPartitioning::StaticMig { .. })
                    })
                })
                .count()
        };
        // 388 H100 nodes × 1/8 = 48.5 → 49 (rounded half up by the spread); 389 A100 → 49.
        assert_eq!(partitioned(GpuProduct::H100_80GB), 49, "{policy:?}");
        assert_eq!(partitioned(GpuProduct::A100_40GB), 49, "{policy:?}");
        let whole = nodes
            .iter()
            .filter(|n| {
                n.gpus
                    .iter()
                    .all(|g| matches!(g.state, GpuPartitioning::Whole { taken: false }))
            })
            .count();
        assert_eq!(whole, 777 - 98);
    }
    let dynamic = build_nodes(&shape, MigPolicy::DynamicFirstFit, 0.5).unwrap();
    assert!(
        dynamic
            .iter()
            .flat_map(|n| &n.gpus)
            .all(|g| matches!(g.state, GpuPartitioning::DynamicMig { .. }))
    );
}

#[test]
fn sharing_pods_map_to_the_smallest_profile_by_compute_slices() {
    let slices = |milli: u16| {
        let d = gpu_demand(&demand(1, milli)).unwrap();
        assert_eq!(d.preference, [PartitionKind::Mig, PartitionKind::Whole]);
        // Sevenths, floored: the largest compute that needs exactly that many slices.
        (u32::from(d.compute_milli) * 7).div_ceil(1000)
    };
    assert_eq!(slices(50), 1);
    assert_eq!(slices(142), 1);
    assert_eq!(slices(143), 2);
    assert_eq!(slices(285), 2);
    assert_eq!(slices(286), 3);
    assert_eq!(slices(428), 3);
    assert_eq!(slices(429), 4);
    assert_eq!(slices(571), 4);
    assert_eq!(slices(572), 7, "5 slices: no 5g profile");
    assert_eq!(slices(810), 7);
    let whole = gpu_demand(&demand(4, 1000)).unwrap();
    assert_eq!(
        (whole.count, whole.allow_mig, whole.preference.as_slice()),
        (4, false, [PartitionKind::Whole].as_slice())
    );
    assert_eq!(gpu_demand(&demand(0, 0)), None);
}

#[test]
fn static_share_is_the_small_instances_share_of_held_gpus() {
    let (_, mig) = small();
    // Per 8 pods: 4g (4/7), 3g (3/7), 2g (2/7), 1g (1/7) small = 10/7; whole 1 + 7g 1 +
    // 2 × whole 2 = 4 large.
    let want = (10.0 / 7.0) / (10.0 / 7.0 + 4.0);
    assert!(
        (mig.static_share - want).abs() < 1e-12,
        "{}",
        mig.static_share
    );
    assert_eq!(mig.pods.iter().filter(|p| p.demand.is_none()).count(), 3);
}

#[test]
fn every_policy_records_every_pod_within_capacity_and_deterministically() {
    let (workload, mig) = small();
    for policy in MigPolicy::ALL {
        let config = MigRunConfig {
            policy,
            seed: 42,
            tune: 1.3,
            placement: crate::sim::Placement::Tessera,
            release: crate::sim::placement::Release::NameOrder,
            layout: crate::model::device_order::Layout::KindMajor,
        };
        let run_record = run(&workload, &mig, &config, &|_| {}).unwrap();
        let record = &run_record.record;
        assert_eq!(record.policy, policy.name());
        assert_eq!(record.samples.len() as u64, record.pods);
        assert_eq!(run_record.failed_after.len(), record.samples.len());
        assert!(record.failed_pods > 0, "{policy:?}: 130 % cannot all fit");
        assert_eq!(
            u64::from(*run_record.failed_after.last().unwrap()),
            record.failed_pods
        );
        for pair in run_record.failed_after.windows(2) {
            assert!(pair[1] >= pair[0] && pair[1] <= pair[0] + 1);
        }
        for pair in record.samples.windows(2) {
            assert!(pair[1].used_milli >= pair[0].used_milli, "{policy:?}");
            assert!(pair[1].frag_milli >= 0.0);
        }
        let last = record.samples.last().unwrap();
        assert!(last.used_milli <= workload.capacity_milli, "{policy:?}");
        let again = run(&workload, &mig, &config, &|_| {}).unwrap();
        assert_eq!(run_record, again, "{policy:?}");
    }
}

#[test]
fn run_all_is_policy_major_and_reports_progress() {
    let (workload, mig) = small();
    let done = std::sync::atomic::AtomicU64::new(0);
    let records = run_all(
        &workload,
        &mig,
        &MigPolicy::ALL,
        &[42, 43],
        1.3,
        crate::sim::Placement::Tessera,
        crate::sim::placement::Release::NameOrder,
        crate::model::device_order::Layout::KindMajor,
        &|n| {
            done.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        },
    )
    .unwrap();
    let order: Vec<(&str, u64)> = records
        .iter()
        .map(|r| (r.record.policy.as_str(), r.record.seed))
        .collect();
    assert_eq!(order.len(), 8);
    assert_eq!(order[0], ("static-1g", 42));
    assert_eq!(order[1], ("static-1g", 43));
    assert_eq!(order[7], ("dynamic-tessera", 43));
    let pods: u64 = records.iter().map(|r| r.record.pods).sum();
    assert_eq!(done.into_inner(), pods);
    assert_eq!(GPUS_PER_NODE, 8);
}

#[test]
fn the_allocators_placements_record_every_pod_within_capacity_and_deterministically() {
    use crate::sim::Placement;
    use crate::sim::placement::Release;
    let (workload, mig) = small();
    let mut used = Vec::new();
    for placement in [Placement::Kube, Placement::Extender] {
        for release in [Release::NameOrder, Release::Arbitrary] {
            let config = MigRunConfig {
                policy: MigPolicy::DynamicTessera,
                seed: 42,
                tune: 1.3,
                placement,
                release,
                layout: crate::model::device_order::Layout::KindMajor,
            };
            let run_record = run(&workload, &mig, &config, &|_| {}).unwrap();
            let record = &run_record.record;
            let name = match placement {
                Placement::Kube => "kube-scheduler",
                _ => "dynamic-tessera",
            };
            assert_eq!(record.policy, name);
            assert_eq!(record.samples.len() as u64, record.pods);
            for pair in record.samples.windows(2) {
                assert!(pair[1].used_milli >= pair[0].used_milli, "{placement:?}");
            }
            let last = record.samples.last().unwrap();
            assert!(last.used_milli <= workload.capacity_milli, "{placement:?}");
            assert!(last.used_milli > 0, "{placement:?} placed nothing");
            assert_eq!(run(&workload, &mig, &config, &|_| {}).unwrap(), run_record);
            used.push(last.used_milli);
        }
    }
    assert_eq!(used.len(), 4);
}
