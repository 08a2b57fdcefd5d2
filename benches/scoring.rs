//! The cost of scoring: one pod against one node for every policy, and one sharing pod against
//! the whole bundled openb cluster.
//!
//! Inputs are realistic: the typical pods come from the bundled default trace (as `tessera
//! simulate` computes them), the node is an openb G2 machine (8 GPUs, 96,000 mCPU, 393,216 MiB),
//! and the demands are the trace's most common shapes.
//!
//! Run with `cargo bench --bench scoring`; names read `score_one_node/<policy>/<pod>/<node>`,
//! `score_cluster/<policy>` and `share_prices/openb_default`.

// Benchmark setup fails loudly on a broken bundled trace; there is no caller to report to.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tessera::model::{Demand, GpuPick, ModelId, ModelSet, NodeState};
use tessera::scoring::frag::typical::DEFAULT_POPULARITY_THRESHOLD_PCT;
use tessera::scoring::policy::SharePrices;
use tessera::scoring::{Policy, Scorer, TesseraWeights, TypicalPods};
use tessera::sim::Workload;

/// The bundled default trace in the simulator's terms.
fn bundled_workload() -> Workload {
    let nodes = tessera::trace::bundled_nodes().expect("bundled node list parses");
    let pods = tessera::trace::bundled_pods().expect("bundled pod list parses");
    Workload::from_trace(&nodes, &pods).expect("bundled trace converts")
}

/// Typical pods of the workload at the protocol's 95 % threshold.
fn typical_pods(workload: &Workload) -> TypicalPods {
    TypicalPods::from_demands(
        workload.pods.iter().map(|p| &p.demand),
        DEFAULT_POPULARITY_THRESHOLD_PCT,
    )
}

fn demand(cpu_milli: u64, memory_mib: u64, gpus: u8, gpu_milli: u16) -> Demand {
    Demand {
        cpu_milli,
        memory_mib,
        gpus,
        gpu_milli,
        models: ModelSet::ANY,
    }
}

/// The three pod shapes: the trace's most common sharing pod (1,047 of 8,152), its most common
/// whole-GPU pod (857) and its most common 8-GPU pod.
fn demands() -> [(&'static str, Demand); 3] {
    [
        ("share", demand(3_152, 5_600, 1, 810)),
        ("whole", demand(11_300, 49_152, 1, 1_000)),
        ("eight", demand(88_000, 327_680, 8, 1_000)),
    ]
}

/// Allocate on `node` through the model's own bookkeeping, so the state is one the simulator
/// could reach (per-class pod counters included).
fn put(node: &mut NodeState, cpu: u64, memory: u64, gpu_milli: u16, gpus: &[usize]) {
    let pick = gpus.iter().fold(GpuPick::NONE, |p, i| p.with(*i));
    let count = u8::try_from(gpus.len()).unwrap();
    node.allocate(&demand(cpu, memory, count, gpu_milli), pick)
        .unwrap();
}

/// A G2 node empty, half full with mixed shares, and nearly full.
///
/// Half: free milli `[1000, 1000, 190, 530, 0, 1000, 350, 1000]`, 37,756 of 96,000 mCPU used.
/// Nearly full: free milli `[0, 0, 190, 0, 0, 1000, 350, 0]`, 76,604 mCPU used; the sharing
/// and whole-GPU pods still fit (on GPU 5), the 8-GPU pod does not (the infeasible path).
fn node_states(g2: ModelId) -> [(&'static str, NodeState); 3] {
    let empty = NodeState::new(Some(g2), 8, 96_000, 393_216).unwrap();

    let mut half = empty;
    put(&mut half, 3_152, 5_600, 810, &[2]);
    put(&mut half, 3_152, 5_600, 470, &[3]);
    put(&mut half, 11_300, 49_152, 1_000, &[4]);
    put(&mut half, 6_000, 12_288, 650, &[6]);
    put(&mut half, 14_152, 20_000, 0, &[]);
    assert_eq!(half.gpu_free(), &[1000, 1000, 190, 530, 0, 1000, 350, 1000]);

    let mut full = half;
    put(&mut full, 12_000, 24_576, 1_000, &[0, 1]);
    put(&mut full, 3_152, 5_600, 530, &[3]);
    put(&mut full, 11_300, 49_152, 1_000, &[7]);
    put(&mut full, 12_396, 20_000, 0, &[]);
    assert_eq!(full.gpu_free(), &[0, 0, 190, 0, 0, 1000, 350, 0]);
    assert!(full.cpu_free >= 11_300, "the whole-GPU pod must still fit");

    [("empty", empty), ("half", half), ("full", full)]
}

fn score_one_node(c: &mut Criterion) {
    let workload = bundled_workload();
    let typical = typical_pods(&workload);
    let g2 = workload
        .registry
        .get("G2")
        .expect("the openb trace has G2 nodes");
    let nodes = node_states(g2);

    let mut group = c.benchmark_group("score_one_node");
    // 63 cases: keep each short; the work per iteration is tens of nanoseconds.
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for policy in Policy::ALL {
        let scorer = Scorer::new(policy, typical.clone(), TesseraWeights::default());
        for (pod, d) in demands() {
            for (state, node) in &nodes {
                group.bench_function(format!("{policy}/{pod}/{state}"), |b| {
                    b.iter(|| scorer.score(black_box(node), black_box(&d)));
                });
            }
        }
    }
    group.finish();
}

fn score_cluster(c: &mut Criterion) {
    let workload = bundled_workload();
    let typical = typical_pods(&workload);
    let (_, share) = demands()[0];

    let mut group = c.benchmark_group("score_cluster");
    for policy in [Policy::Fgd, Policy::Tessera] {
        let scorer = Scorer::new(policy, typical.clone(), TesseraWeights::default());
        group.bench_function(policy.name(), |b| {
            b.iter(|| {
                // What the simulator does per pod without its cache: score every node.
                black_box(&workload.nodes)
                    .iter()
                    .filter_map(|node| scorer.score(node, black_box(&share)))
                    .count()
            });
        });
    }
    group.finish();
}

fn share_prices(c: &mut Criterion) {
    let workload = bundled_workload();
    let typical = typical_pods(&workload);
    // What `Scorer::new` adds for tessera, once per workload: the share-price LP.
    c.bench_function("share_prices/openb_default", |b| {
        b.iter(|| SharePrices::from_typical(black_box(&typical)));
    });
}

criterion_group!(benches, score_one_node, score_cluster, share_prices);
criterion_main!(benches);
