//! Shared e2e helpers: the gate on `TESSERA_E2E_KUBECONFIG`, client construction, Helm from
//! `.ci/install-helm`, server-side apply of parsed manifests, scratch namespaces, the node to
//! test on and fake GPU nodes.

use std::future::Future;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Node};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::GroupVersionKind;
use kube::discovery::{self, Scope};
use serde_json::{Value, json};
use tessera::market::labels::{HOURLY_PRICE_ANNOTATION, KARPENTER_CAPACITY_TYPE};

/// The variable naming the kubeconfig of the cluster to test against.
pub const KUBECONFIG_VAR: &str = "TESSERA_E2E_KUBECONFIG";
/// Names the node to test on (else the first Ready, schedulable one).
pub const NODE_VAR: &str = "TESSERA_E2E_NODE";
/// Label on every scratch namespace, so a crashed run's leftovers can be found.
pub const PART_OF: &str = "tessera-e2e";

/// A client for the e2e cluster. The tests that call this are `#[ignore]`d, so they run only
/// when asked for (`-- --ignored`); then a missing or unreadable kubeconfig fails the test
/// instead of letting it pass without having run.
pub async fn cluster_client(test: &str) -> kube::Client {
    let Some(path) = std::env::var_os(KUBECONFIG_VAR) else {
        panic!(
            "{test}: {KUBECONFIG_VAR} is not set; it names the kubeconfig of the cluster to test"
        );
    };
    let file = Kubeconfig::read_from(&path)
        .unwrap_or_else(|e| panic!("{KUBECONFIG_VAR}={}: {e}", path.to_string_lossy()));
    let config = kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{KUBECONFIG_VAR}: {e}"));
    kube::Client::try_from(config).unwrap_or_else(|e| panic!("kube client: {e}"))
}

/// The repository root (the chart, the examples, `.ci/`).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Helm binary `.ci/install-helm` provides; fails the test when there is none.
pub fn helm_binary(test: &str) -> PathBuf {
    let out = Command::new(repo().join(".ci/install-helm")).output();
    match out {
        Ok(out) if out.status.success() => {
            PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
        }
        Ok(out) => panic!(
            "{test}: .ci/install-helm failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => panic!("{test}: cannot run .ci/install-helm: {e}"),
    }
}

/// The API server's major and minor version (`+` of provider builds dropped).
pub async fn server_version(client: &kube::Client) -> (String, String) {
    let version = client.apiserver_version().await.expect("server version");
    (
        version.major,
        version.minor.trim_end_matches('+').to_owned(),
    )
}

pub fn gvk_of(obj: &Value) -> GroupVersionKind {
    let api_version = obj["apiVersion"].as_str().expect("apiVersion");
    let kind = obj["kind"].as_str().expect("kind");
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    GroupVersionKind::gvk(group, version, kind)
}

/// Server-side apply of a parsed manifest (into `namespace` when it is namespaced and names
/// none), as `manager`; with `dry_run` nothing is persisted. `Err` carries the server's
/// message, or starts with `not served` when the cluster lacks the kind.
pub async fn apply(
    client: &kube::Client,
    obj: &Value,
    namespace: &str,
    manager: &str,
    dry_run: bool,
) -> Result<(), String> {
    let gvk = gvk_of(obj);
    let (resource, caps) = discovery::pinned_kind(client, &gvk)
        .await
        .map_err(|e| format!("not served: {e}"))?;
    let name = obj["metadata"]["name"].as_str().expect("metadata.name");
    let api: Api<DynamicObject> = match caps.scope {
        Scope::Namespaced => {
            let ns = obj["metadata"]["namespace"].as_str().unwrap_or(namespace);
            Api::namespaced_with(client.clone(), ns, &resource)
        }
        Scope::Cluster => Api::all_with(client.clone(), &resource),
    };
    // force: a real install of the chart may already own these fields.
    let mut params = PatchParams::apply(manager).force();
    params.dry_run = dry_run;
    api.patch(name, &params, &Patch::Apply(obj))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Creates namespace `name`, labelled `app.kubernetes.io/part-of: tessera-e2e` plus `labels`.
pub async fn create_namespace(client: &kube::Client, name: &str, labels: &[(&str, &str)]) {
    let mut all = serde_json::Map::new();
    all.insert("app.kubernetes.io/part-of".to_owned(), json!(PART_OF));
    for (k, v) in labels {
        all.insert((*k).to_owned(), json!(v));
    }
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": name, "labels": all}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap_or_else(|e| panic!("create namespace {name}: {e}"));
}

/// `TESSERA_E2E_NODE`, else the first Ready node that accepts pods.
pub async fn schedulable_node(client: &kube::Client) -> String {
    if let Ok(name) = std::env::var(NODE_VAR) {
        return name;
    }
    let nodes: Api<Node> = Api::all(client.clone());
    let list = nodes
        .list(&ListParams::default())
        .await
        .expect("list nodes");
    list.items
        .iter()
        .find(|n| {
            let spec_ok = !n
                .spec
                .as_ref()
                .and_then(|s| s.unschedulable)
                .unwrap_or(false);
            let ready = n
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            spec_ok && ready
        })
        .and_then(|n| n.metadata.name.clone())
        .expect("the cluster has a Ready, schedulable node")
}

/// Logs a failed clean-up delete (a 404 means it is already gone, which is fine).
pub fn report_delete(what: &str, name: &str, error: Option<kube::Error>) {
    match error {
        None => {}
        Some(kube::Error::Api(status)) if status.code == 404 => {}
        Some(error) => eprintln!("clean-up: cannot delete {what} {name}: {error}"),
    }
}

/// Polls `check` every `every` until it returns `Ok`, for at most `timeout`; on timeout fails
/// with `what` and the last `Err` (the state that was not good enough).
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, every: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let last = match check().await {
            Ok(done) => return done,
            Err(state) => state,
        };
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}; last: {last}");
        }
        tokio::time::sleep(every).await;
    }
}

/// The taint aws-node-termination-handler sets on a spot node with an interruption notice.
pub const NOTICE_TAINT: &str = "aws-node-termination-handler/spot-itn";

/// A GPU node with nothing behind it: a Node object no kubelet reports for, priced by the
/// `tessera.dev/hourly-price` annotation, spot or on-demand by Karpenter's capacity-type
/// label, and under an interruption notice if `noticed`. Its GPUs are whatever ResourceSlices
/// a test publishes for it.
pub struct FakeNode {
    pub name: String,
    /// `on-demand` or `spot`.
    pub capacity_type: &'static str,
    /// The whole node's price, US dollars per hour.
    pub hourly_price: &'static str,
    /// Carries [`NOTICE_TAINT`].
    pub noticed: bool,
}

impl FakeNode {
    /// Creates the Node with `labels` added, and gives it room for pods (`status.allocatable`:
    /// the scheduler refuses a node without `pods`). The room is so large that the few pods a
    /// test places never change the scheduler's resource scores (integer percentages of it),
    /// so those scores tie on every fake node.
    pub async fn create(&self, client: &kube::Client, labels: &[(&str, &str)]) {
        let mut all = serde_json::Map::new();
        all.insert(
            KARPENTER_CAPACITY_TYPE.to_owned(),
            json!(self.capacity_type),
        );
        for (k, v) in labels {
            all.insert((*k).to_owned(), json!(v));
        }
        let taints = if self.noticed {
            json!([{"key": NOTICE_TAINT, "value": "e2e", "effect": "NoSchedule"}])
        } else {
            json!([])
        };
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": self.name, "labels": all,
                         "annotations": {HOURLY_PRICE_ANNOTATION: self.hourly_price}},
            "spec": {"taints": taints}
        }))
        .unwrap();
        let nodes: Api<Node> = Api::all(client.clone());
        nodes
            .create(&PostParams::default(), &node)
            .await
            .unwrap_or_else(|e| panic!("create node {}: {e}", self.name));
        let room = json!({"cpu": "1000", "memory": "4Ti", "pods": "110"});
        let status = json!({"status": {"capacity": room, "allocatable": room}});
        nodes
            .patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap_or_else(|e| panic!("set the room of node {}: {e}", self.name));
    }
}
