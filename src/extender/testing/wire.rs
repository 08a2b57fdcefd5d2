//! What kube-scheduler posts to the extender for a synthetic cluster: `ExtenderArgs` in names
//! mode (`nodeCacheCapable: true`) and in `Nodes` mode, where every Node is the full object of
//! the scheduler's informer cache, filled in as a kubelet and a cloud provider fill it.
//!
//! The Node shape follows an EKS GPU node: the well-known and cloud labels, NVIDIA GPU feature
//! discovery labels, the kubelet's annotations, capacity and allocatable, five conditions,
//! three addresses, node info, and the 50 images the kubelet reports by default
//! (`--node-status-max-images=50`), each with a digest and a tag name. `managedFields` are not
//! included. Used to size the body limit (`docs/extender.md`, "Request limits").

use k8s_openapi::api::core::v1::Node;
use serde_json::{Value, json};

use crate::cluster::store::ClusterObject;
use crate::cluster::testing::SyntheticCluster;

/// Images the kubelet reports per node by default.
const IMAGES: usize = 50;

/// The first `count` Nodes of `cluster`, each as kube-scheduler's informer holds it.
pub fn scheduler_nodes(cluster: &SyntheticCluster, count: usize) -> Vec<Value> {
    cluster
        .objects()
        .filter_map(|object| match object {
            ClusterObject::Node(node) => Some(node),
            _ => None,
        })
        .take(count)
        .enumerate()
        .map(|(i, node)| full_node(&node, i))
        .collect()
}

/// `node` with what the kubelet, the cloud provider and GPU feature discovery add.
pub fn full_node(node: &Node, index: usize) -> Value {
    let mut value = serde_json::to_value(node).unwrap_or_else(|_| json!({}));
    let name = node.metadata.name.clone().unwrap_or_default();
    let ip = format!(
        "10.{}.{}.{}",
        index / 65_536 % 256,
        index / 256 % 256,
        index % 256
    );
    let zone = ["us-east-1a", "us-east-1b", "us-east-1c"][index % 3];
    let meta = &mut value["metadata"];
    meta["uid"] = json!(format!(
        "{:08x}-5e1f-4c2a-9b7d-{:012x}",
        index,
        index * 7919
    ));
    meta["resourceVersion"] = json!(format!("{}", 48_213_907 + index));
    meta["creationTimestamp"] = json!("2026-11-02T08:14:51Z");
    let labels = meta["labels"].as_object_mut().map(std::mem::take);
    let mut all = serde_json::Map::new();
    for (k, v) in [
        ("beta.kubernetes.io/arch", "amd64"),
        ("beta.kubernetes.io/os", "linux"),
        ("eks.amazonaws.com/nodegroup", "gpu-workers-2026-11"),
        ("eks.amazonaws.com/nodegroup-image", "ami-0c2b8ca1dad447f8a"),
        (
            "eks.amazonaws.com/sourceLaunchTemplateId",
            "lt-0a1b2c3d4e5f67890",
        ),
        ("eks.amazonaws.com/sourceLaunchTemplateVersion", "7"),
        ("failure-domain.beta.kubernetes.io/region", "us-east-1"),
        ("failure-domain.beta.kubernetes.io/zone", zone),
        (
            "k8s.io/cloud-provider-aws",
            "a94967527effcefb5f5829f529c0a1b9",
        ),
        ("kubernetes.io/arch", "amd64"),
        ("kubernetes.io/os", "linux"),
        ("topology.ebs.csi.aws.com/zone", zone),
        ("topology.k8s.aws/zone-id", "use1-az4"),
        ("topology.kubernetes.io/zone", zone),
        ("feature.node.kubernetes.io/pci-10de.present", "true"),
        ("nvidia.com/cuda.driver.major", "570"),
        ("nvidia.com/cuda.driver.minor", "133"),
        ("nvidia.com/cuda.driver.rev", "20"),
        ("nvidia.com/cuda.runtime.major", "12"),
        ("nvidia.com/cuda.runtime.minor", "8"),
        ("nvidia.com/gfd.timestamp", "1764661200"),
        ("nvidia.com/gpu.compute.major", "9"),
        ("nvidia.com/gpu.compute.minor", "0"),
        ("nvidia.com/gpu.count", "8"),
        ("nvidia.com/gpu.deploy.device-plugin", "false"),
        ("nvidia.com/gpu.family", "hopper"),
        ("nvidia.com/gpu.machine", "p5.48xlarge"),
        ("nvidia.com/gpu.memory", "81559"),
        ("nvidia.com/gpu.present", "true"),
        ("nvidia.com/gpu.product", "NVIDIA-H100-80GB-HBM3"),
        ("nvidia.com/gpu.replicas", "1"),
        ("nvidia.com/mig.capable", "true"),
        ("nvidia.com/mig.strategy", "mixed"),
    ] {
        all.insert(k.to_owned(), json!(v));
    }
    all.insert("kubernetes.io/hostname".to_owned(), json!(name));
    for (k, v) in labels.unwrap_or_default() {
        all.insert(k, v);
    }
    meta["labels"] = Value::Object(all);
    let annotations = meta["annotations"].as_object_mut().map(std::mem::take);
    let mut notes = serde_json::Map::new();
    notes.insert("alpha.kubernetes.io/provided-node-ip".into(), json!(ip));
    notes.insert(
        "csi.volume.kubernetes.io/nodeid".into(),
        json!(format!(r#"{{"ebs.csi.aws.com":"i-0{index:016x}"}}"#)),
    );
    notes.insert("node.alpha.kubernetes.io/ttl".into(), json!("0"));
    notes.insert(
        "volumes.kubernetes.io/controller-managed-attach-detach".into(),
        json!("true"),
    );
    for (k, v) in annotations.unwrap_or_default() {
        notes.insert(k, v);
    }
    meta["annotations"] = Value::Object(notes);

    if !value["spec"].is_object() {
        value["spec"] = json!({});
    }
    value["spec"]["podCIDR"] = json!(format!("100.64.{}.0/24", index % 256));
    value["spec"]["podCIDRs"] = json!([format!("100.64.{}.0/24", index % 256)]);
    value["spec"]["providerID"] = json!(format!("aws:///{zone}/i-0{index:016x}"));

    let allocatable = value["status"]["allocatable"].clone();
    let condition = |kind: &str, status: &str, reason: &str, message: &str| {
        json!({"type": kind, "status": status, "lastHeartbeatTime": "2026-12-06T03:41:07Z",
               "lastTransitionTime": "2026-11-02T08:15:22Z", "reason": reason,
               "message": message})
    };
    let images: Vec<Value> = (0..IMAGES)
        .map(|k| {
            let repo = format!(
                "{}.dkr.ecr.us-east-1.amazonaws.com/ml-platform/workload-{k:02}",
                602_401_143_452_u64 + k as u64
            );
            json!({"names": [format!("{repo}@sha256:{:064x}", (k as u128 + 1) * 0x9e37_79b9_7f4a_7c15),
                             format!("{repo}:v1.{k}.3")],
                   "sizeBytes": 1_500_000_000_u64 + k as u64 * 37_000_000})
        })
        .collect();
    value["status"] = json!({
        "capacity": {"cpu": "192", "ephemeral-storage": "3749409768Ki", "hugepages-1Gi": "0",
                     "hugepages-2Mi": "0", "memory": "2097152000Ki", "pods": "110",
                     "vpc.amazonaws.com/efa": "32"},
        "allocatable": allocatable,
        "conditions": [
            condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            condition("NetworkUnavailable", "False", "RouteCreated", "RouteController created a route"),
        ],
        "addresses": [
            {"type": "InternalIP", "address": ip},
            {"type": "InternalDNS", "address": format!("ip-{}.ec2.internal", ip.replace('.', "-"))},
            {"type": "Hostname", "address": format!("ip-{}.ec2.internal", ip.replace('.', "-"))},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {"machineID": format!("ec2{index:029x}"), "systemUUID": format!("ec2{index:05x}-0000-0000-0000-000000000000"),
                     "bootID": format!("{index:08x}-1b2c-4d3e-8f90-a1b2c3d4e5f6"),
                     "kernelVersion": "6.1.119-129.201.amzn2023.x86_64",
                     "osImage": "Amazon Linux 2023.6.20241212", "containerRuntimeVersion": "containerd://1.7.23",
                     "kubeletVersion": "v1.34.2-eks-c4e9a1b", "kubeProxyVersion": "",
                     "operatingSystem": "linux", "architecture": "amd64"},
        "images": images,
        "runtimeHandlers": [
            {"name": "nvidia", "features": {"recursiveReadOnlyMounts": true, "userNamespaces": true}},
            {"name": "runc", "features": {"recursiveReadOnlyMounts": true, "userNamespaces": true}},
            {"name": "", "features": {"recursiveReadOnlyMounts": true, "userNamespaces": true}},
        ],
        "features": {"supplementalGroupsPolicy": true},
    });
    value
}

/// The pod of the sizing requests: a GPU pod with one claim, as the scheduler sends it.
fn pod() -> Value {
    json!({"metadata": {"name": "train-7f9c4-x2x8q", "namespace": "ml", "uid": "5b0c7a52-3f1e-4e02-9d0a-1c6f3c8a9e11",
                        "labels": {"app": "train"}},
           "spec": {"containers": [{"name": "main", "image": "ml/train:v3",
                                    "resources": {"requests": {"cpu": "8", "memory": "64Gi"}}}],
                    "resourceClaims": [{"name": "gpu", "resourceClaimTemplateName": "one-h100"}]},
           "status": {"phase": "Pending"}})
}

/// `ExtenderArgs` in names mode (`nodeCacheCapable: true`) for `names`.
pub fn names_request(names: &[String]) -> Vec<u8> {
    let body = json!({"Pod": pod(), "Nodes": null, "NodeNames": names});
    serde_json::to_vec(&body).unwrap_or_default()
}

/// `ExtenderArgs` in `Nodes` mode for `nodes` (a `v1.NodeList` without apiVersion/kind).
pub fn nodes_request(nodes: &[Value]) -> Vec<u8> {
    let body = json!({"Pod": pod(), "Nodes": {"metadata": {}, "items": nodes}, "NodeNames": null});
    serde_json::to_vec(&body).unwrap_or_default()
}
