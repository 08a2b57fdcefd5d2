//! What the extender reads to decide: a consistent view of the cluster (the watch cache's
//! snapshot) and the scoring of one pod on one node.
//!
//! Two small traits keep the HTTP layer independent of how the cache stores nodes: the cache
//! implements [`ClusterView`], and [`NodeScorer`] runs `scoring` on the cache's node type.

use std::sync::Arc;

use serde::Serialize;

use super::api::object::PodObject;
use super::claim::ClaimRequests;
use super::demand::PodDemand;
use super::typical::TypicalModel;
use crate::market::{MarketError, NodeMarket};
use crate::scoring::Tolerance;
use crate::scoring::filter::NodeCondition;

/// One consistent view of the cluster, as of one moment.
pub trait ClusterView: Send + Sync {
    /// The cache's node type.
    type Node: Send + Sync;

    /// A node by name.
    fn node(&self, name: &str) -> Option<&Self::Node>;
    /// Whether the node is going away, and whether it is spot.
    fn node_condition(&self, node: &Self::Node) -> NodeCondition;
    /// The node's market data, resolved when the node was cached (an invalid price annotation
    /// is an error the filter reports).
    fn node_market<'a>(&'a self, node: &'a Self::Node) -> Result<&'a NodeMarket, &'a MarketError>;
    /// GPUs on the node (for pricing nodes sent as objects, which the catalog may not know).
    fn gpu_count(&self, node: &Self::Node) -> u32;
    /// A claim's GPU requests by `<namespace>/<name>`; `None` when not cached.
    fn claim(&self, id: &str) -> Option<ClaimRequests>;
    /// A pod by namespace and name (for `/explain`).
    fn pod(&self, namespace: &str, name: &str) -> Option<PodObject>;
    /// Every cached node name, in a stable order (for `/explain` and cost attribution).
    fn node_names(&self) -> Vec<String>;

    /// The node a cached pod is bound to; `None` when it is not cached, not bound, or the
    /// view does not track binding.
    fn pod_node(&self, _namespace: &str, _name: &str) -> Option<String> {
        None
    }
    /// The devices allocated on `node`, each with its claim, pod and share of a GPU.
    fn allocated_devices(&self, node: &Self::Node) -> Vec<AllocatedShare>;
    /// GPU capacity of `node` nobody holds, in whole GPUs.
    fn idle_gpus(&self, node: &Self::Node) -> f64;
}

/// One allocated device (or share of one), for cost attribution.
#[derive(Debug, Clone, PartialEq)]
pub struct AllocatedShare {
    /// Namespace of the claim.
    pub namespace: String,
    /// A pod holding the claim (empty if none has reserved it yet).
    pub pod: String,
    /// Claim name.
    pub claim: String,
    /// Device name.
    pub device: String,
    /// `gpu`, `mig`, `shared` or `share`.
    pub kind: String,
    /// Share of one physical GPU it holds.
    pub gpus: f64,
}

/// Where the extender gets its current view.
pub trait ViewSource: Send + Sync + 'static {
    /// The view type.
    type View: ClusterView;
    /// The latest snapshot; cheap (an `Arc` clone), and never changes once handed out.
    fn snapshot(&self) -> Arc<Self::View>;
}

/// Scoring one pod on one node: `scoring`'s fit, cost, risk and fragmentation, applied to the
/// cache's node type.
pub trait NodeScorer<N>: Send + Sync + 'static {
    /// The typical-pod model scoring would use now, if it uses one: a request loads it once
    /// and passes it to every [`NodeScorer::evaluate`] and [`NodeScorer::recall`], so a model
    /// published mid-request cannot mix two generations in one answer.
    fn typical(&self) -> Option<Arc<TypicalModel>> {
        None
    }

    /// The pod's partitions on `node` and their cost terms; `None` when, by the cache, no
    /// partition fits (the scheduler's allocator decides fit; the node then scores neutral).
    /// `Detail::Scores` may leave `Evaluation::partitions` empty: filter and prioritize read
    /// only the numbers, `/explain` asks for `Detail::Explain`. Fragmentation is measured
    /// against `typical` (`None`: the scorer's current model).
    #[allow(clippy::too_many_arguments)]
    fn evaluate(
        &self,
        typical: Option<&TypicalModel>,
        node: &N,
        market: &NodeMarket,
        condition: &NodeCondition,
        demand: &PodDemand,
        tolerance: Tolerance,
        detail: Detail,
    ) -> Option<Evaluation>;

    /// What [`NodeScorer::evaluate`] remembers for these inputs at `Detail::Scores`, if it
    /// remembers anything: `Some(None)` for "does not fit". Cheap; the default remembers
    /// nothing.
    fn recall(
        &self,
        _typical: Option<&TypicalModel>,
        _node: &N,
        _market: &NodeMarket,
        _condition: &NodeCondition,
        _demand: &PodDemand,
        _tolerance: Tolerance,
    ) -> Option<Option<Evaluation>> {
        None
    }

    /// Maps raw scores of the evaluated nodes (higher is better) onto `0..=10`.
    fn to_extender_scores(&self, raw: &[f64]) -> Vec<i64>;

    /// Hourly price of `gpus` GPUs' worth of a node with `market`, US dollars.
    fn hourly_cost(&self, market: &NodeMarket, gpus: f64) -> f64;
}

/// How much of an [`Evaluation`] the caller reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// The cost terms and score only.
    Scores,
    /// Also the partitions, named, for `/explain`.
    Explain,
}

/// The partition one GPU request would get on a node.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartitionChoice {
    /// The request (`<namespace>/<claim>/<request>` or `nvidia.com/gpu`).
    pub request: String,
    /// The `firstAvailable` entry chosen, if the request has alternatives.
    pub alternative: Option<String>,
    /// `gpu`, `mig` or `shared`.
    pub kind: String,
    /// The partition: a device name (`gpu-0-mig-1g10gb-0`) or a description.
    pub partition: String,
    /// Share of one physical GPU it takes (devices × fraction each).
    pub gpu_fraction: f64,
    /// Probability the allocator gives this (1 unless the prediction is over slice
    /// orders).
    pub probability: f64,
}

/// A pod on a node: what it would get and what that costs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Evaluation {
    /// One entry per GPU request.
    pub partitions: Vec<PartitionChoice>,
    /// Price of those partitions, US dollars per hour.
    pub hourly_cost_usd: f64,
    /// Expected interruption cost, US dollars per hour.
    pub risk_usd_per_hour: f64,
    /// Fragmentation term of the blend, US dollars per hour (higher is worse).
    pub fragmentation: f64,
    /// Packing term: the node's price if the pod would start an idle node, US dollars per
    /// hour.
    pub packing: f64,
    /// The weighted blend (higher is better), before mapping to `0..=10`; −∞ for a node the
    /// pod must not use.
    pub raw_score: f64,
    /// Why scoring refuses the node for this pod, if it does.
    pub refused: Option<&'static str>,
    /// Whose device choice was priced: the allocator model's prediction (exact, or expected
    /// over slice orders) or tessera's own fit (and why); `None` without a predictor.
    pub prediction: Option<PredictionNote>,
}

/// Whose device choice an [`Evaluation`] prices.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum PredictionNote {
    /// What the scheduler's allocator will give: the release searches slices by name (or the
    /// node has one device slice).
    Exact,
    /// The expected terms over what the allocator may give: the release takes slices in an
    /// arbitrary order; each outcome weighted by the share of slice orders that give it.
    #[serde(rename_all = "camelCase")]
    Expected {
        /// Slice orders tried.
        orders: usize,
        /// Whether those were a seeded sample.
        sampled: bool,
        /// Distinct outcomes.
        outcomes: usize,
    },
    /// tessera's own fit, because the allocator model cannot answer for this pod.
    OwnFit {
        /// Why.
        reason: String,
    },
}
