//! The kubelet plugin against a real API server and scheduler: the plugin runtime (the code
//! path of `tessera plugin`, with fake GPUs) publishes a fake profile's slices for a real
//! node; a DeviceClass, a ResourceClaim for one whole GPU and a Pod using it are created;
//! the real scheduler allocates the claim from those slices; then NodePrepareResources and
//! NodeUnprepareResources are driven over the plugin's DRA socket as the kubelet would,
//! with the claim read back from the API server, and the CDI spec checked on disk.
//!
//! The Pod runs `pause` and only has to be scheduled: no kubelet plugin is registered on
//! the node, so it never starts. Everything created is deleted afterwards, also when an
//! assertion fails.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::resource::v1::{DeviceClass, ResourceClaim};
use kube::api::{Api, DeleteParams, PostParams};
use prometheus_client::registry::Registry;
use serde_json::json;
use tessera::admin::Readiness;
use tessera::discovery::FakeProfile;
use tessera::model::Inventory;
use tessera::plugin::proto::dra_v1 as v1;
use tessera::plugin::proto::dra_v1::dra_plugin_client::DraPluginClient;
use tessera::plugin::runtime::{self, PluginConfig, PluginParts, RuntimeError};
use tessera::plugin::{READY_CHECKPOINT, READY_REGISTERED, READY_SOCKETS, SocketPaths};
use tessera::prepare::{FakeGpuControl, KubeClaimSource, MpsConfig, PrepareMetrics};
use tessera::publish::{
    FeatureChoice, FeatureLevel, Publisher, PublisherConfig, READINESS_CONDITION as READY_PUBLISHED,
};
use tokio::net::UnixStream;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::support::{cluster_client, report_delete, schedulable_node};

/// The driver the DeviceClass selects and the plugin serves.
const DRIVER: &str = "gpu.tessera.dev";
/// Where the claim and pod live.
const NAMESPACE: &str = "default";
/// How long the scheduler gets to allocate the claim.
const ALLOCATION_TIMEOUT: Duration = Duration::from_secs(120);
/// The claim's one request.
const REQUEST: &str = "gpu";

/// The objects one run creates, named with a per-run suffix.
struct Created {
    class: String,
    claim: String,
    pod: String,
}

impl Created {
    fn new() -> Self {
        // Unique enough per run: a rerun never collides with a leftover being deleted.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_nanos();
        let suffix = format!("{:08x}", (nanos as u32) ^ std::process::id());
        Created {
            class: format!("tessera-e2e-gpu-{suffix}"),
            claim: format!("tessera-e2e-claim-{suffix}"),
            pod: format!("tessera-e2e-pod-{suffix}"),
        }
    }

    fn device_class(&self) -> DeviceClass {
        serde_json::from_value(json!({
            "apiVersion": "resource.k8s.io/v1",
            "kind": "DeviceClass",
            "metadata": {"name": self.class},
            "spec": {"selectors": [{"cel": {"expression": format!(
                "device.driver == \"{DRIVER}\" && device.attributes[\"{DRIVER}\"].type == \"gpu\""
            )}}]},
        }))
        .expect("DeviceClass")
    }

    fn resource_claim(&self) -> ResourceClaim {
        serde_json::from_value(json!({
            "apiVersion": "resource.k8s.io/v1",
            "kind": "ResourceClaim",
            "metadata": {"name": self.claim, "namespace": NAMESPACE},
            "spec": {"devices": {"requests": [{
                "name": REQUEST,
                "exactly": {
                    "deviceClassName": self.class,
                    "allocationMode": "ExactCount",
                    "count": 1,
                },
            }]}},
        }))
        .expect("ResourceClaim")
    }

    /// A pause pod pinned to `node` by field affinity (so the scheduler, not `nodeName`,
    /// places it and therefore allocates the claim), tolerating every taint.
    fn pod(&self, node: &str) -> Pod {
        serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": self.pod, "namespace": NAMESPACE},
            "spec": {
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchFields": [
                        {"key": "metadata.name", "operator": "In", "values": [node]},
                    ]}],
                }}},
                "tolerations": [{"operator": "Exists"}],
                "terminationGracePeriodSeconds": 0,
                "resourceClaims": [{"name": "gpu", "resourceClaimName": self.claim}],
                "containers": [{
                    "name": "pause",
                    "image": "registry.k8s.io/pause:3.10",
                    "resources": {"claims": [{"name": "gpu"}]},
                }],
            },
        }))
        .expect("Pod")
    }

    /// Delete everything, each delete on its own so one failure does not leave the rest.
    async fn delete(&self, client: &kube::Client) {
        let now = DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::default()
        };
        let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
        report_delete("pod", &self.pod, pods.delete(&self.pod, &now).await.err());
        let claims: Api<ResourceClaim> = Api::namespaced(client.clone(), NAMESPACE);
        report_delete(
            "claim",
            &self.claim,
            claims.delete(&self.claim, &now).await.err(),
        );
        let classes: Api<DeviceClass> = Api::all(client.clone());
        report_delete(
            "device class",
            &self.class,
            classes.delete(&self.class, &now).await.err(),
        );
    }
}

/// The plugin runtime as `tessera plugin --fake-gpus h100x8 --features ga` runs it, with
/// its directories in a temp dir.
struct Plugin {
    _dir: tempfile::TempDir,
    sockets: SocketPaths,
    cdi_dir: PathBuf,
    readiness: Readiness,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), RuntimeError>>,
}

impl Plugin {
    fn start(client: &kube::Client, publisher: Publisher, inventory: &Inventory) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        // As on a node: the kubelet's plugins/ exists, the plugin creates only its own dir.
        std::fs::create_dir(dir.path().join("plugins")).expect("plugins dir");
        let plugin_dir = dir.path().join("plugins").join(DRIVER);
        let sockets = SocketPaths::new(&dir.path().join("registry"), &plugin_dir, DRIVER, None);
        let cdi_dir = dir.path().join("cdi");
        let config = PluginConfig {
            node_name: publisher.config().node_name.clone(),
            driver: DRIVER.to_owned(),
            sockets: sockets.clone(),
            cdi_dir: cdi_dir.clone(),
            state_dir: plugin_dir,
            share_replicas: 0,
            boot_id: "tessera-e2e".to_owned(),
            recovery_interval: Duration::from_secs(3600),
            drain_grace: Duration::from_secs(5),
            serve_health: true,
            mps: MpsConfig {
                root: dir.path().join("mps"),
                control_binary: Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/fixtures/fake-mps-control"),
            },
            mps_check_interval: Duration::from_secs(10),
        };
        let readiness = Readiness::new(&[
            READY_SOCKETS,
            READY_REGISTERED,
            READY_PUBLISHED,
            READY_CHECKPOINT,
        ]);
        let shutdown = CancellationToken::new();
        let (_keep, inventory_rx) = tokio::sync::watch::channel(inventory.clone());
        let parts = PluginParts {
            inventory: inventory_rx.clone(),
            control: Arc::new(FakeGpuControl::with_device_nodes()),
            claims: Arc::new(KubeClaimSource::new(client.clone())),
            publisher: Box::pin(publisher.run(inventory_rx, readiness.clone(), shutdown.clone())),
        };
        let metrics = PrepareMetrics::register(&mut Registry::default());
        let task = tokio::spawn(runtime::run(
            config,
            parts,
            metrics,
            readiness.clone(),
            shutdown.clone(),
        ));
        Plugin {
            _dir: dir,
            sockets,
            cdi_dir,
            readiness,
            shutdown,
            task,
        }
    }

    /// Wait until the sockets listen and the slices are published.
    async fn wait_until_serving(&self) {
        for _ in 0..600 {
            let report = self.readiness.report();
            if report.contains(&format!("ok {READY_SOCKETS}"))
                && report.contains(&format!("ok {READY_PUBLISHED}"))
            {
                return;
            }
            assert!(!self.task.is_finished(), "the plugin stopped: {report}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the plugin never served: {}", self.readiness.report());
    }

    /// A v1 DRA client dialled the way the kubelet dials (`unix:<path>`, plaintext).
    async fn dra(&self) -> DraPluginClient<Channel> {
        let path = self.sockets.dra.clone();
        let channel =
            Endpoint::try_from("http://[::]:50051")
                .expect("endpoint")
                .connect_with_connector(tower::service_fn(move |_: Uri| {
                    let path = path.clone();
                    async move {
                        Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?))
                    }
                }))
                .await
                .expect("dial the DRA socket");
        DraPluginClient::new(channel)
    }

    fn cdi_spec_path(&self, claim_uid: &str) -> PathBuf {
        self.cdi_dir
            .join(format!("k8s.{DRIVER}-claim_{claim_uid}.json"))
    }

    /// Stop it; an error is returned, not raised, so clean-up goes on.
    async fn stop(self) -> Result<(), String> {
        self.shutdown.cancel();
        match tokio::time::timeout(Duration::from_secs(10), self.task).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(error))) => Err(format!("the plugin failed: {error}")),
            Ok(Err(join)) => Err(format!("the plugin task died: {join}")),
            Err(_) => Err("the plugin did not stop within 10 s".to_owned()),
        }
    }
}

/// Poll the claim until the scheduler allocated it, or fail with the pod's conditions.
async fn wait_for_allocation(client: &kube::Client, created: &Created) -> ResourceClaim {
    let claims: Api<ResourceClaim> = Api::namespaced(client.clone(), NAMESPACE);
    let deadline = tokio::time::Instant::now() + ALLOCATION_TIMEOUT;
    while tokio::time::Instant::now() < deadline {
        let claim = claims.get(&created.claim).await.expect("read the claim");
        if claim
            .status
            .as_ref()
            .and_then(|s| s.allocation.as_ref())
            .is_some()
        {
            return claim;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let pod = pods.get(&created.pod).await.ok();
    let conditions = pod
        .and_then(|p| p.status)
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .map(|c| format!("{}={} {:?}", c.type_, c.status, c.message))
        .collect::<Vec<_>>();
    panic!(
        "claim {} not allocated within {ALLOCATION_TIMEOUT:?}; pod conditions: {conditions:?}",
        created.claim
    );
}

/// The body: everything that may fail between creating and deleting.
async fn prepare_an_allocated_claim(
    client: &kube::Client,
    node: &str,
    created: &Created,
    plugin: &Plugin,
    inventory: &Inventory,
) {
    plugin.wait_until_serving().await;
    println!("plugin: {}", plugin.readiness.report());

    let classes: Api<DeviceClass> = Api::all(client.clone());
    classes
        .create(&PostParams::default(), &created.device_class())
        .await
        .expect("create the DeviceClass");
    let claims: Api<ResourceClaim> = Api::namespaced(client.clone(), NAMESPACE);
    claims
        .create(&PostParams::default(), &created.resource_claim())
        .await
        .expect("create the ResourceClaim");
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    pods.create(&PostParams::default(), &created.pod(node))
        .await
        .expect("create the Pod");

    let claim = wait_for_allocation(client, created).await;
    let uid = claim.metadata.uid.clone().expect("claim UID");
    let results = claim
        .status
        .as_ref()
        .and_then(|s| s.allocation.as_ref())
        .and_then(|a| a.devices.as_ref())
        .and_then(|d| d.results.clone())
        .unwrap_or_default();
    assert_eq!(results.len(), 1, "one device for one request: {results:?}");
    let result = &results[0];
    assert_eq!(
        (
            result.driver.as_str(),
            result.pool.as_str(),
            result.request.as_str()
        ),
        (DRIVER, node, REQUEST)
    );
    let uuids: BTreeMap<String, &str> = inventory
        .gpus
        .iter()
        .map(|g| (format!("gpu-{}", g.index), g.uuid.as_str()))
        .collect();
    let uuid = *uuids
        .get(&result.device)
        .unwrap_or_else(|| panic!("allocated {} is not a whole GPU", result.device));
    println!(
        "allocated {}/{} ({uuid}) to {uid}",
        result.pool, result.device
    );

    // As the kubelet: prepare over the socket; the plugin reads the claim from the server.
    let mut dra = plugin.dra().await;
    let wire_claim = v1::Claim {
        namespace: NAMESPACE.to_owned(),
        name: created.claim.clone(),
        uid: uid.clone(),
    };
    let response = dra
        .node_prepare_resources(v1::NodePrepareResourcesRequest {
            claims: vec![wire_claim.clone()],
        })
        .await
        .expect("NodePrepareResources")
        .into_inner();
    let answer = response.claims.get(&uid).expect("an answer for the claim");
    assert_eq!(answer.error, "");
    assert_eq!(answer.devices.len(), 1, "{answer:?}");
    let device = &answer.devices[0];
    assert_eq!(device.request_names, vec![REQUEST.to_owned()]);
    assert_eq!(device.pool_name, node);
    assert_eq!(device.device_name, result.device);
    assert_eq!(device.share_id, None);

    // The CDI spec names the fake GPU, and the IDs handed to the kubelet point into it.
    let spec_path = plugin.cdi_spec_path(&uid);
    let spec = read_json(&spec_path);
    let kind = format!("k8s.{DRIVER}/claim");
    assert_eq!(spec["kind"], kind);
    assert_eq!(
        spec["containerEdits"]["env"][0],
        format!("NVIDIA_VISIBLE_DEVICES={uuid}")
    );
    let names: Vec<String> = spec["devices"]
        .as_array()
        .expect("spec devices")
        .iter()
        .map(|d| format!("{kind}={}", d["name"].as_str().expect("device name")))
        .collect();
    assert_eq!(device.cdi_device_ids, names);

    // Asked again (a kubelet retry), the same answer and nothing new.
    let again = dra
        .node_prepare_resources(v1::NodePrepareResourcesRequest {
            claims: vec![wire_claim.clone()],
        })
        .await
        .expect("repeated NodePrepareResources")
        .into_inner();
    assert_eq!(again.claims.get(&uid), Some(answer));

    let unprepared = dra
        .node_unprepare_resources(v1::NodeUnprepareResourcesRequest {
            claims: vec![wire_claim],
        })
        .await
        .expect("NodeUnprepareResources")
        .into_inner();
    assert_eq!(
        unprepared.claims.get(&uid).map(|c| c.error.as_str()),
        Some("")
    );
    assert!(!spec_path.exists(), "{} is left", spec_path.display());
}

fn read_json(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).expect("CDI spec JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: TESSERA_E2E_KUBECONFIG=<file> cargo test --test e2e -- --ignored"]
async fn a_scheduled_claim_is_prepared_and_unprepared_over_the_dra_socket() {
    let test = "a_scheduled_claim_is_prepared_and_unprepared_over_the_dra_socket";
    let client = cluster_client(test).await;
    // The chart tests run tessera's own plugin for this driver on a real node; publishing
    // and deleting its slices here at the same time would break both.
    let _turn = crate::release::exclusive_turn().await;
    let node = schedulable_node(&client).await;
    let config = PublisherConfig {
        // GA slices: accepted by every server from 1.34 on.
        features: FeatureChoice::Fixed(FeatureLevel::Ga),
        retry_initial: Duration::from_millis(200),
        retry_max: Duration::from_secs(2),
        ..PublisherConfig::new(node.clone(), DRIVER)
    };
    let slices = Publisher::new(client.clone(), config.clone());
    // Leftovers of an interrupted earlier run.
    slices.delete_all().await.expect("clean up before");
    let inventory = FakeProfile::H100x8.inventory(&node);
    let plugin = Plugin::start(&client, Publisher::new(client.clone(), config), &inventory);
    let created = Created::new();

    let outcome = AssertUnwindSafe(prepare_an_allocated_claim(
        &client, &node, &created, &plugin, &inventory,
    ))
    .catch_unwind()
    .await;

    // Clean up in every case: pod and claim first (they hold the allocation), then the
    // class, then the plugin (its publisher would put slices back), then the slices.
    created.delete(&client).await;
    let stopped = plugin.stop().await;
    match slices.delete_all().await {
        Ok(deleted) => println!("{test}: deleted {} slice(s)", deleted.len()),
        Err(error) => eprintln!("clean-up: cannot delete the slices: {error}"),
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    if let Err(error) = stopped {
        panic!("{error}");
    }
}
