//! `tessera simulate --cluster mig` as a user runs it, on the fixture traces
//! (`tests/fixtures/`): the table names the four MIG policies, the report files are written,
//! runs are deterministic, and flags that do not apply are refused.

// Helpers sit outside `#[test]` functions, where clippy's allow-unwrap-in-tests does not
// reach; a failing unwrap here is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod simulate_support;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use simulate_support::simulate;
use tempfile::TempDir;

/// The MIG experiment's policies, in report order.
const POLICIES: [&str; 4] = [
    "static-1g",
    "static-balanced",
    "dynamic-firstfit",
    "dynamic-tessera",
];

/// The files every successful run writes.
const REPORT_FILES: [&str; 5] = [
    "summary.md",
    "summary.json",
    "curves.csv",
    "curves_median.csv",
    "unallocated.svg",
];

/// `tessera simulate --cluster mig` on the fixture node and pod lists, writing into `out`.
fn simulate_mig(out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["--cluster", "mig"];
    args.extend_from_slice(extra);
    simulate(out, &args)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn mig_cluster_table_has_the_four_policies_and_every_report_file_is_written() {
    let dir = TempDir::new().unwrap();
    let out = dir.path().join("mig");
    let output = simulate_mig(&out, &["--seeds", "42..44"]);
    assert!(output.status.success(), "stderr: {}", text(&output.stderr));

    let table = text(&output.stdout);
    assert!(table.contains("medians over seeds 42, 43, 44"), "{table}");
    assert!(
        table.contains("| failed pods at 100 % (median) |"),
        "{table}"
    );
    let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| ")).collect();
    let names: Vec<&str> = rows
        .iter()
        .skip(1) // header
        .filter_map(|r| r.split('|').nth(1))
        .map(str::trim)
        .collect();
    assert_eq!(names, POLICIES, "{table}");
    for row in rows.iter().skip(1) {
        let median = row.split('|').nth(2).unwrap().trim();
        let value: f64 = median.parse().unwrap_or_else(|_| panic!("a number: {row}"));
        assert!((0.0..=100.0).contains(&value), "{row}");
    }

    for name in REPORT_FILES {
        let len = fs::metadata(out.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .len();
        assert!(len > 0, "{name} is empty");
    }
    let curves = fs::read_to_string(out.join("curves.csv")).unwrap();
    for policy in POLICIES {
        for seed in ["42", "43", "44"] {
            let prefix = format!("{policy},{seed},");
            assert!(
                curves.lines().any(|l| l.starts_with(&prefix)),
                "no curve for {prefix}"
            );
        }
    }
    let summary: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["rows"].as_array().unwrap().len(), 4);
    assert!(
        fs::read_to_string(out.join("unallocated.svg"))
            .unwrap()
            .contains("dynamic-tessera")
    );
    assert_eq!(
        fs::read_to_string(out.join("summary.md")).unwrap(),
        table,
        "summary.md is the table printed"
    );
}

#[test]
fn mig_runs_are_deterministic() {
    let a = TempDir::new().unwrap();
    let b = TempDir::new().unwrap();
    let first = simulate_mig(a.path(), &["--seeds", "7"]);
    let second = simulate_mig(b.path(), &["--seeds", "7"]);
    assert!(first.status.success() && second.status.success());
    assert_eq!(first.stdout, second.stdout);
    assert_eq!(
        fs::read(a.path().join("curves.csv")).unwrap(),
        fs::read(b.path().join("curves.csv")).unwrap()
    );
}

#[test]
fn openb_policies_are_refused_on_the_mig_cluster() {
    let dir = TempDir::new().unwrap();
    let output = simulate_mig(dir.path(), &["--seeds", "1", "--policy", "fgd"]);
    assert_eq!(output.status.code(), Some(2));
    let err = text(&output.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--policy") && err.contains("dynamic-tessera"),
        "{err}"
    );
    assert!(output.stdout.is_empty());
    assert!(!dir.path().join("summary.md").exists());
}

#[test]
fn an_unknown_cluster_is_a_usage_error() {
    let dir = TempDir::new().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["simulate", "--cluster", "tpu", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("tpu"));
}
