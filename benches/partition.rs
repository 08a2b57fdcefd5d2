//! The cost of the partition fit, the function the extender calls per pod and node: one
//! demand against one 8-GPU H100 node (every GPU dynamic MIG), empty, half cut up and nearly
//! full; plus the fragmentation terms the simulator and a scoring extender keep per node.
//!
//! Run with `cargo bench --bench partition`; names read `partition_fit/<demand>/<node>` and
//! `partition_frag/<what>`.

// Benchmark setup fails loudly on a broken catalog; there is no caller to report to.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tessera::model::mig::{GpuProduct, Placement, profile};
use tessera::model::partition::{GpuPartitioning, PartitionDemand, PartitionGpu, PartitionKind};
use tessera::scoring::partition::fit;
use tessera::scoring::partition::frag::{NodeFrag, PartitionTypicals};

const H100: GpuProduct = GpuProduct::H100_80GB;

fn gpu(instances: &[(&str, u8, u8)]) -> PartitionGpu {
    let mut g = PartitionGpu::dynamic_mig("NVIDIA H100 80GB HBM3", 81_559, H100);
    if let GpuPartitioning::DynamicMig { layout, .. } = &mut g.state {
        for (name, start, size) in instances {
            layout
                .place(profile(H100, name).unwrap(), Placement::new(*start, *size))
                .unwrap();
        }
    }
    g
}

/// Empty; half cut up (a mix seen in the MIG simulation); nearly full (one 1g slot left).
fn nodes() -> [(&'static str, Vec<PartitionGpu>); 3] {
    let empty = vec![gpu(&[]); 8];
    let half = vec![
        gpu(&[("4g.40gb", 0, 4), ("3g.40gb", 4, 4)]),
        gpu(&[("4g.40gb", 0, 4)]),
        gpu(&[("4g.40gb", 0, 4), ("2g.20gb", 4, 2)]),
        gpu(&[("3g.40gb", 4, 4)]),
        gpu(&[]),
        gpu(&[]),
        gpu(&[("1g.10gb", 6, 1)]),
        gpu(&[]),
    ];
    let mut full = vec![gpu(&[("4g.40gb", 0, 4), ("3g.40gb", 4, 4)]); 7];
    full.push(gpu(&[("4g.40gb", 0, 4), ("2g.20gb", 4, 2)]));
    [("empty", empty), ("half", half), ("full", full)]
}

/// A 1g, a 4g (the MIG simulation's most common sharing class) and a 2-GPU whole demand.
fn demands() -> [(&'static str, PartitionDemand); 3] {
    let whole = PartitionDemand {
        preference: vec![PartitionKind::Whole],
        ..PartitionDemand::new(2, 0, 1000)
    };
    [
        ("1g", PartitionDemand::new(1, 0, 100)),
        ("4g", PartitionDemand::new(1, 0, 500)),
        ("whole2", whole),
    ]
}

fn bench_fit(c: &mut Criterion) {
    let mut group = c.benchmark_group("partition_fit");
    group.measurement_time(Duration::from_secs(3));
    for (dname, demand) in demands() {
        for (nname, gpus) in nodes() {
            group.bench_function(format!("{dname}/{nname}"), |b| {
                b.iter(|| fit(black_box(&demand), black_box(&gpus)))
            });
        }
    }
    group.finish();
}

fn bench_frag(c: &mut Criterion) {
    let typicals = PartitionTypicals::new(demands().into_iter().map(|(_, d)| (4000, d, 1.0 / 3.0)));
    let [_, (_, half), _] = nodes();
    let mut group = c.benchmark_group("partition_frag");
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("terms/half", |b| {
        b.iter(|| NodeFrag::new(black_box(&half), &typicals))
    });
    let terms = NodeFrag::new(&half, &typicals);
    group.bench_function("frag/half", |b| {
        b.iter(|| black_box(&terms).frag(&typicals, 50_000))
    });
    group.finish();
}

criterion_group!(benches, bench_fit, bench_frag);
criterion_main!(benches);
