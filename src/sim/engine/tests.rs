use super::*;
use crate::sim::test_util::{tnode, tpod};
use crate::trace::{TraceNode, TracePod};

fn small_workload() -> Workload {
    let nodes: Vec<TraceNode> = (0..6)
        .map(|i| tnode(&format!("n{i}"), if i < 3 { 2 } else { 4 }, "T4"))
        .collect();
    let shapes = [
        (4000, 1, 500),
        (2000, 1, 250),
        (8000, 1, 1000),
        (16_000, 4, 1000),
        (4000, 0, 0),
        (6000, 2, 1000),
    ];
    let pods: Vec<TracePod> = (0..12)
        .map(|i| {
            let (cpu, g, m) = shapes[i % shapes.len()];
            tpod(&format!("p{i:03}"), cpu, g, m)
        })
        .collect();
    Workload::from_trace(&nodes, &pods).unwrap()
}

#[test]
fn every_policy_records_one_sample_per_pod_and_never_overallocates() {
    let w = small_workload();
    for policy in Policy::ALL {
        let rec = run(&w, &RunConfig::protocol(policy, 42), &|_| {}).unwrap();
        assert_eq!(rec.samples.len() as u64, rec.pods, "{policy}");
        assert!(rec.pods > 12, "inflated past the trace");
        let last = rec.samples.last().unwrap();
        assert!(last.used_milli <= w.capacity_milli);
        assert!(last.arrived_milli as f64 >= 1.2 * w.capacity_milli as f64);
        assert!(
            rec.failed_pods > 0,
            "{policy}: 130% of capacity cannot all fit"
        );
        // Allocation never decreases (no departures) and arrival always grows or stays.
        for pair in rec.samples.windows(2) {
            assert!(pair[1].used_milli >= pair[0].used_milli);
            assert!(pair[1].arrived_milli >= pair[0].arrived_milli);
            assert!(pair[1].frag_milli >= 0.0);
        }
    }
}

#[test]
fn same_seed_gives_the_same_record_and_another_seed_differs() {
    let w = small_workload();
    let a = run(&w, &RunConfig::protocol(Policy::Fgd, 42), &|_| {}).unwrap();
    let b = run(&w, &RunConfig::protocol(Policy::Fgd, 42), &|_| {}).unwrap();
    let c = run(&w, &RunConfig::protocol(Policy::Fgd, 43), &|_| {}).unwrap();
    assert_eq!(a, b);
    assert_ne!(a.samples, c.samples);
}

#[test]
fn a_pod_that_fits_nowhere_fails_and_is_not_retried() {
    let nodes = [tnode("n0", 1, "T4")];
    let pods = [tpod("a", 1000, 1, 600), tpod("b", 1000, 1, 600)];
    let w = Workload::from_trace(&nodes, &pods).unwrap();
    let mut config = RunConfig::protocol(Policy::BestFit, 1);
    config.tune = 1.2; // exactly the trace: no copies, no removals
    let rec = run(&w, &config, &|_| {}).unwrap();
    assert_eq!(rec.pods, 2);
    assert_eq!(rec.failed_pods, 1);
    assert_eq!(rec.samples[1].used_milli, 600);
    assert_eq!(rec.samples[1].arrived_milli, 1200);
}

#[test]
fn progress_reports_every_pod() {
    let w = small_workload();
    let done = std::sync::atomic::AtomicU64::new(0);
    let rec = run(&w, &RunConfig::protocol(Policy::Random, 3), &|n| {
        done.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    })
    .unwrap();
    assert_eq!(done.into_inner(), rec.pods);
}

#[test]
fn a_run_stopped_at_a_bin_is_the_full_runs_prefix() {
    let w = small_workload();
    let config = RunConfig::protocol(Policy::Tessera, 7);
    let full = run(&w, &config, &|_| {}).unwrap();
    let cut = run_until(&w, &config, Some(60), &|_| {}).unwrap();
    assert!(cut.samples.len() < full.samples.len());
    assert_eq!(cut.pods, cut.samples.len() as u64);
    assert_eq!(cut.samples[..], full.samples[..cut.samples.len()]);
    let last = cut.samples.last().unwrap();
    assert!((last.arrived_milli as f64 / w.capacity_milli as f64 * 100.0).round() <= 60.0);
    let next = full.samples[cut.samples.len()];
    assert!((next.arrived_milli as f64 / w.capacity_milli as f64 * 100.0).round() > 60.0);
}

fn online(prior: TypicalPods, half_life_pods: f64) -> TypicalSource {
    TypicalSource::Online {
        prior,
        window: crate::scoring::OnlineWindow {
            half_life_pods,
            prior_pods: half_life_pods,
            ..Default::default()
        },
    }
}

#[test]
fn an_online_run_is_reproducible_and_sees_the_same_arrivals() {
    let w = small_workload();
    // A prior that knows nothing of the workload: one CPU-only shape.
    let prior = TypicalPods::from_pods(vec![crate::scoring::TypicalPod {
        cpu_milli: 1000,
        gpu_milli: 0,
        gpus: 0,
        models: crate::model::ModelSet::ANY,
        freq: 1.0,
    }]);
    for policy in [Policy::Tessera, Policy::Fgd] {
        let mut config = RunConfig::protocol(policy, 42);
        let known = run(&w, &config, &|_| {}).unwrap();
        config.typical = online(prior.clone(), 4.0);
        let a = run(&w, &config, &|_| {}).unwrap();
        let b = run(&w, &config, &|_| {}).unwrap();
        assert_eq!(a, b, "{policy}");
        // Same arrivals (the learner draws nothing from the run's random stream).
        assert_eq!(a.pods, known.pods);
        let arrived = |r: &RunRecord| {
            r.samples
                .iter()
                .map(|s| s.arrived_milli)
                .collect::<Vec<_>>()
        };
        assert_eq!(arrived(&a), arrived(&known));
        let last = a.samples.last().unwrap();
        assert!(last.used_milli <= w.capacity_milli);
        assert!(a.samples.iter().all(|s| s.frag_milli >= 0.0));
    }
}

#[test]
fn online_settings_out_of_range_are_a_sim_error() {
    let w = small_workload();
    let mut config = RunConfig::protocol(Policy::Fgd, 42);
    config.typical = online(TypicalPods::default(), 0.0);
    assert!(matches!(
        run(&w, &config, &|_| {}),
        Err(SimError::Online(_))
    ));
}

#[test]
fn the_learned_set_is_refreshed_at_powers_of_two_then_every_256_pods() {
    let due: Vec<u64> = (0..=1024).filter(|n| refresh_due(*n)).collect();
    assert_eq!(due, vec![1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 768, 1024]);
}
