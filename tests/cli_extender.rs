//! `tessera extender` as an operator starts it: every flag documented in `--help` with its
//! environment fallback, bad values refused before anything starts, a taken port reported.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};

/// Exit code of bad flags, bad values and bad files.
const EXIT_USAGE: i32 = 2;

/// Every flag of `tessera extender` and the variable that can set it.
const FLAGS: [(&str, &str); 22] = [
    ("--listen", "TESSERA_EXTENDER_LISTEN"),
    ("--url-prefix", "TESSERA_EXTENDER_URL_PREFIX"),
    ("--tls-cert", "TESSERA_EXTENDER_TLS_CERT"),
    ("--tls-key", "TESSERA_EXTENDER_TLS_KEY"),
    ("--tls-client-ca", "TESSERA_EXTENDER_TLS_CLIENT_CA"),
    (
        "--tls-reload-interval",
        "TESSERA_EXTENDER_TLS_RELOAD_INTERVAL",
    ),
    ("--admin-tls", "TESSERA_EXTENDER_ADMIN_TLS"),
    ("--max-body-bytes", "TESSERA_EXTENDER_MAX_BODY_BYTES"),
    (
        "--decode-budget-bytes",
        "TESSERA_EXTENDER_DECODE_BUDGET_BYTES",
    ),
    ("--body-read-timeout", "TESSERA_EXTENDER_BODY_READ_TIMEOUT"),
    (
        "--header-read-timeout",
        "TESSERA_EXTENDER_HEADER_READ_TIMEOUT",
    ),
    ("--access-review", "TESSERA_EXTENDER_ACCESS_REVIEW"),
    ("--access-review-ttl", "TESSERA_EXTENDER_ACCESS_REVIEW_TTL"),
    ("--weights", "TESSERA_WEIGHTS"),
    ("--prices", "TESSERA_PRICES"),
    ("--driver-name", "TESSERA_DRIVER_NAME"),
    ("--stale-after", "TESSERA_EXTENDER_STALE_AFTER"),
    ("--kube-version", "TESSERA_KUBE_VERSION"),
    ("--admin-addr", "TESSERA_ADMIN_ADDR"),
    ("--kubeconfig", "TESSERA_KUBECONFIG"),
    ("--kube-context", "TESSERA_KUBE_CONTEXT"),
    ("--log-level", "RUST_LOG"),
];

fn extender(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("extender")
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("LOG_FORMAT")
        .env_remove("KUBECONFIG")
        .env("HOME", "/nonexistent")
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

#[test]
fn help_documents_every_flag_with_its_variable() {
    let output = extender(&["--help"]);
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for (flag, var) in FLAGS {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
        assert!(
            help.contains(&format!("env: {var}")),
            "{var} missing from:\n{help}"
        );
    }
    for default in [
        "0.0.0.0:8888",
        "gpu.tessera.dev",
        "[default: /]",
        "[default: 120]",
    ] {
        assert!(help.contains(default), "{default} missing from:\n{help}");
    }
}

#[test]
fn bad_values_stop_it_before_it_starts_naming_the_flag() {
    for (args, want) in [
        (vec!["--url-prefix", "filter"], "--url-prefix"),
        (vec!["--max-body-bytes", "12"], "--max-body-bytes"),
        (vec!["--stale-after", "0"], "--stale-after"),
        (vec!["--kube-version", "1.33"], "--kube-version"),
        (vec!["--listen", "not-an-address"], "--listen"),
        (vec!["--weights", "/nonexistent/w.yaml"], "--weights"),
        (vec!["--tls-cert", "/nonexistent/c.pem"], "--tls-key"),
        (
            vec![
                "--tls-cert",
                "/nonexistent/c.pem",
                "--tls-key",
                "/nonexistent/k.pem",
            ],
            "/nonexistent/c.pem",
        ),
    ] {
        let output = extender(&args);
        assert_eq!(output.status.code(), Some(EXIT_USAGE), "{args:?}");
        let err = stderr(&output);
        assert!(err.starts_with("tessera: "), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

#[test]
fn a_taken_port_is_reported_before_the_cluster_is_contacted() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = extender(&["--listen", &addr, "--kubeconfig", "/nonexistent/kubeconfig"]);
    assert_eq!(output.status.code(), Some(EXIT_USAGE));
    let err = stderr(&output);
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
}

#[test]
fn without_a_cluster_it_says_so() {
    let output = extender(&[
        "--listen",
        "127.0.0.1:0",
        "--kubeconfig",
        "/nonexistent/kubeconfig",
    ]);
    assert_eq!(output.status.code(), Some(EXIT_USAGE));
    let err = stderr(&output);
    assert!(err.contains("/nonexistent/kubeconfig"), "{err}");
}
