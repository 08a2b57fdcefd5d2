//! A bounded in-process fuzzer over the extender's real router: random bytes, mutated
//! `ExtenderArgs`, values of the wrong type at random places, bodies past the limit, lying
//! `Content-Length`s and odd `/explain` queries, from a seeded generator (every run is
//! reproducible from its seed). The oracle: no panic, no 5xx, every answer JSON, 400 for every
//! body of the regression corpus `tests/fixtures/fuzz/` (wrong types the issue found, and
//! their neighbours).
//!
//! `cargo test` runs 12,000 executions (a few seconds in a debug build); the long run of `docs/extender.md`:
//! `TESSERA_FUZZ_EXECS=10000000 cargo test --release --test extender_fuzz -- --nocapture`
//! (`TESSERA_FUZZ_SEED` picks another sequence).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod extender_fixture;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use tower::ServiceExt;

use extender_fixture::{Fixture, FixtureNode};
use tessera::extender::api::object::{ObjectMeta, PodObject};
use tessera::extender::{BodyLimits, RouteOptions};
use tessera::market::CapacityType;

/// The fuzzed router's body limit: small, so "past the limit" is cheap to generate.
const LIMIT: usize = 64 * 1024;
const DEFAULT_EXECS: u64 = 12_000;
const DEFAULT_SEED: u64 = 0x7e55_e2a0;

fn router() -> axum::Router {
    let pod = PodObject {
        metadata: ObjectMeta {
            name: "cached".into(),
            namespace: "ns".into(),
            ..ObjectMeta::default()
        },
        ..PodObject::default()
    };
    let options = RouteOptions {
        limits: BodyLimits {
            max_body_bytes: LIMIT,
            decode_budget_bytes: 4 * LIMIT,
            body_read_timeout: Duration::from_secs(5),
            queue_wait: Duration::from_secs(5),
        },
        explain_access: None,
    };
    Fixture::new()
        .node("gpu-a", FixtureNode::priced(CapacityType::OnDemand, 8.0, 8))
        .node(
            "gpu-b",
            FixtureNode::mig(CapacityType::Spot, 3.0, 8).with_notice("notice"),
        )
        .node(
            "gpu-c",
            FixtureNode::priced(CapacityType::OnDemand, 4.0, 2).deleting(),
        )
        .pod(pod)
        .router_with_options("/", options)
}

/// Valid requests the mutations start from.
fn seeds() -> Vec<Value> {
    let pod = json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u1",
                                  "annotations": {"tessera.dev/interruption": "intolerant",
                                                  "tessera.dev/max-hourly-cost": "5"}},
                     "spec": {"containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": "2"},
                                                                         "requests": {"cpu": "4", "memory": "16Gi"}}}],
                              "initContainers": [{"name": "s", "restartPolicy": "Always"}],
                              "resourceClaims": [{"name": "gpu", "resourceClaimTemplateName": "t"}]},
                     "status": {"resourceClaimStatuses": [{"name": "gpu", "resourceClaimName": "p-gpu-x"}]}});
    let node = |name: &str| {
        json!({"metadata": {"name": name, "labels": {"karpenter.sh/capacity-type": "spot",
                                                     "node.kubernetes.io/instance-type": "p5.48xlarge"},
                            "annotations": {"tessera.dev/hourly-price": "12.5"}},
               "spec": {"taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]},
               "status": {"images": [{"names": ["x"], "sizeBytes": 1}]}})
    };
    vec![
        json!({"Pod": pod, "Nodes": null, "NodeNames": ["gpu-a", "gpu-b", "gpu-c", "unknown"]}),
        json!({"Pod": pod, "Nodes": {"metadata": {}, "items": [node("gpu-a"), node("gpu-b")]}, "NodeNames": null}),
        json!({"pod": {"metadata": {"name": "podname"}}, "nodenames": ["gpu-a"]}),
    ]
}

/// Values of every JSON type, to put where another type belongs.
fn odd_value(rng: &mut ChaCha8Rng) -> Value {
    match rng.random_range(0..9) {
        0 => json!([]),
        1 => json!(["p", "ns"]),
        2 => json!({}),
        3 => Value::Null,
        4 => json!(true),
        5 => json!(-1),
        6 => json!(1e300),
        7 => json!("x".repeat(rng.random_range(0..300))),
        _ => json!([[[[{"a": [null]}]]]]),
    }
}

/// Replaces one value somewhere in `value` (depth-first, random path) with an odd one.
fn retype(value: &mut Value, rng: &mut ChaCha8Rng) {
    let children: usize = match value {
        Value::Object(map) => map.len(),
        Value::Array(items) => items.len(),
        _ => 0,
    };
    if children == 0 || rng.random_bool(0.25) {
        *value = odd_value(rng);
        return;
    }
    let pick = rng.random_range(0..children);
    match value {
        Value::Object(map) => {
            if let Some(child) = map.values_mut().nth(pick) {
                retype(child, rng);
            }
        }
        Value::Array(items) => retype(&mut items[pick], rng),
        _ => {}
    }
}

const TOKENS: [&[u8]; 14] = [
    b"[]",
    b"{}",
    b"null",
    b"\"",
    b"\\u0000",
    b"\\ud800",
    b"1e999",
    b"-",
    b",",
    b":",
    b"[[[[[[[[",
    b"\xff\xfe",
    b"\"Pod\":",
    b"\"NodeNames\":[",
];

/// Byte-level damage to `bytes`.
fn mangle(bytes: &mut Vec<u8>, rng: &mut ChaCha8Rng) {
    for _ in 0..rng.random_range(1..6) {
        if bytes.is_empty() {
            bytes.extend_from_slice(TOKENS.choose(rng).unwrap());
            continue;
        }
        let at = rng.random_range(0..bytes.len());
        match rng.random_range(0..4) {
            0 => bytes[at] ^= 1 << rng.random_range(0..8),
            1 => {
                let end = (at + rng.random_range(1..16)).min(bytes.len());
                bytes.drain(at..end);
            }
            2 => {
                let token = TOKENS.choose(rng).unwrap();
                bytes.splice(at..at, token.iter().copied());
            }
            _ => bytes.truncate(at),
        }
    }
}

/// One generated request: method, path and query, body, and the `Content-Length` to claim.
struct Case {
    method: &'static str,
    uri: String,
    body: Vec<u8>,
    length: Option<usize>,
}

/// A names-mode body past [`LIMIT`], built once (building it per execution dominated the run).
fn oversize() -> Vec<u8> {
    let names: Vec<String> = (0..LIMIT / 8).map(|i| format!("node-{i}")).collect();
    serde_json::to_vec(&json!({"Pod": {}, "NodeNames": names})).unwrap()
}

fn generate(rng: &mut ChaCha8Rng, seeds: &[Value], oversize: &[u8]) -> Case {
    let verb = *["/filter", "/prioritize"].choose(rng).unwrap();
    let mut body = match rng.random_range(0..100) {
        0..=14 => (0..rng.random_range(0..512))
            .map(|_| rng.random())
            .collect(),
        15..=49 => {
            let mut bytes = serde_json::to_vec(seeds.choose(rng).unwrap()).unwrap();
            mangle(&mut bytes, rng);
            bytes
        }
        50..=84 => {
            let mut value = seeds.choose(rng).unwrap().clone();
            for _ in 0..rng.random_range(1..3) {
                retype(&mut value, rng);
            }
            serde_json::to_vec(&value).unwrap()
        }
        // Past the limit, announced or not.
        85..=89 => oversize.to_vec(),
        _ => {
            let explain = explain_query(rng);
            return Case {
                method: "GET",
                uri: explain,
                body: Vec::new(),
                length: None,
            };
        }
    };
    if rng.random_bool(0.02) {
        body.extend(std::iter::repeat_n(b' ', rng.random_range(0..LIMIT)));
    }
    let length = match rng.random_range(0..10) {
        0 => None,
        1 => Some(rng.random_range(0..body.len() + 1)),
        2 => Some(usize::MAX / 2),
        _ => Some(body.len()),
    };
    Case {
        method: "POST",
        uri: verb.to_owned(),
        body,
        length,
    }
}

fn explain_query(rng: &mut ChaCha8Rng) -> String {
    const PIECES: [&str; 16] = [
        "pod=",
        "ns/cached",
        "ns/",
        "/",
        "%2F",
        "%",
        "%zz",
        "&",
        "limit=",
        "18446744073709551616",
        "-1",
        "0",
        "limit=3",
        "pod=a/b/c",
        "pod=ns%2Fcached",
        "\u{e9}",
    ];
    let mut query = String::new();
    for _ in 0..rng.random_range(0..6) {
        query.push_str(PIECES.choose(rng).unwrap());
    }
    if rng.random_bool(0.02) {
        query.push_str(&"a".repeat(rng.random_range(0..4096)));
    }
    // Only bytes a URI may carry; the rest percent-encoded, as a client would send them.
    let encoded: String = query
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"=&/%-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("/explain?{encoded}")
}

/// Runs `case`; the status, after checking the answer is JSON and not a 5xx.
async fn run(app: &axum::Router, case: &Case, label: &str) -> StatusCode {
    let mut request = Request::builder().method(case.method).uri(&case.uri);
    if let Some(length) = case.length {
        request = request.header("content-length", length);
    }
    let request = request.body(Body::from(case.body.clone())).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    assert!(
        !status.is_server_error(),
        "{label}: {status} for {} {} ({:?}): {}",
        case.method,
        case.uri,
        String::from_utf8_lossy(&case.body[..case.body.len().min(400)]),
        String::from_utf8_lossy(&bytes)
    );
    // JSON by the grammar, as Go reads it: a lone surrogate escape (`"\ud800"`) inside a
    // Node object is echoed verbatim in `Nodes` mode, which Go's decoder accepts (it reads
    // U+FFFD) and so does the request parser; `Value` would refuse it, `IgnoredAny` does not.
    assert!(
        serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_ok(),
        "{label}: answer is not JSON: {}",
        String::from_utf8_lossy(&bytes)
    );
    status
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "current_thread")]
async fn every_wrong_typed_body_of_the_corpus_is_a_400_naming_the_field() {
    let app = router();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 20, "{}", files.len());
    for file in files {
        let body = std::fs::read(&file).unwrap();
        for verb in ["/filter", "/prioritize"] {
            let case = Case {
                method: "POST",
                uri: verb.to_owned(),
                length: Some(body.len()),
                body: body.clone(),
            };
            let label = file.display().to_string();
            assert_eq!(
                run(&app, &case, &label).await,
                StatusCode::BAD_REQUEST,
                "{label} {verb}"
            );
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_router_survives_seeded_random_requests() {
    let execs = env_u64("TESSERA_FUZZ_EXECS", DEFAULT_EXECS);
    let seed = env_u64("TESSERA_FUZZ_SEED", DEFAULT_SEED);
    let app = router();
    let seeds = seeds();
    let oversize = oversize();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut statuses = std::collections::BTreeMap::<u16, u64>::new();
    let started = Instant::now();
    for i in 0..execs {
        let case = generate(&mut rng, &seeds, &oversize);
        let status = run(&app, &case, &format!("seed {seed} exec {i}")).await;
        *statuses.entry(status.as_u16()).or_default() += 1;
        if (i + 1) % 1_000_000 == 0 {
            println!(
                "{} executions, {:.0} s",
                i + 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    let elapsed = started.elapsed();
    println!(
        "{execs} executions (seed {seed:#x}) in {:.1} s ({:.0}/s): statuses {statuses:?}",
        elapsed.as_secs_f64(),
        execs as f64 / elapsed.as_secs_f64()
    );
    // The generator reaches every kind of answer, or it is not exercising the router.
    if execs >= 10_000 {
        for status in [200, 400, 404, 413] {
            assert!(
                statuses.contains_key(&status),
                "no {status} in {statuses:?}"
            );
        }
    }
}
