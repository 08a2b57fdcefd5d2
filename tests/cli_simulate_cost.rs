//! `tessera simulate --cost` as a user runs it: the built binary on the fixture traces
//! (`tests/fixtures/`), checked for its table, report files, determinism and errors.

// Test helpers sit outside `#[test]` functions, where clippy's allow-unwrap-in-tests does not
// reach; a failing unwrap here is a failing test, which is what we want.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod simulate_support;

use std::fs;
use std::process::Command;

use simulate_support::{assert_one_line_error, simulate, stderr, stdout};
use tempfile::TempDir;

/// The files every successful `--cost` run writes.
const COST_FILES: [&str; 7] = [
    "summary.md",
    "summary.json",
    "cost.csv",
    "curves.csv",
    "curves_median.csv",
    "cost.svg",
    "unallocated.svg",
];

#[test]
fn cost_run_prints_every_policy_and_writes_its_report() {
    let dir = TempDir::new().unwrap();
    let output = simulate(dir.path(), &["--cost", "--seeds", "1..4"]);
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    let table = stdout(&output);
    assert!(
        table.contains("| policy | $/GPU-h @50 | $/GPU-h @80 |"),
        "{table}"
    );
    for policy in [
        "tessera",
        "tessera-nocost",
        "fgd",
        "bestfit",
        "leastallocated",
    ] {
        let prefix = format!("| {policy} |");
        let row = table
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no row for {policy}: {table}"));
        assert!(row.ends_with("| 0 |"), "no intolerant pod on spot: {row}");
    }
    assert!(table.contains("- vs leastallocated: "), "{table}");
    for name in COST_FILES {
        let len = fs::metadata(dir.path().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .len();
        assert!(len > 0, "{name} is empty");
    }
    let csv = fs::read_to_string(dir.path().join("cost.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (intolerant, usd) = (col("intolerant_on_spot"), col("usd_per_allocated_gpu_hour"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    // 5 policies × 4 seeds × 3 arrival points.
    assert_eq!(rows.len(), 60, "{csv}");
    for row in &rows {
        assert_eq!(row[intolerant], "0", "{row:?}");
        let price: f64 = row[usd].parse().unwrap();
        assert!(price.is_finite() && price > 0.0, "{row:?}");
    }
    assert!(
        fs::read_to_string(dir.path().join("cost.svg"))
            .unwrap()
            .starts_with("<svg")
    );
}

#[test]
fn cost_runs_are_deterministic() {
    let runs: Vec<String> = (0..2)
        .map(|_| {
            let dir = TempDir::new().unwrap();
            let output = simulate(dir.path(), &["--cost", "--seeds", "7", "--format", "json"]);
            assert!(output.status.success(), "stderr: {}", stderr(&output));
            fs::read_to_string(dir.path().join("cost.csv")).unwrap() + &stdout(&output)
        })
        .collect();
    assert_eq!(runs[0], runs[1]);
    assert!(runs[0].contains("\"horizon_hours\": 720.0"), "{}", runs[0]);
}

#[test]
fn spot_share_and_prices_change_the_result() {
    let run = |extra: &[&str]| {
        let dir = TempDir::new().unwrap();
        let mut args = vec!["--cost", "--seeds", "3", "--policy", "fgd"];
        args.extend_from_slice(extra);
        let output = simulate(dir.path(), &args);
        assert!(output.status.success(), "stderr: {}", stderr(&output));
        fs::read_to_string(dir.path().join("cost.csv")).unwrap()
    };
    let base = run(&[]);
    assert_ne!(run(&["--spot-share", "0"]), base);
    let dir = TempDir::new().unwrap();
    let prices = dir.path().join("prices.csv");
    fs::write(
        &prices,
        "cloud,region,instance_type,gpu_model,gpus,gpu_mem_mib_each,od_usd_hr,od_usd_per_gpu_hr,\
         spot_usd_hr_est,spot_usd_per_gpu_hr_est,spot_interruption_band,spot_savings_pct,\
         price_source,spot_source\n\
         aws,us-east-1,p4d.24xlarge,a100,8,40960,8.0,,4.0,,<5%,50,test contract,test\n",
    )
    .unwrap();
    assert_ne!(run(&["--prices", prices.to_str().unwrap()]), base);
}

#[test]
fn bad_cost_inputs_are_one_line_errors() {
    let dir = TempDir::new().unwrap();
    let out = dir.path().join("out");
    assert_one_line_error(
        &simulate(&out, &["--spot-share", "0.5"]),
        &["--spot-share needs --cost"],
    );
    assert_one_line_error(
        &simulate(&out, &["--cost", "--spot-share", "1.5"]),
        &["--spot-share", "1.5"],
    );
    assert_one_line_error(
        &simulate(&out, &["--cost", "--policy", "random"]),
        &["random", "not supported"],
    );

    let weights = dir.path().join("weights.yaml");
    fs::write(&weights, "cost: 1\nrisc: 2\n").unwrap();
    assert_one_line_error(
        &simulate(&out, &["--cost", "--weights", weights.to_str().unwrap()]),
        &["weights.yaml:2:1", "unknown field `risc`"],
    );
    fs::write(&weights, "frag: -3\n").unwrap();
    assert_one_line_error(
        &simulate(&out, &["--cost", "--weights", weights.to_str().unwrap()]),
        &["weights.yaml", "`frag`", "negative"],
    );

    let prices = dir.path().join("prices.csv");
    fs::write(
        &prices,
        "cloud,region,instance_type,gpu_model,gpus,gpu_mem_mib_each,od_usd_hr,od_usd_per_gpu_hr,\
         spot_usd_hr_est,spot_usd_per_gpu_hr_est,spot_interruption_band,spot_savings_pct,\
         price_source,spot_source\n\
         aws,us-east-1,p4d.24xlarge,a100,8,40960,-1,,,,,,x,y\n",
    )
    .unwrap();
    assert_one_line_error(
        &simulate(&out, &["--cost", "--prices", prices.to_str().unwrap()]),
        &["prices.csv:2:7", "`od_usd_hr`", "negative"],
    );
    assert!(
        !out.join("summary.md").exists(),
        "nothing written on bad input"
    );
}

#[test]
fn help_documents_the_cost_flags() {
    let output = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["simulate", "--help"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = stdout(&output);
    for flag in ["--cost", "--spot-share", "--weights", "--prices"] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}
