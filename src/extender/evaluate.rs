//! A pod's demand on one node, through `scoring`: which partition each request gets
//! ([`scoring::partition::fit`](crate::scoring::partition::fit)), how much the placement
//! fragments the node (the tessera policy's term, as the simulator computes it), and the
//! blended cost score ([`score_node`]).
//!
//! This file only translates: a [`GpuRequest`] alternative becomes a [`PartitionDemand`], the
//! fit becomes [`PartitionChoice`]s, and the node's market data becomes [`NodeInputs`].

use crate::market::NodeMarket;
use crate::model::mig::{GpuProduct, profile, smallest_adequate};
pub use crate::model::partition::milli_view;
use crate::model::partition::{Assignment, Partition, PartitionDemand, PartitionGpu, apply};
use crate::model::{Demand, DeviceName, MILLI_PER_GPU, ModelSet, NodeState};
use crate::scoring::filter::NodeCondition;
use crate::scoring::frag::waste::placement_frag_gpus;
use crate::scoring::partition::{PartitionKind, assignment, fit};
use crate::scoring::{
    NodeInputs, PodInputs, Tolerance, TypicalPods, Weights, partition_hourly_cost, score_node,
    to_extender_range,
};

use std::sync::Arc;

use super::demand::{Alternative, Count, DeviceKind, GpuRequest, PodDemand};
use super::predict::{Certainty, PredictedDevice, PredictedOutcome, Prediction, Predictor};
use super::typical::{LearnedStats, TypicalHandle, TypicalKind, TypicalModel};
use super::view::{Detail, Evaluation, NodeScorer, PartitionChoice, PredictionNote};
use crate::allocator::Claim;

/// Bytes in a MiB.
const MIB: u64 = 1024 * 1024;

/// A node's GPUs as scoring sees them.
#[derive(Clone, Copy)]
pub struct NodeGpus<'a> {
    /// Each GPU's partitioning and what is taken, in device index order.
    pub gpus: &'a [PartitionGpu],
    /// The same node in the simulator's milli-GPU terms (for the fragmentation term).
    pub milli: NodeState,
    /// Whether any pod uses the node (an idle node's whole price falls due when it starts).
    pub in_use: bool,
    /// What the partition states do not say, asked only when needed.
    pub layout: &'a dyn GpuLayout,
}

/// Facts about a node's GPUs beyond their partition states, looked up only when a request
/// needs them (most never do).
pub trait GpuLayout: Sync {
    /// The device index of the GPU at `position` of [`NodeGpus::gpus`]; the position itself
    /// by default, right unless the node skips GPUs it cannot model.
    fn gpu_index(&self, position: usize) -> u32 {
        u32::try_from(position).unwrap_or(u32::MAX)
    }

    /// Share of a GPU one time-sliced replica is on this node (1/N for N replicas); `None`
    /// when it has no time-sliced GPUs.
    fn replica_fraction(&self) -> Option<f64> {
        None
    }

    /// What the scheduler's allocator gives `claims` on this node (`None`: this node type
    /// cannot say; `Some(Err)`: the allocator model cannot tell, with the reason).
    fn predict(
        &self,
        _predictor: &Predictor,
        _claims: &[Arc<Claim>],
    ) -> Option<Result<Prediction, String>> {
        None
    }

    /// The position in [`NodeGpus::gpus`] and the partition a predicted device stands for.
    fn predicted_partition(&self, _device: &PredictedDevice) -> Option<(usize, Partition)> {
        None
    }

    /// What one share of a shared GPU consumes when a claim asks for `memory_bytes` (`None`:
    /// names no memory) and `compute_pct`, as the scheduler charges it under the node's
    /// published `requestPolicy` (a claim naming no memory takes the default, requests are
    /// rounded up to the policy's steps): (MiB, thousandths of the GPU's compute). `None`
    /// when the policy refuses the amount. By default, for nodes without published policies:
    /// the request rounded up to a MiB, nothing when unnamed.
    fn share_charge(
        &self,
        memory_bytes: Option<u64>,
        compute_pct: Option<f64>,
    ) -> Option<(u64, u16)> {
        let pct = compute_pct.unwrap_or(0.0).clamp(0.0, 100.0);
        Some((
            memory_bytes.map_or(0, |b| b.div_ceil(MIB)),
            (pct * 10.0).ceil() as u16,
        ))
    }
}

/// GPUs indexed by their position, without time-sliced replicas.
#[derive(Debug, Clone, Copy, Default)]
pub struct ByPosition;

impl GpuLayout for ByPosition {}

/// A cached node type that can show its GPUs to scoring; what the cluster cache implements
/// for [`Scoring`] to score its nodes.
pub trait GpuNode: Send + Sync {
    /// The node's GPUs.
    fn node_gpus(&self) -> NodeGpus<'_>;
}

/// What the extender scores with: the blend's weights, the typical pods the fragmentation
/// policy measures against (fixed, or learned and swapped while serving) and, when set, the
/// allocator model that predicts which devices the scheduler will give.
#[derive(Debug, Clone)]
pub struct Scoring {
    weights: Weights,
    typical: TypicalHandle,
    predictor: Option<Predictor>,
}

/// One evaluation's inputs besides the placement.
struct Terms<'n, 'g> {
    typical: &'n TypicalModel,
    node: &'n NodeGpus<'g>,
    market: &'n NodeMarket,
    interruption_notice: bool,
    demand: &'n PodDemand,
    tolerance: Tolerance,
}

impl Scoring {
    /// Scoring with `weights`, measuring fragmentation against `typical` pods for good.
    pub fn new(weights: Weights, typical: TypicalPods) -> Self {
        let model = TypicalModel::new(
            TypicalKind::Bundled,
            0,
            typical,
            weights.fragmentation,
            LearnedStats::default(),
        );
        Scoring::with_typical(weights, TypicalHandle::new(model))
    }

    /// Scoring with `weights`, measuring fragmentation against whatever model `typical`
    /// holds when a request starts (its models must be built with `weights.fragmentation`).
    pub fn with_typical(weights: Weights, typical: TypicalHandle) -> Self {
        Scoring {
            weights,
            typical,
            predictor: None,
        }
    }

    /// Where the typical pods come from.
    pub fn typical(&self) -> &TypicalHandle {
        &self.typical
    }

    /// The blend's weights.
    pub fn weights(&self) -> &Weights {
        &self.weights
    }

    /// Scoring that prices what kube-scheduler's allocator will give (`predictor`'s release)
    /// instead of tessera's own fit, wherever the allocator model can tell.
    pub fn with_predictor(mut self, predictor: Predictor) -> Self {
        self.predictor = Some(predictor);
        self
    }

    /// The predictor, if scoring predicts the allocator.
    pub fn predictor(&self) -> Option<&Predictor> {
        self.predictor.as_ref()
    }

    /// Where `demand` would go on the node and what that costs, or `None` if it does not fit
    /// there. With a predictor: what the allocator will give (the expected terms over its
    /// possible outcomes where the release's slice order is arbitrary); without one, or
    /// where the model cannot tell: tessera's own fit. Fragmentation against the current
    /// typical model.
    pub fn evaluate(
        &self,
        node: &NodeGpus<'_>,
        market: &NodeMarket,
        interruption_notice: bool,
        demand: &PodDemand,
        tolerance: Tolerance,
        detail: Detail,
    ) -> Option<Evaluation> {
        let typical = self.typical.load();
        self.evaluate_with(
            &typical,
            node,
            market,
            interruption_notice,
            demand,
            tolerance,
            detail,
        )
    }

    /// [`Scoring::evaluate`] with fragmentation measured against `typical` (the model a
    /// request loaded once for all its nodes).
    #[allow(clippy::too_many_arguments)]
    pub fn evaluate_with(
        &self,
        typical: &TypicalModel,
        node: &NodeGpus<'_>,
        market: &NodeMarket,
        interruption_notice: bool,
        demand: &PodDemand,
        tolerance: Tolerance,
        detail: Detail,
    ) -> Option<Evaluation> {
        let terms = Terms {
            typical,
            node,
            market,
            interruption_notice,
            demand,
            tolerance,
        };
        let prediction = match &self.predictor {
            Some(p) if !demand.model_missing && !demand.model_claims.is_empty() => {
                node.layout.predict(p, &demand.model_claims)
            }
            _ => None,
        };
        let note = match prediction {
            Some(Ok(prediction)) => return self.evaluate_predicted(&terms, &prediction, detail),
            Some(Err(reason)) => Some(PredictionNote::OwnFit {
                reason: format!("the allocator model cannot tell: {reason}"),
            }),
            None if self.predictor.is_some() && !demand.requests.is_empty() => {
                Some(PredictionNote::OwnFit {
                    reason: "the pod has requests the allocator model does not see (classic \
                             nvidia.com/gpu, another driver's, or a claim not read in full)"
                        .to_owned(),
                })
            }
            None => None,
        };
        let placed = place(node, &demand.requests, detail)?;
        let mut evaluation = self.score_placed(&terms, placed);
        evaluation.prediction = note;
        Some(evaluation)
    }

    /// The expected evaluation over the predicted outcomes; `None` when the pod does not fit
    /// (no outcome) or an outcome names a device the partition model cannot place.
    fn evaluate_predicted(
        &self,
        terms: &Terms<'_, '_>,
        prediction: &Prediction,
        detail: Detail,
    ) -> Option<Evaluation> {
        let mut total: Option<Evaluation> = None;
        let mut weight = 0.0;
        for outcome in &prediction.outcomes {
            let placed = place_predicted(terms.node, &terms.demand.requests, outcome, detail)?;
            let e = self.score_placed(terms, placed);
            let p = outcome.probability;
            weight += p;
            total = Some(match total {
                None => Evaluation {
                    hourly_cost_usd: e.hourly_cost_usd * p,
                    risk_usd_per_hour: e.risk_usd_per_hour * p,
                    fragmentation: e.fragmentation * p,
                    packing: e.packing * p,
                    raw_score: e.raw_score * p,
                    ..e
                },
                Some(mut t) => {
                    t.hourly_cost_usd += e.hourly_cost_usd * p;
                    t.risk_usd_per_hour += e.risk_usd_per_hour * p;
                    t.fragmentation += e.fragmentation * p;
                    t.packing += e.packing * p;
                    t.raw_score += e.raw_score * p;
                    t.partitions.extend(e.partitions);
                    t.refused = t.refused.or(e.refused);
                    t
                }
            });
        }
        let mut t = total?;
        if weight > 0.0 && (weight - 1.0).abs() > 1e-12 {
            t.hourly_cost_usd /= weight;
            t.risk_usd_per_hour /= weight;
            t.fragmentation /= weight;
            t.packing /= weight;
            t.raw_score /= weight;
        }
        // A refused outcome refuses the node (refusals are about the node and the pod).
        if t.refused.is_some() || t.raw_score.is_nan() {
            t.raw_score = f64::NEG_INFINITY;
        }
        t.prediction = Some(match prediction.certainty {
            Certainty::Exact => PredictionNote::Exact,
            Certainty::Expected { orders, sampled } => PredictionNote::Expected {
                orders,
                sampled,
                outcomes: prediction.outcomes.len(),
            },
        });
        Some(t)
    }

    /// The blend's terms for one placement.
    fn score_placed(&self, terms: &Terms<'_, '_>, placed: Placed) -> Evaluation {
        let partition_gpus: f64 = placed.assignments.iter().map(|a| a.fraction).sum();
        let frag_gpus = placement_frag_gpus(
            frag_delta_gpus(terms.typical, terms.node, &placed.assignments, terms.demand),
            partition_gpus,
            placed.needed_gpus,
        );
        let market = terms.market;
        let inputs = NodeInputs {
            // Unknown (no GPUs to divide by): scoring prices it at its fallback.
            price_per_gpu_hour: market.price_per_gpu_hour().unwrap_or(-1.0),
            node_hourly_price: market.hourly_price_usd,
            in_use: terms.node.in_use,
            capacity: market.capacity,
            hourly_interruption_probability: market.hourly_interruption_probability,
            interruption_notice: terms.interruption_notice,
        };
        let pod = PodInputs {
            tolerance: terms.tolerance,
            partition_gpus,
            frag_gpus,
        };
        let decision = score_node(&inputs, &pod, &self.weights);
        Evaluation {
            partitions: placed.choices,
            hourly_cost_usd: decision.hourly_cost,
            risk_usd_per_hour: decision.risk_cost,
            fragmentation: decision.frag_term,
            packing: decision.pack_term,
            // A node the pod must not use ranks below every usable one: a non-finite score
            // maps to 0 without stretching the others' range.
            raw_score: if decision.is_feasible() {
                decision.score
            } else {
                f64::NEG_INFINITY
            },
            refused: decision.filtered.map(|f| f.message()),
            prediction: None,
        }
    }
}

/// The fragmentation change of the placement, in GPUs: minus the tessera policy's score (with
/// `typical`'s pods) on the node's milli-GPU view, exactly as the simulator's cost experiment
/// takes it. 0 when the placement has no single milli-GPU shape (several partial GPUs) or the
/// milli view has no room for it (rounding). The view carries the node's GPU product as
/// `typical` knows it (its first GPU's: a node has one product), so typical pods pinned to
/// products and the model-pressure term see it as the simulator sees a node's model.
fn frag_delta_gpus(
    typical: &TypicalModel,
    node: &NodeGpus<'_>,
    assignments: &[Assignment],
    demand: &PodDemand,
) -> f64 {
    let Some((gpus, gpu_milli)) = milli_shape(assignments) else {
        return 0.0;
    };
    let mut milli: NodeState = node.milli;
    milli.model = node.gpus.first().and_then(|g| typical.model_id(&g.model));
    let shape = Demand {
        cpu_milli: demand.cpu_milli,
        memory_mib: demand.memory_mib,
        gpus,
        gpu_milli,
        models: ModelSet::ANY,
    };
    typical
        .scorer()
        .score(&milli, &shape)
        .map_or(0.0, |s| -s.score / f64::from(MILLI_PER_GPU))
}

impl Scoring {
    /// [`Scoring::evaluate`] on a cached node type.
    pub fn evaluate_node<N: GpuNode>(
        &self,
        node: &N,
        market: &NodeMarket,
        condition: &NodeCondition,
        demand: &PodDemand,
        tolerance: Tolerance,
        detail: Detail,
    ) -> Option<Evaluation> {
        let typical = self.typical.load();
        self.evaluate_node_with(&typical, node, market, condition, demand, tolerance, detail)
    }

    /// [`Scoring::evaluate_with`] on a cached node type.
    #[allow(clippy::too_many_arguments)]
    pub fn evaluate_node_with<N: GpuNode>(
        &self,
        typical: &TypicalModel,
        node: &N,
        market: &NodeMarket,
        condition: &NodeCondition,
        demand: &PodDemand,
        tolerance: Tolerance,
        detail: Detail,
    ) -> Option<Evaluation> {
        self.evaluate_with(
            typical,
            &node.node_gpus(),
            market,
            condition.interruption_notice.is_some(),
            demand,
            tolerance,
            detail,
        )
    }
}

impl<N: GpuNode> NodeScorer<N> for Scoring {
    fn typical(&self) -> Option<Arc<TypicalModel>> {
        Some(self.typical.load())
    }

    fn evaluate(
        &self,
        typical: Option<&TypicalModel>,
        node: &N,
        market: &NodeMarket,
        condition: &NodeCondition,
        demand: &PodDemand,
        tolerance: Tolerance,
        detail: Detail,
    ) -> Option<Evaluation> {
        self.typical.with_model(typical, |t| {
            self.evaluate_node_with(t, node, market, condition, demand, tolerance, detail)
        })
    }

    fn to_extender_scores(&self, raw: &[f64]) -> Vec<i64> {
        to_extender_range(raw)
    }

    fn hourly_cost(&self, market: &NodeMarket, gpus: f64) -> f64 {
        // Unknown per-GPU price (a node without GPUs): nothing to attribute.
        market
            .price_per_gpu_hour()
            .map_or(0.0, |price| partition_hourly_cost(price, gpus))
    }
}

/// The typical pods of the bundled openb default trace, with model constraints dropped (the
/// cluster's GPUs are told apart by partition, not by the trace's model codes): the default
/// workload the fragmentation term measures against. The same prior as the simulator's
/// `--typical online` (`sim::bundled_prior`, pure: the extender may read it).
pub fn default_typical_pods() -> Result<TypicalPods, crate::trace::TraceError> {
    crate::sim::bundled_prior()
}

/// The shape a pod adds to the learned typical pods, as the fragmentation term would see it
/// on `node` (the node it runs on): each request's preferred (first) alternative measured on
/// the node's GPUs (a whole GPU is 1000 milli, a share what the node's request policy charges
/// of its compute or memory, whichever is more, a MIG profile its compute slices, a replica
/// its part of the GPU), then folded as [`milli_shape`] folds a placement: `n` whole GPUs or
/// one share of one GPU. CPU and memory as asked; any GPU model, since the fragmentation term
/// scores every pod with [`ModelSet::ANY`]. `None` when the pod asks no GPU, asks every
/// device (`All`), or asks shares of several GPUs (no milli shape, and no fragmentation term
/// either).
pub fn typical_shape(demand: &PodDemand, node: &NodeGpus<'_>) -> Option<Demand> {
    let mut fractions: Vec<f64> = Vec::new();
    for request in &demand.requests {
        let alt = request.alternatives.first()?;
        let Count::Exact(count) = alt.count else {
            return None;
        };
        let fraction = shape_fraction(alt, node)?;
        for _ in 0..count.min(MAX_SHAPE_GPUS) {
            fractions.push(fraction);
        }
    }
    let (gpus, gpu_milli) = fraction_shape(&fractions)?;
    Some(Demand {
        cpu_milli: demand.cpu_milli,
        memory_mib: demand.memory_mib,
        gpus,
        gpu_milli,
        models: ModelSet::ANY,
    })
}

/// Devices of one request counted into a shape; a node has at most 16 GPUs.
const MAX_SHAPE_GPUS: u32 = 16;

/// The share of a GPU one device of `alt` is on `node`.
fn shape_fraction(alt: &Alternative, node: &NodeGpus<'_>) -> Option<f64> {
    match alt.kind {
        DeviceKind::Whole => Some(1.0),
        DeviceKind::Share => node.layout.replica_fraction(),
        DeviceKind::Shared => {
            let (memory_mib, compute_milli) = node
                .layout
                .share_charge(alt.memory_bytes, alt.compute_percent)?;
            let gpu_memory = node.gpus.iter().map(|g| g.memory_mib).max().unwrap_or(0);
            let memory = if gpu_memory > 0 {
                memory_mib as f64 / gpu_memory as f64
            } else {
                0.0
            };
            Some(
                (f64::from(compute_milli) / f64::from(MILLI_PER_GPU))
                    .max(memory)
                    .clamp(0.0, 1.0),
            )
        }
        DeviceKind::Mig => node.gpus.iter().find_map(|g| nominal_fraction(alt, g)),
    }
}

/// [`milli_shape`] on plain fractions: all whole → `n` whole GPUs, one partial → one share.
fn fraction_shape(fractions: &[f64]) -> Option<(u8, u16)> {
    if fractions.iter().all(|f| *f >= 1.0) {
        let n = u8::try_from(fractions.len()).ok()?;
        return (n > 0).then_some((n, MILLI_PER_GPU));
    }
    match fractions {
        [one] if *one > 0.0 => {
            let milli = (one * f64::from(MILLI_PER_GPU)).floor() as u16;
            Some((1, milli.clamp(1, MILLI_PER_GPU - 1)))
        }
        _ => None,
    }
}

/// The placement's shape in milli-GPU: `n` whole GPUs, or one partial GPU (its share rounded
/// down, so rounding never makes it look larger than the room the milli view rounds to).
fn milli_shape(assignments: &[Assignment]) -> Option<(u8, u16)> {
    if assignments.iter().all(|a| a.fraction >= 1.0) {
        let n = u8::try_from(assignments.len()).ok()?;
        return (n > 0).then_some((n, MILLI_PER_GPU));
    }
    match assignments {
        [one] => {
            let milli = (one.fraction * f64::from(MILLI_PER_GPU)).floor() as u16;
            Some((1, milli.clamp(1, MILLI_PER_GPU - 1)))
        }
        _ => None,
    }
}

/// Where a pod's requests go on one node.
struct Placed {
    /// One entry per assignment, for `/explain`.
    choices: Vec<PartitionChoice>,
    /// The assignments, in request order.
    assignments: Vec<Assignment>,
    /// GPUs' worth the pod needs: what its preferred (first) alternatives ask for, measured
    /// on the GPUs it got.
    needed_gpus: f64,
}

/// Fits every request in turn (each on what the earlier ones left), trying a request's
/// alternatives in order. `None` if some request fits none of its alternatives.
fn place(node: &NodeGpus<'_>, requests: &[GpuRequest], detail: Detail) -> Option<Placed> {
    let gpus = node.gpus;
    let mut choices = Vec::with_capacity(requests.len());
    let mut assignments = Vec::new();
    let mut needed_gpus = 0.0;
    // Only a pod with several requests needs the GPUs as the earlier ones left them.
    let mut scratch: Option<Vec<PartitionGpu>> = None;
    for (i, request) in requests.iter().enumerate() {
        let current: &[PartitionGpu] = scratch.as_deref().unwrap_or(gpus);
        let (index, alternative, found) =
            request
                .alternatives
                .iter()
                .enumerate()
                .find_map(|(index, alt)| {
                    let demand = partition_demand(alt, current, node.layout)?;
                    fit(&demand, current).map(|f| (index, alt, f))
                })?;
        let preferred = request.alternatives.first();
        for a in &found.assignments {
            if detail == Detail::Explain {
                choices.push(PartitionChoice {
                    request: request.source.clone(),
                    alternative: alternative.subrequest.clone(),
                    kind: a.partition.kind_name().to_owned(),
                    partition: partition_name(a, node.layout.gpu_index(a.gpu)),
                    gpu_fraction: a.fraction,
                    probability: 1.0,
                });
            }
            // Given its first choice, the pod got what it needs; given a later one, it needs
            // what the first asks for (the user's own statement of what suffices).
            needed_gpus += match (index, preferred, current.get(a.gpu)) {
                (0, _, _) | (_, None, _) | (_, _, None) => a.fraction,
                (_, Some(first), Some(gpu)) => nominal_fraction(first, gpu).unwrap_or(a.fraction),
            };
        }
        if i + 1 < requests.len() {
            let next = scratch.get_or_insert_with(|| gpus.to_vec());
            apply(&found, next).ok()?;
        }
        assignments.extend(found.assignments);
    }
    Some(Placed {
        choices,
        assignments,
        needed_gpus,
    })
}

/// The placement of one predicted outcome: each device's partition on its GPU, applied in
/// turn (two shares may land on one GPU). `None` when a device is not one the partition
/// model places (an unknown GPU or kind).
fn place_predicted(
    node: &NodeGpus<'_>,
    requests: &[GpuRequest],
    outcome: &PredictedOutcome,
    detail: Detail,
) -> Option<Placed> {
    let mut gpus = node.gpus.to_vec();
    let mut choices = Vec::new();
    let mut assignments = Vec::with_capacity(outcome.devices.len());
    let mut needed_gpus = 0.0;
    for device in &outcome.devices {
        let (position, partition) = node.layout.predicted_partition(device)?;
        let gpu = gpus.get(position)?;
        let a = assignment(position, gpu, partition)?;
        // The request and the alternative the allocator chose (`request/subrequest`).
        let (request_name, sub) = match device.request.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (device.request.as_str(), None),
        };
        let source = format!("{}/{request_name}", device.claim);
        let request = requests.iter().find(|r| r.source == source);
        let first = request.and_then(|r| r.alternatives.first());
        let chosen_first = first.is_none_or(|f| f.subrequest.as_deref() == sub);
        needed_gpus += match (chosen_first, first) {
            (false, Some(first)) => nominal_fraction(first, gpu).unwrap_or(a.fraction),
            _ => a.fraction,
        };
        if detail == Detail::Explain {
            choices.push(PartitionChoice {
                request: source,
                alternative: sub.map(str::to_owned),
                kind: a.partition.kind_name().to_owned(),
                partition: partition_name(&a, node.layout.gpu_index(position)),
                gpu_fraction: a.fraction,
                probability: outcome.probability,
            });
        }
        if let Some(g) = gpus.get_mut(position) {
            let one = crate::model::partition::PartitionFit {
                assignments: vec![Assignment { gpu: 0, ..a }],
            };
            apply(&one, std::slice::from_mut(g)).ok()?;
        }
        assignments.push(a);
    }
    Some(Placed {
        choices,
        assignments,
        needed_gpus,
    })
}

/// The share of `gpu` one device of `alt` stands for: 1 for a whole GPU; a share's larger
/// of compute and memory share; a MIG profile's compute slices over the GPU's (its product's
/// table, also for a non-MIG GPU of a MIG-capable product). `None` when unknowable (a MIG
/// alternative on a GPU of a product without MIG tables).
fn nominal_fraction(alt: &Alternative, gpu: &PartitionGpu) -> Option<f64> {
    match alt.kind {
        DeviceKind::Whole => Some(1.0),
        // The replica's size is what the pod asked for: it gets exactly that.
        DeviceKind::Share => None,
        DeviceKind::Shared => {
            let compute = alt.compute_percent.unwrap_or(0.0) / 100.0;
            let memory = match alt.memory_bytes {
                Some(bytes) if gpu.memory_mib > 0 => {
                    bytes.div_ceil(MIB) as f64 / gpu.memory_mib as f64
                }
                _ => 0.0,
            };
            Some(compute.max(memory).clamp(0.0, 1.0))
        }
        DeviceKind::Mig => {
            let product = gpu
                .mig_product()
                .or_else(|| GpuProduct::from_product_name(&gpu.model))?;
            let p = match &alt.mig_profile {
                Some(name) => profile(product, name)?,
                None => smallest_adequate(
                    product,
                    alt.memory_bytes.map_or(0, |b| b.div_ceil(MIB)),
                    0.0,
                )?,
            };
            Some(f64::from(p.compute_slices) / f64::from(product.total_compute_slices().max(1)))
        }
    }
}

/// The partition demand of one alternative on a node with `gpus` (and `layout`); `None` when
/// the node cannot have it at all (a pinned MIG profile none of its GPUs offers, a replica on
/// a node without replicas).
fn partition_demand(
    alt: &Alternative,
    gpus: &[PartitionGpu],
    layout: &dyn GpuLayout,
) -> Option<PartitionDemand> {
    let count = match alt.count {
        Count::Exact(n) => u8::try_from(n).ok()?,
        // Every device of the class on the node: every GPU.
        Count::All => u8::try_from(gpus.len()).ok()?,
    };
    let memory_mib = alt.memory_bytes.map_or(0, |b| b.div_ceil(MIB));
    let (kind, memory_mib, compute_milli) = match alt.kind {
        DeviceKind::Whole => (PartitionKind::Whole, 0, MILLI_PER_GPU),
        DeviceKind::Shared => {
            let (memory_mib, compute_milli) =
                layout.share_charge(alt.memory_bytes, alt.compute_percent)?;
            (PartitionKind::Shared, memory_mib, compute_milli)
        }
        // A replica is a fixed share of a time-sliced GPU, which the partition model keeps
        // as a shared GPU of N equal parts.
        DeviceKind::Share => {
            let share = layout
                .replica_fraction()
                .filter(|f| *f > 0.0 && *f <= 1.0)?;
            (
                PartitionKind::Shared,
                0,
                (share * f64::from(MILLI_PER_GPU)).floor() as u16,
            )
        }
        DeviceKind::Mig => match &alt.mig_profile {
            None => (PartitionKind::Mig, memory_mib, 0),
            // A pinned profile asks for its own size: the smallest adequate profile is then
            // that profile (or its `+me` twin's plain sibling, same size and price).
            Some(name) => {
                let (product, p) = gpus.iter().find_map(|g| {
                    let product = g.mig_product()?;
                    profile(product, name).map(|p| (product, p))
                })?;
                let compute =
                    f64::from(p.compute_slices) / f64::from(product.total_compute_slices().max(1));
                (
                    PartitionKind::Mig,
                    p.capacity_mib(),
                    (compute * f64::from(MILLI_PER_GPU)).floor() as u16,
                )
            }
        },
    };
    let mut demand = PartitionDemand::new(count, memory_mib, compute_milli);
    demand.preference = vec![kind];
    Some(demand)
}

/// A device name for a whole GPU or a MIG partition, a description for a share; `gpu` is the
/// device index of the assignment's GPU.
fn partition_name(a: &Assignment, gpu: u32) -> String {
    match a.partition {
        Partition::Whole => DeviceName::Whole { gpu }.to_string(),
        Partition::Mig { profile, placement } => {
            DeviceName::mig(gpu, profile.name, placement.start).to_string()
        }
        Partition::Shared {
            memory_mib,
            compute_pct,
        } => format!(
            "{} ({memory_mib} MiB, {compute_pct}% compute)",
            DeviceName::Shared { gpu }
        ),
    }
}

/// Extension for naming a partition's kind the way device `type` attributes do.
trait KindName {
    fn kind_name(&self) -> &'static str;
}

impl KindName for Partition {
    fn kind_name(&self) -> &'static str {
        match self {
            Partition::Whole => DeviceKind::Whole.as_str(),
            Partition::Mig { .. } => DeviceKind::Mig.as_str(),
            Partition::Shared { .. } => DeviceKind::Shared.as_str(),
        }
    }
}

#[cfg(test)]
mod tests;
