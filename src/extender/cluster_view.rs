//! The cluster cache as the extender's view: `cluster::Snapshot` read through
//! [`ClusterView`], its nodes scored through [`GpuNode`].
//!
//! Translation only: a cached claim's requests become [`GpuRequest`]s, a cached pod a
//! [`PodObject`] (what the cache kept of it), a node view its partition states and market.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use dashmap::DashMap;

use super::api::object::{
    Container, ObjectMeta, PodObject, PodResourceClaim, PodResourceClaimStatus, PodSpec, PodStatus,
    QuantityText, Resources,
};
use super::claim::{ClaimRequests, alternative_from, exact_count};
use super::demand::PodDemand;
use super::demand::{Count, DeviceClasses, GpuRequest};
use super::evaluate::Scoring;
use super::evaluate::{GpuLayout, GpuNode, NodeGpus};
use super::pod::CLASSIC_GPU_RESOURCE;
use super::predict::{PredictedDevice, Prediction, Predictor};
use super::typical::TypicalModel;
use super::view::{AllocatedShare, ClusterView, Detail, Evaluation, NodeScorer, ViewSource};
use crate::allocator::Claim;
use crate::cluster::claim::AllocationMode;
use crate::cluster::slice::{DeviceKind as SliceKind, amount};
use crate::cluster::view::allocator::model_claim;
use crate::cluster::{
    Allocation, Cache, ClaimView, Device, GpuDevices, NodeView, PodView, Snapshot,
};
use crate::market::CapacityType;
use crate::market::{MarketError, NodeMarket};
use crate::model::mig::{GpuProduct, profile};
use crate::model::partition::COMPUTE_PERCENT;
use crate::model::partition::Partition;
use crate::scoring::Tolerance;
use crate::scoring::filter::NodeCondition;

/// A snapshot of the cache with the device classes its claims are read against.
pub struct CacheView {
    snapshot: Snapshot,
    classes: Arc<DeviceClasses>,
}

/// The running cache as a [`ViewSource`].
pub struct CacheSource {
    cache: Cache,
    classes: Arc<DeviceClasses>,
}

impl CacheSource {
    /// Reads `cache`, taking claims of `classes` as GPU requests.
    pub fn new(cache: Cache, classes: DeviceClasses) -> Self {
        CacheSource {
            cache,
            classes: Arc::new(classes),
        }
    }
}

impl ViewSource for CacheSource {
    type View = CacheView;

    fn snapshot(&self) -> Arc<CacheView> {
        Arc::new(CacheView {
            snapshot: self.cache.snapshot(),
            classes: Arc::clone(&self.classes),
        })
    }
}

impl CacheView {
    /// A view of `snapshot` (tests and benchmarks build snapshots without a running cache).
    pub fn new(snapshot: Snapshot, classes: Arc<DeviceClasses>) -> Self {
        CacheView { snapshot, classes }
    }
}

impl ClusterView for CacheView {
    type Node = Arc<NodeView>;

    fn node(&self, name: &str) -> Option<&Arc<NodeView>> {
        self.snapshot.node(name)
    }

    fn node_condition(&self, node: &Arc<NodeView>) -> NodeCondition {
        NodeCondition {
            capacity: node.market.capacity,
            hourly_interruption_probability: node.market.hourly_interruption_probability,
            interruption_notice: node.interruption_notice,
            deleting: node.deleting,
        }
    }

    fn node_market<'a>(
        &'a self,
        node: &'a Arc<NodeView>,
    ) -> Result<&'a NodeMarket, &'a MarketError> {
        // An invalid price annotation was already replaced by the catalog price in the view
        // (`NodeView::price_error` says so); the market data is always usable.
        Ok(&node.market)
    }

    fn gpu_count(&self, node: &Arc<NodeView>) -> u32 {
        let devices = u32::try_from(node.gpu_count()).unwrap_or(u32::MAX);
        devices.max(node.classic.allocatable)
    }

    fn claim(&self, id: &str) -> Option<ClaimRequests> {
        let (namespace, name) = id.split_once('/')?;
        let claim = self.snapshot.claim(namespace, name)?;
        Some(claim_requests(claim, &self.classes))
    }

    fn pod(&self, namespace: &str, name: &str) -> Option<PodObject> {
        self.snapshot.pod(namespace, name).map(|p| pod_object(p))
    }

    fn pod_node(&self, namespace: &str, name: &str) -> Option<String> {
        let pod = self.snapshot.pod(namespace, name)?;
        pod.node.as_deref().map(str::to_owned)
    }

    fn node_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.snapshot.nodes().map(|n| n.name.to_string()).collect();
        names.sort_unstable();
        names
    }

    fn allocated_devices(&self, node: &Arc<NodeView>) -> Vec<AllocatedShare> {
        node.allocations
            .iter()
            .filter(|a| !a.is_admin_access())
            .filter_map(|a| {
                let device = node.device(a.device)?;
                Some(AllocatedShare {
                    namespace: a.claim.key.namespace().to_owned(),
                    pod: a
                        .claim
                        .reserved_for
                        .first()
                        .map(|p| p.name.to_string())
                        .unwrap_or_default(),
                    claim: a.claim.key.name().to_owned(),
                    device: device.name.to_string(),
                    kind: device.kind.as_str().to_owned(),
                    gpus: share_of_gpu(node, a, device),
                })
            })
            .collect()
    }

    fn idle_gpus(&self, node: &Arc<NodeView>) -> f64 {
        node.partitions
            .iter()
            .map(|p| (1.0 - p.used_fraction()).clamp(0.0, 1.0))
            .sum()
    }
}

impl GpuNode for Arc<NodeView> {
    fn node_gpus(&self) -> NodeGpus<'_> {
        NodeGpus {
            gpus: &self.partitions,
            milli: self.milli,
            in_use: self.in_use(),
            layout: self,
        }
    }
}

impl GpuLayout for Arc<NodeView> {
    fn gpu_index(&self, position: usize) -> u32 {
        self.gpu_of_partition(position)
            .map_or_else(|| u32::try_from(position).unwrap_or(u32::MAX), |g| g.index)
    }

    fn replica_fraction(&self) -> Option<f64> {
        replica_fraction(self)
    }

    fn predict(
        &self,
        predictor: &Predictor,
        claims: &[Arc<Claim>],
    ) -> Option<Result<Prediction, String>> {
        Some(predictor.predict(self, claims))
    }

    fn predicted_partition(&self, device: &PredictedDevice) -> Option<(usize, Partition)> {
        predicted_partition(self, device)
    }

    fn share_charge(
        &self,
        memory_bytes: Option<u64>,
        compute_pct: Option<f64>,
    ) -> Option<(u64, u16)> {
        share_charge(self, memory_bytes, compute_pct)
    }
}

/// The partition-model position and partition of a predicted device: a whole GPU, a MIG
/// device (its catalog profile and placement), a share with what it consumes, a replica
/// (its fixed part of the GPU). `None` for a GPU the partition model does not hold.
fn predicted_partition(node: &NodeView, predicted: &PredictedDevice) -> Option<(usize, Partition)> {
    const MIB: u64 = 1024 * 1024;
    let gpu = node
        .gpus
        .iter()
        .find(|g| g.devices.contains(&predicted.device))?;
    let position = gpu.partition?;
    let state = node.partitions.get(position)?;
    let device = node.device(predicted.device)?;
    let consumed = |name: &str| {
        predicted
            .consumed
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
    };
    let partition = match device.kind {
        SliceKind::Gpu => Partition::Whole,
        SliceKind::Mig => {
            let product = state.mig_product()?;
            let mig = device.mig.as_ref()?;
            Partition::Mig {
                profile: profile(product, &mig.profile)?,
                placement: mig.placement?,
            }
        }
        SliceKind::Shared => Partition::Shared {
            memory_mib: consumed("memory").unwrap_or(0).div_ceil(MIB),
            compute_pct: u8::try_from(consumed("compute").unwrap_or(0).min(100)).ok()?,
        },
        SliceKind::Share => {
            let n = replicas_of(node, device)?;
            Partition::Shared {
                memory_mib: device.memory_bytes().unwrap_or(0) / MIB,
                compute_pct: u8::try_from(100 / n.max(1)).ok()?,
            }
        }
        SliceKind::Other => return None,
    };
    Some((position, partition))
}

/// What one share consumes on `node`'s shared GPUs under the first shared device's published
/// request policies (the plugin publishes every shared device of a node alike): memory in
/// MiB, compute in thousandths. A claim naming no memory consumes the policy's `default`
/// (the whole GPU's memory as tessera publishes it), 1500Mi is charged 2Gi where the step is
/// 1Gi. `None` when the policy refuses the amount; the plain request (MiB, unnamed = 0) when
/// the node has no shared device with policies.
fn share_charge(
    node: &NodeView,
    memory_bytes: Option<u64>,
    compute_pct: Option<f64>,
) -> Option<(u64, u16)> {
    const MIB: u64 = 1024 * 1024;
    let shared = node
        .devices()
        .map(|(_, d)| d)
        .find(|d| d.kind == SliceKind::Shared && !d.policies.is_empty());
    let pct = compute_pct.map(|p| p.clamp(0.0, 100.0));
    let Some(device) = shared else {
        return Some((
            memory_bytes.map_or(0, |b| b.div_ceil(MIB)),
            (pct.unwrap_or(0.0) * 10.0).ceil() as u16,
        ));
    };
    let memory = match device.capacity("memory") {
        Some(_) => device.consumed("memory", memory_bytes)?.div_ceil(MIB),
        None => memory_bytes.map_or(0, |b| b.div_ceil(MIB)),
    };
    // Percent is the device's unit; a fractional request is rounded up like a quantity.
    let compute = match device.capacity("compute") {
        Some(_) => {
            let consumed = device.consumed("compute", pct.map(|p| p.ceil() as u64))?;
            u16::try_from(consumed.min(u64::from(COMPUTE_PERCENT)) * 10).ok()?
        }
        None => (pct.unwrap_or(0.0) * 10.0).ceil() as u16,
    };
    Some((memory, compute))
}

/// The requests of a cached claim; an allocated claim asks for nothing more.
fn claim_requests(claim: &ClaimView, classes: &DeviceClasses) -> ClaimRequests {
    if claim.is_allocated() {
        return ClaimRequests {
            allocated: true,
            ..ClaimRequests::default()
        };
    }
    spec_requests(claim, classes)
}

/// What a cached claim's spec asks of `classes`, whether or not it is allocated yet (the
/// typical-pod learner reads what placed pods asked for; `allocated` says which it was).
pub(crate) fn spec_requests(claim: &ClaimView, classes: &DeviceClasses) -> ClaimRequests {
    let mut out = ClaimRequests {
        allocated: claim.is_allocated(),
        ..ClaimRequests::default()
    };
    // The allocator model sees only tessera's slices: a claim also asking another driver
    // cannot be predicted.
    let ours = claim.spec.requests.iter().all(|r| {
        r.alternatives
            .iter()
            .all(|a| classes.kind(&a.device_class).is_some())
    });
    if ours {
        out.model = model_claim(claim, classes.driver()).map(Arc::new);
    }
    for request in claim.spec.requests.iter() {
        let source = format!("{}/{}", claim.key.as_str(), request.name);
        let mut alternatives = Vec::with_capacity(request.alternatives.len());
        let mut problem = None;
        for alt in request.alternatives.iter() {
            let Some(kind) = classes.kind(&alt.device_class) else {
                continue;
            };
            if alt.unreadable {
                problem = Some(format!(
                    "{} could not be read in full (selector, quantity or allocation mode)",
                    alt.name.as_deref().unwrap_or("request")
                ));
                break;
            }
            let count = match alt.mode {
                AllocationMode::All => Ok(Count::All),
                AllocationMode::ExactCount(n) => exact_count(u64::from(n)),
            };
            let built = count.and_then(|count| {
                alternative_from(
                    alt.name.as_deref().map(str::to_owned),
                    kind,
                    count,
                    alt.capacity.iter().map(|a| (&*a.name, a.value as f64)),
                    alt.selectors.iter().map(|s| &**s),
                )
            });
            match built {
                Ok(a) => alternatives.push(a),
                Err(e) => {
                    problem = Some(e);
                    break;
                }
            }
        }
        match problem {
            Some(p) => out.unreadable.push(format!("{source}: {p}")),
            None if alternatives.is_empty() => {}
            None => out.requests.push(GpuRequest {
                source,
                alternatives,
            }),
        }
    }
    out
}

/// What the cache kept of a pod, as the pod object the demand parser reads: its claims, its
/// classic GPU request, its `tessera.dev/` annotations (CPU and memory are not kept).
pub(crate) fn pod_object(pod: &PodView) -> PodObject {
    let mut spec = PodSpec::default();
    let mut status = PodStatus::default();
    for c in pod.claims.iter() {
        let name = c.name.to_string();
        let claim = c.claim.as_deref().map(str::to_owned);
        if c.from_template {
            spec.resource_claims.push(PodResourceClaim {
                name: name.clone(),
                resource_claim_name: None,
                resource_claim_template_name: Some(String::new()),
            });
            status.resource_claim_statuses.push(PodResourceClaimStatus {
                name,
                resource_claim_name: claim,
            });
        } else {
            spec.resource_claims.push(PodResourceClaim {
                name,
                resource_claim_name: claim,
                resource_claim_template_name: None,
            });
        }
    }
    // The cached effective requests, as one container: what the pod asks of the node.
    let requests: BTreeMap<String, QuantityText> = [
        (CLASSIC_GPU_RESOURCE, u64::from(pod.gpu_request), ""),
        ("cpu", pod.cpu_request_milli, "m"),
        ("memory", pod.memory_request_mib, "Mi"),
    ]
    .into_iter()
    .filter(|(_, value, _)| *value > 0)
    .map(|(name, value, unit)| (name.to_owned(), QuantityText(format!("{value}{unit}"))))
    .collect();
    if !requests.is_empty() {
        spec.containers.push(Container {
            restart_policy: None,
            resources: Resources {
                requests,
                limits: BTreeMap::new(),
            },
        });
    }
    PodObject {
        metadata: ObjectMeta {
            name: pod.key.name().to_owned(),
            namespace: pod.key.namespace().to_owned(),
            uid: pod.uid.to_string(),
            labels: BTreeMap::new(),
            annotations: pod
                .annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            deletion_timestamp: None,
        },
        spec,
        status,
    }
}

/// The share of a physical GPU one allocation holds, for cost attribution: 1 for a whole
/// GPU, a MIG profile's compute slices over its GPU's, a share's larger consumed share of
/// compute and memory, a replica's 1/N of its GPU.
fn share_of_gpu(node: &NodeView, allocation: &Allocation, device: &Device) -> f64 {
    match device.kind {
        SliceKind::Gpu => 1.0,
        SliceKind::Mig => {
            let product = device
                .model
                .as_deref()
                .and_then(GpuProduct::from_product_name);
            let mig = product.zip(device.mig.as_ref()).and_then(|(product, mig)| {
                let p = profile(product, &mig.profile)?;
                Some(f64::from(p.compute_slices) / f64::from(product.total_compute_slices().max(1)))
            });
            // A profile the catalog does not know: its memory over the GPU's.
            mig.unwrap_or_else(|| memory_share(node, device, device.memory_bytes()))
        }
        SliceKind::Shared => {
            let consumed = allocation.result().map(|r| &r.consumed);
            let compute = consumed
                .and_then(|c| amount(c, "compute"))
                .map_or(0.0, |pct| pct as f64 / f64::from(COMPUTE_PERCENT));
            let memory = device
                .memory_bytes()
                .filter(|total| *total > 0)
                .zip(consumed.and_then(|c| amount(c, "memory")))
                .map_or(0.0, |(total, used)| used as f64 / total as f64);
            compute.max(memory).clamp(0.0, 1.0)
        }
        SliceKind::Share => replicas_of(node, device).map_or(0.0, |n| 1.0 / f64::from(n)),
        SliceKind::Other => 0.0,
    }
}

/// `bytes` over the memory of the whole GPU `device` sits on (1 when unknown).
fn memory_share(node: &NodeView, device: &Device, bytes: Option<u64>) -> f64 {
    let whole = gpu_devices(node, device)
        .and_then(|g| {
            g.devices
                .iter()
                .filter_map(|r| node.device(*r))
                .find(|d| d.kind == SliceKind::Gpu)
        })
        .and_then(|d| d.memory_bytes())
        .filter(|total| *total > 0);
    match (bytes, whole) {
        (Some(b), Some(total)) => (b as f64 / total as f64).clamp(0.0, 1.0),
        _ => 1.0,
    }
}

/// The GPU `device` belongs to.
fn gpu_devices<'a>(node: &'a NodeView, device: &Device) -> Option<&'a GpuDevices> {
    let index = device.gpu?;
    node.gpus.iter().find(|g| {
        g.index == index
            && g.devices
                .iter()
                .any(|r| node.device(*r).is_some_and(|d| d.name == device.name))
    })
}

/// Time-sliced replicas on the GPU of `device`.
fn replicas_of(node: &NodeView, device: &Device) -> Option<u32> {
    let gpu = gpu_devices(node, device)?;
    let n = gpu
        .devices
        .iter()
        .filter_map(|r| node.device(*r))
        .filter(|d| d.kind == SliceKind::Share)
        .count();
    u32::try_from(n).ok().filter(|n| *n > 0)
}

/// The share of a GPU one replica is on `node`, from its first time-sliced GPU (the plugin
/// slices every GPU of a node alike).
fn replica_fraction(node: &NodeView) -> Option<f64> {
    node.gpus.iter().find_map(|g| {
        let n = g
            .devices
            .iter()
            .filter_map(|r| node.device(*r))
            .filter(|d| d.kind == SliceKind::Share)
            .count();
        (n > 0).then(|| 1.0 / n as f64)
    })
}

/// Node scores remembered per node view and pod shape.
///
/// A node's view is rebuilt (a new `Arc`) only when one of its objects changes, so a score
/// computed for one view stays right for as long as that view is current: between two pods
/// kube-scheduler typically changes one node, and pods of one shape (the replicas of a Job or
/// Deployment) then cost a lookup on every other node. The simulator caches scores the same
/// way (`sim::engine`).
///
/// Entries hold a `Weak` to their view, which keeps the view's allocation (not its contents)
/// from being reused, so an address can never match a different view. The memo is cleared
/// when it reaches [`MAX_MEMO_ENTRIES`], and when a newer typical-pod model first scores
/// (entries are keyed by the model's generation as well, so a request still holding the
/// older model never reads a newer model's score, nor the reverse).
pub struct MemoScoring {
    scoring: Scoring,
    memo: DashMap<MemoKey, MemoEntry, foldhash::fast::RandomState>,
    /// Newest typical-model generation that has stored an entry.
    generation: AtomicU64,
}

/// Remembered scores at most; about 13 pod shapes on each of 5,000 nodes.
pub const MAX_MEMO_ENTRIES: usize = 65_536;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct MemoKey {
    /// Generation of the typical-pod model that scored it: a newly learned model makes
    /// every older entry unreachable (they age out with the memo's bound).
    typical: u64,
    /// Address of the node view.
    node: usize,
    /// `PodDemand::shape_key`.
    shape: u64,
    tolerance: Tolerance,
    notice: bool,
    /// The market data used (a node sent as an object is priced from the object).
    market: [u64; 4],
}

struct MemoEntry {
    node: Weak<NodeView>,
    evaluation: Option<Evaluation>,
}

impl MemoScoring {
    /// Memoized `scoring`.
    pub fn new(scoring: Scoring) -> Self {
        MemoScoring {
            scoring,
            memo: DashMap::default(),
            generation: AtomicU64::new(0),
        }
    }

    /// Remembered scores.
    pub fn len(&self) -> usize {
        self.memo.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.memo.is_empty()
    }
}

impl NodeScorer<Arc<NodeView>> for MemoScoring {
    fn typical(&self) -> Option<Arc<TypicalModel>> {
        Some(self.scoring.typical().load())
    }

    fn evaluate(
        &self,
        typical: Option<&TypicalModel>,
        node: &Arc<NodeView>,
        market: &NodeMarket,
        condition: &NodeCondition,
        demand: &PodDemand,
        tolerance: Tolerance,
        detail: Detail,
    ) -> Option<Evaluation> {
        // One model for the lookup, the evaluation and the entry: the generation in the key
        // is the one that scored it.
        self.scoring.typical().with_model(typical, |typical| {
            if detail == Detail::Explain {
                return self.scoring.evaluate_node_with(
                    typical, node, market, condition, demand, tolerance, detail,
                );
            }
            if let Some(remembered) =
                self.recall(Some(typical), node, market, condition, demand, tolerance)
            {
                return remembered;
            }
            let evaluation = self
                .scoring
                .evaluate_node_with(typical, node, market, condition, demand, tolerance, detail);
            let generation = typical.generation();
            let newer = self.generation.fetch_max(generation, Ordering::AcqRel) < generation;
            if newer || self.memo.len() >= MAX_MEMO_ENTRIES {
                self.memo.clear();
            }
            self.memo.insert(
                memo_key(typical, node, market, condition, demand, tolerance),
                MemoEntry {
                    node: Arc::downgrade(node),
                    evaluation: evaluation.clone(),
                },
            );
            evaluation
        })
    }

    fn recall(
        &self,
        typical: Option<&TypicalModel>,
        node: &Arc<NodeView>,
        market: &NodeMarket,
        condition: &NodeCondition,
        demand: &PodDemand,
        tolerance: Tolerance,
    ) -> Option<Option<Evaluation>> {
        let key = self.scoring.typical().with_model(typical, |typical| {
            memo_key(typical, node, market, condition, demand, tolerance)
        });
        let entry = self.memo.get(&key)?;
        // Same address and the entry's view still allocated: the same view.
        std::ptr::eq(entry.node.as_ptr(), Arc::as_ptr(node)).then(|| entry.evaluation.clone())
    }

    fn to_extender_scores(&self, raw: &[f64]) -> Vec<i64> {
        NodeScorer::<Arc<NodeView>>::to_extender_scores(&self.scoring, raw)
    }

    fn hourly_cost(&self, market: &NodeMarket, gpus: f64) -> f64 {
        NodeScorer::<Arc<NodeView>>::hourly_cost(&self.scoring, market, gpus)
    }
}

fn memo_key(
    typical: &TypicalModel,
    node: &Arc<NodeView>,
    market: &NodeMarket,
    condition: &NodeCondition,
    demand: &PodDemand,
    tolerance: Tolerance,
) -> MemoKey {
    MemoKey {
        typical: typical.generation(),
        node: Arc::as_ptr(node) as usize,
        shape: demand.shape_key(),
        tolerance,
        notice: condition.interruption_notice.is_some(),
        market: [
            market.hourly_price_usd.to_bits(),
            market.gpus.to_bits(),
            market.hourly_interruption_probability.to_bits(),
            capacity_bits(market.capacity),
        ],
    }
}

fn capacity_bits(capacity: CapacityType) -> u64 {
    match capacity {
        CapacityType::OnDemand => 0,
        CapacityType::Spot => 1,
        CapacityType::Reserved => 2,
    }
}

#[cfg(test)]
mod tests;
