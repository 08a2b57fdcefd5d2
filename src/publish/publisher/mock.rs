//! An in-process stand-in for the few API server endpoints the publisher calls: `/version`,
//! `GET` Node, and ResourceSlice list / watch / apply / delete. It keeps the slices in memory,
//! records every request, and can fail requests or drop feature-gated fields on demand.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// A request as the mock saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: &'static str,
    pub name: Option<String>,
    pub query: BTreeMap<String, String>,
    pub body: Option<Value>,
}

/// Which gate the mock pretends is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateOff {
    Partitionable,
    Consumable,
}

#[derive(Default)]
struct Inner {
    major: String,
    minor: String,
    nodes: BTreeMap<String, String>,
    slices: BTreeMap<String, Value>,
    resource_version: u64,
    seen: Vec<Seen>,
    fail_next: u32,
    fail_method: &'static str,
    gate_off: Option<GateOff>,
}

#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    events: broadcast::Sender<(String, Value)>,
}

/// The running mock; stops when dropped.
pub struct MockApi {
    pub addr: SocketAddr,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MockApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MockApi {
    /// A server reporting Kubernetes `1.<minor>`, with the given Nodes (name → uid).
    pub async fn start(minor: &str, nodes: &[(&str, &str)]) -> Self {
        let (events, _) = broadcast::channel(1024);
        let shared = Shared {
            inner: Arc::new(Mutex::new(Inner {
                major: "1".into(),
                minor: minor.into(),
                nodes: nodes
                    .iter()
                    .map(|(n, u)| ((*n).to_owned(), (*u).to_owned()))
                    .collect(),
                ..Inner::default()
            })),
            events,
        };
        let app = Router::new()
            .route("/version", get(version))
            .route("/api/v1/nodes/{name}", get(node))
            .route(
                "/apis/resource.k8s.io/v1/resourceslices",
                get(list_or_watch),
            )
            .route(
                "/apis/resource.k8s.io/v1/resourceslices/{name}",
                axum::routing::patch(apply).delete(delete),
            )
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        MockApi { addr, shared, task }
    }

    /// A client for this server.
    pub fn client(&self) -> kube::Client {
        let config = kube::Config::new(format!("http://{}", self.addr).parse().unwrap());
        kube::Client::try_from(config).unwrap()
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared.inner.lock().unwrap()
    }

    /// Answer the next `n` requests of `method` (`VERSION`, `NODE`, `LIST`, `WATCH`, `APPLY`,
    /// `DELETE`, or `*` for any) with 500 (the client retries 503s itself).
    pub fn fail_next(&self, method: &'static str, n: u32) {
        let mut inner = self.inner();
        inner.fail_next = n;
        inner.fail_method = method;
    }

    /// Drop the fields of `gate` from applied slices, as a server with it off does.
    pub fn gate_off(&self, gate: Option<GateOff>) {
        self.inner().gate_off = gate;
    }

    /// The stored slices by name.
    pub fn slices(&self) -> BTreeMap<String, Value> {
        self.inner().slices.clone()
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.inner().seen.clone()
    }

    /// Stores a slice as if another client had created it.
    pub fn insert(&self, slice: Value) {
        let name = slice["metadata"]["name"].as_str().unwrap().to_owned();
        let stored = self.store(name, slice);
        let _ = self.shared.events.send(("ADDED".into(), stored));
    }

    /// Deletes a slice as if the kubelet had, with a watch event.
    pub fn delete_behind_back(&self, name: &str) {
        let removed = self.inner().slices.remove(name).unwrap();
        let _ = self.shared.events.send(("DELETED".into(), removed));
    }

    fn store(&self, name: String, slice: Value) -> Value {
        store(&self.shared, name, slice)
    }
}

fn store(shared: &Shared, name: String, mut slice: Value) -> Value {
    let mut inner = shared.inner.lock().unwrap();
    inner.resource_version += 1;
    let rv = inner.resource_version.to_string();
    let meta = &mut slice["metadata"];
    meta["resourceVersion"] = json!(rv);
    meta["uid"] = json!(format!("uid-{name}"));
    inner.slices.insert(name, slice.clone());
    slice
}

/// Records the request; `Some(response)` when it must fail.
fn record(shared: &Shared, seen: Seen) -> Option<Response> {
    let mut inner = shared.inner.lock().unwrap();
    let hit = inner.fail_method == "*" || inner.fail_method == seen.method;
    inner.seen.push(seen);
    if hit && inner.fail_next > 0 {
        inner.fail_next -= 1;
        return Some(status(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "etcdserver: request timed out",
        ));
    }
    None
}

fn status(code: StatusCode, reason: &str, message: &str) -> Response {
    let body = json!({
        "apiVersion": "v1", "kind": "Status", "status": "Failure",
        "message": message, "reason": reason, "code": code.as_u16(),
    });
    (code, axum::Json(body)).into_response()
}

async fn version(State(shared): State<Shared>) -> Response {
    let seen = Seen {
        method: "VERSION",
        name: None,
        query: BTreeMap::new(),
        body: None,
    };
    if let Some(fail) = record(&shared, seen) {
        return fail;
    }
    let inner = shared.inner.lock().unwrap();
    axum::Json(json!({
        "major": inner.major, "minor": inner.minor,
        "gitVersion": format!("v{}.{}.2", inner.major, inner.minor),
        "gitCommit": "0", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.25", "compiler": "gc", "platform": "linux/amd64",
    }))
    .into_response()
}

async fn node(State(shared): State<Shared>, Path(name): Path<String>) -> Response {
    let seen = Seen {
        method: "NODE",
        name: Some(name.clone()),
        query: BTreeMap::new(),
        body: None,
    };
    if let Some(fail) = record(&shared, seen) {
        return fail;
    }
    let uid = shared.inner.lock().unwrap().nodes.get(&name).cloned();
    match uid {
        Some(uid) => axum::Json(json!({
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "uid": uid},
        }))
        .into_response(),
        None => status(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("nodes \"{name}\" not found"),
        ),
    }
}

/// `spec.nodeName=a,spec.driver=b` → whether `slice` matches.
fn matches(selector: Option<&String>, slice: &Value) -> bool {
    let Some(selector) = selector else {
        return true;
    };
    selector.split(',').all(|term| match term.split_once('=') {
        Some(("spec.nodeName", v)) => slice["spec"]["nodeName"] == json!(v),
        Some(("spec.driver", v)) => slice["spec"]["driver"] == json!(v),
        _ => false,
    })
}

async fn list_or_watch(
    State(shared): State<Shared>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let watch = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
    let seen = Seen {
        method: if watch { "WATCH" } else { "LIST" },
        name: None,
        query: query.clone(),
        body: None,
    };
    if let Some(fail) = record(&shared, seen) {
        return fail;
    }
    let selector = query.get("fieldSelector").cloned();
    if watch {
        let rx = shared.events.subscribe();
        let stream = futures::stream::unfold(rx, move |mut rx| {
            let selector = selector.clone();
            async move {
                loop {
                    match rx.recv().await {
                        Ok((kind, object)) if matches(selector.as_ref(), &object) => {
                            let mut line = json!({"type": kind, "object": object}).to_string();
                            line.push('\n');
                            return Some((Ok::<_, Infallible>(Bytes::from(line)), rx));
                        }
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
        });
        return Response::new(Body::from_stream(stream));
    }
    let inner = shared.inner.lock().unwrap();
    let items: Vec<Value> = inner
        .slices
        .values()
        .filter(|s| matches(selector.as_ref(), s))
        .cloned()
        .collect();
    axum::Json(json!({
        "apiVersion": "resource.k8s.io/v1", "kind": "ResourceSliceList",
        "metadata": {"resourceVersion": inner.resource_version.to_string()},
        "items": items,
    }))
    .into_response()
}

async fn apply(
    State(shared): State<Shared>,
    Path(name): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
    body: Bytes,
) -> Response {
    let Ok(mut body) = serde_json::from_slice::<Value>(&body) else {
        return status(StatusCode::BAD_REQUEST, "BadRequest", "body is not JSON");
    };
    let seen = Seen {
        method: "APPLY",
        name: Some(name.clone()),
        query,
        body: Some(body.clone()),
    };
    if let Some(fail) = record(&shared, seen) {
        return fail;
    }
    let gate_off = shared.inner.lock().unwrap().gate_off;
    let spec = &mut body["spec"];
    match gate_off {
        Some(GateOff::Partitionable) => {
            spec.as_object_mut().unwrap().remove("sharedCounters");
            for d in spec["devices"].as_array_mut().into_iter().flatten() {
                d.as_object_mut().unwrap().remove("consumesCounters");
            }
        }
        Some(GateOff::Consumable) => {
            for d in spec["devices"].as_array_mut().into_iter().flatten() {
                d.as_object_mut()
                    .unwrap()
                    .remove("allowMultipleAllocations");
                for cap in d["capacity"]
                    .as_object_mut()
                    .into_iter()
                    .flat_map(|c| c.values_mut())
                {
                    cap.as_object_mut().unwrap().remove("requestPolicy");
                }
            }
        }
        None => {}
    }
    let existed = shared.inner.lock().unwrap().slices.contains_key(&name);
    let stored = store(&shared, name, body);
    let kind = if existed { "MODIFIED" } else { "ADDED" };
    let _ = shared.events.send((kind.into(), stored.clone()));
    axum::Json(stored).into_response()
}

async fn delete(State(shared): State<Shared>, Path(name): Path<String>) -> Response {
    let seen = Seen {
        method: "DELETE",
        name: Some(name.clone()),
        query: BTreeMap::new(),
        body: None,
    };
    if let Some(fail) = record(&shared, seen) {
        return fail;
    }
    let removed = shared.inner.lock().unwrap().slices.remove(&name);
    match removed {
        Some(object) => {
            let _ = shared.events.send(("DELETED".into(), object.clone()));
            axum::Json(object).into_response()
        }
        None => status(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("resourceslices \"{name}\" not found"),
        ),
    }
}
