//! Prioritize spreads large requests over the rayon pool in chunks; the answer must not
//! depend on it. On a synthetic cluster, every pending pod's prioritize answer over all
//! nodes (plus names the cache does not know, scattered through the list) is the same
//! scored sequentially and in parallel, with and without remembered scores.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use tessera::cluster::testing::synthetic_cluster;
use tessera::cluster::{CacheConfig, Snapshot};
use tessera::extender::testing::{DRIVER, RouterOptions, snapshot_router};

/// The router over `snapshot`, going parallel from `parallel_from` nodes.
fn app(snapshot: &Snapshot, parallel_from: usize, memo: bool) -> axum::Router {
    let options = RouterOptions {
        memo,
        parallel_from: Some(parallel_from),
        predict: None,
    };
    snapshot_router(snapshot.clone(), options).unwrap()
}

async fn prioritize(app: &axum::Router, body: &Value) -> Value {
    let request = Request::post("/prioritize")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_prioritize_answers_exactly_as_sequential() {
    let snapshot = synthetic_cluster(600, 8, 3_000, 11)
        .with_pending_pods(8)
        .snapshot(CacheConfig::builtin(DRIVER).unwrap());
    let mut names: Vec<String> = snapshot.nodes().map(|n| n.name.to_string()).collect();
    names.sort_unstable();
    // Unknown names land in several chunks.
    for i in [3, 150, 333, 590] {
        names.insert(i, format!("not-cached-{i}"));
    }
    let mut pending: Vec<_> = snapshot.pods().filter(|p| p.node.is_none()).collect();
    pending.sort_by(|a, b| a.key.as_str().cmp(b.key.as_str()));
    assert_eq!(pending.len(), 8);

    let sequential = app(&snapshot, usize::MAX, false);
    let parallel = app(&snapshot, 1, false);
    let parallel_memo = app(&snapshot, 1, true);
    let mut distinct_scores = 0;
    for pod in pending {
        let claims: Vec<Value> = pod
            .claim_names()
            .enumerate()
            .map(|(i, c)| json!({"name": format!("c{i}"), "resourceClaimName": c}))
            .collect();
        let body = json!({
            "Pod": {
                "metadata": {"name": pod.key.name(), "namespace": pod.key.namespace()},
                "spec": {"containers": [{"name": "main"}], "resourceClaims": claims},
                "status": {}
            },
            "Nodes": null,
            "NodeNames": names,
        });
        let expected = prioritize(&sequential, &body).await;
        let answer = expected.as_array().unwrap();
        assert_eq!(answer.len(), names.len());
        let scores: std::collections::BTreeSet<i64> = answer
            .iter()
            .map(|e| e["Score"].as_i64().unwrap())
            .collect();
        distinct_scores = distinct_scores.max(scores.len());
        assert_eq!(prioritize(&parallel, &body).await, expected, "{}", pod.key);
        // Twice: the second answer comes from remembered scores.
        assert_eq!(prioritize(&parallel_memo, &body).await, expected);
        assert_eq!(prioritize(&parallel_memo, &body).await, expected);
    }
    // The comparison means something only if nodes were told apart.
    assert!(distinct_scores > 2, "every pod scored every node alike");
}
