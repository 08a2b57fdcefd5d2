use super::*;
use crate::report::Sample;

/// A run that reaches 50, 80 and 100 % of a 10-GPU cluster with `usd` $/h of occupied nodes
/// per allocated GPU at every point and `lost` GPU-hours lost.
fn record(policy: &str, seed: u64, usd: f64, lost: f64) -> CostRunRecord {
    let capacity_milli = 10_000;
    let samples: Vec<Sample> = [5000, 8000, 10_000]
        .iter()
        .map(|&m| Sample {
            arrived_milli: m,
            used_milli: m - 500,
            frag_milli: 0.0,
        })
        .collect();
    let snapshots = COST_POINTS_PCT
        .iter()
        .zip(&samples)
        .map(|(&pct, s)| CostSnapshot {
            arrived_pct: pct,
            occupied_nodes: 3,
            occupied_usd_per_hour: usd * s.used_milli as f64 / 1000.0,
            allocated_milli: s.used_milli,
            spot_allocated_milli: s.used_milli / 2,
            lost_gpu_hours: lost,
            intolerant_on_spot: 0,
        })
        .collect();
    CostRunRecord {
        occupied_usd_per_hour: samples
            .iter()
            .map(|s| usd * s.used_milli as f64 / 1000.0)
            .collect(),
        run: RunRecord {
            policy: policy.to_owned(),
            seed,
            capacity_milli,
            pods: 3,
            failed_pods: 0,
            samples,
        },
        snapshots,
    }
}

#[test]
fn medians_over_seeds_and_savings_against_each_baseline() {
    let records = vec![
        record("tessera", 1, 1.0, 2.0),
        record("tessera", 2, 1.2, 4.0),
        record("tessera", 3, 1.1, 3.0),
        record("leastallocated", 1, 2.0, 9.0),
        record("leastallocated", 2, 2.2, 9.0),
        record("leastallocated", 3, 2.4, 9.0),
    ];
    let summary = summarize_cost(&records, 720.0);
    assert_eq!(summary.seeds, vec![1, 2, 3]);
    let tessera = summary.row("tessera").unwrap();
    assert_eq!(tessera.runs, 3);
    let at50 = tessera.at(50).unwrap();
    assert!((at50.usd_per_allocated_gpu_hour.unwrap() - 1.1).abs() < 1e-12);
    assert_eq!(at50.lost_gpu_hours, Some(3.0));
    assert_eq!(at50.spot_allocated_pct, Some(50.0));
    assert_eq!(at50.unalloc_pct, Some(55.0), "4.5 of 10 GPUs allocated");
    let saving = summary.saving_pct("tessera", "leastallocated", 80).unwrap();
    assert!((saving - 50.0).abs() < 1e-9, "{saving}");

    let md = summary.to_markdown();
    assert!(
        md.contains("| tessera | 1.100 | 1.100 | 3.0 | 3.0 | 50.0 | 3 | 55.00 |"),
        "{md}"
    );
    assert!(
        md.contains("- vs leastallocated: 50.0 % @50, 50.0 % @80"),
        "{md}"
    );
    let json = summary.to_json().unwrap();
    assert!(json.contains("\"usd_per_allocated_gpu_hour\""));
}

#[test]
fn intolerant_pods_on_spot_are_counted_and_missing_points_read_na() {
    let mut bad = record("fgd", 1, 1.0, 0.0);
    bad.snapshots[1].intolerant_on_spot = 2;
    bad.snapshots.truncate(2);
    let summary = summarize_cost(&[bad], 720.0);
    let row = summary.row("fgd").unwrap();
    assert_eq!(row.intolerant_on_spot, 2);
    assert_eq!(row.at(100).unwrap().usd_per_allocated_gpu_hour, None);
    assert_eq!(summary.saving_pct("tessera", "fgd", 50), None);
    assert!(!summary.to_markdown().contains("saving"));
}
