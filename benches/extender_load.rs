//! Load run over loopback HTTP: the extender serving the benchmark cluster (5,000 nodes,
//! 40,000 GPUs, 100,000 allocated claims) on a 2-worker runtime, and `wrk` posting prioritize
//! requests of 500 node names for a pending pod with a `firstAvailable` claim.
//!
//! The server and `wrk` share the machine, so on a 2-core machine the figure is what 2 cores
//! give server and load generator together. Needs `wrk` on `PATH` (`apt-get install wrk`).
//!
//! Run with `cargo bench --bench extender_load`; `TESSERA_LOAD_SECONDS` (default 20) and
//! `TESSERA_LOAD_CONNECTIONS` (default 8) change the run.

// Benchmark setup fails loudly; there is no caller to report to.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use tessera::cluster::CacheConfig;
use tessera::cluster::testing::synthetic_cluster;
use tessera::extender::Bound;
use tessera::extender::testing::{RouterOptions, reference_request, snapshot_router};

/// Node names per request.
const NAMES: usize = 500;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!("wrk is not installed (apt-get install wrk); nothing measured");
        return;
    }
    let seconds = env_or("TESSERA_LOAD_SECONDS", 20);
    let connections = env_or("TESSERA_LOAD_CONNECTIONS", 8);
    let config = CacheConfig::builtin("gpu.tessera.dev").unwrap();
    let snapshot = synthetic_cluster(5_000, 8, 100_000, 42)
        .with_pending_pods(30)
        .snapshot(config.clone());
    let body_file = tempfile::NamedTempFile::new().unwrap();
    // The third pending pod: its claim lists a MIG slice, a share and a whole GPU.
    let body = reference_request(&snapshot, NAMES, json!({})).unwrap();
    std::fs::write(body_file.path(), body.to_string()).unwrap();
    let options = RouterOptions {
        memo: true,
        parallel_from: None,
        predict: Some(tessera::allocator::Release::V1_36),
    };
    let app = snapshot_router(snapshot, options).unwrap();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let shutdown = CancellationToken::new();
    let bound = runtime
        .block_on(async { Bound::bind("127.0.0.1:0".parse().unwrap()) })
        .unwrap();
    let addr = bound.local_addr();
    let server = runtime.spawn(bound.serve(app, None, shutdown.clone(), Duration::from_secs(5)));

    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/extender_load/post_body.lua"
    );
    let url = format!("http://{addr}/prioritize");
    let run = |duration: u64| {
        Command::new("wrk")
            .args([
                "-t1",
                &format!("-c{connections}"),
                &format!("-d{duration}s"),
            ])
            .args(["--latency", "--timeout", "5s", "-s", script, &url])
            .env("TESSERA_LOAD_BODY", body_file.path())
            .output()
            .unwrap()
    };
    // Warm-up: the first request for the pod's shape scores every node.
    run(2);
    let output = run(seconds);
    println!(
        "wrk -t1 -c{connections} -d{seconds}s --latency against prioritize ({NAMES} of 5,000 nodes):\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    shutdown.cancel();
    runtime.block_on(server).unwrap().unwrap();
}
