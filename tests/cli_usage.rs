//! The binary's own surface as a user meets it: `tessera` alone, error lines, plain logs in a
//! file, and flags that cannot work together.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};

fn tessera(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
    command
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("LOG_FORMAT")
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("NO_COLOR");
    for (k, v) in envs {
        command.env(k, v);
    }
    command.output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Parts of an error line (between `": "`) longer than a word that occur twice.
fn repeated_parts(line: &str) -> Vec<String> {
    let parts: Vec<&str> = line.split(": ").map(str::trim).collect();
    let mut repeated = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        if part.len() > 12 && parts[i + 1..].iter().any(|p| p.contains(part)) {
            repeated.push((*part).to_owned());
        }
    }
    repeated
}

#[test]
fn tessera_alone_prints_usage_and_exits_2() {
    let out = tessera(&[], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    for want in [
        "Usage: tessera",
        "Commands:",
        "simulate",
        "plugin",
        "extender",
        "slices",
    ] {
        assert!(err.contains(want), "no {want:?} in:\n{err}");
    }
    assert!(out.stdout.is_empty());
}

#[test]
fn a_missing_kube_config_is_said_once() {
    let home = tempfile::tempdir().unwrap();
    // Port 0: tests run in parallel, and the extender binds before it reads a kubeconfig.
    let out = tessera(
        &[
            "extender",
            "--listen",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
        ],
        &[("HOME", home.path().to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(err.matches("failed to infer config").count(), 1, "{err}");
    assert!(
        repeated_parts(&err).is_empty(),
        "{:?} in {err}",
        repeated_parts(&err)
    );
    assert!(err.len() < 400, "{} characters: {err}", err.len());
}

#[test]
fn a_bad_kubeconfig_is_shown_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    std::fs::write(&path, "apiVersion: v1\nclusters: [\n").unwrap();
    let out = tessera(
        &[
            "extender",
            "--listen",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
            "--kubeconfig",
            path.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.matches("cannot read kubeconfig").count(), 1, "{err}");
    assert_eq!(
        err.matches("failed to parse kubeconfig").count(),
        1,
        "{err}"
    );
    assert!(
        repeated_parts(&err).is_empty(),
        "{:?} in {err}",
        repeated_parts(&err)
    );
}

/// A kubeconfig for a server that is not there: enough to get the plugin to its directories.
fn unreachable_kubeconfig(dir: &std::path::Path) -> String {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n\
         contexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\n\
         users:\n- name: u\n  user:\n    token: t\n",
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn plugin_refuses_missing_parent_directories_and_logs_plain_without_colour() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = unreachable_kubeconfig(dir.path());
    let missing = dir.path().join("nonexistent");
    let path = |name: &str| missing.join(name).to_str().unwrap().to_owned();
    let out = tessera(
        &[
            "plugin",
            "--kubeconfig",
            &kubeconfig,
            "--fake-gpus",
            "h100x8",
            "--node-name",
            "n",
            "--features",
            "ga",
            "--admin-addr",
            "127.0.0.1:0",
            "--plugin-registry-dir",
            &path("reg"),
            "--plugin-dir",
            &path("pd"),
            "--cdi-dir",
            &path("cdi"),
            "--log-level",
            "info",
            "--log-format",
            "plain",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("does not exist") && err.contains(missing.to_str().unwrap()),
        "{err}"
    );
    assert!(
        !missing.exists(),
        "the plugin created {}",
        missing.display()
    );
    // Logged lines before the error, none with ANSI escapes (stderr is a pipe here).
    assert!(err.contains(" INFO "), "{err}");
    assert!(
        !err.contains('\u{1b}'),
        "ANSI escape in plain logs:\n{err:?}"
    );
}

#[test]
fn mig_strategy_with_fake_gpus_is_refused() {
    let out = tessera(
        &[
            "slices",
            "--fake-gpus",
            "h100x8-mig-static",
            "--mig-strategy",
            "dynamic",
            "--node-name",
            "n",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("--mig-strategy") && err.contains("--fake-gpus"),
        "{err}"
    );
}
