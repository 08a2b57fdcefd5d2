//! Builders of the API objects tessera's plugin and the scheduler write: Nodes with cloud
//! labels, ResourceSlices with the device model of `DESIGN.md`, ResourceClaims with
//! allocations and Pods using them. Tests and benchmarks assemble clusters from these.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, Node, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, NodeSpec, NodeStatus,
    Pod, PodResourceClaim, PodResourceClaimStatus, PodSpec, PodStatus,
    ResourceClaim as ContainerClaim, ResourceRequirements, Taint,
};
use k8s_openapi::api::resource::v1::{
    AllocationResult, CELDeviceSelector, CapacityRequestPolicy, CapacityRequestPolicyRange,
    CapacityRequirements, Counter, CounterSet, Device, DeviceAllocationResult, DeviceAttribute,
    DeviceCapacity, DeviceClaim, DeviceCounterConsumption, DeviceRequest,
    DeviceRequestAllocationResult, DeviceSelector, DeviceSubRequest, ExactDeviceRequest,
    ResourceClaim, ResourceClaimConsumerReference, ResourceClaimSpec, ResourceClaimStatus,
    ResourcePool, ResourceSlice, ResourceSliceSpec,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::model::DeviceName;

/// `count` pairs as an owned string map.
fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn meta(namespace: Option<&str>, name: &str, uid: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: namespace.map(str::to_owned),
        uid: uid.map(str::to_owned),
        ..ObjectMeta::default()
    }
}

// === nodes ===

/// A Node with `labels`.
pub fn node(name: &str, labels: &[(&str, &str)]) -> Node {
    Node {
        metadata: ObjectMeta {
            labels: Some(map(labels)),
            ..meta(None, name, None)
        },
        ..Node::default()
    }
}

/// Sets an annotation on `node`.
pub fn annotate_node(node: &mut Node, key: &str, value: &str) {
    node.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(key.to_owned(), value.to_owned());
}

/// Adds a `NoSchedule` taint to `node`.
pub fn taint_node(node: &mut Node, key: &str, value: Option<&str>) {
    node.spec
        .get_or_insert_with(NodeSpec::default)
        .taints
        .get_or_insert_with(Vec::new)
        .push(Taint {
            key: key.to_owned(),
            value: value.map(str::to_owned),
            effect: "NoSchedule".to_owned(),
            ..Taint::default()
        });
}

/// Sets `status.allocatable[resource]` on `node`.
pub fn set_allocatable(node: &mut Node, resource: &str, quantity: &str) {
    node.status
        .get_or_insert_with(NodeStatus::default)
        .allocatable
        .get_or_insert_with(BTreeMap::new)
        .insert(resource.to_owned(), Quantity(quantity.to_owned()));
}

// === devices and slices ===

fn string(value: &str) -> DeviceAttribute {
    DeviceAttribute {
        string: Some(value.to_owned()),
        ..DeviceAttribute::default()
    }
}

fn int(value: i64) -> DeviceAttribute {
    DeviceAttribute {
        int: Some(value),
        ..DeviceAttribute::default()
    }
}

fn capacity(value: &str) -> DeviceCapacity {
    DeviceCapacity {
        value: Quantity(value.to_owned()),
        request_policy: None,
    }
}

/// The facts every device of one physical GPU shares.
#[derive(Debug, Clone, Copy)]
pub struct GpuFacts<'a> {
    /// GPU index.
    pub index: u32,
    /// GPU UUID.
    pub uuid: &'a str,
    /// Product name (`NVIDIA H100 80GB HBM3`).
    pub model: &'a str,
    /// Memory as a quantity (`80Gi`).
    pub memory: &'a str,
}

/// A whole GPU device `gpu-<i>` (`type=gpu`).
pub fn whole_gpu(gpu: GpuFacts<'_>) -> Device {
    Device {
        name: DeviceName::Whole { gpu: gpu.index }.to_string(),
        attributes: Some(BTreeMap::from([
            ("type".to_owned(), string("gpu")),
            ("uuid".to_owned(), string(gpu.uuid)),
            ("index".to_owned(), int(i64::from(gpu.index))),
            ("model".to_owned(), string(gpu.model)),
        ])),
        capacity: Some(BTreeMap::from([(
            "memory".to_owned(),
            capacity(gpu.memory),
        )])),
        ..Device::default()
    }
}

/// A MIG device `gpu-<i>-mig-<profile>-<start>` (`type=mig`) of `slices` memory slices and
/// `compute` compute slices.
pub fn mig_device(
    gpu: GpuFacts<'_>,
    profile: &str,
    start: u8,
    slices: u8,
    compute: u8,
    memory: &str,
) -> Device {
    Device {
        name: DeviceName::mig(gpu.index, profile, start).to_string(),
        attributes: Some(BTreeMap::from([
            ("type".to_owned(), string("mig")),
            ("index".to_owned(), int(i64::from(gpu.index))),
            ("parentUUID".to_owned(), string(gpu.uuid)),
            ("model".to_owned(), string(gpu.model)),
            ("profile".to_owned(), string(profile)),
        ])),
        capacity: Some(BTreeMap::from([
            ("memory".to_owned(), capacity(memory)),
            ("memorySlices".to_owned(), capacity(&slices.to_string())),
            ("computeSlices".to_owned(), capacity(&compute.to_string())),
        ])),
        ..Device::default()
    }
}

/// The shared device `gpu-<i>-shared` (`type=shared`): several claims, each consuming
/// `memory` (step 1Gi) and `compute` percent (step 1).
pub fn shared_gpu(gpu: GpuFacts<'_>) -> Device {
    let policy = |default: &str, min: &str, step: &str| CapacityRequestPolicy {
        default: Some(Quantity(default.to_owned())),
        valid_range: Some(CapacityRequestPolicyRange {
            min: Quantity(min.to_owned()),
            max: None,
            step: Some(Quantity(step.to_owned())),
        }),
        valid_values: None,
    };
    Device {
        name: DeviceName::Shared { gpu: gpu.index }.to_string(),
        attributes: Some(BTreeMap::from([
            ("type".to_owned(), string("shared")),
            ("index".to_owned(), int(i64::from(gpu.index))),
            ("parentUUID".to_owned(), string(gpu.uuid)),
            ("model".to_owned(), string(gpu.model)),
        ])),
        capacity: Some(BTreeMap::from([
            (
                "memory".to_owned(),
                DeviceCapacity {
                    value: Quantity(gpu.memory.to_owned()),
                    request_policy: Some(policy("1Gi", "1Gi", "1Gi")),
                },
            ),
            (
                "compute".to_owned(),
                DeviceCapacity {
                    value: Quantity("100".to_owned()),
                    request_policy: Some(policy("100", "1", "1")),
                },
            ),
        ])),
        allow_multiple_allocations: Some(true),
        ..Device::default()
    }
}

/// Replica `replica` of a time-sliced GPU, `gpu-<i>-share-<k>` (`type=share`) with `memory`.
pub fn share_device(gpu: GpuFacts<'_>, replica: u32, memory: &str) -> Device {
    Device {
        name: DeviceName::Share {
            gpu: gpu.index,
            replica,
        }
        .to_string(),
        attributes: Some(BTreeMap::from([
            ("type".to_owned(), string("share")),
            ("index".to_owned(), int(i64::from(gpu.index))),
            ("parentUUID".to_owned(), string(gpu.uuid)),
            ("model".to_owned(), string(gpu.model)),
        ])),
        capacity: Some(BTreeMap::from([("memory".to_owned(), capacity(memory))])),
        ..Device::default()
    }
}

/// Makes `device` consume `counters` from counter set `set`.
pub fn consume(device: &mut Device, set: &str, counters: &[(&str, &str)]) {
    device
        .consumes_counters
        .get_or_insert_with(Vec::new)
        .push(DeviceCounterConsumption {
            counter_set: set.to_owned(),
            counters: counters
                .iter()
                .map(|(k, v)| {
                    (
                        (*k).to_owned(),
                        Counter {
                            value: Quantity((*v).to_owned()),
                        },
                    )
                })
                .collect(),
        });
}

/// A counter set named `name` with `counters`.
pub fn counter_set(name: &str, counters: &[(&str, &str)]) -> CounterSet {
    CounterSet {
        name: name.to_owned(),
        counters: counters
            .iter()
            .map(|(k, v)| {
                (
                    (*k).to_owned(),
                    Counter {
                        value: Quantity((*v).to_owned()),
                    },
                )
            })
            .collect(),
    }
}

/// Where a slice sits: driver, node, pool, generation and the pool's slice count.
#[derive(Debug, Clone, Copy)]
pub struct SlicePlace<'a> {
    /// Driver name.
    pub driver: &'a str,
    /// `spec.nodeName`.
    pub node: &'a str,
    /// Pool name.
    pub pool: &'a str,
    /// Pool generation.
    pub generation: i64,
    /// Slices in the pool.
    pub slice_count: i64,
}

/// A devices slice.
pub fn device_slice(name: &str, place: SlicePlace<'_>, devices: Vec<Device>) -> ResourceSlice {
    ResourceSlice {
        metadata: meta(None, name, None),
        spec: ResourceSliceSpec {
            driver: place.driver.to_owned(),
            node_name: Some(place.node.to_owned()),
            pool: ResourcePool {
                name: place.pool.to_owned(),
                generation: place.generation,
                resource_slice_count: place.slice_count,
            },
            devices: Some(devices),
            ..ResourceSliceSpec::default()
        },
    }
}

/// A counters-only slice (the 1.35+ split shape).
pub fn counter_slice(name: &str, place: SlicePlace<'_>, sets: Vec<CounterSet>) -> ResourceSlice {
    ResourceSlice {
        metadata: meta(None, name, None),
        spec: ResourceSliceSpec {
            driver: place.driver.to_owned(),
            node_name: Some(place.node.to_owned()),
            pool: ResourcePool {
                name: place.pool.to_owned(),
                generation: place.generation,
                resource_slice_count: place.slice_count,
            },
            shared_counters: Some(sets),
            ..ResourceSliceSpec::default()
        },
    }
}

// === claims ===

/// One way to satisfy a claim's request.
#[derive(Debug, Clone, Copy)]
pub struct Want<'a> {
    /// Device class.
    pub class: &'a str,
    /// CEL selector, if any.
    pub selector: Option<&'a str>,
    /// Capacity requests.
    pub capacity: &'a [(&'a str, &'a str)],
}

fn capacity_requests(capacity: &[(&str, &str)]) -> Option<CapacityRequirements> {
    (!capacity.is_empty()).then(|| CapacityRequirements {
        requests: Some(
            capacity
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Quantity((*v).to_owned())))
                .collect(),
        ),
    })
}

fn selectors(selector: Option<&str>) -> Option<Vec<DeviceSelector>> {
    selector.map(|expression| {
        vec![DeviceSelector {
            cel: Some(CELDeviceSelector {
                expression: expression.to_owned(),
            }),
        }]
    })
}

/// A claim with one request `gpu` for exactly one device of `want`.
pub fn claim(namespace: &str, name: &str, uid: &str, want: Want<'_>) -> ResourceClaim {
    let request = DeviceRequest {
        name: "gpu".to_owned(),
        exactly: Some(ExactDeviceRequest {
            device_class_name: want.class.to_owned(),
            selectors: selectors(want.selector),
            capacity: capacity_requests(want.capacity),
            ..ExactDeviceRequest::default()
        }),
        first_available: None,
    };
    claim_with(namespace, name, uid, vec![request])
}

/// A claim with one request `gpu` whose `firstAvailable` alternatives are `alternatives`
/// (named by the caller).
pub fn claim_first_available(
    namespace: &str,
    name: &str,
    uid: &str,
    alternatives: &[(&str, Want<'_>)],
) -> ResourceClaim {
    let request = DeviceRequest {
        name: "gpu".to_owned(),
        exactly: None,
        first_available: Some(
            alternatives
                .iter()
                .map(|(sub, want)| DeviceSubRequest {
                    name: (*sub).to_owned(),
                    device_class_name: want.class.to_owned(),
                    selectors: selectors(want.selector),
                    capacity: capacity_requests(want.capacity),
                    ..DeviceSubRequest::default()
                })
                .collect(),
        ),
    };
    claim_with(namespace, name, uid, vec![request])
}

fn claim_with(
    namespace: &str,
    name: &str,
    uid: &str,
    requests: Vec<DeviceRequest>,
) -> ResourceClaim {
    ResourceClaim {
        metadata: meta(Some(namespace), name, Some(uid)),
        spec: ResourceClaimSpec {
            devices: Some(DeviceClaim {
                requests: Some(requests),
                ..DeviceClaim::default()
            }),
        },
        status: None,
    }
}

/// One device given to a claim.
#[derive(Debug, Clone, Copy)]
pub struct Given<'a> {
    /// Driver.
    pub driver: &'a str,
    /// Pool.
    pub pool: &'a str,
    /// Device name.
    pub device: &'a str,
    /// Request (`gpu` or `gpu/<alternative>`).
    pub request: &'a str,
    /// Share ID and consumed capacity, for a shared device.
    pub share: Option<(&'a str, &'a [(&'a str, &'a str)])>,
}

/// Records an allocation of `devices` on `node` in the claim's status.
pub fn allocate(claim: &mut ResourceClaim, node: &str, devices: &[Given<'_>]) {
    let results = devices
        .iter()
        .map(|g| DeviceRequestAllocationResult {
            driver: g.driver.to_owned(),
            pool: g.pool.to_owned(),
            device: g.device.to_owned(),
            request: g.request.to_owned(),
            share_id: g.share.map(|(id, _)| id.to_owned()),
            consumed_capacity: g.share.map(|(_, consumed)| {
                consumed
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), Quantity((*v).to_owned())))
                    .collect()
            }),
            ..DeviceRequestAllocationResult::default()
        })
        .collect();
    claim
        .status
        .get_or_insert_with(ResourceClaimStatus::default)
        .allocation = Some(AllocationResult {
        devices: Some(DeviceAllocationResult {
            results: Some(results),
            config: None,
        }),
        node_selector: Some(NodeSelector {
            node_selector_terms: vec![NodeSelectorTerm {
                match_fields: Some(vec![NodeSelectorRequirement {
                    key: "metadata.name".to_owned(),
                    operator: "In".to_owned(),
                    values: Some(vec![node.to_owned()]),
                }]),
                match_expressions: None,
            }],
        }),
        allocation_timestamp: None,
    });
}

/// Adds a pod to the claim's `status.reservedFor`.
pub fn reserve(claim: &mut ResourceClaim, pod: &str, pod_uid: &str) {
    claim
        .status
        .get_or_insert_with(ResourceClaimStatus::default)
        .reserved_for
        .get_or_insert_with(Vec::new)
        .push(ResourceClaimConsumerReference {
            api_group: None,
            resource: "pods".to_owned(),
            name: pod.to_owned(),
            uid: pod_uid.to_owned(),
        });
}

// === pods ===

/// A running pod (pending when `node` is `None`) using ResourceClaims through templates:
/// `claims` pairs the pod's claim name with the generated ResourceClaim name (`None` before
/// it is generated), and `gpus` is its classic `nvidia.com/gpu` request.
pub fn pod(
    namespace: &str,
    name: &str,
    uid: &str,
    node: Option<&str>,
    claims: &[(&str, Option<&str>)],
    gpus: u32,
) -> Pod {
    let mut resources = ResourceRequirements {
        claims: Some(
            claims
                .iter()
                .map(|(n, _)| ContainerClaim {
                    name: (*n).to_owned(),
                    request: None,
                })
                .collect(),
        ),
        ..ResourceRequirements::default()
    };
    if gpus > 0 {
        let quantity = Quantity(gpus.to_string());
        resources.limits = Some(BTreeMap::from([("nvidia.com/gpu".to_owned(), quantity)]));
    }
    Pod {
        metadata: meta(Some(namespace), name, Some(uid)),
        spec: Some(PodSpec {
            node_name: node.map(str::to_owned),
            containers: vec![Container {
                name: "main".to_owned(),
                image: Some("registry.example/train:1".to_owned()),
                resources: Some(resources),
                ..Container::default()
            }],
            resource_claims: Some(
                claims
                    .iter()
                    .map(|(n, _)| PodResourceClaim {
                        name: (*n).to_owned(),
                        resource_claim_template_name: Some(format!("{n}-template")),
                        resource_claim_name: None,
                    })
                    .collect(),
            ),
            ..PodSpec::default()
        }),
        status: Some(PodStatus {
            phase: Some(if node.is_some() { "Running" } else { "Pending" }.to_owned()),
            resource_claim_statuses: Some(
                claims
                    .iter()
                    .map(|(n, generated)| PodResourceClaimStatus {
                        name: (*n).to_owned(),
                        resource_claim_name: generated.map(str::to_owned),
                    })
                    .collect(),
            ),
            ..PodStatus::default()
        }),
    }
}

/// Sets `requests` (`cpu`, `memory`, …) on `pod`'s first container, keeping its other
/// resources.
pub fn request_resources(pod: &mut Pod, requests: &[(&str, &str)]) {
    let Some(container) = pod.spec.as_mut().and_then(|s| s.containers.first_mut()) else {
        return;
    };
    let map = container
        .resources
        .get_or_insert_with(ResourceRequirements::default)
        .requests
        .get_or_insert_with(BTreeMap::new);
    for (resource, quantity) in requests {
        map.insert((*resource).to_owned(), Quantity((*quantity).to_owned()));
    }
}
