//! tessera's policy against FGD on every bundled workload of the openb family, reduced so
//! that it fits a debug `cargo test`: tessera runs one seed, each run stopped once the
//! arrived workload passes 101 % (the read-out at 100 % is then exactly the full run's), and
//! is held to the FGD authors' published median (seeds 42–51) rather than to a second
//! simulation. The full check (seeds 42–51, our FGD beside the published one) is
//! `tessera simulate --workload all --published …` (docs/simulation.md). Fails if tessera
//! leaves more GPUs unallocated than FGD at 100 % arrival on any workload.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rayon::prelude::*;
use tessera::report::published::Published;
use tessera::report::summarize;
use tessera::scoring::frag::typical::DEFAULT_POPULARITY_THRESHOLD_PCT;
use tessera::scoring::{Policy, TesseraWeights};
use tessera::sim::{Placement, RunConfig, Workload, run_until};
use tessera::trace::{bundled_nodes, openb};

/// The protocol's first seed. tessera's margin over FGD is 0.5–4 points on every workload at
/// seeds 42–51 and the spread across seeds about 0.2–0.4, so one seed separates them.
const SEED: u64 = 42;

#[test]
fn tessera_leaves_no_more_gpus_idle_than_published_fgd_on_any_bundled_workload() {
    let nodes = bundled_nodes().unwrap();
    let published = Published::parse(
        include_bytes!("../benches/traces/alibaba-openb/fgd-published/analysis_allo_discrete.csv"),
        "analysis_allo_discrete.csv",
        100,
    )
    .unwrap();
    let config = RunConfig {
        policy: Policy::Tessera,
        seed: SEED,
        tune: 1.3,
        weights: TesseraWeights::default(),
        typical_threshold_pct: DEFAULT_POPULARITY_THRESHOLD_PCT,
        // The FGD protocol: the policy chooses node and GPU (docs/simulation.md).
        placement: Placement::Tessera,
        typical: Default::default(),
    };
    let results: Vec<(&str, f64, f64)> = openb::WORKLOADS
        .par_iter()
        .map(|name| {
            let workload = Workload::from_trace(&nodes, &openb::pods(name).unwrap()).unwrap();
            let record = run_until(&workload, &config, Some(101), &|_| {}).unwrap();
            let tessera = summarize(&[record], 100).rows[0]
                .unalloc
                .unwrap_or_else(|| panic!("{name}: no value at 100 %"))
                .median;
            let fgd = published
                .median(name, "fgd", 1.3)
                .unwrap_or_else(|| panic!("{name}: no published FGD figure"));
            (*name, fgd, tessera)
        })
        .collect();
    let worse: Vec<String> = results
        .iter()
        .filter(|(_, fgd, tessera)| tessera > fgd)
        .map(|(name, fgd, tessera)| {
            format!("{name}: tessera {tessera:.2} % > published fgd {fgd:.2} %")
        })
        .collect();
    assert_eq!(results.len(), 15);
    assert!(
        worse.is_empty(),
        "tessera is worse than FGD on: {}",
        worse.join("; ")
    );
}
