//! The extender against a real API server: four fake GPU nodes (Node objects with no kubelet
//! behind them, each with the plugin's ResourceSlices for eight fake H100s) at different
//! prices and capacity types, one interruption-noticed; a pending pod with a ResourceClaim.
//! The extender runs in process on the cluster's watch cache, and `/explain`, `/prioritize`
//! and `/filter` must rank the cheapest adequate node first and refuse the noticed one.
//!
//! Everything is created under `tessera-e2e-ext-` names with its own driver name and removed
//! afterwards; the pod carries a node selector no node has, so kube-scheduler leaves it
//! pending and nothing ever runs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::api::resource::v1::{ResourceClaim, ResourceSlice};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use tessera::admin::Readiness;
use tessera::cluster::{Cache, CacheConfig, READINESS_CONDITIONS};
use tessera::discovery::FakeProfile;
use tessera::extender::cluster_view::{CacheSource, MemoScoring};
use tessera::extender::demand::DeviceClasses;
use tessera::extender::evaluate::{Scoring, default_typical_pods};
use tessera::extender::{Decider, ExtenderMetrics, router};
use tessera::publish::{FeatureLevel, SliceOptions, render};
use tessera::scoring::Weights;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::support::{FakeNode, cluster_client};

const DRIVER: &str = "e2e-ext.gpu.tessera.dev";
const NAMESPACE: &str = "tessera-e2e-extender";
const PREFIX: &str = "tessera-e2e-ext-";
/// (name suffix, capacity type, whole-node price $/h, interruption taint)
const NODES: [(&str, &str, &str, bool); 4] = [
    ("dear", "on-demand", "24", false),
    ("cheap", "on-demand", "16", false),
    ("spot", "spot", "6", false),
    ("noticed", "spot", "4", true),
];
/// How long the watch cache may take to see everything.
const SEE_WITHIN: Duration = Duration::from_secs(60);

fn node_name(suffix: &str) -> String {
    format!("{PREFIX}{suffix}")
}

async fn cleanup(client: &kube::Client) {
    let slices: Api<ResourceSlice> = Api::all(client.clone());
    let ours = slices
        .list(&ListParams::default().fields(&format!("spec.driver={DRIVER}")))
        .await
        .expect("list slices");
    for s in ours.items {
        let name = s.metadata.name.unwrap_or_default();
        let _ = slices.delete(&name, &DeleteParams::default()).await;
    }
    let nodes: Api<Node> = Api::all(client.clone());
    for (suffix, ..) in NODES {
        let _ = nodes
            .delete(&node_name(suffix), &DeleteParams::default())
            .await;
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let _ = namespaces.delete(NAMESPACE, &DeleteParams::default()).await;
    // A namespace takes a while to go; a new one of the same name must wait for it.
    let started = Instant::now();
    while namespaces.get_opt(NAMESPACE).await.ok().flatten().is_some() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "namespace stuck terminating"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn create_cluster(client: &kube::Client) {
    let slices: Api<ResourceSlice> = Api::all(client.clone());
    for (suffix, capacity_type, hourly_price, noticed) in NODES {
        let name = node_name(suffix);
        let node = FakeNode {
            name: name.clone(),
            capacity_type,
            hourly_price,
            noticed,
        };
        node.create(client, &[("tessera.dev/e2e", "extender")])
            .await;
        let options = SliceOptions {
            driver_name: DRIVER.to_owned(),
            ..SliceOptions::new(name.clone(), FeatureLevel::Ga)
        };
        for slice in render(&FakeProfile::H100x8.inventory(&name), &options).expect("render") {
            slices
                .create(&PostParams::default(), &slice)
                .await
                .expect("create slice");
        }
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace: Namespace =
        serde_json::from_value(json!({"metadata": {"name": NAMESPACE}})).unwrap();
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .expect("namespace");
    let claims: Api<ResourceClaim> = Api::namespaced(client.clone(), NAMESPACE);
    let claim: ResourceClaim = serde_json::from_value(json!({
        "metadata": {"name": "train"},
        "spec": {"devices": {"requests": [{"name": "gpu", "exactly": {"deviceClassName": DRIVER}}]}}
    }))
    .unwrap();
    claims
        .create(&PostParams::default(), &claim)
        .await
        .expect("claim");
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "trainer", "annotations": {"tessera.dev/interruption": "tolerant"}},
        "spec": {
            "nodeSelector": {"tessera.dev/e2e-never": "true"},
            "containers": [{"name": "main", "image": "registry.k8s.io/pause:3.10",
                            "resources": {"claims": [{"name": "gpu"}]}}],
            "resourceClaims": [{"name": "gpu", "resourceClaimName": "train"}]
        }
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("pod");
}

async fn call(app: &axum::Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn names() -> Vec<String> {
    NODES.iter().map(|(s, ..)| node_name(s)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: TESSERA_E2E_KUBECONFIG=<file> cargo test --test e2e -- --ignored"]
async fn explain_and_prioritize_rank_the_cheapest_adequate_node_first() {
    let test = "explain_and_prioritize_rank_the_cheapest_adequate_node_first";
    let client = cluster_client(test).await;
    cleanup(&client).await;
    create_cluster(&client).await;

    let shutdown = CancellationToken::new();
    let readiness = Readiness::new(&READINESS_CONDITIONS);
    let config = CacheConfig::builtin(DRIVER).unwrap();
    let cache = Cache::start(
        client.clone(),
        config.clone(),
        readiness.clone(),
        shutdown.clone(),
    );
    assert!(
        tokio::time::timeout(SEE_WITHIN, cache.synced())
            .await
            .unwrap_or(false),
        "cache did not sync: {}",
        readiness.report()
    );
    let classes = DeviceClasses::new(DRIVER);
    let decider = Decider::new(
        CacheSource::new(cache.clone(), classes.clone()),
        MemoScoring::new(Scoring::new(
            Weights::default(),
            default_typical_pods().unwrap(),
        )),
        classes,
        config.catalog,
        config.advisor,
    );
    let metrics = ExtenderMetrics::register(&mut Registry::default());
    let app = router("/", Arc::new(decider), metrics, 64 * 1024 * 1024);

    // Wait until the cache has the nodes with their GPUs, the claim and the pod.
    let started = Instant::now();
    let explanation = loop {
        let request = Request::get(format!("/explain?pod={NAMESPACE}/trainer&limit=10"))
            .body(Body::empty())
            .unwrap();
        let (status, body) = call(&app, request).await;
        let evaluated = body["nodes"].as_array().map_or(0, |n| {
            n.iter().filter(|n| !n["evaluation"].is_null()).count()
        });
        if status == StatusCode::OK && body["outcome"] == "scored" && evaluated == NODES.len() {
            break body;
        }
        assert!(
            started.elapsed() < SEE_WITHIN,
            "cache never showed the test objects: {body}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    println!(
        "{test}: {}",
        serde_json::to_string_pretty(&explanation).unwrap()
    );

    let order: Vec<&str> = explanation["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["node"].as_str().unwrap())
        .collect();
    assert_eq!(
        order,
        [
            node_name("spot"),
            node_name("cheap"),
            node_name("dear"),
            node_name("noticed")
        ],
        "cheapest adequate first, the noticed node last (refused)"
    );
    let best = &explanation["nodes"][0]["evaluation"];
    assert_eq!(best["partitions"][0]["kind"], "gpu");
    assert_eq!(best["hourlyCostUsd"], 0.75, "6 $/h over 8 GPUs");
    assert!(
        explanation["nodes"][3]["filtered"]
            .as_str()
            .unwrap()
            .contains("interruption")
    );

    let args = json!({"Pod": {"metadata": {"name": "trainer", "namespace": NAMESPACE,
                                           "annotations": {"tessera.dev/interruption": "tolerant"}},
                              "spec": {"resourceClaims": [{"name": "gpu", "resourceClaimName": "train"}]}},
                      "NodeNames": names()});
    let post = |verb: &str| {
        Request::post(format!("/{verb}"))
            .header("content-type", "application/json")
            .body(Body::from(args.to_string()))
            .unwrap()
    };
    let (status, scores) = call(&app, post("prioritize")).await;
    assert_eq!(status, StatusCode::OK);
    let scores: BTreeMap<String, i64> = scores
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["Host"].as_str().unwrap().to_owned(),
                e["Score"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(scores[&node_name("spot")], 10, "{scores:?}");
    assert!(
        scores[&node_name("cheap")] > scores[&node_name("dear")],
        "{scores:?}"
    );
    assert_eq!(scores[&node_name("noticed")], 0, "{scores:?}");

    let (status, filtered) = call(&app, post("filter")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        filtered["NodeNames"],
        json!([node_name("dear"), node_name("cheap"), node_name("spot")])
    );
    assert!(filtered["FailedAndUnresolvableNodes"][node_name("noticed")].is_string());

    shutdown.cancel();
    cleanup(&client).await;
}
