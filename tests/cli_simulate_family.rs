//! `tessera simulate --workload` and `--published` as a user runs them, and the `--at` bound.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod simulate_support;

use std::path::Path;

use simulate_support::{assert_one_line_error, simulate, simulate_bundled, stderr, stdout};
use tempfile::TempDir;

fn published_file() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("benches/traces/alibaba-openb/fgd-published/analysis_allo_discrete.csv")
        .display()
        .to_string()
}

#[test]
fn at_beyond_the_curve_is_one_line_and_exit_2() {
    let dir = TempDir::new().unwrap();
    for at in ["131", "500"] {
        assert_one_line_error(
            &simulate(dir.path(), &["--at", at]),
            &[&format!("--at {at}"), "beyond the curve", "130"],
        );
    }
    // With a larger tune the same bin is on the curve.
    let output = simulate(
        dir.path(),
        &["--at", "131", "--tune", "1.4", "--seeds", "1"],
    );
    assert!(output.status.success(), "stderr: {}", stderr(&output));
}

#[test]
fn unknown_workload_and_pods_with_workload_are_one_line_and_exit_2() {
    let dir = TempDir::new().unwrap();
    let line = assert_one_line_error(
        &simulate_bundled(dir.path(), &["--workload", "gpuspec33"]),
        &["unknown workload", "gpuspec33", "multigpu50"],
    );
    assert!(line.contains("all"), "{line}");
    assert_one_line_error(
        &simulate(dir.path(), &["--workload", "default"]),
        &["--workload"],
    );
    assert_one_line_error(
        &simulate_bundled(
            dir.path(),
            &["--workload", "default", "--published", "no-such.csv"],
        ),
        &["no-such.csv"],
    );
    // A --pods file is not a bundled workload: nothing to compare it with.
    assert_one_line_error(
        &simulate(dir.path(), &["--published", &published_file()]),
        &["--published", "--workload"],
    );
}

#[test]
fn one_workload_is_printed_next_to_its_published_figures() {
    let dir = TempDir::new().unwrap();
    let published = published_file();
    let output = simulate_bundled(
        dir.path(),
        &[
            "--workload",
            "cpu050",
            "--policy",
            "random",
            "--seeds",
            "42",
            "--published",
            &published,
        ],
    );
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    let table = stdout(&output);
    assert!(
        table.contains("| workload | random | lower bound | fgd published |"),
        "{table}"
    );
    // The first table has tessera's column only when tessera ran; FGD's published median
    // for cpu050 is 5.005 (shared/data README, the file's seeds 42–51).
    let row = table.lines().find(|l| l.starts_with("| cpu050 |")).unwrap();
    assert!(
        row.contains("| 5.00 |") || row.contains("| 5.01 |"),
        "{row}"
    );
    // The second table: random against its published figure (11.015).
    let diff = table
        .lines()
        .filter(|l| l.starts_with("| cpu050 |"))
        .nth(1)
        .unwrap();
    assert!(diff.contains(" / 11.0"), "{diff}");
    // One workload writes its report into --out itself, as a plain run does.
    assert!(dir.path().join("summary.md").exists());
    assert!(dir.path().join("unallocated.svg").exists());
}

#[test]
fn typical_online_settings_out_of_range_or_unused_are_one_line_and_exit_2() {
    let dir = TempDir::new().unwrap();
    assert_one_line_error(
        &simulate_bundled(
            dir.path(),
            &["--typical", "online", "--typical-half-life", "0"],
        ),
        &["--typical-half-life", "half-life"],
    );
    assert_one_line_error(
        &simulate_bundled(dir.path(), &["--typical", "online", "--cost"]),
        &["--typical online", "--cost"],
    );
    assert_one_line_error(
        &simulate_bundled(dir.path(), &["--typical-half-life", "50"]),
        &["--typical-half-life", "--typical online"],
    );
}
