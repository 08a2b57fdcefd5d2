//! `tessera simulate` as a user runs it: the built binary on tiny fixture traces
//! (`tests/fixtures/`), checked for its output, report files, determinism and errors.

// Test helpers sit outside `#[test]` functions, where clippy's allow-unwrap-in-tests does not
// reach; a failing unwrap here is a failing test, which is what we want.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod simulate_support;

use std::fs;
use std::process::Command;

use simulate_support::{assert_one_line_error, simulate, simulate_on, stderr, stdout};
use tempfile::TempDir;

/// The files every successful run writes.
const REPORT_FILES: [&str; 5] = [
    "summary.md",
    "summary.json",
    "curves.csv",
    "curves_median.csv",
    "unallocated.svg",
];

/// Every flag `tessera simulate --help` must document.
const FLAGS: [&str; 10] = [
    "--nodes",
    "--pods",
    "--policy",
    "--seeds",
    "--tune",
    "--at",
    "--out",
    "--format",
    "--typical-threshold",
    "--no-progress",
];

/// Runs with one seed into a fresh directory; returns the directory (kept alive by the caller).
fn run_seed(seed: &str) -> TempDir {
    let dir = TempDir::new().unwrap();
    let output = simulate(
        dir.path(),
        &["--seeds", seed, "--policy", "fgd", "--policy", "tessera"],
    );
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    dir
}

#[test]
fn simulate_prints_a_table_row_per_policy_and_writes_every_report_file() {
    let dir = TempDir::new().unwrap();
    let out = dir.path().join("report");
    let output = simulate(
        &out,
        &["--seeds", "1..3", "--policy", "fgd", "--policy", "tessera"],
    );
    assert!(output.status.success(), "stderr: {}", stderr(&output));

    let table = stdout(&output);
    assert!(
        table.contains("| policy | median unallocated GPU %"),
        "header row missing: {table}"
    );
    assert!(table.contains("|---|"), "separator row missing: {table}");
    assert!(table.contains("medians over seeds 1, 2, 3"), "{table}");
    let rows: Vec<&str> = table
        .lines()
        .filter(|l| l.starts_with("| fgd |") || l.starts_with("| tessera |"))
        .collect();
    assert_eq!(rows.len(), 2, "one row per policy: {table}");
    assert!(rows[0].starts_with("| fgd |"), "policies in flag order");

    for name in REPORT_FILES {
        let path = out.join(name);
        let len = fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .len();
        assert!(len > 0, "{name} is empty");
        assert!(
            stderr(&output).contains(&path.display().to_string()),
            "stderr should list {name}"
        );
    }
    let md = fs::read_to_string(out.join("summary.md")).unwrap();
    assert_eq!(md, table, "summary.md is the table printed on stdout");
    let csv = fs::read_to_string(out.join("curves.csv")).unwrap();
    assert!(csv.starts_with("policy,seed,arrived_pct,alloc_pct,unalloc_pct,frag_pct\n"));
    for seed in ["1", "2", "3"] {
        for policy in ["fgd", "tessera"] {
            assert!(
                csv.contains(&format!("\n{policy},{seed},")),
                "curves.csv lacks {policy} seed {seed}"
            );
        }
    }
    let svg = fs::read_to_string(out.join("unallocated.svg")).unwrap();
    assert!(svg.contains("<svg"), "unallocated.svg is an SVG");
}

#[test]
fn same_seed_gives_byte_identical_reports_and_another_seed_does_not() {
    let first = run_seed("7");
    let again = run_seed("7");
    let other = run_seed("8");
    for name in ["curves.csv", "summary.json"] {
        let a = fs::read(first.path().join(name)).unwrap();
        let b = fs::read(again.path().join(name)).unwrap();
        assert!(a == b, "{name} differs between two runs of seed 7");
    }
    let a = fs::read(first.path().join("curves.csv")).unwrap();
    let c = fs::read(other.path().join("curves.csv")).unwrap();
    // Only the seed column may not differ: compare with the seed column dropped.
    let without_seed = |bytes: &[u8]| -> Vec<String> {
        String::from_utf8(bytes.to_vec())
            .unwrap()
            .lines()
            .map(|l| {
                let mut fields: Vec<&str> = l.split(',').collect();
                fields.remove(1);
                fields.join(",")
            })
            .collect()
    };
    assert_ne!(
        without_seed(&a),
        without_seed(&c),
        "seeds 7 and 8 should give different curves, not just a different seed column"
    );
}

#[test]
fn json_format_prints_a_summary_with_one_row_per_policy() {
    let dir = TempDir::new().unwrap();
    let output = simulate(
        dir.path(),
        &[
            "--seeds", "1..3", "--policy", "tessera", "--policy", "fgd", "--format", "json",
        ],
    );
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    let rows = json["rows"].as_array().unwrap();
    let policies: Vec<&str> = rows.iter().map(|r| r["policy"].as_str().unwrap()).collect();
    assert_eq!(policies, ["tessera", "fgd"], "rows in flag order");
    assert_eq!(json["seeds"], serde_json::json!([1, 2, 3]));
    assert_eq!(json["arrived_pct"], 100);
    // On a 29-GPU cluster one pod moves arrival by up to 28 %, so a run may jump over the
    // 100 % bin: `runs` counts the runs that have a value there, as curves.csv shows them.
    let curves = fs::read_to_string(dir.path().join("curves.csv")).unwrap();
    for row in rows {
        let policy = row["policy"].as_str().unwrap();
        let at_100 = curves
            .lines()
            .filter(|l| l.starts_with(&format!("{policy},")) && l.split(',').nth(2) == Some("100"))
            .count();
        assert!(at_100 >= 1, "{policy}: no run reaches the 100 % bin");
        assert_eq!(row["runs"], at_100, "{policy}: runs at the 100 % bin");
        let median = row["unalloc"]["median"].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&median), "median {median} is a %");
    }
    let file: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.path().join("summary.json")).unwrap()).unwrap();
    assert_eq!(file, json, "summary.json holds what stdout printed");
}

#[test]
fn unknown_flag_is_one_line_and_exit_2() {
    let dir = TempDir::new().unwrap();
    assert_one_line_error(&simulate(dir.path(), &["--bogus"]), &["--bogus"]);
}

#[test]
fn unknown_policy_is_one_line_naming_it_and_exit_2() {
    let dir = TempDir::new().unwrap();
    let line = assert_one_line_error(
        &simulate(dir.path(), &["--policy", "bestest"]),
        &["bestest", "--policy"],
    );
    assert!(line.contains("tessera"), "lists the known policies: {line}");
}

#[test]
fn empty_seed_range_is_one_line_and_exit_2() {
    let dir = TempDir::new().unwrap();
    assert_one_line_error(
        &simulate(dir.path(), &["--seeds", "5..1"]),
        &["--seeds", "5..1", "empty"],
    );
}

#[test]
fn negative_tune_is_one_line_and_exit_2() {
    let dir = TempDir::new().unwrap();
    // Both spellings reach the range check (the flag accepts negative numbers as values).
    assert_one_line_error(&simulate(dir.path(), &["--tune", "-1"]), &["--tune", "-1"]);
    assert_one_line_error(&simulate(dir.path(), &["--tune=-1"]), &["--tune", "-1"]);
}

#[test]
fn missing_trace_file_is_one_line_naming_it_and_exit_2() {
    let dir = TempDir::new().unwrap();
    let output = simulate_on("no-such-nodes.csv", "pods.csv", dir.path(), &[]);
    assert_one_line_error(&output, &["no-such-nodes.csv", "cannot read"]);
    assert!(
        fs::read_dir(dir.path()).unwrap().next().is_none(),
        "no report written on error"
    );
}

#[test]
fn malformed_csv_names_file_line_and_column_in_one_line_and_exit_2() {
    let dir = TempDir::new().unwrap();
    let output = simulate_on("nodes.csv", "pods_bad_number.csv", dir.path(), &[]);
    assert_one_line_error(
        &output,
        &["pods_bad_number.csv", "line 4", "column cpu_milli", "11x00"],
    );
}

#[test]
fn help_exits_0_and_documents_every_flag() {
    let output = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["simulate", "--help"])
        .output()
        .unwrap();
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    let help = stdout(&output);
    for flag in FLAGS {
        assert!(
            help.contains(flag),
            "--help does not mention {flag}:\n{help}"
        );
    }
}
