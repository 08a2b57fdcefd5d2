use super::*;
use crate::market::CapacityType;
use crate::report::cost::COST_POINTS_PCT;
use crate::sim::engine::{RunConfig, run};
use crate::sim::test_util::{tnode, tpod};
use crate::trace::{Qos, TraceNode, TracePod};

fn builtin() -> (PriceCatalog, SpotAdvisor) {
    (
        PriceCatalog::builtin().unwrap(),
        SpotAdvisor::builtin().unwrap(),
    )
}

/// Mixed models (cheap T4, dear G2 and V100M32), pods of every class and QoS.
fn trace() -> (Vec<TraceNode>, Vec<TracePod>) {
    let mut nodes: Vec<TraceNode> = (0..6).map(|i| tnode(&format!("t{i}"), 2, "T4")).collect();
    nodes.extend((0..4).map(|i| tnode(&format!("g{i}"), 8, "G2")));
    nodes.extend((0..2).map(|i| tnode(&format!("v{i}"), 8, "V100M32")));
    let shapes = [
        (4000, 1, 500, Qos::Ls),
        (2000, 1, 250, Qos::Be),
        (8000, 1, 1000, Qos::Ls),
        (16_000, 4, 1000, Qos::Ls),
        (4000, 0, 0, Qos::Be),
        (6000, 1, 1000, Qos::Be),
    ];
    let pods = (0..60)
        .map(|i| {
            let (cpu, g, m, qos) = shapes[i % shapes.len()];
            TracePod {
                qos: Some(qos),
                ..tpod(&format!("p{i:03}"), cpu, g, m)
            }
        })
        .collect();
    (nodes, pods)
}

fn config(policy: CostPolicy, seed: u64, spot_share: f64) -> CostRunConfig {
    CostRunConfig {
        policy,
        seed,
        tune: 1.3,
        weights: Weights::default(),
        spot_share,
        typical_threshold_pct: 95.0,
        placement: crate::sim::Placement::Tessera,
    }
}

#[test]
fn spot_share_is_exact_seeded_and_respects_the_node_list() {
    let (catalog, advisor) = builtin();
    let (mut nodes, pods) = trace();
    nodes[0].capacity = Some(CapacityType::Spot);
    nodes[1].capacity = Some(CapacityType::OnDemand);
    let workload = Workload::from_trace(&nodes, &pods).unwrap();
    let priced = PricedWorkload::new(&workload, &nodes, &pods, &catalog, &advisor).unwrap();
    let index = |name: &str| workload.node_names.iter().position(|n| n == name).unwrap();
    let spot = spot_nodes(&priced.offers, 0.5, 42);
    assert!(
        spot[index("t0")] && !spot[index("t1")],
        "fixed by the node list"
    );
    // 10 open nodes at 50 %: 5 drawn, plus the one fixed.
    assert_eq!(spot.iter().filter(|s| **s).count(), 6);
    assert_eq!(spot_nodes(&priced.offers, 0.5, 42), spot);
    assert_ne!(spot_nodes(&priced.offers, 0.5, 7), spot);
    assert_eq!(
        spot_nodes(&priced.offers, 0.0, 42)
            .iter()
            .filter(|s| **s)
            .count(),
        1
    );
    assert_eq!(
        spot_nodes(&priced.offers, 1.0, 42)
            .iter()
            .filter(|s| **s)
            .count(),
        11
    );
}

#[test]
fn without_spot_the_baselines_and_tessera_replay_the_plain_protocol() {
    let (catalog, advisor) = builtin();
    let (nodes, pods) = trace();
    let workload = Workload::from_trace(&nodes, &pods).unwrap();
    let priced = PricedWorkload::new(&workload, &nodes, &pods, &catalog, &advisor).unwrap();
    for (cost_policy, policy) in [
        (CostPolicy::Baseline(Policy::Fgd), Policy::Fgd),
        (CostPolicy::Baseline(Policy::BestFit), Policy::BestFit),
        (CostPolicy::Tessera { cost: false }, Policy::Tessera),
    ] {
        for seed in [1, 2, 3] {
            let priced_run = run_cost(&priced, &config(cost_policy, seed, 0.0), &|_| {}).unwrap();
            let plain = run(&workload, &RunConfig::protocol(policy, seed), &|_| {}).unwrap();
            assert_eq!(
                priced_run.run.samples, plain.samples,
                "{policy} seed {seed}"
            );
            assert_eq!(priced_run.run.failed_pods, plain.failed_pods);
        }
    }
}

#[test]
fn intolerant_pods_never_land_on_spot_even_when_every_node_is_spot() {
    let (catalog, advisor) = builtin();
    let (nodes, pods) = trace();
    let workload = Workload::from_trace(&nodes, &pods).unwrap();
    let priced = PricedWorkload::new(&workload, &nodes, &pods, &catalog, &advisor).unwrap();
    for policy in CostPolicy::DEFAULT {
        for share in [0.3, 1.0] {
            let rec = run_cost(&priced, &config(policy, 5, share), &|_| {}).unwrap();
            assert!(
                rec.snapshots.iter().all(|s| s.intolerant_on_spot == 0),
                "{}",
                policy.name()
            );
            if share == 1.0 {
                assert!(
                    rec.run.failed_pods > 0,
                    "intolerant pods have nowhere to go"
                );
            }
        }
    }
}

#[test]
fn snapshots_price_exactly_the_occupied_nodes() {
    let (catalog, advisor) = builtin();
    let (nodes, pods) = trace();
    let workload = Workload::from_trace(&nodes, &pods).unwrap();
    let priced = PricedWorkload::new(&workload, &nodes, &pods, &catalog, &advisor).unwrap();
    let rec = run_cost(
        &priced,
        &config(CostPolicy::Tessera { cost: true }, 9, 0.3),
        &|_| {},
    )
    .unwrap();
    assert_eq!(
        rec.snapshots
            .iter()
            .map(|s| s.arrived_pct)
            .collect::<Vec<_>>(),
        COST_POINTS_PCT.to_vec()
    );
    assert_eq!(rec.occupied_usd_per_hour.len(), rec.run.samples.len());
    assert!(rec.occupied_usd_per_hour.windows(2).all(|w| w[0] <= w[1]));
    // The final occupied price is at most the whole cluster's, at least the cheapest node's.
    let spot = spot_nodes(&priced.offers, 0.3, 9);
    let all: f64 = priced
        .offers
        .iter()
        .zip(&spot)
        .map(|(o, s)| o.priced(*s).node_hourly_price)
        .sum();
    let last = *rec.occupied_usd_per_hour.last().unwrap();
    assert!(last > 0.0 && last <= all + 1e-9, "{last} of {all}");
    for s in &rec.snapshots {
        assert!(s.lost_gpu_hours >= 0.0 && s.lost_gpu_hours.is_finite());
        assert!(s.spot_allocated_milli <= s.allocated_milli);
        assert!(s.occupied_nodes <= 12);
    }
    let again = run_cost(
        &priced,
        &config(CostPolicy::Tessera { cost: true }, 9, 0.3),
        &|_| {},
    )
    .unwrap();
    assert_eq!(again, rec, "same seed, same record");
}

#[test]
fn tessera_with_cost_weights_is_cheaper_than_spreading() {
    let (catalog, advisor) = builtin();
    let (nodes, pods) = trace();
    let workload = Workload::from_trace(&nodes, &pods).unwrap();
    let priced = PricedWorkload::new(&workload, &nodes, &pods, &catalog, &advisor).unwrap();
    let experiment = CostExperiment {
        policies: vec![
            CostPolicy::Tessera { cost: true },
            CostPolicy::Baseline(Policy::LeastAllocated),
        ],
        seeds: (1..=5).collect(),
        tune: 1.3,
        weights: Weights::default(),
        spot_share: 0.3,
        typical_threshold_pct: 95.0,
        placement: crate::sim::Placement::Tessera,
    };
    let records = run_cost_all(&priced, &experiment, &|_| {}).unwrap();
    let summary = crate::report::cost::summarize_cost(&records, 720.0);
    let saving = summary.saving_pct("tessera", "leastallocated", 50).unwrap();
    assert!(saving > 0.0, "{saving}");
}

#[test]
fn a_bad_spot_share_and_the_random_baseline_are_refused() {
    let (catalog, advisor) = builtin();
    let (nodes, pods) = trace();
    let workload = Workload::from_trace(&nodes, &pods).unwrap();
    let priced = PricedWorkload::new(&workload, &nodes, &pods, &catalog, &advisor).unwrap();
    let mut experiment = CostExperiment {
        policies: vec![CostPolicy::Tessera { cost: true }],
        seeds: vec![1],
        tune: 1.3,
        weights: Weights::default(),
        spot_share: 1.5,
        typical_threshold_pct: 95.0,
        placement: crate::sim::Placement::Tessera,
    };
    assert!(matches!(
        run_cost_all(&priced, &experiment, &|_| {}),
        Err(CostError::BadSpotShare(_))
    ));
    experiment.spot_share = 0.3;
    experiment.policies = vec![CostPolicy::Baseline(Policy::Random)];
    assert!(matches!(
        run_cost_all(&priced, &experiment, &|_| {}),
        Err(CostError::UnsupportedPolicy(Policy::Random))
    ));
}
