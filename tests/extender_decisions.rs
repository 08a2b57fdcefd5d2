//! The extender's decisions on fixture clusters, through HTTP as kube-scheduler asks: the
//! cheaper node wins for the same partition, a MIG slice beats a whole GPU of the same price
//! class, spot wins for tolerant pods and is filtered for intolerant ones, noticed nodes are
//! filtered, and fragmentation breaks ties exactly as the simulator's scoring predicts.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod extender_fixture;

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use extender_fixture::{Fixture, FixtureNode, H100, H100_MIB};
use tessera::market::CapacityType;
use tessera::model::partition::{GpuPartitioning, PartitionGpu};
use tessera::model::{Demand, ModelSet};
use tessera::scoring::{NodeInputs, PodInputs, Policy, Scorer, Tolerance, Weights, score_node};

async fn send(app: &axum::Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

async fn post(app: &axum::Router, verb: &str, body: &Value) -> Value {
    let request = Request::post(format!("/{verb}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let (status, answer) = send(app, request).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

/// Scores by node from a `prioritize` answer.
async fn scores(app: &axum::Router, pod: &Value, nodes: &[&str]) -> BTreeMap<String, i64> {
    let answer = post(app, "prioritize", &json!({"Pod": pod, "NodeNames": nodes})).await;
    answer
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["Host"].as_str().unwrap().to_owned(),
                e["Score"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// Names that pass `filter`.
async fn passing(app: &axum::Router, pod: &Value, nodes: &[&str]) -> Vec<String> {
    let answer = post(app, "filter", &json!({"Pod": pod, "NodeNames": nodes})).await;
    serde_json::from_value(answer["NodeNames"].clone()).unwrap()
}

async fn explain(app: &axum::Router, pod: &str) -> Value {
    let request = Request::get(format!("/explain?pod={pod}"))
        .body(Body::empty())
        .unwrap();
    let (status, answer) = send(app, request).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

/// A pod using the claim `ml/<claim>`, asking 4 CPUs and 16 GiB.
fn pod(name: &str, claim: &str, annotations: Value) -> Value {
    json!({"metadata": {"name": name, "namespace": "ml", "annotations": annotations},
           "spec": {"containers": [{"name": "main", "resources": {"requests": {"cpu": "4", "memory": "16Gi"}}}],
                    "resourceClaims": [{"name": "gpu", "resourceClaimName": claim}]},
           "status": {}})
}

fn claim(name: &str, request: Value) -> Value {
    json!({"metadata": {"name": name, "namespace": "ml"},
           "spec": {"devices": {"requests": [request]}}})
}

fn whole_gpu() -> Value {
    json!({"name": "gpu", "exactly": {"deviceClassName": "gpu.tessera.dev"}})
}

/// Smallest adequate first: a 1g.10gb slice, else a whole GPU.
fn slice_or_whole() -> Value {
    json!({"name": "gpu", "firstAvailable": [
        {"name": "slice", "deviceClassName": "mig.gpu.tessera.dev",
         "selectors": [{"cel": {"expression": "device.attributes[\"gpu.tessera.dev\"].profile == \"1g.10gb\""}}]},
        {"name": "whole", "deviceClassName": "gpu.tessera.dev"}
    ]})
}

fn share(memory: &str, compute: &str) -> Value {
    json!({"name": "gpu", "exactly": {"deviceClassName": "shared.gpu.tessera.dev",
           "capacity": {"requests": {"memory": memory, "compute": compute}}}})
}

#[tokio::test(flavor = "current_thread")]
async fn the_cheaper_node_wins_for_the_same_partition() {
    let app = Fixture::new()
        .node("dear", FixtureNode::priced(CapacityType::OnDemand, 24.0, 8))
        .node(
            "cheap",
            FixtureNode::priced(CapacityType::OnDemand, 16.0, 8),
        )
        .claim(claim("train", whole_gpu()))
        .pod(serde_json::from_value(pod("trainer", "train", json!({}))).unwrap())
        .router("/");
    let p = pod("trainer", "train", json!({}));
    let got = scores(&app, &p, &["dear", "cheap"]).await;
    assert_eq!(got["cheap"], 10);
    assert_eq!(got["dear"], 0);

    let why = explain(&app, "ml/trainer").await;
    let best = &why["nodes"][0];
    assert_eq!(best["node"], "cheap");
    assert_eq!(best["evaluation"]["partitions"][0]["partition"], "gpu-0");
    assert_eq!(best["evaluation"]["hourlyCostUsd"], 2.0);
    assert_eq!(why["nodes"][1]["evaluation"]["hourlyCostUsd"], 3.0);
}

#[tokio::test(flavor = "current_thread")]
async fn a_mig_slice_beats_a_whole_gpu_of_the_same_price_class() {
    let app = Fixture::new()
        .node(
            "whole-h100",
            FixtureNode::priced(CapacityType::OnDemand, 16.0, 8),
        )
        .node(
            "mig-h100",
            FixtureNode::mig(CapacityType::OnDemand, 16.0, 8),
        )
        .claim(claim("infer", slice_or_whole()))
        .pod(serde_json::from_value(pod("server", "infer", json!({}))).unwrap())
        .router("/");
    let got = scores(
        &app,
        &pod("server", "infer", json!({})),
        &["whole-h100", "mig-h100"],
    )
    .await;
    assert!(got["mig-h100"] > got["whole-h100"], "{got:?}");

    let why = explain(&app, "ml/server").await;
    let best = &why["nodes"][0];
    assert_eq!(best["node"], "mig-h100");
    let partition = &best["evaluation"]["partitions"][0];
    assert_eq!(partition["kind"], "mig");
    assert_eq!(partition["alternative"], "slice");
    assert!(
        partition["partition"]
            .as_str()
            .unwrap()
            .contains("-mig-1g10gb-")
    );
    let other = &why["nodes"][1]["evaluation"]["partitions"][0];
    assert_eq!(
        other["alternative"], "whole",
        "the plain node can only give a whole GPU"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn spot_wins_for_tolerant_pods_and_is_filtered_for_intolerant_ones() {
    let app = Fixture::new()
        .node(
            "on-demand",
            FixtureNode::priced(CapacityType::OnDemand, 16.0, 8),
        )
        .node("spot", FixtureNode::priced(CapacityType::Spot, 6.0, 8))
        .claim(claim("job", whole_gpu()))
        .router("/");
    let names = ["on-demand", "spot"];

    for tolerance in ["tolerant", "checkpointed"] {
        let p = pod(
            "batch",
            "job",
            json!({"tessera.dev/interruption": tolerance}),
        );
        assert_eq!(passing(&app, &p, &names).await, names);
        let got = scores(&app, &p, &names).await;
        assert_eq!((got["spot"], got["on-demand"]), (10, 0), "{tolerance}");
    }

    let p = pod(
        "db",
        "job",
        json!({"tessera.dev/interruption": "intolerant"}),
    );
    assert_eq!(passing(&app, &p, &names).await, ["on-demand"]);
    let got = scores(&app, &p, &names).await;
    assert_eq!(
        got["spot"], 0,
        "a prioritize-only setup still ranks spot last"
    );
    assert_eq!(got["on-demand"], 10);
}

#[tokio::test(flavor = "current_thread")]
async fn an_interruption_noticed_node_is_filtered_and_ranked_last() {
    let app = Fixture::new()
        .node("calm", FixtureNode::priced(CapacityType::Spot, 8.0, 8))
        .node(
            "noticed",
            FixtureNode::priced(CapacityType::Spot, 4.0, 8)
                .with_notice("AWS spot interruption notice"),
        )
        .claim(claim("job", whole_gpu()))
        .router("/");
    let p = pod(
        "batch",
        "job",
        json!({"tessera.dev/interruption": "tolerant"}),
    );
    assert_eq!(passing(&app, &p, &["calm", "noticed"]).await, ["calm"]);
    let got = scores(&app, &p, &["calm", "noticed"]).await;
    assert_eq!(
        (got["calm"], got["noticed"]),
        (10, 0),
        "cheaper, but going away"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_cost_ceiling_filters_nodes_where_the_partition_costs_more() {
    let app = Fixture::new()
        .node("dear", FixtureNode::priced(CapacityType::OnDemand, 40.0, 8))
        .node(
            "cheap",
            FixtureNode::priced(CapacityType::OnDemand, 16.0, 8),
        )
        .claim(claim("job", whole_gpu()))
        .router("/");
    let p = pod("capped", "job", json!({"tessera.dev/max-hourly-cost": "3"}));
    let answer = post(
        &app,
        "filter",
        &json!({"Pod": p, "NodeNames": ["dear", "cheap"]}),
    )
    .await;
    assert_eq!(answer["NodeNames"], json!(["cheap"]));
    let reason = answer["FailedNodes"]["dear"].as_str().unwrap();
    assert!(
        reason.contains("5.0000 $/h") && reason.contains("3.0000 $/h"),
        "{reason}"
    );
}

/// Two shared-GPU nodes at the same price; on `packed` one GPU is half taken.
fn shared_nodes() -> (FixtureNode, FixtureNode) {
    let mut gpus = vec![PartitionGpu::shared(H100, H100_MIB); 8];
    gpus[0].state = GpuPartitioning::Shared {
        used_memory_mib: 40_000,
        used_compute_pct: 50,
    };
    let packed = FixtureNode::with_gpus(CapacityType::OnDemand, 16.0, gpus).cpu_free(80_000);
    let fresh = FixtureNode::with_gpus(
        CapacityType::OnDemand,
        16.0,
        vec![PartitionGpu::shared(H100, H100_MIB); 8],
    )
    .cpu_free(80_000);
    (packed, fresh)
}

#[tokio::test(flavor = "current_thread")]
async fn fragmentation_breaks_ties_as_the_simulator_predicts() {
    let (packed, fresh) = shared_nodes();
    let fixture = Fixture::new();
    let typical = fixture.typical().clone();

    // The simulator's view of the same pod and nodes: a 500-milli share, 4 CPUs, 16 GiB,
    // scored by the tessera policy's fragmentation and the cost blend.
    let shape = Demand {
        cpu_milli: 4000,
        memory_mib: 16_384,
        gpus: 1,
        gpu_milli: 500,
        models: ModelSet::ANY,
    };
    let weights = Weights::default();
    let frag_policy = Scorer::new(Policy::Tessera, typical, weights.fragmentation);
    let simulated = |node: &FixtureNode| {
        let frag = frag_policy.score(&node.milli, &shape).unwrap();
        score_node(
            &NodeInputs {
                price_per_gpu_hour: 2.0,
                node_hourly_price: 16.0,
                in_use: true,
                capacity: CapacityType::OnDemand,
                hourly_interruption_probability: 0.0,
                interruption_notice: false,
            },
            &PodInputs {
                tolerance: Tolerance::Checkpointed,
                partition_gpus: 0.5,
                frag_gpus: -frag.score / 1000.0,
            },
            &weights,
        )
    };
    let (sim_packed, sim_fresh) = (simulated(&packed), simulated(&fresh));
    assert_eq!(
        sim_packed.hourly_cost, sim_fresh.hourly_cost,
        "a tie on cost"
    );
    assert_ne!(
        sim_packed.frag_term, sim_fresh.frag_term,
        "broken by fragmentation"
    );
    let predicted = if sim_packed.score > sim_fresh.score {
        "packed"
    } else {
        "fresh"
    };

    let app = fixture
        .node("packed", packed)
        .node("fresh", fresh)
        .claim(claim("half", share("20Gi", "50")))
        .pod(serde_json::from_value(pod("worker", "half", json!({}))).unwrap())
        .router("/");
    let got = scores(
        &app,
        &pod("worker", "half", json!({})),
        &["fresh", "packed"],
    )
    .await;
    let chosen = if got["packed"] > got["fresh"] {
        "packed"
    } else {
        "fresh"
    };
    assert_eq!(chosen, predicted, "{got:?}");
    assert_eq!(
        predicted, "packed",
        "filling the half-used GPU fragments less"
    );

    let why = explain(&app, "ml/worker").await;
    for row in why["nodes"].as_array().unwrap() {
        let evaluation = &row["evaluation"];
        assert_eq!(evaluation["hourlyCostUsd"], 1.0, "{row}");
        let sim = if row["node"] == "packed" {
            &sim_packed
        } else {
            &sim_fresh
        };
        assert_eq!(
            evaluation["fragmentation"].as_f64().unwrap(),
            sim.frag_term,
            "{row}"
        );
        assert_eq!(evaluation["rawScore"].as_f64().unwrap(), sim.score, "{row}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_claim_not_yet_cached_scores_neutral_instead_of_failing() {
    let app = Fixture::new()
        .node("a", FixtureNode::priced(CapacityType::OnDemand, 16.0, 8))
        .node("b", FixtureNode::priced(CapacityType::OnDemand, 24.0, 8))
        .router("/");
    let got = scores(
        &app,
        &pod("early", "not-cached-yet", json!({})),
        &["a", "b", "gone"],
    )
    .await;
    assert_eq!(got.values().copied().collect::<Vec<_>>(), [5, 5, 5]);
}
