//! Cost attribution: what each allocation costs per hour, per namespace, and what idle GPUs
//! cost per node, published as gauges and refreshed from the cache snapshot.
//!
//! Label cardinality is bounded: at most [`MAX_ALLOCATION_SERIES`] per-allocation series
//! (the most expensive ones; the rest are counted in `attribution_series_dropped` and still
//! summed in the per-namespace totals), and series whose allocation is gone are removed on
//! the next refresh rather than left at their last value.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::decide::Decider;
use super::metrics::{AllocationLabels, ExtenderMetrics, KindLabel, NamespaceLabels, NodeLabels};
use super::view::{ClusterView, NodeScorer, ViewSource};

/// Most per-allocation cost series published.
pub const MAX_ALLOCATION_SERIES: usize = 10_000;

/// One refresh's figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attribution {
    /// Per allocation, most expensive first, at most [`MAX_ALLOCATION_SERIES`].
    pub allocations: Vec<(AllocationLabels, f64)>,
    /// Allocations left out of `allocations` by the cap.
    pub dropped: usize,
    /// Per namespace, every allocation counted.
    pub namespaces: BTreeMap<String, f64>,
    /// Per node, the cost of its idle GPU capacity.
    pub idle_by_node: BTreeMap<String, f64>,
}

impl<S, P> Decider<S, P>
where
    S: ViewSource,
    P: NodeScorer<<S::View as ClusterView>::Node>,
{
    /// Prices every allocation and every node's idle GPUs in the current snapshot. Nodes
    /// that cannot be priced (an invalid price annotation) are left out.
    pub fn attribute(&self) -> Attribution {
        let view = self.source.snapshot();
        let mut all: Vec<(AllocationLabels, f64)> = Vec::new();
        let mut namespaces: BTreeMap<String, f64> = BTreeMap::new();
        let mut idle_by_node = BTreeMap::new();
        for name in view.node_names() {
            let Some(node) = view.node(&name) else {
                continue;
            };
            let Ok(market) = view.node_market(node) else {
                continue;
            };
            idle_by_node.insert(
                name.clone(),
                self.scorer.hourly_cost(market, view.idle_gpus(node)),
            );
            for share in view.allocated_devices(node) {
                let cost = self.scorer.hourly_cost(market, share.gpus);
                *namespaces.entry(share.namespace.clone()).or_default() += cost;
                all.push((
                    AllocationLabels {
                        namespace: share.namespace,
                        pod: share.pod,
                        claim: share.claim,
                        node: name.clone(),
                        device: share.device,
                        kind: KindLabel { r#type: share.kind },
                    },
                    cost,
                ));
            }
        }
        let dropped = all.len().saturating_sub(MAX_ALLOCATION_SERIES);
        if dropped > 0 {
            // Most expensive first: the series a dashboard needs most survive the cap.
            all.sort_by(|a, b| b.1.total_cmp(&a.1));
            all.truncate(MAX_ALLOCATION_SERIES);
        }
        Attribution {
            allocations: all,
            dropped,
            namespaces,
            idle_by_node,
        }
    }
}

/// The label sets published last time, so vanished ones can be removed.
#[derive(Debug, Default)]
pub struct Published {
    allocations: HashSet<AllocationLabels>,
    namespaces: HashSet<NamespaceLabels>,
    nodes: HashSet<NodeLabels>,
}

/// Sets the gauges to `attribution` and removes the series of allocations, namespaces and
/// nodes that are gone.
pub fn publish(metrics: &ExtenderMetrics, attribution: Attribution, published: &mut Published) {
    let mut allocations = HashSet::with_capacity(attribution.allocations.len());
    for (labels, cost) in attribution.allocations {
        metrics.allocation_cost.get_or_create(&labels).set(cost);
        allocations.insert(labels);
    }
    for gone in published.allocations.difference(&allocations) {
        metrics.allocation_cost.remove(gone);
    }
    published.allocations = allocations;

    let mut namespaces = HashSet::with_capacity(attribution.namespaces.len());
    for (namespace, cost) in attribution.namespaces {
        let labels = NamespaceLabels { namespace };
        metrics.namespace_cost.get_or_create(&labels).set(cost);
        namespaces.insert(labels);
    }
    for gone in published.namespaces.difference(&namespaces) {
        metrics.namespace_cost.remove(gone);
    }
    published.namespaces = namespaces;

    let mut nodes = HashSet::with_capacity(attribution.idle_by_node.len());
    for (node, cost) in attribution.idle_by_node {
        let labels = NodeLabels { node };
        metrics.idle_gpu_cost.get_or_create(&labels).set(cost);
        nodes.insert(labels);
    }
    for gone in published.nodes.difference(&nodes) {
        metrics.idle_gpu_cost.remove(gone);
    }
    published.nodes = nodes;

    metrics
        .attribution_dropped
        .set(i64::try_from(attribution.dropped).unwrap_or(i64::MAX));
}

/// Refreshes the attribution gauges every `every` until `shutdown`, off the async threads.
pub async fn run<S, P>(
    decider: Arc<Decider<S, P>>,
    metrics: ExtenderMetrics,
    every: Duration,
    shutdown: CancellationToken,
) where
    S: ViewSource,
    P: NodeScorer<<S::View as ClusterView>::Node>,
{
    let mut published = Published::default();
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let d = Arc::clone(&decider);
        let m = metrics.clone();
        let mut p = std::mem::take(&mut published);
        let refreshed = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let attribution = d.attribute();
            let allocations = attribution.allocations.len();
            let dropped = attribution.dropped;
            publish(&m, attribution, &mut p);
            let took = started.elapsed();
            m.attribution_refresh.set(took.as_secs_f64());
            debug!(
                allocations,
                dropped,
                took_ms = took.as_millis() as u64,
                "cost attribution refreshed"
            );
            p
        })
        .await;
        match refreshed {
            Ok(p) => published = p,
            Err(e) => {
                // What was published is unknown now: start from nothing rather than leave
                // series that no later refresh would know to remove.
                warn!(error = %e, "cost attribution refresh failed");
                metrics.allocation_cost.clear();
                metrics.namespace_cost.clear();
                metrics.idle_gpu_cost.clear();
            }
        }
    }
}
