//! The extender's HTTP routes: `POST <prefix>/filter`, `POST <prefix>/prioritize` and
//! `GET <prefix>/explain?pod=NS/NAME[&limit=N]`.
//!
//! Handlers translate: body → [`ExtenderArgs`], decision → wire answer. A body that is not a
//! readable `ExtenderArgs` gets HTTP 400 with the reason (in `Error` for filter, as the
//! upstream type has that field). Bodies are read within [`BodyLimits`] (413 past the size
//! limit, 408 past the read timeout, 503 while the decode budget is full), answered in the
//! same shapes. `/explain` can be put behind an [`AccessReview`].

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use super::api::{ErrorBody, ExtenderArgs, FilterResult, HostScore, MAX_NODES, RequestNode};
use super::decide::{Decider, Explanation, FilterDecision, PrioritizeDecision};
use super::limits::{BodyError, BodyLimits, DecodeBudget, ReadBody, read_body};
use super::metrics::{ExtenderMetrics, Verb};
use super::view::{ClusterView, NodeScorer, ViewSource};
use crate::access::{self, AccessReview};
use crate::extender::api::object::PodObject;

/// Bodies larger than this are decoded on the blocking pool, so a request carrying thousands
/// of Node objects does not stall the reactor thread that serves the small ones.
const BLOCKING_BODY_BYTES: usize = 64 * 1024;
/// `/explain` lists this many nodes unless told otherwise.
const DEFAULT_EXPLAIN_LIMIT: usize = 20;
/// Longest `/explain` query string read (`pod=` a 63-byte namespace and 253-byte name).
const MAX_EXPLAIN_QUERY_BYTES: usize = 1024;

/// What the routes need from the decision layer; object-safe so the router is not generic.
pub trait Decide: Send + Sync + 'static {
    /// See [`Decider::filter`].
    fn filter(&self, pod: &PodObject, nodes: &[RequestNode<'_>]) -> FilterDecision;
    /// See [`Decider::prioritize`].
    fn prioritize(&self, pod: &PodObject, nodes: &[RequestNode<'_>]) -> PrioritizeDecision;
    /// See [`Decider::explain`].
    fn explain(&self, namespace: &str, name: &str, limit: usize) -> Option<Explanation>;
}

impl<S, P> Decide for Decider<S, P>
where
    S: ViewSource,
    P: NodeScorer<<S::View as ClusterView>::Node>,
{
    fn filter(&self, pod: &PodObject, nodes: &[RequestNode<'_>]) -> FilterDecision {
        Decider::filter(self, pod, nodes)
    }
    fn prioritize(&self, pod: &PodObject, nodes: &[RequestNode<'_>]) -> PrioritizeDecision {
        Decider::prioritize(self, pod, nodes)
    }
    fn explain(&self, namespace: &str, name: &str, limit: usize) -> Option<Explanation> {
        Decider::explain(self, namespace, name, limit)
    }
}

#[derive(Clone)]
struct AppState {
    decide: Arc<dyn Decide>,
    metrics: ExtenderMetrics,
    limits: BodyLimits,
    budget: DecodeBudget,
}

/// How the routes bound bodies and guard `/explain`.
#[derive(Clone)]
pub struct RouteOptions {
    /// Body size, decode budget and timeouts.
    pub limits: BodyLimits,
    /// When set, `/explain` needs a bearer token this review allows.
    pub explain_access: Option<Arc<AccessReview>>,
}

/// The routes under `prefix` (`/` or e.g. `/scheduler`), refusing bodies over
/// `max_body_bytes`, with the other limits at their defaults and `/explain` open.
pub fn router(
    prefix: &str,
    decide: Arc<dyn Decide>,
    metrics: ExtenderMetrics,
    max_body_bytes: usize,
) -> Router {
    let options = RouteOptions {
        limits: BodyLimits::with_max_body(max_body_bytes),
        explain_access: None,
    };
    router_with(prefix, decide, metrics, options)
}

/// The routes under `prefix` with `options`.
pub fn router_with(
    prefix: &str,
    decide: Arc<dyn Decide>,
    metrics: ExtenderMetrics,
    options: RouteOptions,
) -> Router {
    let base = prefix.trim_end_matches('/');
    let explain_route = match options.explain_access {
        Some(review) => {
            get(explain).route_layer(middleware::from_fn_with_state(review, access::require))
        }
        None => get(explain),
    };
    let state = AppState {
        decide,
        metrics,
        limits: options.limits,
        budget: DecodeBudget::new(options.limits.decode_budget_bytes),
    };
    Router::new()
        .route(&format!("{base}/filter"), post(filter))
        .route(&format!("{base}/prioritize"), post(prioritize))
        .route(&format!("{base}/explain"), explain_route)
        .with_state(state)
}

/// An answer: status and JSON body.
type Answer = (StatusCode, Vec<u8>);

async fn filter(State(state): State<AppState>, request: Request) -> Response {
    let started = Instant::now();
    let response = match read(&state, request).await {
        Err(e) => refused(&e, FilterResult::error),
        Ok(body) => {
            let st = state.clone();
            let (status, json) = decode_off_thread(body, move |b| filter_answer(&st, b)).await;
            json_response(status, json)
        }
    };
    state
        .metrics
        .observe_request(Verb::Filter, response.status().as_u16(), started.elapsed());
    response
}

async fn prioritize(State(state): State<AppState>, request: Request) -> Response {
    let started = Instant::now();
    let response = match read(&state, request).await {
        Err(e) => refused(&e, |m| ErrorBody { error: m }),
        Ok(body) => {
            let st = state.clone();
            let (status, json) = decode_off_thread(body, move |b| prioritize_answer(&st, b)).await;
            json_response(status, json)
        }
    };
    state.metrics.observe_request(
        Verb::Prioritize,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

async fn read(state: &AppState, request: Request) -> Result<ReadBody, BodyError> {
    let (parts, body) = request.into_parts();
    read_body(&state.limits, &state.budget, &parts.headers, body).await
}

/// Query of `/explain`.
#[derive(Debug, Deserialize)]
struct ExplainQuery {
    /// `NAMESPACE/NAME`.
    pod: String,
    /// Nodes to list, best first.
    limit: Option<usize>,
}

async fn explain(
    State(state): State<AppState>,
    uri: axum::http::Uri,
    query: Result<Query<ExplainQuery>, QueryRejection>,
) -> Response {
    let started = Instant::now();
    let too_long = request_query_len(&uri) > MAX_EXPLAIN_QUERY_BYTES;
    let (status, json) = match query {
        _ if too_long => error_answer(
            StatusCode::URI_TOO_LONG,
            format!("query longer than {MAX_EXPLAIN_QUERY_BYTES} bytes"),
        ),
        Err(rejection) => error_answer(
            StatusCode::BAD_REQUEST,
            format!("{rejection}; expected ?pod=NAMESPACE/NAME[&limit=N]"),
        ),
        // Explaining scores every cached node (thousands of partition fits): off the async
        // threads, so filter and prioritize calls are not held up behind it.
        Ok(Query(q)) => {
            let st = state.clone();
            match tokio::task::spawn_blocking(move || explain_answer(&st, &q)).await {
                Ok(answer) => answer,
                Err(e) => {
                    warn!(error = %e, "explain task failed");
                    error_answer(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "explain task failed".into(),
                    )
                }
            }
        }
    };
    state
        .metrics
        .observe_request(Verb::Explain, status.as_u16(), started.elapsed());
    json_response(status, json)
}

fn explain_answer(state: &AppState, q: &ExplainQuery) -> Answer {
    let Some((namespace, name)) = q
        .pod
        .split_once('/')
        .filter(|(ns, n)| !ns.is_empty() && !n.is_empty() && !n.contains('/'))
    else {
        return error_answer(
            StatusCode::BAD_REQUEST,
            format!("pod {:?} is not NAMESPACE/NAME", q.pod),
        );
    };
    let limit = q.limit.unwrap_or(DEFAULT_EXPLAIN_LIMIT).min(MAX_NODES);
    match state.decide.explain(namespace, name, limit) {
        Some(explanation) => encode(StatusCode::OK, &explanation, true),
        None => error_answer(
            StatusCode::NOT_FOUND,
            format!("pod {namespace}/{name} is not in the extender's cache"),
        ),
    }
}

fn filter_answer(state: &AppState, body: &[u8]) -> Answer {
    let args = match ExtenderArgs::parse(body) {
        Ok(args) => args,
        Err(e) => {
            debug!(error = %e, "filter: bad request");
            return encode(
                StatusCode::BAD_REQUEST,
                &FilterResult::error(e.to_string()),
                false,
            );
        }
    };
    let decision = state.decide.filter(&args.pod, &args.nodes);
    let mut result = FilterResult::default();
    let mut refused = vec![false; args.nodes.len()];
    for (index, rejection, text) in &decision.rejected {
        let Some(node) = args.nodes.get(*index) else {
            continue;
        };
        if let Some(flag) = refused.get_mut(*index) {
            *flag = true;
        }
        let target = if rejection.preemption_cannot_help() {
            &mut result.failed_and_unresolvable_nodes
        } else {
            &mut result.failed_nodes
        };
        target.insert(node.name.as_ref(), text.clone());
        state
            .metrics
            .count_decisions(Verb::Filter, rejection.metric_label(), 1);
    }
    let passing = args
        .nodes
        .iter()
        .zip(&refused)
        .filter(|(_, refused)| !**refused)
        .map(|(node, _)| node);
    if args.names_mode {
        result.node_names = Some(passing.map(|n| n.name.as_ref()).collect());
    } else {
        result.nodes = Some(passing.filter_map(|n| n.raw).collect());
    }
    let passed = args.nodes.len().saturating_sub(decision.rejected.len());
    state
        .metrics
        .count_decisions(Verb::Filter, "passed", passed as u64);
    encode(StatusCode::OK, &result, false)
}

fn prioritize_answer(state: &AppState, body: &[u8]) -> Answer {
    let args = match ExtenderArgs::parse(body) {
        Ok(args) => args,
        Err(e) => {
            debug!(error = %e, "prioritize: bad request");
            return error_answer(StatusCode::BAD_REQUEST, e.to_string());
        }
    };
    let decision = state.decide.prioritize(&args.pod, &args.nodes);
    state
        .metrics
        .count_decisions(Verb::Prioritize, decision.outcome.metric_label(), 1);
    let list: Vec<HostScore<'_>> = args
        .nodes
        .iter()
        .zip(&decision.scores)
        .map(|(node, score)| HostScore {
            host: node.name.as_ref(),
            score: *score,
        })
        .collect();
    encode(StatusCode::OK, &list, false)
}

fn request_query_len(uri: &axum::http::Uri) -> usize {
    uri.query().map_or(0, str::len)
}

/// Runs `answer` on the body, on the blocking pool when the body is large; the body's charge
/// against the decode budget is released once the answer is encoded.
async fn decode_off_thread<F>(body: ReadBody, answer: F) -> Answer
where
    F: FnOnce(&[u8]) -> Answer + Send + 'static,
{
    let ReadBody { bytes, charge } = body;
    if bytes.len() < BLOCKING_BODY_BYTES {
        let out = answer(&bytes);
        drop(charge);
        return out;
    }
    let task = move || {
        let out = answer(&bytes);
        drop(charge);
        out
    };
    match tokio::task::spawn_blocking(task).await {
        Ok(out) => out,
        Err(e) => {
            warn!(error = %e, "request task failed");
            error_answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                "request task failed".into(),
            )
        }
    }
}

/// The answer to a body that was not read (too large, too slow, no room, broken), in the
/// verb's error shape.
fn refused<T: Serialize>(error: &BodyError, body: impl FnOnce(String) -> T) -> Response {
    let status = error.status();
    debug!(%status, reason = %error, label = error.metric_label(), "request body refused");
    let (status, json) = encode(status, &body(error.to_string()), false);
    let mut response = json_response(status, json);
    let headers = response.headers_mut();
    if matches!(error, BodyError::Busy { .. }) {
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    if error.closes_connection() {
        // What is left of the body is still on the connection: it cannot carry another
        // request, and hyper must not wait to drain it.
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

fn error_answer(status: StatusCode, message: String) -> Answer {
    encode(status, &ErrorBody { error: message }, false)
}

fn encode<T: Serialize>(status: StatusCode, value: &T, pretty: bool) -> Answer {
    let encoded = if pretty {
        serde_json::to_vec_pretty(value)
    } else {
        serde_json::to_vec(value)
    };
    match encoded {
        Ok(json) => (status, json),
        Err(e) => {
            warn!(error = %e, "cannot encode answer");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                br#"{"Error":"cannot encode answer"}"#.to_vec(),
            )
        }
    }
}

fn json_response(status: StatusCode, json: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], json).into_response()
}
