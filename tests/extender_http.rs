//! The extender's HTTP surface as kube-scheduler sees it: upstream's JSON shapes in both
//! `nodeCacheCapable` modes, exact response keys, filter verdicts, bad bodies, bounds.
//!
//! The cluster is a fixture view (what the watch cache would hold after the API server sent
//! these objects); the router runs in process.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod extender_fixture;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use extender_fixture::{Fixture, FixtureNode};
use tessera::market::CapacityType;

const FILTER_KEYS: [&str; 5] = [
    "Nodes",
    "NodeNames",
    "FailedNodes",
    "FailedAndUnresolvableNodes",
    "Error",
];

async fn call(app: &axum::Router, method: &str, uri: &str, body: Vec<u8>) -> (StatusCode, Vec<u8>) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, bytes.to_vec())
}

async fn post(app: &axum::Router, uri: &str, body: &Value) -> (StatusCode, Value) {
    let (status, bytes) = call(app, "POST", uri, body.to_string().into_bytes()).await;
    let value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "{uri}: answer is not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, value)
}

/// The keys of a JSON object, in the order they were written.
fn keys_in_order(raw: &[u8]) -> Vec<String> {
    struct Keys;
    impl<'de> serde::de::Visitor<'de> for Keys {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<M: serde::de::MapAccess<'de>>(
            self,
            mut map: M,
        ) -> Result<Vec<String>, M::Error> {
            let mut keys = Vec::new();
            while let Some((key, _)) = map.next_entry::<String, serde::de::IgnoredAny>()? {
                keys.push(key);
            }
            Ok(keys)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(raw);
    serde::Deserializer::deserialize_map(&mut de, Keys).unwrap()
}

fn pod(annotations: Value) -> Value {
    json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u1", "annotations": annotations},
           "spec": {"containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]},
           "status": {}})
}

fn node_object(name: &str, labels: Value, taints: Value) -> Value {
    json!({"metadata": {"name": name, "labels": labels, "creationTimestamp": null},
           "spec": {"taints": taints},
           "status": {"daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
                      "images": [{"names": ["registry/x:1"], "sizeBytes": 12345}]}})
}

fn cluster() -> Fixture {
    Fixture::new()
        .node("od-a", FixtureNode::priced(CapacityType::OnDemand, 8.0, 8))
        .node("spot-b", FixtureNode::priced(CapacityType::Spot, 3.0, 8))
        .node(
            "noticed-c",
            FixtureNode::priced(CapacityType::Spot, 3.0, 8)
                .with_notice("AWS spot interruption notice"),
        )
        .node(
            "deleting-d",
            FixtureNode::priced(CapacityType::OnDemand, 8.0, 8).deleting(),
        )
}

#[tokio::test(flavor = "current_thread")]
async fn upstream_compatibility_args_get_every_filter_key_in_order() {
    let app = cluster().router("/");
    // TestCompatibility's ExtenderArgs, byte for byte: both Nodes and NodeNames are set, and
    // a nodeCacheCapable scheduler reads NodeNames.
    let body = r#"{"Pod":{"metadata":{"name":"podname","creationTimestamp":null},"spec":{"containers":null},"status":{}},"Nodes":{"metadata":{},"items":[{"metadata":{"name":"nodename","creationTimestamp":null},"spec":{},"status":{"daemonEndpoints":{"kubeletEndpoint":{"Port":0}},"nodeInfo":{"machineID":"","systemUUID":"","bootID":"","kernelVersion":"","osImage":"","containerRuntimeVersion":"","kubeletVersion":"","kubeProxyVersion":"","operatingSystem":"","architecture":""}}}]},"NodeNames":["node1"]}"#;
    for variant in [body.to_owned(), body.to_lowercase()] {
        let (status, raw) = call(&app, "POST", "/filter", variant.into_bytes()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(keys_in_order(&raw), FILTER_KEYS);
        assert_eq!(
            String::from_utf8(raw).unwrap(),
            r#"{"Nodes":null,"NodeNames":["node1"],"FailedNodes":null,"FailedAndUnresolvableNodes":null,"Error":""}"#
        );
        let (status, raw) = call(&app, "POST", "/prioritize", body.as_bytes().to_vec()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            String::from_utf8(raw).unwrap(),
            r#"[{"Host":"node1","Score":5}]"#
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn names_mode_filters_noticed_and_deleting_nodes_with_reasons() {
    let app = cluster().router("/");
    let names = ["od-a", "spot-b", "noticed-c", "deleting-d", "unknown-e"];
    let (status, answer) = post(
        &app,
        "/filter",
        &json!({"Pod": pod(json!({})), "NodeNames": names}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["Nodes"], Value::Null);
    assert_eq!(answer["NodeNames"], json!(["od-a", "spot-b", "unknown-e"]));
    assert_eq!(answer["FailedNodes"], Value::Null);
    let unresolvable = &answer["FailedAndUnresolvableNodes"];
    assert!(
        unresolvable["noticed-c"]
            .as_str()
            .unwrap()
            .contains("AWS spot interruption notice"),
        "{answer}"
    );
    assert!(
        unresolvable["deleting-d"]
            .as_str()
            .unwrap()
            .contains("being deleted")
    );
    assert_eq!(answer["Error"], "");
}

#[tokio::test(flavor = "current_thread")]
async fn intolerant_pods_lose_spot_nodes_tolerant_pods_keep_them() {
    let app = cluster().router("/");
    let names = ["od-a", "spot-b"];
    let intolerant = pod(json!({"tessera.dev/interruption": "intolerant"}));
    let (_, answer) = post(
        &app,
        "/filter",
        &json!({"Pod": intolerant, "NodeNames": names}),
    )
    .await;
    assert_eq!(answer["NodeNames"], json!(["od-a"]));
    assert!(
        answer["FailedAndUnresolvableNodes"]["spot-b"]
            .as_str()
            .unwrap()
            .contains("tessera.dev/interruption=intolerant")
    );
    let tolerant = pod(json!({"tessera.dev/interruption": "tolerant"}));
    let (_, answer) = post(
        &app,
        "/filter",
        &json!({"Pod": tolerant, "NodeNames": names}),
    )
    .await;
    assert_eq!(answer["NodeNames"], json!(["od-a", "spot-b"]));
    assert_eq!(answer["FailedAndUnresolvableNodes"], Value::Null);
}

#[tokio::test(flavor = "current_thread")]
async fn nodes_mode_echoes_passing_node_objects_verbatim() {
    let app = cluster().router("/");
    let a = node_object(
        "obj-a",
        json!({"karpenter.sh/capacity-type": "on-demand"}),
        json!(null),
    );
    let b = node_object(
        "obj-b",
        json!({"karpenter.sh/capacity-type": "spot"}),
        json!(null),
    );
    let c = node_object(
        "obj-c",
        json!({}),
        json!([{"key": "karpenter.sh/disrupted", "effect": "NoSchedule"}]),
    );
    let body = json!({
        "Pod": pod(json!({"tessera.dev/interruption": "intolerant"})),
        "Nodes": {"metadata": {}, "items": [a, b, c]},
        "NodeNames": null
    });
    let (status, raw) = call(&app, "POST", "/filter", body.to_string().into_bytes()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(keys_in_order(&raw), FILTER_KEYS);
    let answer: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(answer["NodeNames"], Value::Null);
    assert_eq!(answer["Nodes"]["metadata"], json!({}));
    assert_eq!(
        answer["Nodes"]["items"],
        json!([a]),
        "the Node object comes back unchanged"
    );
    let failed = &answer["FailedAndUnresolvableNodes"];
    assert!(failed["obj-b"].as_str().unwrap().contains("spot node"));
    assert!(
        failed["obj-c"]
            .as_str()
            .unwrap()
            .contains("Karpenter is disrupting the node")
    );

    let (status, answer) = post(&app, "/prioritize", &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        answer,
        json!([{"Host": "obj-a", "Score": 5}, {"Host": "obj-b", "Score": 5}, {"Host": "obj-c", "Score": 5}])
    );
}

#[tokio::test(flavor = "current_thread")]
async fn an_empty_names_answer_still_carries_node_names() {
    let app = cluster().router("/");
    let body = json!({"Pod": pod(json!({})), "NodeNames": ["noticed-c"]});
    let (_, answer) = post(&app, "/filter", &body).await;
    assert_eq!(answer["NodeNames"], json!([]));
}

#[tokio::test(flavor = "current_thread")]
async fn cost_ceilings_that_do_not_parse_refuse_every_node_and_say_why() {
    let app = cluster().router("/");
    let body =
        json!({"Pod": pod(json!({"tessera.dev/max-hourly-cost": "cheap"})), "NodeNames": ["od-a"]});
    let (_, answer) = post(&app, "/filter", &body).await;
    assert_eq!(answer["NodeNames"], json!([]));
    assert!(
        answer["FailedAndUnresolvableNodes"]["od-a"]
            .as_str()
            .unwrap()
            .contains("tessera.dev/max-hourly-cost=\"cheap\"")
    );
}

#[tokio::test(flavor = "current_thread")]
async fn bad_bodies_get_400_with_the_reason_and_never_a_panic() {
    let app = cluster().router("/");
    let good = json!({"Pod": pod(json!({})), "NodeNames": ["od-a"]}).to_string();
    let truncated = good[..good.len() / 2].to_owned();
    for body in [
        truncated.as_str(),
        "",
        "null",
        "[]",
        "{\"Pod\":1}",
        "{\"NodeNames\":[\"a\"]}",
    ] {
        let (status, raw) = call(&app, "POST", "/filter", body.as_bytes().to_vec()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(keys_in_order(&raw), FILTER_KEYS, "{body}");
        let answer: Value = serde_json::from_slice(&raw).unwrap();
        assert!(!answer["Error"].as_str().unwrap().is_empty(), "{body}");
        assert_eq!(answer["NodeNames"], Value::Null);

        let (status, raw) = call(&app, "POST", "/prioritize", body.as_bytes().to_vec()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let answer: Value = serde_json::from_slice(&raw).unwrap();
        assert!(
            answer["Error"].as_str().unwrap().contains("ExtenderArgs"),
            "{answer}"
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn bodies_over_the_limit_get_413_in_the_same_shape() {
    let app = cluster().router_with_limit("/", 1024);
    let names: Vec<String> = (0..200).map(|i| format!("node-{i}")).collect();
    let body = json!({"Pod": pod(json!({})), "NodeNames": names});
    let (status, raw) = call(&app, "POST", "/filter", body.to_string().into_bytes()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(keys_in_order(&raw), FILTER_KEYS);
    let (status, _) = call(&app, "POST", "/prioritize", body.to_string().into_bytes()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test(flavor = "current_thread")]
async fn pods_without_gpu_demand_or_with_uncached_claims_score_neutral_everywhere() {
    let app = cluster().router("/");
    let cpu_only = json!({"metadata": {"name": "web", "namespace": "ns"},
                          "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}});
    let uncached = json!({"metadata": {"name": "train", "namespace": "ml"},
                          "spec": {"resourceClaims": [{"name": "gpu", "resourceClaimName": "not-yet"}]}});
    for pod in [cpu_only, uncached] {
        let body = json!({"Pod": pod, "NodeNames": ["od-a", "spot-b", "nowhere"]});
        let (status, answer) = post(&app, "/prioritize", &body).await;
        assert_eq!(status, StatusCode::OK);
        let scores: Vec<i64> = answer
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["Score"].as_i64().unwrap())
            .collect();
        assert_eq!(scores, [5, 5, 5], "{body}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn routes_live_under_the_configured_prefix() {
    let app = cluster().router("/scheduler/");
    let body = json!({"Pod": pod(json!({})), "NodeNames": ["od-a"]});
    let (status, _) = post(&app, "/scheduler/filter", &body).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(&app, "POST", "/filter", body.to_string().into_bytes()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "current_thread")]
async fn explain_needs_a_cached_pod_named_namespace_slash_name() {
    let app = cluster()
        .pod(
            serde_json::from_value(pod(json!({"tessera.dev/interruption": "intolerant"}))).unwrap(),
        )
        .router("/");
    for (uri, want) in [
        ("/explain", StatusCode::BAD_REQUEST),
        ("/explain?pod=nonamespace", StatusCode::BAD_REQUEST),
        ("/explain?pod=ns/p/extra", StatusCode::BAD_REQUEST),
        ("/explain?pod=ns/p&limit=x", StatusCode::BAD_REQUEST),
        ("/explain?pod=ns/absent", StatusCode::NOT_FOUND),
    ] {
        let (status, raw) = call(&app, "GET", uri, Vec::new()).await;
        assert_eq!(status, want, "{uri}");
        let answer: Value = serde_json::from_slice(&raw).unwrap();
        assert!(answer["Error"].is_string(), "{uri}: {answer}");
    }
    let (status, raw) = call(&app, "GET", "/explain?pod=ns/p&limit=10", Vec::new()).await;
    assert_eq!(status, StatusCode::OK);
    let answer: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(answer["pod"], "ns/p");
    assert_eq!(answer["totalNodes"], 4);
    let nodes = answer["nodes"].as_array().unwrap();
    // Passing nodes first, then the refused ones with their reasons.
    assert_eq!(nodes[0]["node"], "od-a");
    assert_eq!(nodes[0]["filtered"], Value::Null);
    let refused: Vec<&str> = nodes[1..]
        .iter()
        .map(|n| n["node"].as_str().unwrap())
        .collect();
    assert_eq!(refused, ["deleting-d", "noticed-c", "spot-b"]);
    assert!(
        nodes[3]["filtered"]
            .as_str()
            .unwrap()
            .contains("intolerant")
    );
}

#[tokio::test(flavor = "current_thread")]
async fn requests_and_decisions_are_counted() {
    let mut fixture = cluster();
    let app = fixture.router("/");
    let body = json!({"Pod": pod(json!({})), "NodeNames": ["od-a", "noticed-c"]});
    post(&app, "/filter", &body).await;
    call(&app, "POST", "/prioritize", b"{".to_vec()).await;
    let text = fixture.metrics_text();
    for line in [
        "tessera_extender_requests_total{verb=\"filter\",code=\"200\"} 1",
        "tessera_extender_requests_total{verb=\"prioritize\",code=\"400\"} 1",
        "tessera_extender_decisions_total{verb=\"filter\",reason=\"passed\"} 1",
        "tessera_extender_decisions_total{verb=\"filter\",reason=\"interruption_notice\"} 1",
        "tessera_extender_request_duration_seconds_count{verb=\"filter\"} 1",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
}
