//! The cluster cache's costs: applying watch events, publishing a snapshot, and reading a
//! snapshot the way a scheduling request does.
//!
//! The cluster is the extender's reference one, `synthetic_cluster(5_000, 8, 100_000, 42)`:
//! 5,000 nodes, 40,000 GPUs (whole, shared, static and dynamic MIG, time-sliced), 100,000
//! allocated claims each held by a running pod. The initial-sync bench uses its first 1,000
//! nodes' worth (20,000 claims) so the API objects fit in memory at once.
//!
//! Run with `cargo bench --bench cluster_cache`; names read `cluster_cache/<what>`.

// Benchmark setup fails loudly; there is no caller to report to.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::resource::v1::ResourceClaim;
use tessera::cluster::testing::{SyntheticCluster, synthetic_cluster};
use tessera::cluster::{CacheConfig, ClusterEvent, ClusterObject, DEFAULT_DRIVER, Store};

fn config() -> CacheConfig {
    CacheConfig::builtin(DEFAULT_DRIVER).expect("built-in market data loads")
}

fn reference() -> SyntheticCluster {
    synthetic_cluster(5_000, 8, 100_000, 42)
}

fn first_claim(cluster: &SyntheticCluster) -> ResourceClaim {
    cluster
        .objects()
        .find_map(|o| match o {
            ClusterObject::ResourceClaim(c) => Some(*c),
            _ => None,
        })
        .expect("the cluster has claims")
}

fn first_pod(cluster: &SyntheticCluster) -> Pod {
    cluster
        .objects()
        .find_map(|o| match o {
            ClusterObject::Pod(p) => Some(*p),
            _ => None,
        })
        .expect("the cluster has pods")
}

fn initial_sync(c: &mut Criterion) {
    let objects: Vec<ClusterObject> = synthetic_cluster(1_000, 8, 20_000, 42).objects().collect();
    let mut group = c.benchmark_group("cluster_cache");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(objects.len() as u64));
    group.bench_function("initial_sync_1000_nodes", |b| {
        b.iter_batched(
            || objects.clone(),
            |objects| {
                let mut store = Store::new(config());
                for o in objects {
                    store.apply(ClusterEvent::Applied(o));
                }
                black_box(store.snapshot())
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn steady_state(c: &mut Criterion) {
    let cluster = reference();
    let mut store = cluster.store(config());
    let held = store.snapshot();
    assert_eq!(held.stats().allocations, 100_000);

    // A claim freed and allocated again, a pod deleted and recreated: the two most frequent
    // changes in a busy cluster, each followed by a published snapshot while the previous
    // snapshot is still held (so copy-on-write copies what it must).
    let allocated = first_claim(&cluster);
    let mut freed = allocated.clone();
    freed.status = None;
    let claim_states = [allocated, freed].map(ClusterObject::from);
    let pod = ClusterObject::from(first_pod(&cluster));

    let mut group = c.benchmark_group("cluster_cache");
    group.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    let mut last = held.clone();
    group.bench_function("claim_update_then_snapshot", |b| {
        b.iter(|| {
            i += 1;
            store.apply(ClusterEvent::Applied(claim_states[i % 2].clone()));
            last = store.snapshot();
            black_box(&last);
        })
    });
    group.bench_function("pod_delete_or_add_then_snapshot", |b| {
        b.iter(|| {
            i += 1;
            let event = if i.is_multiple_of(2) {
                ClusterEvent::Deleted(pod.clone())
            } else {
                ClusterEvent::Applied(pod.clone())
            };
            store.apply(event);
            last = store.snapshot();
            black_box(&last);
        })
    });
    group.bench_function("snapshot_unchanged", |b| {
        b.iter(|| black_box(store.snapshot()))
    });
    group.bench_function("snapshot_clone", |b| b.iter(|| black_box(last.clone())));

    let names: Vec<String> = (0..500).map(|k| cluster.node_name(k * 10)).collect();
    group.throughput(Throughput::Elements(names.len() as u64));
    group.bench_function("read_500_nodes", |b| {
        b.iter(|| {
            let snapshot = last.clone();
            let mut gpus = 0usize;
            for name in &names {
                let view = snapshot.node(name).expect("node exists");
                gpus += view.partitions.len() + usize::from(view.is_going_away());
            }
            black_box(gpus)
        })
    });
    group.finish();
    drop(held);
}

criterion_group!(benches, initial_sync, steady_state);
criterion_main!(benches);
