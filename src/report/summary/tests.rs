use super::*;
use crate::report::Sample;

/// A 1-GPU run with one sample, so milli / 10 is the percentage.
fn run(policy: &str, seed: u64, sample: (u64, u64, f64), pods: u64, failed: u64) -> RunRecord {
    let (arrived_milli, used_milli, frag_milli) = sample;
    RunRecord {
        policy: policy.to_owned(),
        seed,
        capacity_milli: 1000,
        pods,
        failed_pods: failed,
        samples: vec![Sample {
            arrived_milli,
            used_milli,
            frag_milli,
        }],
    }
}

fn records() -> Vec<RunRecord> {
    vec![
        // tessera: unallocated 5 and 10 at 100 %, frag 1 and 3.
        run("tessera", 43, (1000, 950, 10.0), 10, 2),
        run("fgd", 44, (1000, 970, 5.0), 11, 1),
        run("tessera", 42, (1000, 900, 30.0), 12, 3),
        // Only reaches 50 %: no value at 100 %.
        run("random", 42, (500, 500, 0.0), 5, 0),
    ]
}

#[test]
fn one_row_per_policy_in_input_order() {
    let summary = summarize(&records(), 100);
    let policies: Vec<&str> = summary.rows.iter().map(|r| r.policy.as_str()).collect();
    assert_eq!(policies, vec!["tessera", "fgd", "random"]);
    assert_eq!(summary.seeds, vec![42, 43, 44]);
    assert_eq!(summary.arrived_pct, 100);
}

#[test]
fn row_holds_spreads_and_pod_medians_at_the_bin() {
    let summary = summarize(&records(), 100);
    let tessera = &summary.rows[0];
    assert_eq!(
        tessera.unalloc,
        Some(Spread {
            median: 7.5,
            min: 5.0,
            max: 10.0,
            p25: 6.25,
            p75: 8.75
        })
    );
    assert_eq!(tessera.frag.map(|s| s.median), Some(2.0));
    assert_eq!(tessera.runs, 2);
    assert_eq!(tessera.failed_pods_median, 2.5);
    assert_eq!(tessera.pods_median, 11.0);

    let random = &summary.rows[2];
    assert_eq!((random.unalloc, random.frag, random.runs), (None, None, 0));
    assert_eq!(random.pods_median, 5.0);
}

#[test]
fn other_bins_can_be_read() {
    let summary = summarize(&records(), 50);
    let with_value: Vec<&str> = summary
        .rows
        .iter()
        .filter(|r| r.unalloc.is_some())
        .map(|r| r.policy.as_str())
        .collect();
    assert_eq!(with_value, vec!["random"]);
    assert_eq!(summary.rows[2].unalloc.map(|s| s.median), Some(50.0));
}

#[test]
fn markdown_has_caption_header_two_decimal_shares_and_whole_pod_counts() {
    let markdown = summarize(&records(), 100).to_markdown();
    let expected = "\
Unallocated GPU % at arrived workload = 100 % of cluster GPU capacity; medians over seeds 42, 43, 44.

| policy | median unallocated GPU % | spread (min–max) | p25–p75 | median frag % (of capacity) | failed pods (median) |
|---|---:|---:|---:|---:|---:|
| tessera | 7.50 | 5.00–10.00 | 6.25–8.75 | 2.00 | 2.5 |
| fgd | 3.00 | 3.00–3.00 | 3.00–3.00 | 0.50 | 1 |
| random | n/a | n/a | n/a | n/a | 0 |
";
    assert_eq!(markdown, expected);
}

#[test]
fn markdown_escapes_pipes_in_policy_names() {
    let records = vec![run("a|b", 1, (1000, 1000, 0.0), 1, 0)];
    let markdown = summarize(&records, 100).to_markdown();
    assert!(markdown.contains("| a\\|b | 0.00 |"), "{markdown}");
}

#[test]
fn empty_input_gives_a_header_only_table() {
    let summary = summarize(&[], 100);
    assert!(summary.rows.is_empty());
    let markdown = summary.to_markdown();
    assert!(markdown.contains("seeds none"));
    assert_eq!(markdown.lines().count(), 4);
}

#[test]
fn json_round_trips_with_null_for_missing_spreads() {
    let json = summarize(&records(), 100).to_json().unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["arrived_pct"], 100);
    assert_eq!(value["seeds"], serde_json::json!([42, 43, 44]));
    assert_eq!(value["rows"][0]["policy"], "tessera");
    assert_eq!(value["rows"][0]["unalloc"]["median"], 7.5);
    assert!(value["rows"][2]["unalloc"].is_null());
    assert!(json.contains('\n'), "pretty-printed");
}
