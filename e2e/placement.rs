//! Pods land where `GET /explain` says they should: the chart installed as the walk-through
//! installs it (`e2e/release.rs`: `ci/fake-values.yaml`, `TESSERA_E2E_IMAGE`, the chart's second
//! kube-scheduler wired to the extender), four fake GPU nodes at different prices and capacity
//! types, and pods of different shapes scheduled one at a time by that real kube-scheduler.
//!
//! 1. Install and roll out the release in `tessera-e2e-place-<id>`.
//! 2. Create four Node objects with no kubelet (`support::FakeNode`): on-demand at $32/h and
//!    $24/h, spot at $12/h, and spot at $8/h under an AWS interruption notice; publish each
//!    node's ResourceSlices for the `mixed` fake profile with the real publisher
//!    (`tessera::publish::Publisher`, driver from the release's `driverName`, feature level from
//!    the server version). `mixed` has whole GPUs and static MIG devices at every feature
//!    level, so both pod shapes fit on a 1.34 server too.
//! 3. For each pod in turn (a tolerant pod asking for a `1g.10gb` MIG slice, a checkpointed
//!    pod asking for a whole GPU, an intolerant pod asking for a whole GPU), each with a
//!    ResourceClaim, `schedulerName` = the release's `scheduler.schedulerName` and a scheduling
//!    gate so it stays pending:
//!    - poll `/explain` through the service proxy until its outcome is `scored` and every fake
//!      node has an evaluation; the passing fake node with the highest `rawScore` (strictly) is
//!      the prediction;
//!    - `/filter` and `/prioritize` (through the proxy, with the fake nodes, as kube-scheduler
//!      sends them) must agree: the same nodes pass, and the prediction alone has the top score
//!      (a tie would let kube-scheduler pick either);
//!    - remove the gate, wait for `spec.nodeName`: it must be the prediction, and the
//!      extender's counters must show it answered a filter and scored a prioritize call
//!      meanwhile (its chart entry is `ignorable`: an extender that failed would leave the
//!      choice to chance);
//!    - wait until `/explain` lists the pod's allocation, so the next pod's prediction counts
//!      it, as kube-scheduler will.
//!
//!    The noticed node must be refused for every pod, spot nodes for the intolerant one, and
//!    the intolerant pod must land on an on-demand node.
//! 4. Clean up, also when a step fails: pods deleted with grace period 0 (no kubelet will
//!    confirm a graceful delete), the nodes' slices and the nodes, then the release and the
//!    namespaces. A crashed run's nodes (label `tessera.dev/e2e=placement`) go at the next start.
//!
//! What else could make kube-scheduler choose differently, and why it does not here:
//! - other nodes: the pods' node selector (`tessera.dev/e2e-run=<id>`) matches only the fake
//!   nodes;
//! - taints: the node lifecycle controller taints nodes that never report
//!   (`node.kubernetes.io/not-ready`, `…/unreachable`, NoSchedule and NoExecute; none is
//!   PreferNoSchedule, the only effect TaintToleration scores) and the pods tolerate every taint
//!   (`operator: Exists`), so TaintToleration ties and the notice taint is left to the
//!   extender's filter;
//! - resource scores: the fake nodes' allocatable room is so large that the pods' default
//!   requests never move NodeResourcesFit's or BalancedAllocation's integer scores; no images,
//!   volumes, pod (anti-)affinity, owners or labels (so no default topology spreading); a
//!   DaemonSet that tolerates everything places one pod on every fake node alike;
//! - DRA: `exactly` requests, not `firstAvailable` (kube-scheduler 1.35+ scores nodes by which
//!   alternative fits); every fake node has the same devices, with room for all three pods;
//! - the extender's weight (`scheduler.extender.weight`, 5 in the chart) multiplies its score
//!   by 50 per point; with everything else tied any difference decides, and the prioritize
//!   check above makes sure there is one.
//!
//! Assumes what the walk-through assumes (a throw-away 1.34+ cluster without another tessera
//! release, nodes that can pull the images, the service proxy), plus the right to create and
//! delete Node objects, and a cluster whose cloud node lifecycle controller does not delete
//! Node objects without a cloud instance (kind, kubeadm, k3s do not; a cloud provider's may —
//! the test then fails saying a fake node vanished). It never runs together with the
//! walk-through: in one process they take turns, and either fails at start while the other's
//! scratch namespace is active (`e2e/release.rs`).
//!
//! Run: `TESSERA_E2E_KUBECONFIG=… TESSERA_E2E_IMAGE=tessera:dev cargo test --test e2e placement
//! -- --nocapture`.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::resource::v1::{ResourceClaim, ResourceSlice};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tessera::discovery::FakeProfile;
use tessera::publish::{Publisher, PublisherConfig};

use crate::release::{E2E_LABEL, POLL, Release, sample_sum};
use crate::support::{FakeNode, report_delete, wait_for};

const TEST: &str = "placement";
/// Fake nodes: name suffix, capacity type, whole-node price $/h, interruption notice.
const NODES: [(&str, &str, &str, bool); 4] = [
    ("dear", "on-demand", "32", false),
    ("cheap", "on-demand", "24", false),
    ("spot", "spot", "12", false),
    ("noticed", "spot", "8", true),
];
const PROFILE: FakeProfile = FakeProfile::Mixed;
/// The pods' node selector label; its value is the run id.
const RUN_LABEL: &str = "tessera.dev/e2e-run";
/// Holds each pod back until its prediction is recorded.
const GATE: &str = "tessera.dev/e2e-explained";
const PAUSE: &str = "registry.k8s.io/pause:3.10";
/// The extender's watch cache sees new objects within seconds.
const EXPLAIN_TIMEOUT: Duration = Duration::from_secs(90);
/// kube-scheduler retries an unschedulable pod at most every few seconds (backoff ≤ 10 s).
const BIND_TIMEOUT: Duration = Duration::from_secs(120);

/// What a test pod's one claim asks for.
#[derive(Debug, Clone, Copy)]
enum Ask {
    /// One `1g.10gb` MIG device (`mig.<driver>`, profile pinned as docs/extender.md reads it).
    MigSlice,
    /// One whole GPU (`<driver>`).
    WholeGpu,
}

/// The pods, in the order they are scheduled: name, `tessera.dev/interruption`, claim.
const PODS: [(&str, &str, Ask); 3] = [
    ("slice", "tolerant", Ask::MigSlice),
    ("whole", "checkpointed", Ask::WholeGpu),
    ("intolerant", "intolerant", Ask::WholeGpu),
];

struct Placement {
    release: Release,
    /// Value of [`RUN_LABEL`] on this run's nodes.
    run: String,
    /// Fake node names, in [`NODES`] order.
    nodes: Vec<String>,
}

/// One pod's prediction and where it went.
struct Placed {
    pod: &'static str,
    explained: String,
    landed: String,
}

#[tokio::test]
#[ignore = "needs a cluster: TESSERA_E2E_KUBECONFIG=<file> cargo test --test e2e -- --ignored"]
async fn pods_land_where_explain_says() {
    let release = Release::start(TEST, "tessera-e2e-place").await;
    let run = format!("{:x}", std::process::id());
    let placement = Placement {
        nodes: NODES
            .iter()
            .map(|(suffix, ..)| format!("tessera-e2e-place-{run}-{suffix}"))
            .collect(),
        run,
        release,
    };
    placement.remove_leftover_nodes().await;
    let outcome = AssertUnwindSafe(placement.run()).catch_unwind().await;
    placement.clean_up().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

impl Placement {
    async fn run(&self) {
        self.release.install(PROFILE.name());
        // No node carries the plugin's node selector: the fake nodes get their slices from
        // this test, and no kubelet would run a plugin there.
        self.release.rolled_out(0).await;
        let values = self.release.values();
        assert_eq!(values["scheduler"]["enabled"], true, "{values}");
        let scheduler = values["scheduler"]["schedulerName"]
            .as_str()
            .expect("scheduler.schedulerName");
        let driver = values["driverName"].as_str().expect("driverName");
        let weight = values["scheduler"]["extender"]["weight"]
            .as_i64()
            .expect("scheduler.extender.weight");
        assert!(weight > 0, "the extender's weight {weight} gives it no say");
        println!("{TEST}: scheduler {scheduler}, extender weight {weight}, driver {driver}");

        self.create_nodes(driver).await;
        let mut placed = Vec::new();
        for (pod, tolerance, ask) in PODS {
            placed.push(self.place(pod, tolerance, ask, scheduler, driver).await);
        }
        for p in &placed {
            println!(
                "{TEST}: {} explained {}, landed {}",
                p.pod, p.explained, p.landed
            );
        }
        let intolerant = placed.iter().find(|p| p.pod == "intolerant").unwrap();
        assert_eq!(
            self.capacity_type(&intolerant.landed),
            "on-demand",
            "the intolerant pod must not land on spot"
        );
    }

    async fn create_nodes(&self, driver: &str) {
        for (name, (_, capacity_type, hourly_price, noticed)) in self.nodes.iter().zip(NODES) {
            let node = FakeNode {
                name: name.clone(),
                capacity_type,
                hourly_price,
                noticed,
            };
            node.create(
                &self.release.client,
                &[(E2E_LABEL, TEST), (RUN_LABEL, &self.run)],
            )
            .await;
            let report = self
                .publisher(name, driver)
                .publish_once(&PROFILE.inventory(name))
                .await
                .unwrap_or_else(|e| panic!("publish the slices of {name}: {e}"));
            println!(
                "{TEST}: node {name} ({capacity_type}, {hourly_price} $/h{}): {} at level {}, {:?}",
                if noticed { ", noticed" } else { "" },
                PROFILE.name(),
                report.level,
                report.devices
            );
        }
    }

    fn publisher(&self, node: &str, driver: &str) -> Publisher {
        Publisher::new(
            self.release.client.clone(),
            PublisherConfig::new(node, driver),
        )
    }

    fn capacity_type(&self, node: &str) -> &'static str {
        self.nodes
            .iter()
            .zip(NODES)
            .find(|(name, _)| name.as_str() == node)
            .map(|(_, (_, capacity, ..))| capacity)
            .unwrap_or_else(|| panic!("{node} is not a fake node"))
    }

    fn is_spot(&self, node: &str) -> bool {
        self.capacity_type(node) == "spot"
    }

    fn noticed(&self) -> &str {
        let index = NODES.iter().position(|(.., noticed)| *noticed).unwrap();
        &self.nodes[index]
    }

    /// Creates pod `name` gated, predicts its node, ungates it and checks where it lands.
    async fn place(
        &self,
        name: &'static str,
        tolerance: &str,
        ask: Ask,
        scheduler: &str,
        driver: &str,
    ) -> Placed {
        self.create_pod(name, tolerance, ask, scheduler, driver)
            .await;
        let explanation = self.explain_scored(name).await;
        let rows = self.fake_rows(&explanation);
        let refused: BTreeSet<&str> = rows
            .iter()
            .filter(|r| !r["filtered"].is_null())
            .map(|r| r["node"].as_str().unwrap())
            .collect();
        let mut must_refuse = BTreeSet::from([self.noticed()]);
        if tolerance == "intolerant" {
            must_refuse.extend(
                self.nodes
                    .iter()
                    .map(String::as_str)
                    .filter(|n| self.is_spot(n)),
            );
        }
        assert_eq!(
            refused, must_refuse,
            "{name}: refused nodes; /explain: {explanation}"
        );
        // Best first by the blended score itself: the 0–10 `score` is relative to every node
        // in the cache (other GPU nodes of the cluster too), so two fake nodes may round alike
        // there and still differ in what kube-scheduler is sent.
        let mut ranked: Vec<(&str, f64)> = rows
            .iter()
            .filter(|r| r["filtered"].is_null())
            .map(|r| {
                let raw = r["evaluation"]["rawScore"].as_f64();
                (
                    r["node"].as_str().unwrap(),
                    raw.unwrap_or_else(|| panic!("{name}: {r}")),
                )
            })
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        println!("{TEST}: {name} ({tolerance}, {ask:?}): /explain ranks {ranked:?}");
        // With one candidate kube-scheduler would not call prioritize at all.
        assert!(ranked.len() >= 2, "{name}: {ranked:?}");
        assert!(
            ranked[0].1 > ranked[1].1,
            "{name}: /explain ties {ranked:?}; kube-scheduler would pick at random"
        );
        let explained = ranked[0].0.to_owned();
        // …and /explain's own order agrees (its first passing fake node scores as high).
        let score_of = |node: &str| rows.iter().find(|r| r["node"] == node).map(|r| &r["score"]);
        let first = rows.iter().find(|r| r["filtered"].is_null()).unwrap();
        assert_eq!(
            Some(&first["score"]),
            score_of(&explained),
            "{name}: /explain lists {} first: {explanation}",
            first["node"]
        );
        let passing: Vec<&str> = ranked.iter().map(|(n, _)| *n).collect();
        self.scheduler_sees_one_best(name, &passing, &explained)
            .await;

        let before = self.extender_counts().await;
        self.ungate(name).await;
        let landed = self.bound_node(name).await;
        let after = self.extender_counts().await;
        assert!(
            after.0 > before.0 && after.1 > before.1,
            "{name}: the extender answered no filter call or scored no prioritize call while \
             the pod was scheduled (filter 200s {} → {}, prioritize scored {} → {})",
            before.0,
            after.0,
            before.1,
            after.1
        );
        assert_eq!(
            landed, explained,
            "{name} landed on {landed}, /explain said {explained}: {explanation}"
        );
        self.allocation_seen(name, &landed).await;
        Placed {
            pod: name,
            explained,
            landed,
        }
    }

    async fn create_pod(
        &self,
        name: &str,
        tolerance: &str,
        ask: Ask,
        scheduler: &str,
        driver: &str,
    ) {
        let request = match ask {
            Ask::MigSlice => json!({"name": "gpu", "exactly": {
                "deviceClassName": format!("mig.{driver}"),
                "selectors": [{"cel": {"expression":
                    format!("device.attributes[\"{driver}\"].profile == \"1g.10gb\"")}}]}}),
            Ask::WholeGpu => json!({"name": "gpu", "exactly": {"deviceClassName": driver}}),
        };
        let claim: ResourceClaim = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"devices": {"requests": [request]}}
        }))
        .unwrap();
        let claims: Api<ResourceClaim> =
            Api::namespaced(self.release.client.clone(), &self.release.apps);
        claims
            .create(&PostParams::default(), &claim)
            .await
            .unwrap_or_else(|e| panic!("create claim {name}: {e}"));
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "annotations": {"tessera.dev/interruption": tolerance}},
            "spec": {
                "schedulerName": scheduler,
                "schedulingGates": [{"name": GATE}],
                "nodeSelector": {RUN_LABEL: self.run},
                "tolerations": [{"operator": "Exists"}],
                "terminationGracePeriodSeconds": 0,
                "restartPolicy": "Never",
                "resourceClaims": [{"name": "gpu", "resourceClaimName": name}],
                "containers": [{"name": "main", "image": PAUSE,
                                "resources": {"claims": [{"name": "gpu"}]}}]
            }
        }))
        .unwrap();
        self.pods()
            .create(&PostParams::default(), &pod)
            .await
            .unwrap_or_else(|e| panic!("create pod {name}: {e}"));
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.release.client.clone(), &self.release.apps)
    }

    async fn explain(&self, pod: &str) -> Result<Value, String> {
        let query = format!("explain?pod={}/{pod}&limit=15000", self.release.apps);
        let text = self.release.proxy_get("http", &query).await?;
        serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))
    }

    /// `/explain` of a pending pod once the extender's cache has it, its claim, and every fake
    /// node with its slices.
    async fn explain_scored(&self, pod: &str) -> Value {
        wait_for(
            &format!("/explain of {pod} to score every fake node"),
            EXPLAIN_TIMEOUT,
            POLL,
            || async {
                self.fake_nodes_exist().await;
                let answer = self.explain(pod).await?;
                let unevaluated: Vec<&String> = self
                    .nodes
                    .iter()
                    .filter(|n| {
                        !answer["nodes"].as_array().is_some_and(|rows| {
                            rows.iter()
                                .any(|r| r["node"] == n.as_str() && !r["evaluation"].is_null())
                        })
                    })
                    .collect();
                if answer["outcome"] == "scored" && unevaluated.is_empty() {
                    Ok(answer)
                } else {
                    Err(format!(
                        "outcome {}, not evaluated {unevaluated:?}: {answer}",
                        answer["outcome"]
                    ))
                }
            },
        )
        .await
    }

    /// A cloud node lifecycle controller deletes Node objects without an instance; say so
    /// rather than time out.
    async fn fake_nodes_exist(&self) {
        let nodes: Api<Node> = Api::all(self.release.client.clone());
        for name in &self.nodes {
            if let Ok(None) = nodes.get_opt(name).await {
                panic!(
                    "fake node {name} vanished: something in this cluster deletes Node objects \
                     without a kubelet or cloud instance (a cloud node lifecycle controller?)"
                );
            }
        }
    }

    /// The `/explain` rows of the fake nodes, in its order (best first, passing before refused).
    fn fake_rows<'a>(&self, explanation: &'a Value) -> Vec<&'a Value> {
        explanation["nodes"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .filter(|r| self.nodes.iter().any(|n| r["node"] == n.as_str()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `/filter` and `/prioritize` with what kube-scheduler would send: every fake node passes
    /// its own filters (tolerations, selector, devices), so it sends them all to filter and the
    /// ones the extender passes to prioritize. The same nodes must pass as in `/explain`, and
    /// `best` alone must get the top score.
    async fn scheduler_sees_one_best(&self, name: &str, passing: &[&str], best: &str) {
        let pod = serde_json::to_value(self.pods().get(name).await.expect("read the pod")).unwrap();
        let filter = self
            .release
            .proxy_post(
                "http",
                "filter",
                &json!({"Pod": pod, "NodeNames": self.nodes}),
            )
            .await
            .unwrap_or_else(|e| panic!("{name}: /filter: {e}"));
        let filter: Value = serde_json::from_str(&filter).unwrap();
        let kept: BTreeSet<&str> = filter["NodeNames"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: /filter: {filter}"))
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        assert_eq!(
            kept,
            passing.iter().copied().collect::<BTreeSet<_>>(),
            "{name}: /filter and /explain disagree: {filter}"
        );
        let scores = self
            .release
            .proxy_post(
                "http",
                "prioritize",
                &json!({"Pod": pod, "NodeNames": passing}),
            )
            .await
            .unwrap_or_else(|e| panic!("{name}: /prioritize: {e}"));
        let scores: Value = serde_json::from_str(&scores).unwrap();
        let scores: BTreeMap<&str, i64> = scores
            .as_array()
            .unwrap_or_else(|| panic!("{name}: /prioritize: {scores}"))
            .iter()
            .map(|e| (e["Host"].as_str().unwrap(), e["Score"].as_i64().unwrap()))
            .collect();
        let top = scores.values().copied().max().unwrap();
        let leaders: Vec<&str> = scores
            .iter()
            .filter(|(_, s)| **s == top)
            .map(|(n, _)| *n)
            .collect();
        assert_eq!(
            leaders,
            [best],
            "{name}: /prioritize {scores:?} does not single out /explain's {best}; with a tie \
             kube-scheduler picks at random"
        );
    }

    /// The extender's filter answers with status 200 and prioritize calls it scored.
    async fn extender_counts(&self) -> (f64, f64) {
        let text = self
            .release
            .proxy_get("admin", "metrics")
            .await
            .unwrap_or_else(|e| panic!("/metrics: {e}"));
        (
            sample_sum(
                &text,
                "tessera_extender_requests_total",
                &[("verb", "filter"), ("code", "200")],
            ),
            sample_sum(
                &text,
                "tessera_extender_decisions_total",
                &[("verb", "prioritize"), ("reason", "scored")],
            ),
        )
    }

    async fn ungate(&self, name: &str) {
        let patch = json!({"spec": {"schedulingGates": null}});
        self.pods()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap_or_else(|e| panic!("remove the scheduling gate of {name}: {e}"));
    }

    async fn bound_node(&self, name: &str) -> String {
        let pods = self.pods();
        wait_for(
            &format!("pod {name} to be bound"),
            BIND_TIMEOUT,
            POLL,
            || async {
                let pod = pods.get(name).await.map_err(|e| e.to_string())?;
                if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) {
                    return Ok(node);
                }
                let conditions = pod
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|c| format!("{}={} {:?}", c.type_, c.status, c.message))
                    .collect::<Vec<_>>();
                Err(format!("not bound; conditions {conditions:?}"))
            },
        )
        .await
    }

    /// Waits until `/explain` of the bound pod lists what it holds on `node`: the extender's
    /// cache then has the allocation the next pod's prediction must count.
    async fn allocation_seen(&self, name: &str, node: &str) {
        wait_for(
            &format!("/explain of {name} to list its allocation on {node}"),
            EXPLAIN_TIMEOUT,
            POLL,
            || async {
                let answer = self.explain(name).await?;
                let held = answer["allocated"]
                    .as_array()
                    .is_some_and(|a| !a.is_empty() && a.iter().all(|d| d["node"] == node));
                if held {
                    Ok(())
                } else {
                    Err(answer.to_string())
                }
            },
        )
        .await;
    }

    /// Force-deletes the pods bound to `node`, deletes its slices and the node.
    async fn remove_node(&self, node: &str) {
        let client = &self.release.client;
        let pods: Api<Pod> = Api::all(client.clone());
        let on_node = ListParams::default().fields(&format!("spec.nodeName={node}"));
        if let Ok(list) = pods.list(&on_node).await {
            for pod in list.items {
                let (Some(ns), Some(name)) = (pod.metadata.namespace, pod.metadata.name) else {
                    continue;
                };
                let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
                report_delete("pod", &name, api.delete(&name, &now()).await.err());
            }
        }
        // Only this test publishes for a fake node, whatever the driver; the slices would also
        // go with the node (the publisher makes it their owner), but not at once.
        let slices: Api<ResourceSlice> = Api::all(client.clone());
        if let Ok(list) = slices.list(&on_node).await {
            for name in list.items.into_iter().filter_map(|s| s.metadata.name) {
                let err = slices.delete(&name, &DeleteParams::default()).await.err();
                report_delete("slice", &name, err);
            }
        }
        let nodes: Api<Node> = Api::all(client.clone());
        report_delete(
            "node",
            node,
            nodes.delete(node, &DeleteParams::default()).await.err(),
        );
    }

    /// Nodes a crashed earlier run of this test left (their slices go with them).
    async fn remove_leftover_nodes(&self) {
        let nodes: Api<Node> = Api::all(self.release.client.clone());
        let selector = format!("{E2E_LABEL}={TEST}");
        let old = nodes
            .list(&ListParams::default().labels(&selector))
            .await
            .expect("list nodes");
        for name in old.items.into_iter().filter_map(|n| n.metadata.name) {
            println!("{TEST}: removing a leftover node {name}");
            self.remove_node(&name).await;
        }
    }

    async fn clean_up(&self) {
        let pods = self.pods();
        if let Ok(list) = pods.list(&ListParams::default()).await {
            for name in list.items.into_iter().filter_map(|p| p.metadata.name) {
                report_delete("pod", &name, pods.delete(&name, &now()).await.err());
            }
        }
        for node in &self.nodes {
            self.remove_node(node).await;
        }
        self.release.remove().await;
    }
}

/// Deletion without a grace period: no kubelet will confirm a graceful one.
fn now() -> DeleteParams {
    DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::default()
    }
}
