//! The cost of one full simulation run: the bundled openb default trace (1,213 nodes, 8,152
//! pods inflated to 1.3 × GPU capacity) replayed once under the protocol's defaults, seed 42.
//!
//! Run with `cargo bench --bench simulate`; names read `simulate_run/<policy>/seed42`. Each
//! iteration is one whole `tessera::sim::run`, so criterion's time per iteration is the time
//! per run (typical pods, arrival order and cluster setup included; trace parsing excluded).

// Benchmark setup fails loudly on a broken bundled trace; there is no caller to report to.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use tessera::scoring::Policy;
use tessera::sim::{RunConfig, Workload, run};

const SEED: u64 = 42;

fn simulate_run(c: &mut Criterion) {
    let nodes = tessera::trace::bundled_nodes().expect("bundled node list parses");
    let pods = tessera::trace::bundled_pods().expect("bundled pod list parses");
    let workload = Workload::from_trace(&nodes, &pods).expect("bundled trace converts");

    let mut group = c.benchmark_group("simulate_run");
    // A run takes long enough that criterion's linear sampling (1 + 2 + … + 10 runs) would waste
    // most of the time on the largest samples: flat sampling runs the same count per sample.
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(3))
        .measurement_time(Duration::from_secs(30));
    for policy in [Policy::Fgd, Policy::Tessera] {
        let config = RunConfig::protocol(policy, SEED);
        group.bench_function(format!("{policy}/seed{SEED}"), |b| {
            b.iter(|| {
                let record = run(black_box(&workload), black_box(&config), &|_| {})
                    .expect("the bundled trace replays");
                // Keep the result observable so the run cannot be optimised away.
                black_box(record.failed_pods)
            });
        });
    }
    group.finish();
}

criterion_group!(benches, simulate_run);
criterion_main!(benches);
