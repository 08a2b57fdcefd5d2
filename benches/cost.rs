//! The cost of cost-aware scoring: one `scoring::score_node` call, and one whole cost run on
//! the bundled openb trace (30 % spot, seed 42) for tessera with its cost weights.
//!
//! Run with `cargo bench --bench cost`.

// Benchmark setup fails loudly on a broken bundled trace; there is no caller to report to.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use tessera::market::{CapacityType, PriceCatalog, SpotAdvisor};
use tessera::scoring::{NodeInputs, PodInputs, Tolerance, Weights, score_node};
use tessera::sim::Workload;
use tessera::sim::cost::{CostPolicy, CostRunConfig, PricedWorkload, run_cost};

fn score_one_node(c: &mut Criterion) {
    let node = NodeInputs {
        price_per_gpu_hour: 0.9058,
        node_hourly_price: 7.246,
        in_use: true,
        capacity: CapacityType::Spot,
        hourly_interruption_probability: 1.8544e-4,
        interruption_notice: false,
    };
    let pod = PodInputs {
        tolerance: Tolerance::Checkpointed,
        partition_gpus: 0.5,
        frag_gpus: 0.06,
    };
    let weights = Weights::default();
    c.bench_function("score_node", |b| {
        b.iter(|| score_node(black_box(&node), black_box(&pod), black_box(&weights)).score)
    });
}

fn cost_run(c: &mut Criterion) {
    let nodes = tessera::trace::bundled_nodes().expect("bundled node list parses");
    let pods = tessera::trace::bundled_pods().expect("bundled pod list parses");
    let workload = Workload::from_trace(&nodes, &pods).expect("bundled trace converts");
    let catalog = PriceCatalog::builtin().expect("built-in catalog parses");
    let advisor = SpotAdvisor::builtin().expect("built-in advisor parses");
    let priced = PricedWorkload::new(&workload, &nodes, &pods, &catalog, &advisor)
        .expect("every openb node is priced");
    let config = CostRunConfig {
        policy: CostPolicy::Tessera { cost: true },
        seed: 42,
        tune: 1.3,
        weights: Weights::default(),
        spot_share: 0.3,
        typical_threshold_pct: 95.0,
        placement: tessera::sim::Placement::Tessera,
    };
    let mut group = c.benchmark_group("cost_run");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(3))
        .measurement_time(Duration::from_secs(20));
    group.bench_function("tessera/seed42", |b| {
        b.iter(|| {
            let record = run_cost(black_box(&priced), black_box(&config), &|_| {})
                .expect("the bundled trace replays");
            black_box(record.run.failed_pods)
        });
    });
    group.finish();
}

criterion_group!(benches, score_one_node, cost_run);
criterion_main!(benches);
