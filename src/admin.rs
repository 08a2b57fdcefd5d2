//! The admin HTTP surface shared by `tessera plugin` and `tessera extender`: `/healthz`,
//! `/readyz` and `/metrics`, on their own port so probes and scrapes never queue behind the
//! component's real work.
//!
//! Served with the same connection timeouts as the extender's port ([`crate::serving`]); no
//! route reads a body. `/metrics` can be put behind an [`AccessReview`] (the extender does by
//! default); the probes stay open, as the kubelet sends no credentials.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum_server::tls_rustls::RustlsConfig;
use prometheus_client::registry::Registry;
use thiserror::Error;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::access::{self, AccessReview};
use crate::metrics;
use crate::serving::{self, Timeouts};

/// How long requests in flight may take after shutdown (probes and scrapes are short).
const ADMIN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Why the admin server could not run.
#[derive(Debug, Error)]
pub enum AdminError {
    /// The listen address could not be bound.
    #[error("cannot listen on admin address {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The server stopped with an I/O error.
    #[error("admin server on {addr} failed: {source}")]
    Serve {
        /// The bound address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Named readiness conditions; `/readyz` is 200 only when every registered one holds.
///
/// Components register their conditions up front (all false), then flip them as they come
/// up, so a probe during start-up says exactly what is still missing.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    checks: Arc<RwLock<BTreeMap<&'static str, Check>>>,
}

#[derive(Debug, Clone)]
struct Check {
    ready: bool,
    detail: String,
}

impl Readiness {
    /// A latch with the given conditions, none of them met yet.
    pub fn new(names: &[&'static str]) -> Self {
        let readiness = Readiness::default();
        for name in names {
            readiness.set(name, false, "not yet");
        }
        readiness
    }

    /// Record a condition's state and a short human-readable detail.
    pub fn set(&self, name: &'static str, ready: bool, detail: impl Into<String>) {
        // A poisoned lock only means another thread panicked mid-insert of plain data;
        // the map is still valid, so keep serving rather than failing every probe.
        let mut checks = self.checks.write().unwrap_or_else(|e| e.into_inner());
        checks.insert(
            name,
            Check {
                ready,
                detail: detail.into(),
            },
        );
    }

    /// Whether every condition holds.
    pub fn is_ready(&self) -> bool {
        let checks = self.checks.read().unwrap_or_else(|e| e.into_inner());
        checks.values().all(|c| c.ready)
    }

    /// One line per condition: `ok name: detail` or `-- name: detail`.
    pub fn report(&self) -> String {
        let checks = self.checks.read().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        for (name, check) in checks.iter() {
            let mark = if check.ready { "ok" } else { "--" };
            out.push_str(&format!("{mark} {name}: {}\n", check.detail));
        }
        out
    }
}

#[derive(Clone)]
struct AdminState {
    registry: Arc<Registry>,
    readiness: Readiness,
}

/// How the admin port is served.
#[derive(Clone, Default)]
pub struct AdminOptions {
    /// Connection timeouts.
    pub timeouts: Timeouts,
    /// When set, `/metrics` needs a bearer token this review allows.
    pub metrics_access: Option<Arc<AccessReview>>,
    /// When set, the port serves HTTPS with this configuration (never client certificates:
    /// the kubelet's probes present none).
    pub tls: Option<RustlsConfig>,
}

/// The admin routes, for embedding in tests or in another server.
pub fn router(registry: Arc<Registry>, readiness: Readiness) -> Router {
    router_with(registry, readiness, None)
}

/// The admin routes with `/metrics` behind `metrics_access` when given.
pub fn router_with(
    registry: Arc<Registry>,
    readiness: Readiness,
    metrics_access: Option<Arc<AccessReview>>,
) -> Router {
    let metrics_route = match metrics_access {
        Some(review) => get(metrics_handler)
            .route_layer(middleware::from_fn_with_state(review, access::require)),
        None => get(metrics_handler),
    };
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", metrics_route)
        .with_state(AdminState {
            registry,
            readiness,
        })
}

/// Serve the admin routes on `addr` until `shutdown` is cancelled, with default options.
pub async fn serve(
    addr: SocketAddr,
    registry: Arc<Registry>,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> Result<(), AdminError> {
    serve_with(addr, registry, readiness, shutdown, AdminOptions::default()).await
}

/// Serve the admin routes on `addr` with `options` until `shutdown` is cancelled.
pub async fn serve_with(
    addr: SocketAddr,
    registry: Arc<Registry>,
    readiness: Readiness,
    shutdown: CancellationToken,
    options: AdminOptions,
) -> Result<(), AdminError> {
    let listener =
        std::net::TcpListener::bind(addr).map_err(|source| AdminError::Bind { addr, source })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| AdminError::Bind { addr, source })?;
    let bound = listener.local_addr().unwrap_or(addr);
    let guarded = options.metrics_access.is_some();
    info!(addr = %bound, metrics_access_review = guarded, https = options.tls.is_some(),
          "admin server listening (/healthz, /readyz, /metrics)");
    let app = router_with(registry, readiness, options.metrics_access);
    serving::serve(
        listener,
        app,
        options.tls,
        options.timeouts,
        shutdown,
        ADMIN_GRACE,
    )
    .await
    .map_err(|source| AdminError::Serve { addr, source })
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AdminState>) -> Response {
    let status = if state.readiness.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, state.readiness.report()).into_response()
}

async fn metrics_handler(State(state): State<AdminState>) -> Response {
    match metrics::encode(&state.registry) {
        Ok(body) => ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use prometheus_client::metrics::counter::Counter;
    use tower::ServiceExt;

    async fn get_text(app: Router, path: &str) -> (StatusCode, String) {
        let response = app
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test(flavor = "current_thread")]
    async fn readyz_waits_for_every_condition_and_says_which_is_missing() {
        let readiness = Readiness::new(&["socket", "registered"]);
        let app = router(Arc::new(Registry::default()), readiness.clone());
        let (status, body) = get_text(app.clone(), "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("-- registered: not yet"), "{body}");

        readiness.set("socket", true, "bound /tmp/x.sock");
        readiness.set("registered", true, "kubelet accepted");
        let (status, body) = get_text(app.clone(), "/readyz").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("ok socket: bound /tmp/x.sock"), "{body}");

        readiness.set("registered", false, "kubelet refused: bad version");
        let (status, _) = get_text(app.clone(), "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(get_text(app, "/healthz").await.0, StatusCode::OK);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn metrics_are_served_in_openmetrics_text() {
        let mut registry = Registry::default();
        let counter: Counter = Counter::default();
        registry.register("tessera_test_events", "Events seen", counter.clone());
        counter.inc_by(3);
        let app = router(Arc::new(registry), Readiness::default());
        let (status, body) = get_text(app, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("tessera_test_events_total 3"), "{body}");
        assert!(body.ends_with("# EOF\n"), "{body}");
    }
}
