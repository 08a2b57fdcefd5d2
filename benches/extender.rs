//! The extender's request path against the benchmark cluster: 5,000 nodes, 40,000 GPUs,
//! 100,000 allocated claims (the cache's synthetic generator, seed 42), a pending pod whose
//! claim asks `firstAvailable` [1g.10gb MIG slice, 10 GiB / 25 % share, whole GPU], and 500
//! node names per request (what kube-scheduler sends at 5,000 nodes).
//!
//! Each iteration is one whole HTTP request through the router: body parse, snapshot, demand,
//! fit, cost blend and fragmentation on 500 nodes, answer encoding. After criterion's
//! estimates the bench prints the latency distribution of 3,000 sequential requests per verb
//! (p50, p99, max), which is what the 1 ms p99 target is about.
//!
//! `*_learned` score against typical pods learned from the cluster's own pods (the default
//! `--typical online`) rather than the bundled trace's; `typical_rescan_100000_pods` is one
//! learner scan of the unchanged cache (every pod already seen), what the learner costs
//! each second while the cluster changes.
//!
//! Run with `cargo bench --bench extender`.

// Benchmark setup fails loudly; there is no caller to report to.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use criterion::{Criterion, Throughput};
use http_body_util::BodyExt;
use serde_json::json;
use tower::ServiceExt;

use tessera::allocator::Release;
use tessera::cluster::testing::synthetic_cluster;
use tessera::cluster::{CacheConfig, Snapshot};
use tessera::extender::demand::DeviceClasses;
use tessera::extender::evaluate::default_typical_pods;
use tessera::extender::testing::{
    RouterOptions, reference_request, snapshot_router, snapshot_router_with,
};
use tessera::extender::typical::learner::{DEFAULT_MAX_SEEN_PODS, TypicalLearner};
use tessera::extender::typical::{TypicalHandle, TypicalModel};
use tessera::scoring::{OnlineWindow, Weights};

/// Node names per request.
const NAMES: usize = 500;
/// Requests timed one by one for the latency distribution.
const SAMPLES: usize = 3_000;

fn cluster() -> Snapshot {
    let started = Instant::now();
    let config = CacheConfig::builtin("gpu.tessera.dev").unwrap();
    let snapshot = synthetic_cluster(5_000, 8, 100_000, 42)
        .with_pending_pods(30)
        .snapshot(config);
    let stats = snapshot.stats();
    eprintln!(
        "cluster: {} nodes, {} devices, {} allocations, {} claims, {} pods (built in {:.1?})",
        stats.nodes,
        stats.devices,
        stats.allocations,
        stats.claims,
        stats.pods,
        started.elapsed()
    );
    snapshot
}

/// The reference prioritize/filter body: the pending pod whose claim has the
/// `firstAvailable` list, with every tenth node's name.
fn body(snapshot: &Snapshot) -> Vec<u8> {
    reference_request(
        snapshot,
        NAMES,
        json!({"tessera.dev/interruption": "checkpointed"}),
    )
    .expect("the synthetic cluster's third pending pod")
    .to_string()
    .into_bytes()
}

/// The router over `snapshot`, scoring with memoization (`warm`, as the extender runs) or
/// without (every node scored afresh on every request: the cost of a new pod shape or of a
/// snapshot where every node changed).
fn app(snapshot: Snapshot, warm: bool) -> axum::Router {
    let options = RouterOptions {
        memo: warm,
        parallel_from: None,
        predict: predict(),
    };
    snapshot_router(snapshot, options).unwrap()
}

/// The release whose allocator prioritize predicts: `TESSERA_BENCH_RELEASE` (`1.34`, `1.35`,
/// `1.36`, or `none` for tessera's own fit, the scoring before the prediction); default 1.36.
fn predict() -> Option<Release> {
    match std::env::var("TESSERA_BENCH_RELEASE") {
        Ok(v) if v == "none" => None,
        Ok(v) => Some(Release::parse(&v).expect("TESSERA_BENCH_RELEASE: 1.34, 1.35, 1.36 or none")),
        Err(_) => Some(Release::V1_36),
    }
}

async fn call(app: &axum::Router, verb: &str, body: &[u8]) -> usize {
    let request = Request::post(format!("/{verb}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_vec()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .len()
}

fn percentiles(
    runtime: &tokio::runtime::Runtime,
    app: &axum::Router,
    verb: &str,
    body: &[u8],
    mode: &str,
) {
    let mut took: Vec<Duration> = (0..SAMPLES)
        .map(|_| {
            let started = Instant::now();
            runtime.block_on(call(app, verb, body));
            started.elapsed()
        })
        .collect();
    took.sort_unstable();
    let at = |q: f64| took[((took.len() as f64 * q) as usize).min(took.len() - 1)];
    println!(
        "{verb} ({mode}) latency over {SAMPLES} requests of {NAMES} names: p50 {:.1?}, p99 {:.1?}, max {:.1?}",
        at(0.50),
        at(0.99),
        took[took.len() - 1]
    );
}

/// The benchmark cluster with a learner that has read it once, and the model it learned.
struct Learning {
    snapshot: Snapshot,
    learner: TypicalLearner,
    model: TypicalModel,
}

fn learn(snapshot: &Snapshot) -> Learning {
    let mut learner = TypicalLearner::new(
        &default_typical_pods().unwrap(),
        OnlineWindow::default(),
        Weights::default().fragmentation,
        DeviceClasses::new("gpu.tessera.dev"),
        DEFAULT_MAX_SEEN_PODS,
    )
    .unwrap();
    let started = Instant::now();
    let report = learner.scan(snapshot);
    let scanned = started.elapsed();
    let started = Instant::now();
    let model = learner.model(snapshot);
    eprintln!(
        "typical pods: first scan of {} pods {scanned:.1?} ({} learned, {} no milli shape), model built in {:.1?}: {} typical shapes of {} tallied, prior share {:.3}",
        snapshot.stats().pods,
        report.observed,
        report.unshaped,
        started.elapsed(),
        model.typical().len(),
        model.stats().shapes,
        model.stats().prior_share,
    );
    // A learner that has seen every pod: what each later scan of an unchanged cache costs.
    Learning {
        snapshot: snapshot.clone(),
        learner,
        model,
    }
}

fn learned_app(learning: &Learning, warm: bool) -> axum::Router {
    let options = RouterOptions {
        memo: warm,
        parallel_from: None,
        predict: predict(),
    };
    let handle = TypicalHandle::new(learning.model.clone());
    snapshot_router_with(learning.snapshot.clone(), options, handle).unwrap()
}

fn main() {
    let snapshot = cluster();
    let body = body(&snapshot);
    let learning = learn(&snapshot);
    let cold = app(snapshot.clone(), false);
    let app = app(snapshot, true);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The answer must be a real one: scored, not the neutral fallback for a missing claim.
    let answer = runtime.block_on(async {
        let request = Request::post("/prioritize")
            .body(Body::from(body.clone()))
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        response.into_body().collect().await.unwrap().to_bytes()
    });
    let scores: Vec<serde_json::Value> = serde_json::from_slice(&answer).unwrap();
    let distinct: std::collections::BTreeSet<i64> = scores
        .iter()
        .map(|s| s["Score"].as_i64().unwrap())
        .collect();
    assert!(
        distinct.len() > 2,
        "prioritize gave no ranking: {distinct:?}"
    );

    let mut criterion = Criterion::default()
        .sample_size(50)
        .measurement_time(Duration::from_secs(10))
        .configure_from_args();
    let mut group = criterion.benchmark_group("extender");
    group.throughput(Throughput::Elements(NAMES as u64));
    for verb in ["prioritize", "filter"] {
        group.bench_function(format!("{verb}_500_of_5000_nodes"), |b| {
            b.iter(|| runtime.block_on(call(&app, verb, &body)));
        });
    }
    group.bench_function("prioritize_500_of_5000_nodes_unmemoized", |b| {
        b.iter(|| runtime.block_on(call(&cold, "prioritize", &body)));
    });
    // The same request scored against typical pods learned from the cluster's 100,000 pods
    // (the default `--typical online`), and what the learner's scans cost.
    let (learned, learned_cold) = (learned_app(&learning, true), learned_app(&learning, false));
    group.bench_function("prioritize_500_of_5000_nodes_learned", |b| {
        b.iter(|| runtime.block_on(call(&learned, "prioritize", &body)));
    });
    group.bench_function("prioritize_500_of_5000_nodes_learned_unmemoized", |b| {
        b.iter(|| runtime.block_on(call(&learned_cold, "prioritize", &body)));
    });
    let mut rescanner = learning.learner.clone();
    group.bench_function("typical_rescan_100000_pods", |b| {
        b.iter(|| rescanner.scan(&learning.snapshot).observed);
    });
    group.finish();
    criterion.final_summary();

    for verb in ["prioritize", "filter"] {
        percentiles(&runtime, &app, verb, &body, "memoized");
    }
    // A profile of the memoized path alone: TESSERA_BENCH_WARM_ONLY=1.
    if std::env::var_os("TESSERA_BENCH_WARM_ONLY").is_none() {
        percentiles(&runtime, &cold, "prioritize", &body, "unmemoized");
    }
}
