//! One request in, one decision out: the pod and nodes of a request joined with the cache and
//! handed to `scoring`. Nothing here weighs one node against another; it gathers inputs, asks
//! `scoring`, and says what it did.

use std::borrow::Cow;
use std::sync::Arc;

use rayon::prelude::*;
use serde::Serialize;
use tracing::{debug, trace};

use super::api::object::{NodeObject, PodObject};
use super::api::{MAX_EXTENDER_PRIORITY, MIN_EXTENDER_PRIORITY, RequestNode};
use super::demand::{DeviceClasses, PodDemand};
use super::pod::{MaxHourlyCost, PodPolicy, pod_demand};
use super::reason;
use super::typical::{TypicalModel, TypicalNote};
use super::view::{ClusterView, Detail, Evaluation, NodeScorer, ViewSource};
use crate::market::{
    CapacityType, MarketError, NodeMarket, PriceCatalog, SpotAdvisor, capacity_type,
    interruption_notice, node_market,
};
use crate::scoring::filter::{self, CostCeiling, NodeCondition, PodConstraints, Rejection};

/// The score of a node tessera has no opinion on (unknown node, claim not cached yet, pod
/// without GPU demand): the middle of the range, so it neither attracts nor repels the pod.
pub const NEUTRAL_SCORE: i64 = (MIN_EXTENDER_PRIORITY + MAX_EXTENDER_PRIORITY) / 2;

/// Nodes to score afresh from which prioritize scores them on the rayon pool: ~250 µs of
/// partition fits, well above the pool's hand-off.
const PARALLEL_MIN_NODES: usize = 128;
/// Fewest nodes per rayon task: ~60 µs of fits, enough to amortise a task.
const PARALLEL_CHUNK: usize = 32;

/// Why prioritize gave the scores it gave; a bounded metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreOutcome {
    /// Nodes were scored on cost, risk and fragmentation.
    Scored,
    /// The pod needs no GPU: every node scores the same.
    NoGpuDemand,
    /// A claim of the pod is not in the cache yet: neutral scores.
    ClaimNotCached,
    /// A request of the pod could not be read: neutral scores.
    UnreadableDemand,
}

impl ScoreOutcome {
    /// Metric label.
    pub fn metric_label(self) -> &'static str {
        match self {
            ScoreOutcome::Scored => "scored",
            ScoreOutcome::NoGpuDemand => "no_gpu_demand",
            ScoreOutcome::ClaimNotCached => "claim_not_cached",
            ScoreOutcome::UnreadableDemand => "unreadable_demand",
        }
    }
}

/// The filter's answer: which nodes are refused and why (indices into the request's nodes).
#[derive(Debug, Clone, PartialEq)]
pub struct FilterDecision {
    /// Refused nodes, by position in the request, ascending.
    pub rejected: Vec<(usize, Rejection, String)>,
}

/// The prioritize answer: one score per request node, in request order.
#[derive(Debug, Clone, PartialEq)]
pub struct PrioritizeDecision {
    /// Scores in `0..=10`.
    pub scores: Vec<i64>,
    /// Why.
    pub outcome: ScoreOutcome,
    /// Nodes not in the cache (scored neutral).
    pub unknown_nodes: usize,
}

/// `/explain` for one pod: its demand and, per node, the filter verdict and the score terms.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    /// `<namespace>/<name>`.
    pub pod: String,
    /// What the pod asks for, as read from its claims and containers.
    pub demand: PodDemand,
    /// `tessera.dev/interruption` as read.
    pub tolerance: String,
    /// `tessera.dev/max-hourly-cost` as read.
    pub max_hourly_cost: String,
    /// How the scores were given.
    pub outcome: &'static str,
    /// The typical pods fragmentation was measured against: their source (`bundled` or
    /// `online`), the model's generation and what the learner had seen; `None` for a scorer
    /// without typical pods.
    pub typical: Option<TypicalNote>,
    /// What the pod holds now, priced as the cost attribution gauges price it
    /// (`tessera_extender_allocation_cost_dollars_per_hour`): empty while it holds nothing.
    pub allocated: Vec<AllocatedCost>,
    /// Nodes in the cache.
    pub total_nodes: usize,
    /// The best nodes first (passing before refused), at most the requested limit.
    pub nodes: Vec<NodeExplanation>,
}

/// One node in `/explain`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeExplanation {
    /// Node name.
    pub node: String,
    /// The extender score (`0..=10`).
    pub score: i64,
    /// Why the filter refuses the node, if it does.
    pub filtered: Option<String>,
    /// Capacity type and price source, or why the node could not be priced.
    pub market: String,
    /// Partitions and cost terms; `None` when nothing fits by the cache or the pod needs no GPU.
    pub evaluation: Option<Evaluation>,
}

/// One device or share a pod holds, and what it costs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AllocatedCost {
    /// The node it is on.
    pub node: String,
    /// The ResourceClaim holding it.
    pub claim: String,
    /// The device (`gpu-0-mig-1g.10gb-6`, `gpu-3-shared`, …).
    pub device: String,
    /// `gpu`, `mig`, `shared` or `share`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Share of one physical GPU it takes.
    pub gpu_fraction: f64,
    /// Its price: the node's price per GPU-hour times `gpuFraction`, US dollars per hour.
    pub hourly_cost_usd: f64,
}

/// Decides filter, prioritize and explain from a view source and a node scorer.
pub struct Decider<S, P> {
    pub(super) source: S,
    pub(super) scorer: P,
    classes: DeviceClasses,
    catalog: Arc<PriceCatalog>,
    advisor: Arc<SpotAdvisor>,
    /// Request size from which prioritize scores on the rayon pool.
    parallel_from: usize,
}

/// What is known of one request node.
struct Facts<'v, N> {
    condition: NodeCondition,
    market: Result<Cow<'v, NodeMarket>, Cow<'v, MarketError>>,
    cached: Option<&'v N>,
}

/// The pod's inputs, read once per request.
struct PodInputs {
    demand: PodDemand,
    policy: PodPolicy,
    constraints: PodConstraints,
    /// The typical-pod model every node of the request is scored by.
    typical: Option<Arc<TypicalModel>>,
}

impl<S, P> Decider<S, P>
where
    S: ViewSource,
    P: NodeScorer<<S::View as ClusterView>::Node>,
{
    /// A decider over `source`, scoring with `scorer`, reading claims of `classes`, pricing
    /// nodes sent as objects with `catalog` and `advisor`.
    pub fn new(
        source: S,
        scorer: P,
        classes: DeviceClasses,
        catalog: Arc<PriceCatalog>,
        advisor: Arc<SpotAdvisor>,
    ) -> Self {
        Decider {
            source,
            scorer,
            classes,
            catalog,
            advisor,
            parallel_from: PARALLEL_MIN_NODES,
        }
    }

    /// Score on the rayon pool when at least `nodes` nodes of a request have no remembered
    /// score (default 128); the answer is the same either way, only the time differs.
    pub fn with_parallel_from(mut self, nodes: usize) -> Self {
        self.parallel_from = nodes.max(1);
        self
    }

    /// The DeviceClasses claims are read against.
    pub fn classes(&self) -> &DeviceClasses {
        &self.classes
    }

    /// Which of `nodes` the pod must not go to.
    pub fn filter(&self, pod: &PodObject, nodes: &[RequestNode<'_>]) -> FilterDecision {
        let view = self.source.snapshot();
        let inputs = self.pod_inputs(&*view, pod);
        // A cost is only known when every part of the demand is: a pod with a claim not yet
        // cached could cost more than what is known of it.
        let needs_cost = matches!(inputs.constraints.ceiling, CostCeiling::Usd(_))
            && inputs.demand.is_complete();
        let mut rejected = Vec::new();
        for (index, request_node) in nodes.iter().enumerate() {
            let Some(facts) = self.facts(&*view, request_node) else {
                // Unknown node: nothing to hold against it.
                continue;
            };
            let cost = if needs_cost {
                self.evaluate(&facts, &inputs, Detail::Scores)
                    .map(|e| e.hourly_cost_usd)
            } else {
                None
            };
            if let Some(rejection) = filter::filter(&facts.condition, &inputs.constraints, cost) {
                trace!(node = %request_node.name, reason = rejection.metric_label(), "filtered");
                let text = reason::text(&rejection, &inputs.policy);
                rejected.push((index, rejection, text));
            }
        }
        debug!(
            pod = %pod_id(pod),
            nodes = nodes.len(),
            rejected = rejected.len(),
            needs_gpu = inputs.constraints.needs_gpu,
            "filter decision"
        );
        FilterDecision { rejected }
    }

    /// One score per node in `nodes`, in order.
    pub fn prioritize(&self, pod: &PodObject, nodes: &[RequestNode<'_>]) -> PrioritizeDecision {
        let view = self.source.snapshot();
        let inputs = self.pod_inputs(&*view, pod);
        let outcome = outcome_of(&inputs.demand);
        let mut scores = vec![NEUTRAL_SCORE; nodes.len()];
        let unknown_nodes = if outcome == ScoreOutcome::Scored {
            let (evaluated, unknown) = self.evaluate_all(&*view, &inputs, nodes);
            let raw: Vec<f64> = evaluated.iter().map(|(_, r)| *r).collect();
            let mapped = self.scorer.to_extender_scores(&raw);
            for ((index, _), score) in evaluated.iter().zip(mapped) {
                if let Some(slot) = scores.get_mut(*index) {
                    *slot = score.clamp(MIN_EXTENDER_PRIORITY, MAX_EXTENDER_PRIORITY);
                }
            }
            unknown
        } else {
            nodes
                .iter()
                .filter(|n| view.node(&n.name).is_none())
                .count()
        };
        if tracing::enabled!(tracing::Level::DEBUG) {
            let best = scores
                .iter()
                .enumerate()
                .max_by_key(|(i, s)| (**s, std::cmp::Reverse(*i)))
                .and_then(|(i, s)| nodes.get(i).map(|n| (n.name.as_ref(), *s)));
            debug!(
                pod = %pod_id(pod),
                nodes = nodes.len(),
                outcome = outcome.metric_label(),
                unknown_nodes,
                best_node = best.map(|b| b.0),
                best_score = best.map(|b| b.1),
                "prioritize decision"
            );
        }
        PrioritizeDecision {
            scores,
            outcome,
            unknown_nodes,
        }
    }

    /// The filter verdict and score terms of a cached pod on every cached node, best first,
    /// at most `limit` nodes; `None` when the pod is not in the cache.
    pub fn explain(&self, namespace: &str, name: &str, limit: usize) -> Option<Explanation> {
        let view = self.source.snapshot();
        let pod = view.pod(namespace, name)?;
        let inputs = self.pod_inputs(&*view, &pod);
        let outcome = outcome_of(&inputs.demand);
        let names = view.node_names();
        let request_nodes: Vec<RequestNode<'_>> = names
            .iter()
            .map(|n| RequestNode {
                name: Cow::Borrowed(n.as_str()),
                raw: None,
                object: None,
            })
            .collect();
        let mut rows: Vec<NodeExplanation> = Vec::with_capacity(names.len());
        let mut raw: Vec<(usize, f64)> = Vec::new();
        for (index, request_node) in request_nodes.iter().enumerate() {
            let facts = self.facts(&*view, request_node);
            let evaluation = match (&facts, outcome) {
                (Some(f), ScoreOutcome::Scored) => self.evaluate(f, &inputs, Detail::Explain),
                _ => None,
            };
            let cost = evaluation.as_ref().map(|e| e.hourly_cost_usd);
            let filtered = facts
                .as_ref()
                .and_then(|f| filter::filter(&f.condition, &inputs.constraints, cost))
                .map(|r| reason::text(&r, &inputs.policy));
            if let Some(e) = &evaluation {
                raw.push((index, e.raw_score));
            }
            rows.push(NodeExplanation {
                node: request_node.name.to_string(),
                score: NEUTRAL_SCORE,
                filtered,
                market: facts.as_ref().map_or_else(
                    || "not in the cache".to_owned(),
                    |f| market_summary(&f.condition, &f.market),
                ),
                evaluation,
            });
        }
        let mapped = self
            .scorer
            .to_extender_scores(&raw.iter().map(|(_, r)| *r).collect::<Vec<_>>());
        for ((index, _), score) in raw.iter().zip(mapped) {
            if let Some(row) = rows.get_mut(*index) {
                row.score = score.clamp(MIN_EXTENDER_PRIORITY, MAX_EXTENDER_PRIORITY);
            }
        }
        rows.sort_by(|a, b| {
            (a.filtered.is_some(), std::cmp::Reverse(a.score), &a.node).cmp(&(
                b.filtered.is_some(),
                std::cmp::Reverse(b.score),
                &b.node,
            ))
        });
        rows.truncate(limit);
        let explanation = Explanation {
            pod: pod_id(&pod),
            tolerance: match &inputs.policy.unrecognized_tolerance {
                Some(v) => format!("intolerant (unrecognized value {v:?})"),
                None => inputs.policy.tolerance.to_string(),
            },
            max_hourly_cost: inputs.policy.max_hourly_cost.to_string(),
            allocated: self.allocated_costs(&*view, namespace, name),
            typical: inputs.typical.as_deref().map(TypicalModel::note),
            demand: inputs.demand,
            outcome: outcome.metric_label(),
            total_nodes: names.len(),
            nodes: rows,
        };
        debug!(pod = %explanation.pod, nodes = explanation.total_nodes, "explain");
        Some(explanation)
    }

    /// Raw scores of the nodes that could be evaluated, as (index in `nodes`, score), and
    /// the count of nodes the cache does not know.
    ///
    /// Remembered scores are read first, in order. kube-scheduler sends one request at a
    /// time per profile, so when many nodes are left to score afresh (a pod shape not seen
    /// since those nodes changed: ~2 µs of partition fit each) they are spread over the
    /// rayon pool; a request that is mostly remembered never touches the pool, whose
    /// hand-off would then cost more than it saves and add a tail under CPU contention.
    fn evaluate_all(
        &self,
        view: &S::View,
        inputs: &PodInputs,
        nodes: &[RequestNode<'_>],
    ) -> (Vec<(usize, f64)>, usize) {
        let mut evaluated: Vec<(usize, f64)> = Vec::with_capacity(nodes.len());
        let mut unknown = 0;
        let mut misses = Vec::new();
        for (index, request_node) in nodes.iter().enumerate() {
            let Some(facts) = self.facts(view, request_node) else {
                unknown += 1;
                continue;
            };
            match self.recall(&facts, inputs) {
                Some(Some(raw)) => evaluated.push((index, raw)),
                Some(None) => {}
                None => misses.push((index, facts)),
            }
        }
        let score = |(index, facts): &(usize, Facts<'_, _>)| {
            self.evaluate(facts, inputs, Detail::Scores)
                .map(|e| (*index, e.raw_score))
        };
        if misses.is_empty() {
            return (evaluated, unknown);
        }
        if misses.len() < self.parallel_from {
            evaluated.extend(misses.iter().filter_map(score));
        } else {
            let scored: Vec<(usize, f64)> = misses
                .par_iter()
                .with_min_len(PARALLEL_CHUNK)
                .filter_map(score)
                .collect();
            evaluated.extend(scored);
        }
        // Remembered and fresh scores interleave: back to request order.
        evaluated.sort_unstable_by_key(|(index, _)| *index);
        (evaluated, unknown)
    }

    /// The pod's devices on its node, priced as the attribution gauges price them.
    fn allocated_costs(&self, view: &S::View, namespace: &str, name: &str) -> Vec<AllocatedCost> {
        let Some(node_name) = view.pod_node(namespace, name) else {
            return Vec::new();
        };
        let Some(node) = view.node(&node_name) else {
            return Vec::new();
        };
        let Ok(market) = view.node_market(node) else {
            return Vec::new();
        };
        view.allocated_devices(node)
            .into_iter()
            .filter(|share| share.namespace == namespace && share.pod == name)
            .map(|share| AllocatedCost {
                node: node_name.clone(),
                hourly_cost_usd: self.scorer.hourly_cost(market, share.gpus),
                claim: share.claim,
                device: share.device,
                kind: share.kind,
                gpu_fraction: share.gpus,
            })
            .collect()
    }

    fn pod_inputs(&self, view: &S::View, pod: &PodObject) -> PodInputs {
        let demand = pod_demand(pod, |id| view.claim(id));
        let policy = PodPolicy::from_annotations(&pod.metadata.annotations);
        let constraints = PodConstraints {
            needs_gpu: demand.may_need_gpu() || !demand.unreadable.is_empty(),
            tolerance: policy.tolerance,
            ceiling: match policy.max_hourly_cost {
                MaxHourlyCost::Unlimited => CostCeiling::Unlimited,
                MaxHourlyCost::Usd(usd) => CostCeiling::Usd(usd),
                MaxHourlyCost::Invalid(_) => CostCeiling::Invalid,
            },
        };
        PodInputs {
            demand,
            policy,
            constraints,
            typical: self.scorer.typical(),
        }
    }

    /// Facts about a request node: from the Node object the scheduler sent (`Nodes` mode),
    /// else from the cache. `None` when neither knows the node.
    fn facts<'v>(
        &self,
        view: &'v S::View,
        request_node: &RequestNode<'_>,
    ) -> Option<Facts<'v, <S::View as ClusterView>::Node>> {
        let cached = view.node(&request_node.name);
        if let Some(object) = &request_node.object {
            let gpus = cached.map_or(0, |n| view.gpu_count(n));
            let market = node_market(
                &object.labels,
                &object.annotations,
                gpus,
                &self.catalog,
                &self.advisor,
            );
            let market = match (market, cached) {
                (Ok(m), _) => Ok(Cow::Owned(m)),
                // An invalid price annotation: the cache prices such a node from the catalog
                // (and says why in the view); do the same rather than leave it unpriced.
                (Err(_), Some(node)) => view
                    .node_market(node)
                    .map(Cow::Borrowed)
                    .map_err(Cow::Borrowed),
                (Err(e), None) => Err(Cow::Owned(e)),
            };
            return Some(Facts {
                condition: condition_of(object, market.as_deref().ok()),
                market,
                cached,
            });
        }
        let node = cached?;
        let market = view.node_market(node);
        Some(Facts {
            condition: view.node_condition(node),
            market: market.map(Cow::Borrowed).map_err(Cow::Borrowed),
            cached: Some(node),
        })
    }

    /// The remembered raw score of the pod on a node: `Some(None)` when it is remembered
    /// not to fit, `None` when nothing is remembered.
    fn recall(
        &self,
        facts: &Facts<'_, <S::View as ClusterView>::Node>,
        inputs: &PodInputs,
    ) -> Option<Option<f64>> {
        let (Some(node), Ok(market)) = (facts.cached, facts.market.as_ref()) else {
            // Evaluating it is free: it scores nothing.
            return Some(None);
        };
        self.scorer
            .recall(
                inputs.typical.as_deref(),
                node,
                market,
                &facts.condition,
                &inputs.demand,
                inputs.policy.tolerance,
            )
            .map(|e| e.map(|e| e.raw_score))
    }

    fn evaluate(
        &self,
        facts: &Facts<'_, <S::View as ClusterView>::Node>,
        inputs: &PodInputs,
        detail: Detail,
    ) -> Option<Evaluation> {
        let node = facts.cached?;
        let market = facts.market.as_ref().ok()?;
        self.scorer.evaluate(
            inputs.typical.as_deref(),
            node,
            market,
            &facts.condition,
            &inputs.demand,
            inputs.policy.tolerance,
            detail,
        )
    }
}

fn outcome_of(demand: &PodDemand) -> ScoreOutcome {
    if !demand.missing_claims.is_empty() {
        ScoreOutcome::ClaimNotCached
    } else if !demand.unreadable.is_empty() {
        ScoreOutcome::UnreadableDemand
    } else if demand.requests.is_empty() {
        ScoreOutcome::NoGpuDemand
    } else {
        ScoreOutcome::Scored
    }
}

/// The filter's view of a node sent as an object. Capacity type comes from the resolved market
/// data when there is some, else straight from the labels (an invalid price annotation must
/// not hide a spot node from the intolerant-pod rule).
fn condition_of(object: &NodeObject, market: Option<&NodeMarket>) -> NodeCondition {
    NodeCondition {
        capacity: market.map_or_else(|| capacity_type(&object.labels), |m| m.capacity),
        hourly_interruption_probability: market.map_or(0.0, |m| m.hourly_interruption_probability),
        interruption_notice: interruption_notice(&object.taints),
        deleting: object.deleting,
    }
}

fn market_summary(
    condition: &NodeCondition,
    market: &Result<Cow<'_, NodeMarket>, Cow<'_, MarketError>>,
) -> String {
    match market {
        Ok(m) => format!(
            "{}, {:.4} $/h for {} GPUs ({}), interruption probability {:.3e}/h",
            m.capacity, m.hourly_price_usd, m.gpus, m.source, m.hourly_interruption_probability
        ),
        Err(e) => format!(
            "{}, not priced: {e}",
            if condition.capacity == CapacityType::Spot {
                "spot"
            } else {
                "not spot"
            }
        ),
    }
}

fn pod_id(pod: &PodObject) -> String {
    format!("{}/{}", pod.metadata.namespace, pod.metadata.name)
}
