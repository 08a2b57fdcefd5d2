//! A synthetic GPU cluster of any size, generated lazily and deterministically from a seed.
//!
//! Five node types, one in five each: `p5.48xlarge` (H100 80GB, dynamic MIG: the whole GPU,
//! every MIG placement and a shared device, excluding each other through counters),
//! `p4d.24xlarge` (A100 40GB, static MIG `2g.10gb@0 1g.5gb@2 1g.5gb@3 3g.20gb@4`),
//! `p4de.24xlarge` (A100 80GB) and `g6.48xlarge` (L4), both whole + shared, and
//! `g6e.48xlarge` (L40S, four time-sliced shares per GPU). 30 % of nodes are spot, 1 % of
//! those carry an AWS spot interruption notice, 2 % of nodes have a price annotation. Each
//! node has its instance type's allocatable CPU and memory.
//!
//! Allocated claims are spread evenly over nodes (each held by one running pod): whole GPUs,
//! MIG instances, shares of shared devices with consumed capacity, time-sliced replicas. Each
//! running pod requests CPU and memory in proportion to its share of a GPU, so some nodes run
//! short of CPU before they run out of GPUs (what the fragmentation term calls stranding).
//! Objects are produced node by node, so even the 5,000-node cluster never has to exist as
//! API objects all at once.

use std::collections::VecDeque;

mod layout;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::objects::{
    Given, GpuFacts, SlicePlace, Want, allocate, annotate_node, claim, claim_first_available,
    counter_set, counter_slice, device_slice, node, pod, request_resources, reserve,
    set_allocatable, taint_node,
};
use crate::cluster::config::{CacheConfig, DEFAULT_DRIVER};
use crate::cluster::snapshot::Snapshot;
use crate::cluster::store::{ClusterEvent, ClusterObject, Store};
use crate::market::labels::{
    HOURLY_PRICE_ANNOTATION, INSTANCE_TYPE, KARPENTER_CAPACITY_TYPE, REGION,
};
use crate::model::mig::GpuProduct;
use layout::{Flavor, Grant, NODE_TYPES, NodeType, counters, gpu_devices, plan};

/// Most devices in one devices slice that uses counters (the API's limit).
const MAX_DEVICES_PER_SLICE: usize = 64;
/// Namespaces the workload is spread over.
const NAMESPACES: usize = 16;

/// Parameters of a synthetic cluster; see the module docs for its shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntheticCluster {
    /// Number of GPU nodes.
    pub nodes: usize,
    /// GPUs per node (at most 8 keeps within one counters slice).
    pub gpus_per_node: u32,
    /// Allocated claims, each with one running pod.
    pub allocated_claims: usize,
    /// Pending pods, each with one unallocated claim.
    pub pending_pods: usize,
    /// Seed of every random choice.
    pub seed: u64,
    /// Driver name of the slices and allocations.
    pub driver: String,
}

/// A cluster of `nodes` nodes × `gpus_per_node` GPUs with `claims` allocated claims, from
/// `seed`, for the default driver and without pending pods.
///
/// `synthetic_cluster(5_000, 8, 100_000, 42)` is the extender's benchmark cluster (5,000
/// nodes, 40,000 GPUs, 100,000 allocated claims).
pub fn synthetic_cluster(
    nodes: usize,
    gpus_per_node: u32,
    claims: usize,
    seed: u64,
) -> SyntheticCluster {
    SyntheticCluster {
        nodes,
        gpus_per_node,
        allocated_claims: claims,
        pending_pods: 0,
        seed,
        driver: DEFAULT_DRIVER.to_owned(),
    }
}

impl SyntheticCluster {
    /// The same cluster plus `pending` pending pods with unallocated claims.
    pub fn with_pending_pods(mut self, pending: usize) -> Self {
        self.pending_pods = pending;
        self
    }

    /// Name of node `i`.
    pub fn node_name(&self, i: usize) -> String {
        format!("gpu-node-{i:05}")
    }

    /// Every object: per node its Node, slices, then claims and their pods; pending pods and
    /// their claims last.
    pub fn objects(&self) -> impl Iterator<Item = ClusterObject> + '_ {
        Objects {
            cluster: self,
            next_node: 0,
            next_pending: 0,
            carry: 0,
            claims_made: 0,
            buffer: VecDeque::new(),
        }
    }

    /// Every object as an `Applied` event.
    pub fn events(&self) -> impl Iterator<Item = ClusterEvent> + '_ {
        self.objects().map(ClusterEvent::Applied)
    }

    /// A store holding the whole cluster.
    pub fn store(&self, config: CacheConfig) -> Store {
        let mut store = Store::new(config);
        for object in self.objects() {
            store.applied(&object);
        }
        store
    }

    /// A snapshot of the whole cluster.
    pub fn snapshot(&self, config: CacheConfig) -> Snapshot {
        self.store(config).snapshot()
    }
}

struct Objects<'a> {
    cluster: &'a SyntheticCluster,
    next_node: usize,
    next_pending: usize,
    /// Claims earlier nodes could not hold, passed on.
    carry: usize,
    claims_made: usize,
    buffer: VecDeque<ClusterObject>,
}

impl Iterator for Objects<'_> {
    type Item = ClusterObject;

    fn next(&mut self) -> Option<ClusterObject> {
        loop {
            if let Some(object) = self.buffer.pop_front() {
                return Some(object);
            }
            let c = self.cluster;
            if self.next_node < c.nodes {
                let i = self.next_node;
                self.next_node += 1;
                let quota = c.allocated_claims / c.nodes
                    + usize::from(i < c.allocated_claims % c.nodes)
                    + self.carry;
                let made = self.generate_node(i, quota);
                self.carry = quota - made;
            } else if self.next_pending < c.pending_pods {
                let j = self.next_pending;
                self.next_pending += 1;
                self.generate_pending(j);
            } else {
                return None;
            }
        }
    }
}

fn uuid(rng: &mut ChaCha8Rng) -> String {
    let v: u128 = rng.random();
    let hex = format!("{v:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn suffix(rng: &mut ChaCha8Rng) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

impl Objects<'_> {
    fn rng(&self, stream: u64, i: usize) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::seed_from_u64(self.cluster.seed);
        rng.set_stream(stream);
        rng.set_word_pos(u128::from(i as u64) << 20);
        rng
    }

    /// Emits node `i` with up to `quota` allocated claims; returns how many it made.
    fn generate_node(&mut self, i: usize, quota: usize) -> usize {
        let c = self.cluster;
        let mut rng = self.rng(1, i);
        let name = c.node_name(i);
        let node_type = &NODE_TYPES[rng.random_range(0..NODE_TYPES.len())];
        let spot = rng.random_bool(0.3);
        let mut n = node(
            &name,
            &[
                ("kubernetes.io/hostname", &name),
                (INSTANCE_TYPE, node_type.instance_type),
                (REGION, "us-east-1"),
                (
                    "topology.kubernetes.io/zone",
                    ["us-east-1a", "us-east-1b", "us-east-1c"][i % 3],
                ),
                (
                    KARPENTER_CAPACITY_TYPE,
                    if spot { "spot" } else { "on-demand" },
                ),
            ],
        );
        set_allocatable(&mut n, "cpu", node_type.allocatable_cpu);
        set_allocatable(&mut n, "memory", node_type.allocatable_memory);
        if rng.random_bool(0.02) {
            annotate_node(&mut n, HOURLY_PRICE_ANNOTATION, "20.0");
        }
        if spot && rng.random_bool(0.01) {
            taint_node(
                &mut n,
                "aws-node-termination-handler/spot-itn",
                Some("i-0abc"),
            );
        }
        self.buffer.push_back(n.into());

        let gpus: Vec<String> = (0..c.gpus_per_node)
            .map(|_| format!("GPU-{}", uuid(&mut rng)))
            .collect();
        self.emit_slices(&name, node_type, &gpus);
        let grants = plan(node_type, c.gpus_per_node, quota, &mut rng);
        let made = grants.len();
        for (device, grant) in &grants {
            self.emit_claim(&name, device, grant, &mut rng);
        }
        made
    }

    fn emit_slices(&mut self, node: &str, t: &NodeType, gpus: &[String]) {
        let driver = &self.cluster.driver;
        let memory = format!("{}Gi", t.memory_gib);
        let per_gpu: Vec<Vec<k8s_openapi::api::resource::v1::Device>> = gpus
            .iter()
            .enumerate()
            .map(|(index, uuid)| {
                let facts = GpuFacts {
                    index: u32::try_from(index).unwrap_or(u32::MAX),
                    uuid,
                    model: t.model,
                    memory: &memory,
                };
                gpu_devices(t, facts)
            })
            .collect();
        let with_counters = matches!(t.flavor, Flavor::DynamicMig | Flavor::WholeShared);
        let per_slice = per_gpu
            .first()
            .map_or(1, |d| (MAX_DEVICES_PER_SLICE / d.len().max(1)).max(1));
        let mut chunks: Vec<Vec<k8s_openapi::api::resource::v1::Device>> = Vec::new();
        for (i, devices) in per_gpu.into_iter().enumerate() {
            if i % per_slice == 0 {
                chunks.push(Vec::new());
            }
            if let Some(last) = chunks.last_mut() {
                last.extend(devices);
            }
        }
        let slice_count =
            i64::try_from(chunks.len() + usize::from(with_counters)).unwrap_or(i64::MAX);
        let place = SlicePlace {
            driver,
            node,
            pool: node,
            generation: 1,
            slice_count,
        };
        if with_counters {
            let product = GpuProduct::from_product_name(t.model);
            let values = counters(t, product);
            let values: Vec<(&str, &str)> = values
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let sets = (0..gpus.len())
                .map(|g| counter_set(&format!("gpu-{g}-counters"), &values))
                .collect();
            self.buffer
                .push_back(counter_slice(&format!("{node}-counters"), place, sets).into());
        }
        for (k, devices) in chunks.into_iter().enumerate() {
            self.buffer
                .push_back(device_slice(&format!("{node}-devices-{k}"), place, devices).into());
        }
    }

    fn emit_claim(&mut self, node: &str, device: &str, grant: &Grant, rng: &mut ChaCha8Rng) {
        let c = self.cluster;
        let n = self.claims_made;
        self.claims_made += 1;
        let namespace = format!("team-{:02}", n % NAMESPACES);
        let pod_name = format!("job-{n:06}-{}", suffix(rng));
        let claim_name = format!("{pod_name}-gpu-{}", suffix(rng));
        let (claim_uid, pod_uid, share_id) = (uuid(rng), uuid(rng), uuid(rng));
        let driver = c.driver.as_str();
        let selector;
        let (memory, compute) = match grant {
            Grant::Shared {
                memory_gib,
                compute,
            } => (format!("{memory_gib}Gi"), compute.to_string()),
            _ => (String::new(), String::new()),
        };
        let consumed = [("memory", memory.as_str()), ("compute", compute.as_str())];
        let (mut object, request) = match grant {
            Grant::Whole => (
                claim(&namespace, &claim_name, &claim_uid, whole_want().1),
                "gpu",
            ),
            Grant::Mig { profile } => {
                selector = profile_selector(driver, profile);
                let alternatives = [("mig", mig_want(&selector)), shared_want(), whole_want()];
                (
                    claim_first_available(&namespace, &claim_name, &claim_uid, &alternatives),
                    "gpu/mig",
                )
            }
            Grant::Shared { .. } => {
                let want = shared_want_of(&consumed).1;
                (claim(&namespace, &claim_name, &claim_uid, want), "gpu")
            }
            Grant::Replica => (
                claim(&namespace, &claim_name, &claim_uid, replica_want().1),
                "gpu",
            ),
        };
        let share = match grant {
            Grant::Shared { .. } => Some((share_id.as_str(), &consumed[..])),
            _ => None,
        };
        allocate(
            &mut object,
            node,
            &[Given {
                driver,
                pool: node,
                device,
                request,
                share,
            }],
        );
        reserve(&mut object, &pod_name, &pod_uid);
        self.buffer.push_back(object.into());
        let claims = [("gpu", Some(claim_name.as_str()))];
        let mut running = pod(&namespace, &pod_name, &pod_uid, Some(node), &claims, 0);
        // A stream of its own: the requests leave every other random choice as it was.
        let (cpu, memory) = grant.pod_requests(&mut self.rng(3, n));
        request_resources(
            &mut running,
            &[
                ("cpu", &format!("{cpu}m")),
                ("memory", &format!("{memory}Gi")),
            ],
        );
        self.buffer.push_back(running.into());
    }

    fn generate_pending(&mut self, j: usize) {
        let c = self.cluster;
        let mut rng = self.rng(2, j);
        let namespace = format!("team-{:02}", j % NAMESPACES);
        let pod_name = format!("pending-{j:06}-{}", suffix(&mut rng));
        let claim_name = format!("{pod_name}-gpu-{}", suffix(&mut rng));
        let (claim_uid, pod_uid) = (uuid(&mut rng), uuid(&mut rng));
        let driver = c.driver.as_str();
        let object = match j % 3 {
            0 => claim(&namespace, &claim_name, &claim_uid, whole_want().1),
            1 => claim(&namespace, &claim_name, &claim_uid, shared_want().1),
            _ => {
                let selector = profile_selector(driver, "1g.10gb");
                let alternatives = [("mig", mig_want(&selector)), shared_want(), whole_want()];
                claim_first_available(&namespace, &claim_name, &claim_uid, &alternatives)
            }
        };
        self.buffer.push_back(object.into());
        self.buffer.push_back(
            pod(
                &namespace,
                &pod_name,
                &pod_uid,
                None,
                &[("gpu", Some(&claim_name))],
                0,
            )
            .into(),
        );
    }
}

// === claim requests ===

fn whole_want() -> (&'static str, Want<'static>) {
    (
        "whole",
        Want {
            class: "gpu.tessera.dev",
            selector: None,
            capacity: &[],
        },
    )
}

/// The `firstAvailable` fallback to a share of 10 GiB and a quarter of the SMs.
fn shared_want() -> (&'static str, Want<'static>) {
    shared_want_of(&[("memory", "10Gi"), ("compute", "25")])
}

fn shared_want_of<'a>(capacity: &'a [(&'a str, &'a str)]) -> (&'static str, Want<'a>) {
    (
        "shared",
        Want {
            class: "shared.gpu.tessera.dev",
            selector: None,
            capacity,
        },
    )
}

fn mig_want(selector: &str) -> Want<'_> {
    Want {
        class: "mig.gpu.tessera.dev",
        selector: Some(selector),
        capacity: &[],
    }
}

fn replica_want() -> (&'static str, Want<'static>) {
    (
        "share",
        Want {
            class: "share.gpu.tessera.dev",
            selector: None,
            capacity: &[],
        },
    )
}

fn profile_selector(driver: &str, profile: &str) -> String {
    format!("device.attributes['{driver}'].profile == '{profile}'")
}

#[cfg(test)]
mod tests;
