//! Shared harness for the plugin's integration tests and benches: an in-process API server
//! serving ResourceClaims (so the real kube client code path runs), a node in a temp dir
//! with fake GPUs, and the plugin started on it, reached over its Unix sockets with tonic
//! clients exactly as the kubelet dials them.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::resource::v1::ResourceClaim;
use prometheus_client::registry::Registry;
use tempfile::TempDir;
use tessera::admin::Readiness;
use tessera::model::mig::Placement;
use tessera::model::{Gpu, Inventory, MigDevice, MigState};
use tessera::plugin::proto::dra_health_v1alpha1::NodeWatchResourcesResponse;
use tessera::plugin::proto::dra_health_v1alpha1::dra_resource_health_client::DraResourceHealthClient as HealthClient;
use tessera::plugin::proto::dra_v1 as v1;
use tessera::plugin::proto::dra_v1::dra_plugin_client::DraPluginClient as V1Client;
use tessera::plugin::proto::dra_v1beta1::dra_plugin_client::DraPluginClient as V1beta1Client;
use tessera::plugin::proto::registration::registration_client::RegistrationClient;
use tessera::plugin::runtime::{self, PluginConfig, PluginParts, RuntimeError};
use tessera::plugin::{READY_CHECKPOINT, READY_REGISTERED, READY_SOCKETS, SocketPaths};
use tessera::prepare::{FakeGpuControl, KubeClaimSource, MpsConfig, PrepareMetrics};
use tessera::publish::READINESS_CONDITION as READY_PUBLISHED;
use tokio::net::{TcpListener, UnixStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint, Uri};

pub const DRIVER: &str = "gpu.tessera.dev";
pub const NODE: &str = "node-a";

// === mock API server ===

type ClaimMap = Arc<RwLock<HashMap<(String, String), ResourceClaim>>>;

/// Serves `GET /apis/resource.k8s.io/v1/namespaces/{ns}/resourceclaims/{name}` from a map.
pub struct MockApiServer {
    claims: ClaimMap,
    url: String,
    task: JoinHandle<()>,
    requests: Arc<std::sync::atomic::AtomicUsize>,
}

#[derive(Clone)]
struct ApiState {
    claims: ClaimMap,
    requests: Arc<std::sync::atomic::AtomicUsize>,
}

impl MockApiServer {
    pub async fn start() -> Self {
        let claims: ClaimMap = Arc::default();
        let requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let app = Router::new()
            .route(
                "/apis/resource.k8s.io/v1/namespaces/{namespace}/resourceclaims/{name}",
                get(get_claim),
            )
            .with_state(ApiState {
                claims: claims.clone(),
                requests: requests.clone(),
            });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        MockApiServer {
            claims,
            url,
            task,
            requests,
        }
    }

    pub fn insert(&self, claim: ResourceClaim) {
        let key = (
            claim.metadata.namespace.clone().unwrap(),
            claim.metadata.name.clone().unwrap(),
        );
        self.claims.write().unwrap().insert(key, claim);
    }

    pub fn client(&self) -> kube::Client {
        let config = kube::Config::new(self.url.parse().unwrap());
        kube::Client::try_from(config).unwrap()
    }

    /// Base URL, for a kubeconfig.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Claim reads served so far.
    pub fn requests(&self) -> usize {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for MockApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn get_claim(
    State(state): State<ApiState>,
    UrlPath((namespace, name)): UrlPath<(String, String)>,
) -> Response {
    state
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let found = state
        .claims
        .read()
        .unwrap()
        .get(&(namespace, name.clone()))
        .cloned();
    match found {
        Some(claim) => Json(claim).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {},
                "status": "Failure", "reason": "NotFound", "code": 404,
                "message": format!("resourceclaims.resource.k8s.io \"{name}\" not found"),
            })),
        )
            .into_response(),
    }
}

// === node ===

fn gpu(index: u32, mig: MigState) -> Gpu {
    Gpu {
        index,
        uuid: format!("GPU-1a2b3c4d-0000-0000-0000-00000000000{index}"),
        pci_bus_id: format!("0000:{:02x}:00.0", 0x10 + index),
        product_name: "NVIDIA H100 80GB HBM3".to_owned(),
        memory_bytes: 80 << 30,
        architecture: "Hopper".to_owned(),
        cuda_compute_capability: "9.0".to_owned(),
        mig,
    }
}

/// GPU 0: MIG off (whole, shared, shares). GPU 1: dynamic MIG. GPU 2: a static 1g.10gb.
/// GPUs 3..n: MIG off.
pub fn inventory(gpus: u32) -> Inventory {
    let mut list = vec![
        gpu(0, MigState::Disabled),
        gpu(1, MigState::Dynamic),
        gpu(
            2,
            MigState::Static {
                devices: vec![MigDevice {
                    uuid: "MIG-static-2-0".to_owned(),
                    profile: "1g.10gb".to_owned(),
                    placement: Placement::new(0, 1),
                    memory_bytes: 10 << 30,
                }],
            },
        ),
    ];
    for i in 3..gpus {
        list.push(gpu(i, MigState::Disabled));
    }
    list.truncate(gpus as usize);
    Inventory {
        driver_version: "580.65.06".to_owned(),
        cuda_driver_version: Some("13.0".to_owned()),
        gpus: list,
    }
}

/// The stand-in for `nvidia-cuda-mps-control` (tests/fixtures/README.md).
pub fn fake_mps_control() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fake-mps-control")
}

/// One node's directories and GPUs; GPUs outlive plugin restarts, as hardware does.
pub struct TestNode {
    pub dir: TempDir,
    pub registry_dir: PathBuf,
    pub plugin_dir: PathBuf,
    pub cdi_dir: PathBuf,
    pub control: Arc<FakeGpuControl>,
    pub inventory: Inventory,
    /// How often a started plugin runs its periodic checkpoint recovery.
    pub recovery_interval: Duration,
    /// MPS daemons: under the node's dir, run by the fake control binary.
    pub mps: MpsConfig,
}

impl TestNode {
    pub fn new(gpus: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        // The kubelet's plugins/ exists on a node; the plugin creates only its own dir in it.
        std::fs::create_dir(dir.path().join("plugins")).unwrap();
        TestNode {
            mps: MpsConfig {
                root: dir.path().join("mps"),
                control_binary: fake_mps_control(),
            },
            registry_dir: dir.path().join("plugins_registry"),
            plugin_dir: dir.path().join("plugins").join(DRIVER),
            cdi_dir: dir.path().join("cdi"),
            dir,
            control: Arc::new(FakeGpuControl::with_device_nodes()),
            inventory: inventory(gpus),
            recovery_interval: Duration::from_secs(3600),
        }
    }

    pub fn checkpoint_path(&self) -> PathBuf {
        self.plugin_dir.join("checkpoint.json")
    }

    pub fn checkpoint(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.checkpoint_path()).unwrap()).unwrap()
    }

    pub fn cdi_spec_path(&self, uid: &str) -> PathBuf {
        self.cdi_dir.join(format!("k8s.{DRIVER}-claim_{uid}.json"))
    }

    pub fn cdi_spec(&self, uid: &str) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.cdi_spec_path(uid)).unwrap()).unwrap()
    }

    /// Start a plugin instance on this node, talking to `api`.
    pub async fn start(&self, api: &MockApiServer, pod_uid: Option<&str>) -> RunningPlugin {
        let inventory = tokio::sync::watch::channel(self.inventory.clone()).1;
        self.start_with(api, pod_uid, inventory).await
    }

    /// Start a plugin instance whose GPUs come from `inventory` (e.g. discovery polling a
    /// fake inventory file), instead of this node's fixed list.
    pub async fn start_with(
        &self,
        api: &MockApiServer,
        pod_uid: Option<&str>,
        inventory: tokio::sync::watch::Receiver<Inventory>,
    ) -> RunningPlugin {
        let sockets = SocketPaths::new(&self.registry_dir, &self.plugin_dir, DRIVER, pod_uid);
        let config = PluginConfig {
            node_name: NODE.to_owned(),
            driver: DRIVER.to_owned(),
            sockets: sockets.clone(),
            cdi_dir: self.cdi_dir.clone(),
            state_dir: self.plugin_dir.clone(),
            share_replicas: 4,
            boot_id: "boot-test".to_owned(),
            recovery_interval: self.recovery_interval,
            drain_grace: Duration::from_secs(5),
            serve_health: true,
            mps: self.mps.clone(),
            mps_check_interval: Duration::from_millis(200),
        };
        let readiness = Readiness::new(&[
            READY_SOCKETS,
            READY_REGISTERED,
            READY_PUBLISHED,
            READY_CHECKPOINT,
        ]);
        let mut registry = Registry::default();
        let metrics = PrepareMetrics::register(&mut registry);
        let publisher_readiness = readiness.clone();
        let parts = PluginParts {
            inventory,
            control: self.control.clone(),
            claims: Arc::new(KubeClaimSource::new(api.client())),
            // Stands in for the ResourceSlice publisher: publishes nothing, reports success.
            publisher: Box::pin(async move {
                publisher_readiness.set(READY_PUBLISHED, true, "test: nothing to publish");
                std::future::pending::<()>().await;
            }),
        };
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(runtime::run(
            config,
            parts,
            metrics,
            readiness.clone(),
            shutdown.clone(),
        ));
        let plugin = RunningPlugin {
            sockets,
            readiness,
            registry: Arc::new(registry),
            shutdown,
            task,
        };
        plugin.wait_for_sockets().await;
        plugin
    }
}

// === running plugin ===

pub struct RunningPlugin {
    pub sockets: SocketPaths,
    pub readiness: Readiness,
    pub registry: Arc<Registry>,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), RuntimeError>>,
}

impl RunningPlugin {
    async fn wait_for_sockets(&self) {
        for _ in 0..500 {
            if self
                .readiness
                .report()
                .contains(&format!("ok {READY_SOCKETS}"))
            {
                return;
            }
            assert!(
                !self.task.is_finished(),
                "the plugin stopped while starting"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("sockets never came up: {}", self.readiness.report());
    }

    /// A channel to a socket, dialled the way the kubelet does (`unix:<path>`, plaintext).
    async fn channel(path: PathBuf) -> Channel {
        Endpoint::try_from("http://[::]:50051")
            .unwrap()
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
            }))
            .await
            .unwrap()
    }

    pub async fn registration(&self) -> RegistrationClient<Channel> {
        RegistrationClient::new(Self::channel(self.sockets.registration.clone()).await)
    }

    pub async fn v1(&self) -> V1Client<Channel> {
        V1Client::new(Self::channel(self.sockets.dra.clone()).await)
    }

    /// v1 NodePrepareResources for `claims` (namespace, name, UID) on a fresh connection, as
    /// the kubelet sends it; the call itself must succeed (per-claim errors are in the answer).
    pub async fn prepare_v1(
        &self,
        claims: &[(&str, &str, &str)],
    ) -> v1::NodePrepareResourcesResponse {
        self.v1()
            .await
            .node_prepare_resources(v1::NodePrepareResourcesRequest {
                claims: v1_claims(claims),
            })
            .await
            .unwrap()
            .into_inner()
    }

    /// v1 NodeUnprepareResources for `claims` (namespace, name, UID), like [`Self::prepare_v1`].
    pub async fn unprepare_v1(
        &self,
        claims: &[(&str, &str, &str)],
    ) -> v1::NodeUnprepareResourcesResponse {
        self.v1()
            .await
            .node_unprepare_resources(v1::NodeUnprepareResourcesRequest {
                claims: v1_claims(claims),
            })
            .await
            .unwrap()
            .into_inner()
    }

    pub async fn v1beta1(&self) -> V1beta1Client<Channel> {
        V1beta1Client::new(Self::channel(self.sockets.dra.clone()).await)
    }

    pub async fn health(&self) -> HealthClient<Channel> {
        HealthClient::new(Self::channel(self.sockets.dra.clone()).await)
    }

    pub fn metrics(&self) -> String {
        tessera::metrics::encode(&self.registry).unwrap()
    }

    /// SIGTERM: stop, wait for the runtime to return.
    pub async fn stop(self) -> Result<(), RuntimeError> {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the plugin did not stop")
            .unwrap()
    }
}

/// The v1 claim references of (namespace, name, UID) triples.
/// The next report on a health stream; a stream that stays silent for 10 s fails the test.
pub async fn next_report(
    stream: &mut tonic::Streaming<NodeWatchResourcesResponse>,
) -> NodeWatchResourcesResponse {
    tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("a health report within 10 s")
        .expect("stream ok")
        .expect("stream open")
}

pub fn v1_claims(claims: &[(&str, &str, &str)]) -> Vec<v1::Claim> {
    claims
        .iter()
        .map(|(namespace, name, uid)| v1::Claim {
            namespace: (*namespace).to_owned(),
            name: (*name).to_owned(),
            uid: (*uid).to_owned(),
        })
        .collect()
}
