use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::routing::get;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;

/// A fake API server answering TokenReview and SubjectAccessReview: `good-token` is user
/// `prometheus` (allowed to get `/metrics` and `/explain`), `other-token` is user `nobody`
/// (allowed nothing); any other token does not authenticate. `down` answers 500 to all.
#[derive(Clone, Default)]
struct FakeApiServer {
    calls: Arc<AtomicUsize>,
    down: bool,
}

impl FakeApiServer {
    fn client(&self) -> kube::Client {
        let fake = self.clone();
        let service = tower::service_fn(move |request: axum::http::Request<kube::client::Body>| {
            let fake = fake.clone();
            async move {
                fake.calls.fetch_add(1, Ordering::SeqCst);
                let path = request.uri().path().to_owned();
                let body = request.into_body().collect().await?.to_bytes();
                let object: Value = serde_json::from_slice(&body)?;
                let (status, answer) = fake.answer(&path, object);
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                    axum::http::Response::builder()
                        .status(status)
                        .header("content-type", "application/json")
                        .body(http_body_util::Full::new(axum::body::Bytes::from(
                            answer.to_string(),
                        )))?,
                )
            }
        });
        kube::Client::new(service, "default")
    }

    fn answer(&self, path: &str, mut object: Value) -> (u16, Value) {
        if self.down {
            return (
                500,
                json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                 "message": "etcd is down", "code": 500}),
            );
        }
        match path {
            "/apis/authentication.k8s.io/v1/tokenreviews" => {
                let status = match object["spec"]["token"].as_str() {
                    Some("good-token") => json!({"authenticated": true,
                        "user": {"username": "system:serviceaccount:monitoring:prometheus",
                                 "groups": ["system:serviceaccounts"]}}),
                    Some("other-token") => json!({"authenticated": true,
                        "user": {"username": "nobody"}}),
                    _ => json!({"authenticated": false, "error": "invalid bearer token"}),
                };
                object["status"] = status;
                (201, object)
            }
            "/apis/authorization.k8s.io/v1/subjectaccessreviews" => {
                let spec = &object["spec"];
                let allowed = spec["user"] == "system:serviceaccount:monitoring:prometheus"
                    && spec["groups"][0] == "system:serviceaccounts"
                    && spec["nonResourceAttributes"]["verb"] == "get"
                    && matches!(
                        spec["nonResourceAttributes"]["path"].as_str(),
                        Some("/metrics" | "/explain")
                    );
                object["status"] = json!({"allowed": allowed});
                (201, object)
            }
            _ => (404, json!({"kind": "Status", "code": 404})),
        }
    }
}

fn guarded(review: Arc<AccessReview>) -> axum::Router {
    axum::Router::new()
        .route("/explain", get(|| async { "secret" }))
        .route("/metrics", get(|| async { "metrics" }))
        .layer(axum::middleware::from_fn_with_state(review, require))
}

async fn call(app: &axum::Router, path: &str, token: Option<&str>) -> (StatusCode, String) {
    let mut request = axum::http::Request::get(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test(flavor = "current_thread")]
async fn an_authorized_token_passes_and_others_are_refused_with_the_reason() {
    let fake = FakeApiServer::default();
    let app = guarded(AccessReview::new(fake.client(), DEFAULT_CACHE_TTL));

    assert_eq!(
        call(&app, "/explain", Some("good-token")).await,
        (StatusCode::OK, "secret".into())
    );
    assert_eq!(
        call(&app, "/metrics", Some("good-token")).await.0,
        StatusCode::OK
    );

    let (status, body) = call(&app, "/explain", Some("other-token")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("\"nobody\" may not get /explain"), "{body}");

    let (status, body) = call(&app, "/explain", Some("forged")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("invalid bearer token"), "{body}");

    let response = app
        .clone()
        .oneshot(
            axum::http::Request::get("/explain")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
}

#[tokio::test(flavor = "current_thread")]
async fn decisions_are_cached_per_token_and_path_for_the_ttl() {
    let fake = FakeApiServer::default();
    let app = guarded(AccessReview::new(fake.client(), Duration::from_secs(60)));
    for _ in 0..5 {
        assert_eq!(
            call(&app, "/metrics", Some("good-token")).await.0,
            StatusCode::OK
        );
        assert_eq!(
            call(&app, "/metrics", Some("other-token")).await.0,
            StatusCode::FORBIDDEN
        );
    }
    // One TokenReview and one SubjectAccessReview per token, not per request.
    assert_eq!(fake.calls.load(Ordering::SeqCst), 4);
    // Another path is another decision.
    assert_eq!(
        call(&app, "/explain", Some("good-token")).await.0,
        StatusCode::OK
    );
    assert_eq!(fake.calls.load(Ordering::SeqCst), 6);

    let fresh = FakeApiServer::default();
    let app = guarded(AccessReview::new(fresh.client(), Duration::ZERO));
    for _ in 0..3 {
        assert_eq!(
            call(&app, "/metrics", Some("good-token")).await.0,
            StatusCode::OK
        );
    }
    assert_eq!(
        fresh.calls.load(Ordering::SeqCst),
        6,
        "a zero TTL reviews every time"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn an_unreachable_api_server_is_503_and_not_remembered() {
    let down = FakeApiServer {
        down: true,
        ..FakeApiServer::default()
    };
    let app = guarded(AccessReview::new(down.client(), DEFAULT_CACHE_TTL));
    let (status, body) = call(&app, "/metrics", Some("good-token")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("TokenReview"), "{body}");
    call(&app, "/metrics", Some("good-token")).await;
    assert_eq!(
        down.calls.load(Ordering::SeqCst),
        2,
        "errors are not cached"
    );
}

#[test]
fn bearer_tokens_are_read_strictly_and_bounded() {
    let headers = |value: &str| {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, value.parse().unwrap());
        h
    };
    assert_eq!(bearer_token(&headers("Bearer abc")).unwrap(), "abc");
    assert_eq!(bearer_token(&headers("bearer  abc ")).unwrap(), "abc");
    for bad in ["Basic abc", "Bearer", "Bearer ", "abc"] {
        assert!(bearer_token(&headers(bad)).is_err(), "{bad}");
    }
    let long = format!("Bearer {}", "a".repeat(MAX_TOKEN_BYTES + 1));
    assert!(bearer_token(&headers(&long)).is_err());
    assert!(bearer_token(&HeaderMap::new()).is_err());
}
