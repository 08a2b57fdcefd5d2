//! The extender's HTTP routes: `POST <prefix>/filter`, `POST <prefix>/prioritize` and
//! `GET <prefix>/explain?pod=NS/NAME[&limit=N]`.
//!
//! Handlers translate: body → [`ExtenderArgs`], decision → wire answer. A body that is not a
//! readable `ExtenderArgs` gets HTTP 400 with the reason (in `Error` for filter, as the
//! upstream type has that field). Bodies past the size limit get 413 the same way.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use super::api::{ErrorBody, ExtenderArgs, FilterResult, HostScore, MAX_NODES, RequestNode};
use super::decide::{Decider, Explanation, FilterDecision, PrioritizeDecision};
use super::metrics::{ExtenderMetrics, Verb};
use super::view::{ClusterView, NodeScorer, ViewSource};
use crate::extender::api::object::PodObject;

/// Bodies larger than this are decoded on the blocking pool, so a request carrying thousands
/// of Node objects does not stall the reactor thread that serves the small ones.
const BLOCKING_BODY_BYTES: usize = 64 * 1024;
/// `/explain` lists this many nodes unless told otherwise.
const DEFAULT_EXPLAIN_LIMIT: usize = 20;

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
}

/// The routes under `prefix` (`/` or e.g. `/scheduler`), refusing bodies over
/// `max_body_bytes`.
pub fn router(
    prefix: &str,
    decide: Arc<dyn Decide>,
    metrics: ExtenderMetrics,
    max_body_bytes: usize,
) -> Router {
    let base = prefix.trim_end_matches('/');
    Router::new()
        .route(&format!("{base}/filter"), post(filter))
        .route(&format!("{base}/prioritize"), post(prioritize))
        .route(&format!("{base}/explain"), get(explain))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(AppState { decide, metrics })
}

/// An answer: status and JSON body.
type Answer = (StatusCode, Vec<u8>);

async fn filter(State(state): State<AppState>, body: Result<Bytes, BytesRejection>) -> Response {
    let started = Instant::now();
    let (status, json) = match body {
        Err(rejection) => rejected(&rejection, FilterResult::error),
        Ok(bytes) => {
            let st = state.clone();
            decode_off_thread(bytes, move |b| filter_answer(&st, b)).await
        }
    };
    state
        .metrics
        .observe_request(Verb::Filter, status.as_u16(), started.elapsed());
    json_response(status, json)
}

async fn prioritize(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let (status, json) = match body {
        Err(rejection) => rejected(&rejection, |m| ErrorBody { error: m }),
        Ok(bytes) => {
            let st = state.clone();
            decode_off_thread(bytes, move |b| prioritize_answer(&st, b)).await
        }
    };
    state
        .metrics
        .observe_request(Verb::Prioritize, status.as_u16(), started.elapsed());
    json_response(status, json)
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
    query: Result<Query<ExplainQuery>, QueryRejection>,
) -> Response {
    let started = Instant::now();
    let (status, json) = match query {
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

/// Runs `answer` on the body, on the blocking pool when the body is large.
async fn decode_off_thread<F>(bytes: Bytes, answer: F) -> Answer
where
    F: FnOnce(&[u8]) -> Answer + Send + 'static,
{
    if bytes.len() < BLOCKING_BODY_BYTES {
        return answer(&bytes);
    }
    match tokio::task::spawn_blocking(move || answer(&bytes)).await {
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

/// The answer to a body axum could not read (too large, broken connection).
fn rejected<T: Serialize>(rejection: &BytesRejection, body: impl FnOnce(String) -> T) -> Answer {
    let status = rejection.status();
    debug!(%status, reason = %rejection.body_text(), "request body refused");
    encode(status, &body(rejection.body_text()), false)
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
