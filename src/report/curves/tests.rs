use super::*;
use crate::report::Sample;

/// A run on a 1-GPU cluster, so that milli / 10 is the percentage.
fn one_gpu_run(policy: &str, seed: u64, samples: &[(u64, u64, f64)]) -> RunRecord {
    RunRecord {
        policy: policy.to_owned(),
        seed,
        capacity_milli: 1000,
        pods: samples.len() as u64,
        failed_pods: 0,
        samples: samples
            .iter()
            .map(|&(arrived_milli, used_milli, frag_milli)| Sample {
                arrived_milli,
                used_milli,
                frag_milli,
            })
            .collect(),
    }
}

fn bins(curve: &RunCurve) -> Vec<(u32, f64)> {
    curve
        .points
        .iter()
        .map(|p| (p.arrived_pct, p.alloc_pct))
        .collect()
}

#[test]
fn arrival_rounds_half_to_even_and_bins_take_the_mean() {
    // 1.5 → 2, 2.5 → 2, 3.5 → 4, 4.5 → 4 (Python's round).
    let run = one_gpu_run(
        "fgd",
        42,
        &[(15, 10, 0.0), (25, 20, 0.0), (35, 30, 0.0), (45, 40, 0.0)],
    );
    let curve = run_curve(&run);
    // Bin 2 = mean(1, 2); bin 4 = mean(3, 4). Bins 1, 3 and 5 are empty and pool their
    // neighbours: bin 1 ← bin 2; bin 3 ← bins 2 and 4 (mean of all four samples);
    // bin 5 ← bin 4. Bins 0 and 6.. have no neighbour with samples: no value.
    assert_eq!(
        bins(&curve),
        vec![(1, 1.5), (2, 1.5), (3, 2.5), (4, 3.5), (5, 3.5)]
    );
}

#[test]
fn gap_of_two_bins_leaves_bins_without_value() {
    // Samples at 10 % and 14 %: bins 11 and 13 borrow, bin 12 has nothing within ±1.
    let run = one_gpu_run("fgd", 42, &[(100, 50, 0.0), (140, 70, 0.0)]);
    let arrived: Vec<u32> = run_curve(&run)
        .points
        .iter()
        .map(|p| p.arrived_pct)
        .collect();
    assert_eq!(arrived, vec![9, 10, 11, 13, 14, 15]);
}

#[test]
fn point_carries_unallocated_and_fragmentation() {
    let run = one_gpu_run("fgd", 42, &[(500, 400, 123.4), (504, 420, 100.0)]);
    let curve = run_curve(&run);
    let point = curve.points.iter().find(|p| p.arrived_pct == 50).unwrap();
    assert_eq!(point.alloc_pct, 41.0);
    assert_eq!(point.unalloc_pct, 59.0);
    assert!((point.frag_pct - 11.17).abs() < 1e-9, "{}", point.frag_pct);
    assert_eq!((curve.policy.as_str(), curve.seed), ("fgd", 42));
}

#[test]
fn allocation_is_rounded_to_two_decimals_per_sample() {
    // 3 GPUs: 1 milli used is 0.0333… % → 0.03; 20 milli is 0.666… % → 0.67.
    let mut run = one_gpu_run("fgd", 1, &[(300, 1, 0.0), (300, 20, 0.0)]);
    run.capacity_milli = 3000;
    let curve = run_curve(&run);
    let point = curve.points.iter().find(|p| p.arrived_pct == 10).unwrap();
    assert_eq!(point.alloc_pct, (0.03 + 0.67) / 2.0);
}

#[test]
fn two_decimal_rounding_matches_python() {
    // Python: round(2.675, 2) == 2.67 (binary value is below the tie), round(0.125, 2) == 0.12
    // (exact tie, to even), round(0.375, 2) == 0.38.
    assert_eq!(round_2(2.675), 2.67);
    assert_eq!(round_2(0.125), 0.12);
    assert_eq!(round_2(0.375), 0.38);
    assert_eq!(round_2(99.999), 100.0);
}

#[test]
fn bins_extend_past_130_when_arrival_does() {
    // 132.5 → 132: bins run to 132 (the largest present), though the protocol stops at 130;
    // bin 131 borrows from 132.
    let run = one_gpu_run("fgd", 1, &[(1325, 900, 0.0)]);
    let arrived: Vec<u32> = run_curve(&run)
        .points
        .iter()
        .map(|p| p.arrived_pct)
        .collect();
    assert_eq!(arrived, vec![131, 132]);
}

#[test]
fn zero_capacity_gives_an_empty_curve() {
    let mut run = one_gpu_run("fgd", 1, &[(10, 10, 0.0)]);
    run.capacity_milli = 0;
    assert!(run_curve(&run).points.is_empty());
}

#[test]
fn policies_keep_input_order_and_seeds_sort_ascending() {
    let records = vec![
        one_gpu_run("tessera", 5, &[]),
        one_gpu_run("fgd", 1, &[]),
        one_gpu_run("tessera", 3, &[]),
    ];
    let groups = group_by_policy(&records);
    let shape: Vec<(&str, Vec<u64>)> = groups
        .iter()
        .map(|g| (g.policy, g.runs.iter().map(|r| r.seed).collect()))
        .collect();
    assert_eq!(shape, vec![("tessera", vec![3, 5]), ("fgd", vec![1])]);
}

#[test]
fn policy_curve_takes_the_median_over_an_odd_number_of_seeds() {
    // Allocation at 50 % arrival: 40, 45, 41 → unallocated 60, 55, 59.
    let records: Vec<RunRecord> = [(42, 400), (43, 450), (44, 410)]
        .into_iter()
        .map(|(seed, used)| one_gpu_run("fgd", seed, &[(500, used, 20.0)]))
        .collect();
    let curves = policy_curves(&records);
    assert_eq!(curves.len(), 1);
    let point = curves[0]
        .points
        .iter()
        .find(|p| p.arrived_pct == 50)
        .unwrap();
    assert_eq!(point.runs, 3);
    assert_eq!(
        point.unalloc,
        Spread {
            median: 59.0,
            min: 55.0,
            max: 60.0,
            p25: 57.0,
            p75: 59.5
        }
    );
    assert_eq!(point.frag.median, 2.0);
}

#[test]
fn policy_curve_averages_the_middle_pair_for_an_even_number_of_seeds() {
    // Unallocated 60, 55, 59, 50 → sorted 50 55 59 60: median 57, p25 53.75, p75 59.25.
    let records: Vec<RunRecord> = [(42, 400), (43, 450), (44, 410), (45, 500)]
        .into_iter()
        .map(|(seed, used)| one_gpu_run("fgd", seed, &[(500, used, 0.0)]))
        .collect();
    let point = policy_curves(&records)[0]
        .points
        .iter()
        .find(|p| p.arrived_pct == 50)
        .copied()
        .unwrap();
    assert_eq!(
        point.unalloc,
        Spread {
            median: 57.0,
            min: 50.0,
            max: 60.0,
            p25: 53.75,
            p75: 59.25
        }
    );
}

#[test]
fn policy_point_counts_only_runs_with_a_value() {
    let records = vec![
        one_gpu_run("fgd", 1, &[(500, 400, 0.0)]),
        one_gpu_run("fgd", 2, &[(800, 400, 0.0)]),
    ];
    let curve = &policy_curves(&records)[0];
    let runs_at = |b: u32| {
        curve
            .points
            .iter()
            .find(|p| p.arrived_pct == b)
            .map(|p| p.runs)
    };
    assert_eq!(runs_at(50), Some(1));
    assert_eq!(runs_at(80), Some(1));
    assert_eq!(runs_at(65), None);
}
