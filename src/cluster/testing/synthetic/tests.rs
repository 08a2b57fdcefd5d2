use super::*;
use crate::cluster::store::Kind;
use crate::cluster::testing::synthetic::layout::NODE_TYPES;

fn config() -> CacheConfig {
    CacheConfig::builtin(DEFAULT_DRIVER).unwrap()
}

#[test]
fn every_claim_is_allocated_on_a_real_device_without_overcommit() {
    let cluster = synthetic_cluster(60, 8, 1_200, 7).with_pending_pods(30);
    let snapshot = cluster.snapshot(config());
    let stats = snapshot.stats();
    assert_eq!(stats.nodes, 60);
    assert_eq!(stats.claims, 1_230);
    assert_eq!(stats.pods, 1_230);
    assert_eq!(
        stats.allocations, 1_200,
        "every allocated claim maps to a device"
    );
    assert_eq!(snapshot.nodes().map(|n| n.gpu_count()).sum::<usize>(), 480);
    for view in snapshot.nodes() {
        for (r, device) in view.devices() {
            if device.multiple_allocations {
                for capacity in ["memory", "compute"] {
                    assert!(view.consumed(r, capacity) <= device.capacity(capacity).unwrap());
                }
            } else {
                assert!(
                    view.allocations_of(r).len() <= 1,
                    "{} {}",
                    view.name,
                    device.name
                );
            }
        }
        for set in view.counters.iter() {
            for c in set.counters.iter() {
                assert!(c.used <= c.total, "{} {} {}", view.name, set.set, c.name);
            }
        }
    }
    let pending = snapshot.pods().filter(|p| p.node.is_none()).count();
    assert_eq!(pending, 30);
}

#[test]
fn the_mix_has_every_node_type_spot_nodes_and_device_kind() {
    let snapshot = synthetic_cluster(200, 8, 4_000, 3).snapshot(config());
    let types: std::collections::BTreeSet<String> = snapshot
        .nodes()
        .filter_map(|n| n.instance_type.as_deref().map(str::to_owned))
        .collect();
    assert_eq!(types.len(), NODE_TYPES.len());
    let spot = snapshot.nodes().filter(|n| n.is_spot()).count();
    assert!((40..=80).contains(&spot), "{spot} spot nodes of 200");
    let kinds: std::collections::BTreeSet<_> = snapshot
        .nodes()
        .flat_map(|n| n.devices().map(|(_, d)| d.kind).collect::<Vec<_>>())
        .collect();
    assert_eq!(kinds.len(), 4, "{kinds:?}");
}

#[test]
fn same_seed_same_objects_other_seed_other_objects() {
    let keys = |seed| -> Vec<(Kind, String)> {
        synthetic_cluster(5, 8, 50, seed)
            .objects()
            .map(|o| (o.kind(), o.key().to_string()))
            .collect()
    };
    assert_eq!(keys(1), keys(1));
    assert_ne!(keys(1), keys(2));
}

#[test]
fn the_requested_claim_count_is_met_for_any_seed() {
    for seed in 0..6 {
        // 30 per node: more than the average GPU gets at random, so quotas are enforced.
        let snapshot = synthetic_cluster(20, 8, 600, seed).snapshot(config());
        assert_eq!(snapshot.stats().allocations, 600, "seed {seed}");
    }
}

#[test]
fn nodes_have_allocatable_cpu_and_running_pods_use_some_of_it() {
    let snapshot = synthetic_cluster(100, 8, 2_000, 5).snapshot(config());
    let mut short = 0;
    for view in snapshot.nodes() {
        let r = &view.resources;
        let cpu = r.cpu_allocatable_milli.unwrap();
        assert!([95_690, 191_450].contains(&cpu), "{}", view.name);
        assert!(r.memory_allocatable_mib.unwrap() >= 741 * 1024);
        assert!(r.cpu_requested_milli > 0, "{} runs pods", view.name);
        assert_eq!(view.milli.cpu_capacity, cpu);
        assert_eq!(
            view.milli.cpu_free,
            cpu.saturating_sub(r.cpu_requested_milli)
        );
        // Less CPU left than 8 idle GPUs' worth at the trace's ~11 cores each.
        if view.milli.cpu_free < 88_000 {
            short += 1;
        }
    }
    assert!(short > 0, "some nodes are short of CPU");
    let pods: Vec<_> = snapshot.pods().collect();
    assert!(
        pods.iter()
            .all(|p| p.cpu_request_milli >= 1_000 && p.memory_request_mib >= 4096)
    );
}
