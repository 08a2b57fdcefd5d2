//! The newcomer walk-through of `docs/install.md` (section 5, "Verify with fake GPUs"), run
//! step by step against a real cluster with the files the doc names:
//!
//! 2. mark a node as a fake GPU node (`tessera.dev/fake-gpus=true`) priced at $16/h
//!    (`tessera.dev/hourly-price=16`);
//! 3. `helm upgrade --install tessera deploy/helm/tessera -f …/ci/fake-values.yaml` (real Helm
//!    from `.ci/install-helm`) with the image set, then wait for the plugin DaemonSet, the
//!    extender Deployment and the second scheduler to roll out;
//! 4. the four DeviceClasses exist and the node's ResourceSlices are exactly what
//!    `tessera slices` prints offline for the same profile and feature level;
//! 5. apply `deploy/examples/cheapest-slice.yaml`: the pod runs, its claim is allocated a `mig`
//!    device of `gpu.tessera.dev` from the `gpu/mig` alternative with at least 16 GiB, and its log
//!    is the one `NVIDIA_VISIBLE_DEVICES=<MIG UUID>` line the CDI spec injected;
//! 6. the extender's `/metrics` has the pod's `allocation_cost_dollars_per_hour` line priced
//!    $2 per GPU-hour times the partition's compute share, idle plus allocated cost is the node's
//!    $16, and filter calls were answered (the scheduler really calls the extender);
//! 7. `/explain?pod=NS/cheapest-slice` names the node, read at the annotated price, with outcome
//!    `no_gpu_demand` (the claim is already allocated), and lists the MIG device the pod holds
//!    at the cost its `/metrics` line shows;
//! 8. everything is deleted again, also when a step fails: the example first (so the plugin can
//!    unprepare it), then the release, the namespaces, leftover slices and the node's marks
//!    (restored to what they were).
//!
//! `/metrics` and `/explain` are read through the API server's service proxy, as the doc's
//! `kubectl get --raw` commands do: no port-forward.
//!
//! Differences from the doc, all of naming: the release goes into a scratch namespace
//! `tessera-e2e-walk-<id>` and the example into `tessera-e2e-walk-<id>-apps` (the doc: `tessera`
//! and `default`); the node is `TESSERA_E2E_NODE` or the first Ready one (the doc:
//! `tessera-control-plane`); the image is `TESSERA_E2E_IMAGE` (the doc: `tessera:dev` loaded
//! into kind). On a server whose feature level is `ga` the test uses `h100x8-mig-static`, as the
//! doc says to on 1.34/1.35 without alpha gates.
//!
//! Assumes: a throw-away 1.34+ cluster with no other tessera release (the DeviceClasses are
//! cluster-wide and named after the driver); nodes that can pull `TESSERA_E2E_IMAGE`,
//! `registry.k8s.io/kube-scheduler:v<server version>` (the chart's second scheduler) and
//! `busybox:1.36`; a container runtime with CDI on; and the permission to label and annotate a
//! node and to use the service proxy. The scheduler step is the doc's option (a), the second
//! scheduler the chart deploys: it needs no control-plane access. Option (b), adding the
//! extender to the default kube-scheduler's `--config`, changes a static pod on the control
//! plane and is not something a test against an arbitrary cluster can do; its config file is
//! checked offline (`tests/deploy_files.rs`) and by dry-run (`e2e/chart.rs`).
//!
//! The install, rollout, service proxy and removal are `e2e/release.rs`'s, shared with
//! `e2e/placement.rs`; the two never overlap on a cluster: in one process they take turns, and
//! either refuses to start (fails, naming the namespace) while the other's scratch namespace is
//! active (see `release.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::panic::AssertUnwindSafe;
use std::process::Command;
use std::time::Duration;

use futures::FutureExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::resource::v1::{DeviceClass, ResourceClaim, ResourceSlice};
use kube::api::{Api, DeleteParams, ListParams, LogParams, Patch, PatchParams};
use serde_json::{Value, json};
use tessera::cluster::quantity::parse_quantity;
use tessera::market::PriceSource;
use tessera::model::mig::{GpuProduct, profile};
use tessera::publish::{FeatureLevel, level_for_version};

use crate::release::{POLL, ROLLOUT_TIMEOUT, Release, sample_sum, samples};
use crate::support::{apply, repo, report_delete, schedulable_node, server_version, wait_for};

const TEST: &str = "walkthrough";
const DRIVER: &str = "gpu.tessera.dev";
const CLASSES: [&str; 4] = [
    "gpu.tessera.dev",
    "mig.gpu.tessera.dev",
    "share.gpu.tessera.dev",
    "shared.gpu.tessera.dev",
];
const EXAMPLE: &str = "deploy/examples/cheapest-slice.yaml";
const POD: &str = "cheapest-slice";
/// The example asks for at least this much GPU memory.
const MIN_MEMORY: u64 = 16 << 30;
const FAKE_LABEL: &str = "tessera.dev/fake-gpus";
const PRICE_ANNOTATION: &str = "tessera.dev/hourly-price";
/// The doc's price: $16/h for the node's 8 fake GPUs, $2 per GPU-hour.
const NODE_PRICE: f64 = 16.0;
const FAKE_GPUS: f64 = 8.0;
const MANAGER: &str = "tessera-e2e";
const POD_TIMEOUT: Duration = Duration::from_secs(180);
/// The cost gauges are refreshed periodically from the extender's cache.
const METRICS_TIMEOUT: Duration = Duration::from_secs(90);

/// One run's release and what it changed on the node.
struct Walk {
    release: Release,
    node: String,
    /// The node's fake-GPU label and price annotation before the run.
    node_before: (Option<String>, Option<String>),
}

#[tokio::test]
#[ignore = "needs a cluster: TESSERA_E2E_KUBECONFIG=<file> cargo test --test e2e -- --ignored"]
async fn walkthrough() {
    let release = Release::start(TEST, "tessera-e2e-walk").await;
    let node = schedulable_node(&release.client).await;
    let nodes: Api<Node> = Api::all(release.client.clone());
    let before = nodes.get(&node).await.expect("read the node").metadata;
    let walk = Walk {
        node_before: (
            before.labels.and_then(|l| l.get(FAKE_LABEL).cloned()),
            before
                .annotations
                .and_then(|a| a.get(PRICE_ANNOTATION).cloned()),
        ),
        node,
        release,
    };
    let outcome = AssertUnwindSafe(walk.run()).catch_unwind().await;
    walk.clean_up().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

impl Walk {
    async fn run(&self) {
        let (major, minor) = server_version(&self.release.client).await;
        let level = level_for_version(&major, &minor).expect("a 1.34+ API server");
        // docs/install.md: on 1.34/1.35 without alpha gates, static MIG partitions.
        let profile = if level == FeatureLevel::Ga {
            "h100x8-mig-static"
        } else {
            "h100x8-mig-dynamic"
        };
        println!(
            "{TEST}: node {}, level {level}, profile {profile}",
            self.node
        );

        // Step 2: the fake GPU node and its price.
        self.mark_node(Some("true"), Some(&NODE_PRICE.to_string()))
            .await;

        // Step 3: install and roll out.
        self.release.install(profile);
        // The node marked in step 2 runs the plugin.
        self.release.rolled_out(1).await;

        // Step 4: the classes and the slices `tessera slices` prints offline.
        let classes: Api<DeviceClass> = Api::all(self.release.client.clone());
        for class in CLASSES {
            classes
                .get(class)
                .await
                .unwrap_or_else(|e| panic!("DeviceClass {class}: {e}"));
        }
        let slices = self.slices_as_offline(profile, level).await;

        // Step 5: the example, its allocation and what the CDI spec injected.
        self.apply_example().await;
        let pod = self.running_pod().await;
        let landed = pod.spec.as_ref().and_then(|s| s.node_name.clone());
        assert_eq!(
            landed.as_deref(),
            Some(self.node.as_str()),
            "only {} has fake GPUs",
            self.node
        );
        let (claim, device) = self.allocated_mig_device(&pod, &slices).await;
        self.pod_log_names_the_mig_device(&device).await;

        // Step 6: its cost in /metrics.
        let cost = self.cost_in_metrics(&claim, &device).await;

        // Step 7: /explain, with the same cost.
        self.explain_names_the_node(&claim, &device, cost).await;
    }

    /// The node's slices, once they are exactly (slice names, devices, slice count) what
    /// `tessera slices --fake-gpus <profile> --features <level>` prints for the node.
    async fn slices_as_offline(&self, profile: &str, level: FeatureLevel) -> Vec<ResourceSlice> {
        let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(["slices", "--fake-gpus", profile, "--node-name", &self.node])
            .args(["--features", &level.to_string(), "--output", "json"])
            .output()
            .expect("run tessera slices");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let list: Value = serde_json::from_slice(&out.stdout).expect("tessera slices JSON");
        let offline: Vec<ResourceSlice> =
            serde_json::from_value(list["items"].clone()).expect("ResourceSlices");
        let want = shape(&offline);
        assert!(!want.1.is_empty(), "tessera slices printed no devices");

        let api: Api<ResourceSlice> = Api::all(self.release.client.clone());
        let fields = format!("spec.driver={DRIVER},spec.nodeName={}", self.node);
        wait_for("the plugin's ResourceSlices", ROLLOUT_TIMEOUT, POLL, || async {
            let items = api
                .list(&ListParams::default().fields(&fields))
                .await
                .map_err(|e| e.to_string())?
                .items;
            let got = shape(&items);
            if got == want {
                Ok(items)
            } else {
                Err(format!(
                    "slices {:?} with {} devices (count {:?}); tessera slices: {:?} with {} devices (count {:?})",
                    got.0,
                    got.1.len(),
                    got.2,
                    want.0,
                    want.1.len(),
                    want.2
                ))
            }
        })
        .await
    }

    async fn apply_example(&self) {
        let text = std::fs::read_to_string(repo().join(EXAMPLE)).expect("read the example");
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("example YAML");
        for obj in docs.iter().filter(|d| !d.is_null()) {
            apply(
                &self.release.client,
                obj,
                &self.release.apps,
                MANAGER,
                false,
            )
            .await
            .unwrap_or_else(|e| panic!("apply {EXAMPLE}: {e}"));
        }
    }

    async fn running_pod(&self) -> Pod {
        let pods: Api<Pod> = Api::namespaced(self.release.client.clone(), &self.release.apps);
        wait_for(&format!("pod {POD} to run"), POD_TIMEOUT, POLL, || async {
            let pod = pods.get(POD).await.map_err(|e| e.to_string())?;
            let status = pod.status.clone().unwrap_or_default();
            match status.phase.as_deref() {
                Some("Running") => Ok(pod),
                Some(phase @ ("Failed" | "Succeeded")) => panic!("pod {POD} ended: {phase}"),
                phase => Err(format!(
                    "phase {phase:?}, conditions {:?}, containers {:?}",
                    status
                        .conditions
                        .unwrap_or_default()
                        .iter()
                        .map(|c| format!("{}={} {:?}", c.type_, c.status, c.message))
                        .collect::<Vec<_>>(),
                    status
                        .container_statuses
                        .unwrap_or_default()
                        .iter()
                        .map(|c| format!("{:?}", c.state))
                        .collect::<Vec<_>>(),
                )),
            }
        })
        .await
    }

    /// The pod's claim and its one device, checked to be a `mig` device of the driver on the
    /// node with enough memory, from the example's `mig` alternative.
    async fn allocated_mig_device(&self, pod: &Pod, slices: &[ResourceSlice]) -> (String, Value) {
        let claim_name = pod
            .status
            .as_ref()
            .and_then(|s| s.resource_claim_statuses.as_ref())
            .and_then(|c| c.first())
            .and_then(|c| c.resource_claim_name.clone())
            .expect("the pod's generated claim name");
        let claims: Api<ResourceClaim> =
            Api::namespaced(self.release.client.clone(), &self.release.apps);
        let claim = claims.get(&claim_name).await.expect("read the claim");
        let results = claim
            .status
            .and_then(|s| s.allocation)
            .and_then(|a| a.devices)
            .and_then(|d| d.results)
            .unwrap_or_default();
        assert_eq!(results.len(), 1, "claim {claim_name}: {results:?}");
        let r = &results[0];
        assert_eq!(r.driver, DRIVER);
        assert_eq!(r.pool, self.node);
        assert_eq!(
            r.request, "gpu/mig",
            "the first firstAvailable alternative fits"
        );
        let device = slices
            .iter()
            .flat_map(|s| s.spec.devices.iter().flatten())
            .find(|d| d.name == r.device)
            .unwrap_or_else(|| panic!("{} is not in the node's slices", r.device));
        let device = serde_json::to_value(device).unwrap();
        assert_eq!(device["attributes"]["type"]["string"], "mig", "{device}");
        let memory = device["capacity"]["memory"]["value"].as_str().unwrap();
        assert!(parse_quantity(memory).unwrap() >= MIN_MEMORY, "{device}");
        println!("{TEST}: claim {claim_name} got {}", r.device);
        (claim_name, device)
    }

    /// `kubectl logs cheapest-slice`: one line, the MIG device's UUID: its `uuid` attribute for
    /// a static MIG device, `MIG-fake-<gpu>-<n>` for one the fake GPUs created on prepare.
    async fn pod_log_names_the_mig_device(&self, device: &Value) {
        let pods: Api<Pod> = Api::namespaced(self.release.client.clone(), &self.release.apps);
        let log = wait_for("the pod's log", POD_TIMEOUT, POLL, || async {
            let log = pods
                .logs(POD, &LogParams::default())
                .await
                .map_err(|e| e.to_string())?;
            if log.trim().is_empty() {
                Err("empty".to_owned())
            } else {
                Ok(log)
            }
        })
        .await;
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), 1, "{log}");
        if let Some(uuid) = device["attributes"]["uuid"]["string"].as_str() {
            assert_eq!(lines[0], format!("NVIDIA_VISIBLE_DEVICES={uuid}"));
            return;
        }
        let gpu = device["attributes"]["index"]["int"].as_i64().unwrap();
        let prefix = format!("NVIDIA_VISIBLE_DEVICES=MIG-fake-{gpu}-");
        let serial = lines[0].strip_prefix(&prefix);
        assert!(
            serial.is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit())),
            "log {log:?}, expected {prefix}<n>"
        );
    }

    /// The pod's cost line, checked; returns its cost, $/h.
    async fn cost_in_metrics(&self, claim: &str, device: &Value) -> f64 {
        let text = wait_for("the pod's cost line", METRICS_TIMEOUT, POLL, || async {
            let text = self.release.proxy_get("admin", "metrics").await?;
            let found = samples(&text, "tessera_extender_allocation_cost_dollars_per_hour")
                .iter()
                .any(|(l, _)| l.get("pod").map(String::as_str) == Some(POD));
            if found {
                Ok(text)
            } else {
                Err(format!("no allocation line with pod=\"{POD}\""))
            }
        })
        .await;
        let costs = samples(&text, "tessera_extender_allocation_cost_dollars_per_hour");
        let (labels, cost) = costs
            .iter()
            .find(|(l, _)| l.get("pod").map(String::as_str) == Some(POD))
            .unwrap();
        let want = BTreeMap::from(
            [
                ("namespace", self.release.apps.as_str()),
                ("pod", POD),
                ("claim", claim),
                ("node", self.node.as_str()),
                ("device", device["name"].as_str().unwrap()),
                ("type", "mig"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        assert_eq!(labels, &want);

        // docs/cost-model.md: $ per GPU-hour times the MIG profile's share of the GPU's
        // compute slices.
        let attr = |name: &str| device["attributes"][name]["string"].as_str().unwrap();
        let product = GpuProduct::from_product_name(attr("model")).expect("a catalogued GPU");
        let mig = profile(product, attr("profile")).expect("a catalogued profile");
        let fraction = f64::from(mig.compute_slices) / f64::from(product.total_compute_slices());
        let expected = NODE_PRICE / FAKE_GPUS * fraction;
        assert!(
            (cost - expected).abs() < 1e-6,
            "cost {cost}, expected {expected}"
        );

        let on_node = |(l, _): &&(BTreeMap<String, String>, f64)| {
            l.get("node").map(String::as_str) == Some(self.node.as_str())
        };
        let idle: f64 = samples(&text, "tessera_extender_idle_gpu_cost_dollars_per_hour")
            .iter()
            .filter(on_node)
            .map(|(_, v)| v)
            .sum();
        let allocated: f64 = costs.iter().filter(on_node).map(|(_, v)| v).sum();
        assert!(
            (idle + allocated - NODE_PRICE).abs() < 1e-6,
            "idle {idle} + allocated {allocated} is not the node's {NODE_PRICE} $/h"
        );

        let filters = sample_sum(
            &text,
            "tessera_extender_requests_total",
            &[("verb", "filter"), ("code", "200")],
        );
        // fake-values.yaml runs one extender replica, so this is the one the scheduler called.
        assert!(
            filters >= 1.0,
            "the extender answered no filter call:\n{text}"
        );
        println!("{TEST}: cost {cost} $/h, idle {idle} $/h, {filters} filter calls");
        *cost
    }

    async fn explain_names_the_node(&self, claim: &str, device: &Value, cost: f64) {
        let query = format!("explain?pod={}/{POD}&limit=15000", self.release.apps);
        let answer = wait_for("/explain of the pod", METRICS_TIMEOUT, POLL, || async {
            let text = self.release.proxy_get("http", &query).await?;
            serde_json::from_str::<Value>(&text).map_err(|e| format!("{e}: {text}"))
        })
        .await;
        assert_eq!(
            answer["pod"],
            format!("{}/{POD}", self.release.apps),
            "{answer}"
        );
        assert_eq!(answer["outcome"], "no_gpu_demand", "{answer}");
        let row = answer["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["node"] == self.node.as_str())
            .unwrap_or_else(|| panic!("/explain does not name {}: {answer}", self.node));
        let market = row["market"].as_str().unwrap();
        let priced = format!("16.0000 $/h for 8 GPUs ({})", PriceSource::Annotation);
        assert!(market.contains(&priced), "{market}");
        // What the pod holds, priced as its /metrics line.
        let allocated = answer["allocated"].as_array().unwrap();
        assert_eq!(allocated.len(), 1, "{answer}");
        let held = &allocated[0];
        assert_eq!(held["node"], self.node.as_str(), "{answer}");
        assert_eq!(held["claim"], claim, "{answer}");
        assert_eq!(held["device"], device["name"], "{answer}");
        assert_eq!(held["type"], "mig", "{answer}");
        let explained = held["hourlyCostUsd"].as_f64().unwrap();
        assert!(
            (explained - cost).abs() < 1e-9,
            "/explain {explained} $/h, /metrics {cost} $/h"
        );
    }

    /// Sets (`Some`) or removes (`None`) the fake-GPU label and the price annotation.
    async fn mark_node(&self, label: Option<&str>, price: Option<&str>) {
        let nodes: Api<Node> = Api::all(self.release.client.clone());
        let patch = json!({"metadata": {
            "labels": {FAKE_LABEL: label},
            "annotations": {PRICE_ANNOTATION: price},
        }});
        nodes
            .patch(&self.node, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap_or_else(|e| panic!("patch node {}: {e}", self.node));
    }

    async fn clean_up(&self) {
        // The example first, while the plugin still runs to unprepare its claim; a pod whose
        // claim cannot be unprepared would hold its namespace in Terminating.
        let pods: Api<Pod> = Api::namespaced(self.release.client.clone(), &self.release.apps);
        report_delete(
            "pod",
            POD,
            pods.delete(POD, &DeleteParams::default()).await.err(),
        );
        let gone = tokio::time::timeout(POD_TIMEOUT, async {
            while pods.get_opt(POD).await.is_ok_and(|p| p.is_some()) {
                tokio::time::sleep(POLL).await;
            }
        })
        .await;
        if gone.is_err() {
            eprintln!("clean-up: pod {POD} still there after {POD_TIMEOUT:?}");
        }
        self.release.remove().await;
        // The kubelet drops an unregistered plugin's slices after a grace period; do not wait.
        let slices: Api<ResourceSlice> = Api::all(self.release.client.clone());
        let fields = format!("spec.driver={DRIVER},spec.nodeName={}", self.node);
        if let Ok(list) = slices.list(&ListParams::default().fields(&fields)).await {
            for name in list.items.into_iter().filter_map(|s| s.metadata.name) {
                let err = slices.delete(&name, &DeleteParams::default()).await.err();
                report_delete("slice", &name, err);
            }
        }
        let (label, price) = &self.node_before;
        self.mark_node(label.as_deref(), price.as_deref()).await;
    }
}

/// Slice names, device names and `resourceSliceCount` of a pool.
fn shape(slices: &[ResourceSlice]) -> (BTreeSet<String>, BTreeSet<String>, BTreeSet<i64>) {
    let names = slices
        .iter()
        .filter_map(|s| s.metadata.name.clone())
        .collect();
    let devices = slices
        .iter()
        .flat_map(|s| s.spec.devices.iter().flatten())
        .map(|d| d.name.clone())
        .collect();
    let counts = slices
        .iter()
        .map(|s| s.spec.pool.resource_slice_count)
        .collect();
    (names, devices, counts)
}
