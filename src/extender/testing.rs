//! Benchmark and test support: the extender's router over a fixed cluster snapshot, and the
//! reference prioritize request of `docs/performance.md`.
//!
//! Public (not test-only) for the same reason as `cluster::testing`: the benches and the
//! integration tests build the same router over `synthetic_cluster` snapshots.

pub mod wire;

use std::sync::Arc;

use prometheus_client::registry::Registry;
use serde_json::{Value, json};

use super::cluster_view::{CacheView, MemoScoring};
use super::decide::Decider;
use super::demand::DeviceClasses;
use super::evaluate::{Scoring, default_typical_pods};
use super::metrics::ExtenderMetrics;
use super::predict::Predictor;
use super::routes::{Decide, router};
use super::typical::TypicalHandle;
use super::view::{NodeScorer, ViewSource};
use crate::allocator::Release;
use crate::cluster::{CacheConfig, NodeView, Snapshot};
use crate::scoring::Weights;

/// The driver the synthetic cluster's slices name.
pub const DRIVER: &str = "gpu.tessera.dev";
/// Request body limit of [`snapshot_router`]: far above any request a test or bench sends.
const MAX_BODY_BYTES: usize = 128 * 1024 * 1024;

/// One snapshot, handed out for every request.
pub struct FixedView(Arc<CacheView>);

impl FixedView {
    /// `snapshot`, its claims read against [`DRIVER`]'s device classes.
    pub fn new(snapshot: Snapshot) -> Self {
        FixedView(Arc::new(CacheView::new(
            snapshot,
            Arc::new(DeviceClasses::new(DRIVER)),
        )))
    }
}

impl ViewSource for FixedView {
    type View = CacheView;
    fn snapshot(&self) -> Arc<CacheView> {
        Arc::clone(&self.0)
    }
}

/// How a [`snapshot_router`] scores.
#[derive(Debug, Clone, Copy)]
pub struct RouterOptions {
    /// Remember scores per node view and pod shape, as the extender runs.
    pub memo: bool,
    /// Request size from which prioritize goes parallel (`None`: the extender's default).
    pub parallel_from: Option<usize>,
    /// Price what the allocator of this release will give (`Predictor`), as the extender
    /// runs; `None`: tessera's own fit.
    pub predict: Option<Release>,
}

/// The extender's router (default weights, bundled typical pods) over `snapshot`.
///
/// # Errors
/// When the built-in price catalog or the bundled typical pods cannot be read.
pub fn snapshot_router(snapshot: Snapshot, options: RouterOptions) -> anyhow::Result<axum::Router> {
    let typical = Scoring::new(Weights::default(), default_typical_pods()?)
        .typical()
        .clone();
    snapshot_router_with(snapshot, options, typical)
}

/// [`snapshot_router`] measuring fragmentation against whatever `typical` holds (a model
/// learned with the default weights' fragmentation part, e.g. by
/// [`TypicalLearner`](super::typical::learner::TypicalLearner)).
///
/// # Errors
/// When the built-in price catalog cannot be read.
pub fn snapshot_router_with(
    snapshot: Snapshot,
    options: RouterOptions,
    typical: TypicalHandle,
) -> anyhow::Result<axum::Router> {
    let classes = DeviceClasses::new(DRIVER);
    let config = CacheConfig::builtin(DRIVER)?;
    let view = FixedView::new(snapshot);
    let mut scoring = Scoring::with_typical(Weights::default(), typical);
    if let Some(release) = options.predict {
        scoring = scoring.with_predictor(Predictor::new(release, DRIVER));
    }
    let (catalog, advisor) = (config.catalog, config.advisor);
    let router_of = |decider: Arc<dyn Decide>| {
        let metrics = ExtenderMetrics::register(&mut Registry::default());
        router("/", decider, metrics, MAX_BODY_BYTES)
    };
    Ok(if options.memo {
        let decider = Decider::new(view, MemoScoring::new(scoring), classes, catalog, advisor);
        router_of(Arc::new(with_parallel(decider, options.parallel_from)))
    } else {
        let decider = Decider::new(view, scoring, classes, catalog, advisor);
        router_of(Arc::new(with_parallel(decider, options.parallel_from)))
    })
}

fn with_parallel<P>(decider: Decider<FixedView, P>, from: Option<usize>) -> Decider<FixedView, P>
where
    P: NodeScorer<Arc<NodeView>>,
{
    match from {
        Some(n) => decider.with_parallel_from(n),
        None => decider,
    }
}

/// The reference request of `docs/performance.md`: the third pending pod of a
/// `synthetic_cluster(..).with_pending_pods(n ≥ 3)` (its claim asks `firstAvailable` [1g.10gb
/// MIG slice, 10 GiB / 25 % share, whole GPU]) with `annotations`, and `names` node names
/// spread evenly over the sorted node list. `None` when the snapshot has no such pod.
pub fn reference_request(snapshot: &Snapshot, names: usize, annotations: Value) -> Option<Value> {
    let mut pending: Vec<_> = snapshot.pods().filter(|p| p.node.is_none()).collect();
    pending.sort_by(|a, b| a.key.as_str().cmp(b.key.as_str()));
    let pod = pending
        .iter()
        .find(|p| p.key.name().starts_with("pending-000002-"))?;
    let claim = pod.claim_names().next()?;
    let mut all: Vec<String> = snapshot.nodes().map(|n| n.name.to_string()).collect();
    all.sort_unstable();
    let step = (all.len() / names.max(1)).max(1);
    let names: Vec<&String> = all.iter().step_by(step).take(names).collect();
    Some(json!({
        "Pod": {
            "metadata": {"name": pod.key.name(), "namespace": pod.key.namespace(),
                         "annotations": annotations},
            "spec": {"containers": [{"name": "main", "resources": {"requests": {"cpu": "4", "memory": "16Gi"}}}],
                     "resourceClaims": [{"name": "gpu", "resourceClaimName": claim}]},
            "status": {}
        },
        "Nodes": null,
        "NodeNames": names,
    }))
}
