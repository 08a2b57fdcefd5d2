//! Running the built `tessera simulate` on the fixture traces (`tests/fixtures/`), shared by
//! the `cli_simulate*` tests.

// Each test crate uses its own subset of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Exit code of bad flags, bad values and bad files.
pub const EXIT_USAGE: i32 = 2;

/// A fixture file's path (which need not exist).
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// `tessera simulate` writing into `out`, without a progress bar.
///
/// The logging variables are cleared so a developer's `RUST_LOG` cannot add lines to stderr.
fn simulate_command(out: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.arg("simulate")
        .arg("--out")
        .arg(out)
        .arg("--no-progress")
        .env_remove("RUST_LOG")
        .env_remove("LOG_FORMAT");
    cmd
}

/// `tessera simulate` on the fixture files `nodes` and `pods` with `extra` flags, writing
/// into `out`.
pub fn simulate_on(nodes: &str, pods: &str, out: &Path, extra: &[&str]) -> Output {
    simulate_command(out)
        .arg("--nodes")
        .arg(fixture(nodes))
        .arg("--pods")
        .arg(fixture(pods))
        .args(extra)
        .output()
        .unwrap()
}

/// `tessera simulate` on the bundled traces (no `--nodes`/`--pods`) with `extra` flags.
pub fn simulate_bundled(out: &Path, extra: &[&str]) -> Output {
    simulate_command(out).args(extra).output().unwrap()
}

/// `tessera simulate` on the fixture trace (`nodes.csv`, `pods.csv`).
pub fn simulate(out: &Path, extra: &[&str]) -> Output {
    simulate_on("nodes.csv", "pods.csv", out, extra)
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// Asserts a run failed with the usage exit code, exactly one stderr line holding every
/// piece of `needles` and nothing on stdout; returns that line.
pub fn assert_one_line_error(output: &Output, needles: &[&str]) -> String {
    let err = stderr(output);
    assert_eq!(
        output.status.code(),
        Some(EXIT_USAGE),
        "exit status; stderr: {err}"
    );
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one stderr line, got: {err:?}");
    for needle in needles {
        assert!(
            lines[0].contains(needle),
            "stderr {:?} should mention {needle:?}",
            lines[0]
        );
    }
    assert!(stdout(output).is_empty(), "nothing on stdout on error");
    lines[0].to_owned()
}
