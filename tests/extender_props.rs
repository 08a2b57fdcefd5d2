//! Property tests of the extender's request handling: whatever bytes arrive — random, or a
//! valid request with bytes flipped, cut or spliced — the answer is HTTP 200 with a valid
//! upstream shape or HTTP 400 with the reason, never a panic or a 5xx.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod extender_fixture;

use std::sync::LazyLock;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use proptest::prelude::*;
use serde_json::{Value, json};
use tower::ServiceExt;

use extender_fixture::{Fixture, FixtureNode};
use tessera::extender::ExtenderArgs;
use tessera::market::CapacityType;

/// Built once: loading the bundled price tables and trace per case would dominate the run.
static APP: LazyLock<axum::Router> = LazyLock::new(|| {
    Fixture::new()
        .node("a", FixtureNode::priced(CapacityType::OnDemand, 8.0, 8))
        .node(
            "b",
            FixtureNode::priced(CapacityType::Spot, 2.0, 4)
                .with_notice("AWS spot interruption notice"),
        )
        .router("/")
});

fn app() -> axum::Router {
    APP.clone()
}

/// A valid request of either mode, with the pod annotations that drive the filter.
fn valid_body(names_mode: bool) -> Vec<u8> {
    let pod = json!({"metadata": {"name": "p", "namespace": "ns",
                                  "annotations": {"tessera.dev/interruption": "intolerant",
                                                  "tessera.dev/max-hourly-cost": "3.5"}},
                     "spec": {"containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": "1"}}}],
                              "resourceClaims": [{"name": "g", "resourceClaimTemplateName": "t"}]},
                     "status": {"resourceClaimStatuses": [{"name": "g", "resourceClaimName": "p-g-1"}]}});
    let body = if names_mode {
        json!({"Pod": pod, "Nodes": null, "NodeNames": ["a", "b", "c"]})
    } else {
        json!({"Pod": pod, "Nodes": {"metadata": {}, "items": [
            {"metadata": {"name": "a", "labels": {"karpenter.sh/capacity-type": "spot"}}, "spec": {}, "status": {}},
            {"metadata": {"name": "b"}, "spec": {"taints": [{"key": "karpenter.sh/disrupted", "effect": "NoSchedule"}]}}
        ]}, "NodeNames": null})
    };
    body.to_string().into_bytes()
}

/// Posts `body` to `verb` and checks the answer is a 200 in the upstream shape or a 400.
fn check(app: &axum::Router, verb: &str, body: Vec<u8>) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (status, bytes) = runtime.block_on(async {
        let request = Request::post(format!("/{verb}"))
            .body(Body::from(body.clone()))
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        (
            status,
            response.into_body().collect().await.unwrap().to_bytes(),
        )
    });
    let answer: Value = serde_json::from_slice(&bytes)
        .map_err(|e| TestCaseError::fail(format!("answer is not JSON: {e}")))?;
    let parsed = ExtenderArgs::parse(&body);
    match status {
        StatusCode::OK => {
            prop_assert!(parsed.is_ok(), "200 for a body the parser refuses");
            if verb == "filter" {
                prop_assert_eq!(&answer["Error"], "");
                prop_assert!(answer["NodeNames"].is_array() || answer["Nodes"]["items"].is_array());
            } else {
                for entry in answer.as_array().unwrap() {
                    prop_assert!(entry["Host"].is_string());
                    let score = entry["Score"].as_i64().unwrap();
                    prop_assert!((0..=10).contains(&score));
                }
            }
        }
        StatusCode::BAD_REQUEST => {
            prop_assert!(parsed.is_err(), "400 for a body the parser accepts");
            prop_assert!(!answer["Error"].as_str().unwrap_or_default().is_empty());
        }
        other => prop_assert!(false, "unexpected status {other}"),
    }
    Ok(())
}

/// A valid body changed by one of: flipping bytes, cutting it short, splicing in junk.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<bool>(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        any::<prop::sample::Index>(),
        prop::option::of((
            any::<prop::sample::Index>(),
            prop::collection::vec(any::<u8>(), 1..12),
        )),
    )
        .prop_map(|(mode, flips, cut, splice)| {
            let mut body = valid_body(mode);
            for (at, byte) in flips {
                let i = at.index(body.len());
                body[i] = byte;
            }
            if let Some((at, junk)) = splice {
                let i = at.index(body.len());
                body.splice(i..i, junk);
            }
            let keep = cut.index(body.len() + 1);
            body.truncate(keep.max(body.len() / 2));
            body
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_get_200_or_400(body in prop::collection::vec(any::<u8>(), 0..512), filter in any::<bool>()) {
        check(&app(), if filter { "filter" } else { "prioritize" }, body)?;
    }

    #[test]
    fn mutated_requests_get_200_or_400(body in mutated(), filter in any::<bool>()) {
        check(&app(), if filter { "filter" } else { "prioritize" }, body)?;
    }

    #[test]
    fn arbitrary_json_values_get_200_or_400(value in json_value(), filter in any::<bool>()) {
        let body = json!({"Pod": value.clone(), "NodeNames": value}).to_string().into_bytes();
        check(&app(), if filter { "filter" } else { "prioritize" }, body)?;
    }
}

/// Small arbitrary JSON values, to reach the decoders of nested fields.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "[a-z/.]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("metadata".to_owned()),
                    Just("spec".to_owned()),
                    Just("name".to_owned()),
                    Just("annotations".to_owned()),
                    Just("resourceClaims".to_owned()),
                    Just("containers".to_owned()),
                    "[a-z]{1,8}",
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn the_unmutated_bodies_pass() {
    for mode in [true, false] {
        for verb in ["filter", "prioritize"] {
            check(&app(), verb, valid_body(mode)).unwrap();
        }
    }
}
