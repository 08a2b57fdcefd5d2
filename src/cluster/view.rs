//! The per-node view a scheduling request reads: market facts, our driver's devices and
//! counter sets, what is allocated to which claims and pods, and classic `nvidia.com/gpu`
//! use. Pure data, built by [`assemble`] from the node's objects.
//!
//! A view shares its devices with the store (`Arc<Slice>`) and its claims with the claim map
//! (`Arc<ClaimView>`), so holding it costs little beyond the allocation list.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::claim::{AllocatedDevice, ClaimView};
use super::config::CacheConfig;
use super::node::NodeFacts;
use super::pod::PodView;
use super::slice::{Amount, CounterSet, Device, Slice, amount};
use crate::market::labels::HOURLY_PRICE_ANNOTATION;
use crate::market::{
    CapacityType, FALLBACK_USD_PER_GPU_HOUR, NodeMarket, PriceSource, RiskSource, capacity_type,
    node_market,
};
use crate::model::NodeState;
use crate::model::partition::{PartitionGpu, milli_view};

pub mod allocator;
mod partition;

/// Most slices of our driver read per node; far above what a node publishes (one counters
/// slice and a devices slice per four GPUs).
pub const MAX_SLICES_PER_NODE: usize = 1024;
/// CPU or host memory in [`NodeView::milli`] of a node whose allocatable is unknown: scoring
/// sees it as never the limit. Also the cap on a tracked allocatable, so sums in scoring
/// cannot overflow.
pub const UNTRACKED: u64 = u64::MAX / 4;

/// Where a device sits in a [`NodeView`]: its slice in [`NodeView::slices`] and its index in
/// that slice's devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceRef {
    /// Index into [`NodeView::slices`].
    pub slice: u16,
    /// Index into that slice's `devices`.
    pub index: u16,
}

/// The devices of one physical GPU, in published order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuDevices {
    /// The pool the devices are in.
    pub pool: Arc<str>,
    /// GPU index ([`DeviceSpec::gpu`](super::slice::DeviceSpec::gpu)).
    pub index: u32,
    /// Its devices: the whole GPU, MIG devices, the shared device, shares.
    pub devices: Box<[DeviceRef]>,
    /// Index of its state in [`NodeView::partitions`]; `None` when it cannot be modelled.
    pub partition: Option<usize>,
}

/// One device (or device share) given to one claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    /// The device.
    pub device: DeviceRef,
    /// The claim holding it (pods in `claim.reserved_for`).
    pub claim: Arc<ClaimView>,
    /// Index of the result in `claim.devices()`.
    pub result: u16,
}

impl Allocation {
    /// The allocation result: request, share ID, consumed capacity.
    pub fn result(&self) -> Option<&AllocatedDevice> {
        self.claim.devices().get(usize::from(self.result))
    }

    /// Whether it is admin access, which does not use the device up.
    pub fn is_admin_access(&self) -> bool {
        self.result().is_some_and(|r| r.admin_access)
    }
}

/// One counter of a counter set: its total and what allocated devices take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterValue {
    /// Counter name.
    pub name: Arc<str>,
    /// The set's total.
    pub total: u64,
    /// Taken by allocated devices (a shared device counts once, however many shares).
    pub used: u64,
}

impl CounterValue {
    /// What is left (0 when over-used).
    pub fn free(&self) -> u64 {
        self.total.saturating_sub(self.used)
    }
}

/// Use of one counter set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterUsage {
    /// The pool of the set.
    pub pool: Arc<str>,
    /// Set name.
    pub set: Arc<str>,
    /// Its counters, sorted by name.
    pub counters: Box<[CounterValue]>,
}

/// Classic device-plugin GPUs (`nvidia.com/gpu`) on the node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClassicGpus {
    /// `status.allocatable["nvidia.com/gpu"]`.
    pub allocatable: u32,
    /// Sum of the effective requests of the node's pods.
    pub requested: u32,
    /// The pods requesting them, sorted by key.
    pub pods: Box<[Arc<PodView>]>,
}

impl ClassicGpus {
    /// GPUs not requested by any pod.
    pub fn free(&self) -> u32 {
        self.allocatable.saturating_sub(self.requested)
    }
}

/// Everything a scheduling decision needs to know about one node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeView {
    /// Node name.
    pub name: Arc<str>,
    /// Price, capacity type and interruption risk (see `market::node_market`).
    pub market: NodeMarket,
    /// `node.kubernetes.io/instance-type`.
    pub instance_type: Option<Arc<str>>,
    /// `topology.kubernetes.io/region`.
    pub region: Option<Arc<str>>,
    /// Why the `tessera.dev/hourly-price` annotation was ignored, when it was invalid (the
    /// price then comes from the catalog).
    pub price_error: Option<Box<str>>,
    /// An imminent interruption announced by a taint (`AWS spot interruption notice`, …).
    pub interruption_notice: Option<&'static str>,
    /// The Node is being deleted.
    pub deleting: bool,
    /// The Node is cordoned.
    pub unschedulable: bool,
    /// Our driver's slices of the node's pools at their newest generation, by name.
    pub slices: Box<[Arc<Slice>]>,
    /// Devices grouped by physical GPU, in order of first appearance.
    pub gpus: Box<[GpuDevices]>,
    /// The partition state of each modelled GPU, for `scoring::partition::fit` (how devices
    /// map to states is documented in `src/cluster/view/partition.rs`). `fit`'s assignment
    /// indexes point here; [`NodeView::gpu_of_partition`] maps them back.
    pub partitions: Box<[PartitionGpu]>,
    /// The same GPUs in the simulator's milli-GPU terms, for the fragmentation measure, with
    /// the node's CPU and host memory (see [`NodeView::resources`]; [`UNTRACKED`] when the
    /// node's allocatable is unknown). Built with the view: a scheduling request would
    /// otherwise rebuild it for every node it scores.
    pub milli: NodeState,
    /// Allocatable CPU and memory and what the cached pods bound to the node request.
    pub resources: NodeResources,
    /// Allocated devices and shares, sorted by device, then claim, then result.
    pub allocations: Box<[Allocation]>,
    /// Use of every counter set, in slice order.
    pub counters: Box<[CounterUsage]>,
    /// Classic `nvidia.com/gpu` allocatable and requests.
    pub classic: ClassicGpus,
    /// The view in the allocator model's terms, built on first use (`view::allocator`).
    pub model: allocator::ModelCell,
}

/// A node's allocatable CPU and memory and the requests of the pods the cache keeps on it.
///
/// Conservative by construction: the cache keeps only pods that use GPUs, so CPU and memory
/// requested by the node's other pods (daemon sets, CPU-only work) are not subtracted. Free
/// CPU is therefore over-estimated and CPU stranding under-estimated, never the other way
/// round: the fragmentation term may miss stranding, never invent it, and is never worse
/// than with CPU untracked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeResources {
    /// `status.allocatable.cpu`, milli-cores; `None` when unknown.
    pub cpu_allocatable_milli: Option<u64>,
    /// Sum of the bound cached pods' effective CPU requests, milli-cores.
    pub cpu_requested_milli: u64,
    /// `status.allocatable.memory`, MiB rounded up; `None` when unknown.
    pub memory_allocatable_mib: Option<u64>,
    /// Sum of the bound cached pods' effective memory requests, MiB (each rounded down).
    pub memory_requested_mib: u64,
}

impl NodeResources {
    /// (capacity, free) CPU in milli-cores for the milli view: [`UNTRACKED`] when unknown.
    pub fn cpu(&self) -> (u64, u64) {
        capacity_and_free(self.cpu_allocatable_milli, self.cpu_requested_milli)
    }

    /// (capacity, free) memory in MiB for the milli view: [`UNTRACKED`] when unknown.
    pub fn memory(&self) -> (u64, u64) {
        capacity_and_free(self.memory_allocatable_mib, self.memory_requested_mib)
    }
}

fn capacity_and_free(allocatable: Option<u64>, requested: u64) -> (u64, u64) {
    match allocatable {
        Some(total) => {
            let total = total.min(UNTRACKED);
            (total, total.saturating_sub(requested))
        }
        None => (UNTRACKED, UNTRACKED),
    }
}

impl NodeView {
    /// Whether an interruption notice or deletion means the node is going away.
    pub fn is_going_away(&self) -> bool {
        self.interruption_notice.is_some() || self.deleting
    }

    /// Whether the node is spot capacity.
    pub fn is_spot(&self) -> bool {
        self.market.capacity == CapacityType::Spot
    }

    /// Price of one whole GPU per hour, `None` for a node without GPUs.
    pub fn price_per_gpu_hour(&self) -> Option<f64> {
        self.market.price_per_gpu_hour()
    }

    /// The device at `r`.
    pub fn device(&self, r: DeviceRef) -> Option<&Device> {
        self.slices
            .get(usize::from(r.slice))?
            .devices
            .get(usize::from(r.index))
    }

    /// The pool of the device at `r`.
    pub fn pool(&self, r: DeviceRef) -> Option<&Arc<str>> {
        self.slices.get(usize::from(r.slice)).map(|s| &s.pool)
    }

    /// Every device with its reference, in slice order then published order.
    pub fn devices(&self) -> impl Iterator<Item = (DeviceRef, &Device)> {
        self.slices.iter().enumerate().flat_map(|(s, slice)| {
            slice.devices.iter().enumerate().map(move |(i, d)| {
                // Both fit: slices per node and devices per slice are bounded far below.
                let r = DeviceRef {
                    slice: u16::try_from(s).unwrap_or(u16::MAX),
                    index: u16::try_from(i).unwrap_or(u16::MAX),
                };
                (r, d)
            })
        })
    }

    /// Number of devices.
    pub fn device_count(&self) -> usize {
        self.slices.iter().map(|s| s.devices.len()).sum()
    }

    /// The device named `name` in pool `pool`.
    pub fn find_device(&self, pool: &str, name: &str) -> Option<DeviceRef> {
        self.devices()
            .find(|(r, d)| &*d.name == name && self.pool(*r).is_some_and(|p| &**p == pool))
            .map(|(r, _)| r)
    }

    /// Allocations of the device at `r` (several for a shared device).
    pub fn allocations_of(&self, r: DeviceRef) -> &[Allocation] {
        let start = self.allocations.partition_point(|a| a.device < r);
        let end = self.allocations.partition_point(|a| a.device <= r);
        &self.allocations[start..end]
    }

    /// Whether some claim uses the device at `r` (admin access does not count).
    pub fn is_allocated(&self, r: DeviceRef) -> bool {
        self.allocations_of(r).iter().any(|a| !a.is_admin_access())
    }

    /// Capacity `name` consumed by the shares of the device at `r`.
    pub fn consumed(&self, r: DeviceRef, name: &str) -> u64 {
        self.allocations_of(r)
            .iter()
            .filter_map(|a| a.result().filter(|res| !res.admin_access))
            .filter_map(|res| amount(&res.consumed, name))
            .fold(0, u64::saturating_add)
    }

    /// Capacity `name` still free on the device at `r`: all of it when unallocated, the rest
    /// after consumed shares for a device with multiple allocations, none otherwise.
    pub fn free_capacity(&self, r: DeviceRef, name: &str) -> u64 {
        let Some(device) = self.device(r) else {
            return 0;
        };
        let total = device.capacity(name).unwrap_or(0);
        if device.multiple_allocations {
            total.saturating_sub(self.consumed(r, name))
        } else if self.is_allocated(r) {
            0
        } else {
            total
        }
    }

    /// The use of counter set `set` of `pool`.
    pub fn counter_usage(&self, pool: &str, set: &str) -> Option<&CounterUsage> {
        self.counters
            .iter()
            .find(|c| &*c.pool == pool && &*c.set == set)
    }

    /// Number of physical GPUs seen among our devices.
    pub fn gpu_count(&self) -> usize {
        self.gpus.len()
    }

    /// The GPU whose state is `partitions[index]`.
    pub fn gpu_of_partition(&self, index: usize) -> Option<&GpuDevices> {
        self.gpus.iter().find(|g| g.partition == Some(index))
    }

    /// Whether some GPU of the node is in use: a device of our driver allocated (admin access
    /// aside) or a classic `nvidia.com/gpu` requested.
    pub fn in_use(&self) -> bool {
        self.allocations.iter().any(|a| !a.is_admin_access()) || self.classic.requested > 0
    }
}

/// Builds the view of `node` from its slices (any generation, any order), the claims that
/// may hold its devices and the cached pods bound to it (their classic GPU, CPU and memory
/// requests).
///
/// Claims may include ones for other nodes or pools; only results of our driver naming a
/// device of the node's newest slices are taken.
pub fn assemble<'a>(
    config: &CacheConfig,
    node: &NodeFacts,
    slices: impl IntoIterator<Item = &'a Arc<Slice>>,
    claims: impl IntoIterator<Item = &'a Arc<ClaimView>>,
    pods: impl IntoIterator<Item = &'a Arc<PodView>>,
) -> NodeView {
    let slices = newest_slices(slices);
    let by_name = device_index(&slices);
    let gpus = group_by_gpu(&slices);

    let claims: BTreeMap<&str, &Arc<ClaimView>> =
        claims.into_iter().map(|c| (c.key.as_str(), c)).collect();
    let mut allocations = Vec::new();
    for claim in claims.values() {
        for (i, result) in claim.devices().iter().enumerate() {
            if *result.driver != *config.driver {
                continue;
            }
            let (Some(&device), Ok(result_index)) = (
                by_name.get(&(&*result.pool, &*result.device)),
                u16::try_from(i),
            ) else {
                continue;
            };
            allocations.push(Allocation {
                device,
                claim: Arc::clone(claim),
                result: result_index,
            });
        }
    }
    allocations.sort_by(|a, b| {
        (a.device, a.claim.key.as_str(), a.result).cmp(&(b.device, b.claim.key.as_str(), b.result))
    });

    let counters = counter_usage(&slices, &allocations);

    let mut pods: Vec<&Arc<PodView>> = pods.into_iter().collect();
    pods.sort_by(|a, b| a.key.cmp(&b.key));
    pods.dedup_by(|a, b| a.key == b.key);
    let resources = NodeResources {
        cpu_allocatable_milli: node.cpu_allocatable_milli,
        cpu_requested_milli: pods
            .iter()
            .map(|p| p.cpu_request_milli)
            .fold(0, u64::saturating_add),
        memory_allocatable_mib: node.memory_allocatable_mib,
        memory_requested_mib: pods
            .iter()
            .map(|p| p.memory_request_mib)
            .fold(0, u64::saturating_add),
    };
    let classic_pods: Vec<Arc<PodView>> = pods
        .into_iter()
        .filter(|p| p.gpu_request > 0)
        .cloned()
        .collect();
    let classic = ClassicGpus {
        allocatable: node.classic_allocatable,
        requested: classic_pods
            .iter()
            .map(|p| p.gpu_request)
            .fold(0, u32::saturating_add),
        pods: classic_pods.into(),
    };

    let gpus_on_node = if gpus.is_empty() {
        classic.allocatable
    } else {
        u32::try_from(gpus.len()).unwrap_or(u32::MAX)
    };
    let (market, price_error) = market(config, node, gpus_on_node);

    let mut view = NodeView {
        name: Arc::clone(&node.name),
        market,
        instance_type: node.instance_type.clone(),
        region: node.region.clone(),
        price_error,
        interruption_notice: node.interruption_notice,
        deleting: node.deleting,
        unschedulable: node.unschedulable,
        slices: slices.into(),
        gpus,
        partitions: Box::default(),
        milli: milli_view(&[], UNTRACKED, UNTRACKED, UNTRACKED, UNTRACKED),
        resources,
        allocations: allocations.into(),
        counters,
        classic,
        model: allocator::ModelCell::default(),
    };
    let (partitions, index) = partition::partition_gpus(&view);
    let ((cpu_capacity, cpu_free), (memory_capacity, memory_free)) =
        (resources.cpu(), resources.memory());
    view.milli = milli_view(
        &partitions,
        cpu_capacity,
        cpu_free,
        memory_capacity,
        memory_free,
    );
    view.partitions = partitions.into();
    for (gpu, i) in view.gpus.iter_mut().zip(index) {
        gpu.partition = i;
    }
    view
}

/// The slices at their pool's newest generation, sorted by name (the allocator's order).
fn newest_slices<'a>(slices: impl IntoIterator<Item = &'a Arc<Slice>>) -> Vec<Arc<Slice>> {
    let mut all: Vec<&Arc<Slice>> = slices.into_iter().collect();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    all.dedup_by(|a, b| a.name == b.name);
    let mut newest: HashMap<&str, i64> = HashMap::new();
    for s in &all {
        let g = newest.entry(&s.pool).or_insert(s.generation);
        *g = (*g).max(s.generation);
    }
    all.into_iter()
        .filter(|s| newest.get(&*s.pool) == Some(&s.generation))
        .take(MAX_SLICES_PER_NODE)
        .cloned()
        .collect()
}

/// (pool, device name) → reference; the first slice listing a name wins.
fn device_index(slices: &[Arc<Slice>]) -> HashMap<(&str, &str), DeviceRef> {
    let mut index = HashMap::new();
    for (s, slice) in slices.iter().enumerate() {
        for (i, d) in slice.devices.iter().enumerate() {
            let (Ok(slice_index), Ok(device_index)) = (u16::try_from(s), u16::try_from(i)) else {
                continue;
            };
            index.entry((&*slice.pool, &*d.name)).or_insert(DeviceRef {
                slice: slice_index,
                index: device_index,
            });
        }
    }
    index
}

fn group_by_gpu(slices: &[Arc<Slice>]) -> Box<[GpuDevices]> {
    let mut order: Vec<(Arc<str>, u32)> = Vec::new();
    let mut groups: HashMap<(Arc<str>, u32), Vec<DeviceRef>> = HashMap::new();
    for (s, slice) in slices.iter().enumerate() {
        for (i, d) in slice.devices.iter().enumerate() {
            let (Some(gpu), Ok(slice_index), Ok(device_index)) =
                (d.gpu, u16::try_from(s), u16::try_from(i))
            else {
                continue;
            };
            let key = (Arc::clone(&slice.pool), gpu);
            let refs = groups.entry(key.clone()).or_insert_with(|| {
                order.push(key);
                Vec::new()
            });
            refs.push(DeviceRef {
                slice: slice_index,
                index: device_index,
            });
        }
    }
    order
        .into_iter()
        .filter_map(|key| {
            let devices = groups.remove(&key)?;
            Some(GpuDevices {
                pool: key.0,
                index: key.1,
                devices: devices.into(),
                partition: None,
            })
        })
        .collect()
}

fn counter_usage(slices: &[Arc<Slice>], allocations: &[Allocation]) -> Box<[CounterUsage]> {
    let mut usage: Vec<CounterUsage> = Vec::new();
    let mut position: HashMap<(&str, &str), usize> = HashMap::new();
    for slice in slices {
        for CounterSet { name, counters } in slice.counter_sets.iter() {
            if position.contains_key(&(&*slice.pool, &**name)) {
                continue;
            }
            position.insert((&*slice.pool, &**name), usage.len());
            usage.push(CounterUsage {
                pool: Arc::clone(&slice.pool),
                set: Arc::clone(name),
                counters: counters
                    .iter()
                    .map(|Amount { name, value }| CounterValue {
                        name: Arc::clone(name),
                        total: *value,
                        used: 0,
                    })
                    .collect(),
            });
        }
    }
    // Each allocated device takes its counters once, however many shares it has.
    let mut last: Option<DeviceRef> = None;
    for a in allocations.iter().filter(|a| !a.is_admin_access()) {
        if last == Some(a.device) {
            continue;
        }
        last = Some(a.device);
        let Some(slice) = slices.get(usize::from(a.device.slice)) else {
            continue;
        };
        let Some(device) = slice.devices.get(usize::from(a.device.index)) else {
            continue;
        };
        for consumption in device.consumes.iter() {
            let Some(&at) = position.get(&(&*slice.pool, &*consumption.counter_set)) else {
                continue;
            };
            for c in usage[at].counters.iter_mut() {
                if let Some(v) = amount(&consumption.counters, &c.name) {
                    c.used = c.used.saturating_add(v);
                }
            }
        }
    }
    usage.into()
}

/// The node's market data; an invalid price annotation is reported and the catalog used.
fn market(config: &CacheConfig, node: &NodeFacts, gpus: u32) -> (NodeMarket, Option<Box<str>>) {
    let mut annotations = BTreeMap::new();
    if let Some(price) = &node.price_annotation {
        annotations.insert(HOURLY_PRICE_ANNOTATION.to_owned(), price.to_string());
    }
    let labels = &node.market_labels;
    match node_market(labels, &annotations, gpus, &config.catalog, &config.advisor) {
        Ok(m) => (m, None),
        Err(error) => {
            let message = error.to_string().into_boxed_str();
            // Without annotations `node_market` has nothing left to reject; the fallback
            // below only keeps this total.
            let m = node_market(
                labels,
                &BTreeMap::new(),
                gpus,
                &config.catalog,
                &config.advisor,
            )
            .unwrap_or_else(|_| NodeMarket {
                hourly_price_usd: FALLBACK_USD_PER_GPU_HOUR * f64::from(gpus),
                gpus: f64::from(gpus),
                capacity: capacity_type(labels),
                band: None,
                hourly_interruption_probability: 0.0,
                source: PriceSource::Fallback,
                risk_source: RiskSource::NotSpot,
            });
            (m, Some(message))
        }
    }
}

#[cfg(test)]
mod tests;
