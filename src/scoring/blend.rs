//! The one node score the simulator and the scheduler extender share: partition price,
//! interruption risk, fragmentation and packing blended into dollars per hour.
//!
//! Inputs are plain numbers and enums, not simulator or cluster types, so the extender fills
//! them from its cache and the simulator from its own cluster (`docs/cost-model.md` §5):
//!
//! ```text
//! C = P_gpu × f                       partition price, $/h
//! E = p_h × C × L(tolerance)          expected interruption cost, $/h
//! F = frag × Δfrag_gpus               fragmentation, $/h
//! K = node price if the node is idle  packing, $/h
//! score = −(cost × C + risk × E + F + pack × K)     higher is better
//! ```

use serde::Serialize;

use super::cost::partition_hourly_cost;
use super::risk::{Tolerance, expected_interruption_cost};
use super::weights::Weights;
use crate::market::{CapacityType, FALLBACK_USD_PER_GPU_HOUR};

/// Largest price per GPU-hour or per node-hour taken at face value; larger (or non-finite)
/// inputs are clamped, so that no input can make a score infinite.
pub const MAX_PRICE_USD_PER_HOUR: f64 = 1e6;
/// Largest partition size, in GPUs, taken at face value.
pub const MAX_PARTITION_GPUS: f64 = 1e3;
/// Largest fragmentation change, in GPUs, taken at face value (either sign).
pub const MAX_FRAG_GPUS: f64 = 1e6;

/// What scoring needs to know about a candidate node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodeInputs {
    /// Price of one whole GPU of the node per hour, US dollars
    /// (`market::NodeMarket::price_per_gpu_hour`). Negative or non-finite values are taken as
    /// unknown and priced at [`FALLBACK_USD_PER_GPU_HOUR`].
    pub price_per_gpu_hour: f64,
    /// Price of the whole node per hour, US dollars (negative or non-finite: 0).
    pub node_hourly_price: f64,
    /// Whether any pod already runs on the node. Starting an idle node makes its whole price
    /// due, because the node can no longer be scaled away.
    pub in_use: bool,
    /// On-demand, spot or reserved.
    pub capacity: CapacityType,
    /// Probability the node is interrupted within an hour (`market` gives 0 unless spot).
    /// Clamped to `[0, 1]`; NaN counts as 1, the cautious reading.
    pub hourly_interruption_probability: f64,
    /// Whether the node carries an imminent-interruption taint (`market::interruption_notice`).
    pub interruption_notice: bool,
}

/// What scoring needs to know about the pod and the partition it would get on the node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PodInputs {
    /// The pod's declared tolerance.
    pub tolerance: Tolerance,
    /// The partition's size in whole GPUs of the node's model (count × fraction: 0.3 for a
    /// 300-milli share, 1/7 for an H100 `1g.10gb` slice, 2 for two GPUs; 0 for CPU-only).
    /// Negative or NaN: 0.
    pub partition_gpus: f64,
    /// Fragmentation the placement adds, in GPUs (the fragmentation policy's term; negative
    /// when the placement reduces it). NaN: 0.
    pub frag_gpus: f64,
}

/// Why a node is not a candidate for a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum FilterReason {
    /// The pod is intolerant and the node can be interrupted (spot capacity or a non-zero
    /// interruption probability).
    IntolerantOnInterruptible,
    /// The node is about to be reclaimed; any pod placed there would be evicted before doing
    /// useful work.
    InterruptionImminent,
}

impl FilterReason {
    /// A short explanation for the extender's `FailedNodes` map and for logs.
    pub fn message(self) -> &'static str {
        match self {
            FilterReason::IntolerantOnInterruptible => {
                "pod is interruption-intolerant and the node is spot (can be reclaimed)"
            }
            FilterReason::InterruptionImminent => "node has an imminent-interruption taint",
        }
    }
}

/// The scoring of one node for one pod: whether it may be used, each term in $/h, and the
/// blended score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct NodeDecision {
    /// `None` when the node may be used; otherwise why not.
    pub filtered: Option<FilterReason>,
    /// Partition price `C`, $/h.
    pub hourly_cost: f64,
    /// Expected interruption cost `E`, $/h (0 for intolerant pods, which never run where
    /// they can be interrupted).
    pub risk_cost: f64,
    /// Fragmentation term `F = frag × Δfrag_gpus`, $/h.
    pub frag_term: f64,
    /// Packing term `K`: the node's price if it is idle, else 0, $/h.
    pub pack_term: f64,
    /// `−(cost × C + risk × E + F + pack × K)`: higher is better. Always finite; compare it
    /// only among nodes that are not filtered.
    pub score: f64,
}

impl NodeDecision {
    /// Whether the node may be used.
    pub fn is_feasible(&self) -> bool {
        self.filtered.is_none()
    }
}

/// Scores a node that can hold the pod's partition (fit is decided before, by the fit
/// function). Pure and total: any input, NaN included, gives a finite score, provided the
/// weights passed [`Weights::validate`].
pub fn score_node(node: &NodeInputs, pod: &PodInputs, weights: &Weights) -> NodeDecision {
    let price_per_gpu = price_or_fallback(node.price_per_gpu_hour);
    let node_price = non_negative(node.node_hourly_price, MAX_PRICE_USD_PER_HOUR);
    let probability = if node.hourly_interruption_probability.is_nan() {
        1.0
    } else {
        node.hourly_interruption_probability.clamp(0.0, 1.0)
    };
    let partition_gpus = non_negative(pod.partition_gpus, MAX_PARTITION_GPUS);
    let frag_gpus = if pod.frag_gpus.is_nan() {
        0.0
    } else {
        pod.frag_gpus.clamp(-MAX_FRAG_GPUS, MAX_FRAG_GPUS)
    };

    let interruptible = node.capacity == CapacityType::Spot || probability > 0.0;
    let filtered = if node.interruption_notice {
        Some(FilterReason::InterruptionImminent)
    } else if pod.tolerance == Tolerance::Intolerant && interruptible {
        Some(FilterReason::IntolerantOnInterruptible)
    } else {
        None
    };

    let hourly_cost = partition_hourly_cost(price_per_gpu, partition_gpus);
    let risk_cost = weights
        .loss()
        .lost_hours(pod.tolerance)
        .map_or(0.0, |lost| {
            expected_interruption_cost(probability, hourly_cost, lost)
        });
    let frag_term = weights.frag * frag_gpus;
    let pack_term = if node.in_use { 0.0 } else { node_price };
    let score = -(weights.cost * hourly_cost
        + weights.risk * risk_cost
        + frag_term
        + weights.pack * pack_term);
    NodeDecision {
        filtered,
        hourly_cost,
        risk_cost,
        frag_term,
        pack_term,
        // Bounded inputs and weights keep this finite; the guard only protects callers that
        // skipped `Weights::validate`.
        score: if score.is_finite() { score } else { f64::MIN },
    }
}

/// A price per GPU-hour, with unknown (negative, NaN, infinite) prices replaced by the
/// fallback price and huge ones clamped.
fn price_or_fallback(price: f64) -> f64 {
    if price.is_finite() && price >= 0.0 {
        price.min(MAX_PRICE_USD_PER_HOUR)
    } else {
        FALLBACK_USD_PER_GPU_HOUR
    }
}

/// `value` clamped to `[0, max]`; NaN gives 0.
fn non_negative(value: f64, max: f64) -> f64 {
    if value.is_nan() {
        0.0
    } else {
        value.clamp(0.0, max)
    }
}

#[cfg(test)]
mod tests;
