//! Memory of the cluster cache at the extender's reference size: builds the store for
//! `synthetic_cluster(5_000, 8, 100_000, 42)` (5,000 nodes, 40,000 GPUs, 100,000 allocated
//! claims with their pods), publishes a snapshot, and prints the process's resident memory
//! from `/proc/self/status` before and after, with what the cache holds.
//!
//! Run with `cargo bench --bench cluster_cache_rss` (Linux). Target: under 200 MiB RSS.

// A measurement binary: failing loudly on a broken setup is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use tessera::cluster::testing::synthetic_cluster;
use tessera::cluster::{CacheConfig, DEFAULT_DRIVER};

/// `VmRSS` and `VmHWM` (peak) in MiB.
fn memory_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(f64::NAN, |kib| kib / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let (before, _) = memory_mib();
    let config = CacheConfig::builtin(DEFAULT_DRIVER).expect("market data");
    let cluster = synthetic_cluster(5_000, 8, 100_000, 42);
    let started = Instant::now();
    let mut store = cluster.store(config);
    let snapshot = store.snapshot();
    let elapsed = started.elapsed();
    let (after, peak) = memory_mib();
    let stats = snapshot.stats();
    let gpus: usize = snapshot.nodes().map(|n| n.gpu_count()).sum();
    println!(
        "cache: {} nodes, {gpus} GPUs, {} devices, {} allocations, {} claims, {} pods",
        stats.nodes, stats.devices, stats.allocations, stats.claims, stats.pods
    );
    println!(
        "built from scratch in {:.2} s (one thread)",
        elapsed.as_secs_f64()
    );
    println!("RSS before: {before:.1} MiB");
    println!("RSS holding the cache and one snapshot: {after:.1} MiB (peak {peak:.1} MiB)");
    println!("cache alone: {:.1} MiB", after - before);
    // Keep both alive until measured.
    drop(snapshot);
    drop(store);
}
