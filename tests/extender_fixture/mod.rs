//! A fixture cluster for extender tests: the view the watch cache would hold after the API
//! server sent a few nodes and pods, served through the real router.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use prometheus_client::registry::Registry;
use tessera::extender::api::object::PodObject;
use tessera::extender::claim::ClaimRequests;
use tessera::extender::demand::{DeviceClasses, PodDemand};
use tessera::extender::pod::Tolerance;
use tessera::extender::view::{AllocatedShare, ClusterView, Evaluation, NodeScorer, ViewSource};
use tessera::extender::{Decider, ExtenderMetrics, router};
use tessera::market::{
    CapacityType, MarketError, NodeMarket, PriceCatalog, PriceSource, RiskSource, SpotAdvisor,
};
use tessera::scoring::filter::NodeCondition;

/// Body limit the tests use unless they test the limit.
pub const TEST_BODY_LIMIT: usize = 8 * 1024 * 1024;

/// One cached node.
#[derive(Debug, Clone)]
pub struct FixtureNode {
    pub condition: NodeCondition,
    pub market: NodeMarket,
    pub gpus: u32,
}

impl FixtureNode {
    /// A node of `gpus` GPUs costing `hourly` dollars, on `capacity`.
    pub fn priced(capacity: CapacityType, hourly: f64, gpus: u32) -> Self {
        let spot = capacity == CapacityType::Spot;
        FixtureNode {
            condition: NodeCondition {
                capacity,
                interruption_notice: None,
                deleting: false,
            },
            market: NodeMarket {
                hourly_price_usd: hourly,
                gpus: f64::from(gpus),
                capacity,
                band: None,
                hourly_interruption_probability: if spot { 4.9526e-4 } else { 0.0 },
                source: PriceSource::Annotation,
                risk_source: if spot {
                    RiskSource::Default
                } else {
                    RiskSource::NotSpot
                },
            },
            gpus,
        }
    }

    pub fn with_notice(mut self, reason: &'static str) -> Self {
        self.condition.interruption_notice = Some(reason);
        self
    }

    pub fn deleting(mut self) -> Self {
        self.condition.deleting = true;
        self
    }
}

/// The cached objects.
#[derive(Debug, Default)]
pub struct FixtureView {
    nodes: BTreeMap<String, FixtureNode>,
    pods: Vec<PodObject>,
}

impl ClusterView for FixtureView {
    type Node = FixtureNode;

    fn node(&self, name: &str) -> Option<&FixtureNode> {
        self.nodes.get(name)
    }
    fn node_condition(&self, node: &FixtureNode) -> NodeCondition {
        node.condition
    }
    fn node_market<'a>(&'a self, node: &'a FixtureNode) -> Result<&'a NodeMarket, &'a MarketError> {
        Ok(&node.market)
    }
    fn gpu_count(&self, node: &FixtureNode) -> u32 {
        node.gpus
    }
    fn claim(&self, _id: &str) -> Option<ClaimRequests> {
        None
    }
    fn pod(&self, namespace: &str, name: &str) -> Option<PodObject> {
        self.pods
            .iter()
            .find(|p| p.metadata.namespace == namespace && p.metadata.name == name)
            .cloned()
    }
    fn node_names(&self) -> Vec<String> {
        self.nodes.keys().cloned().collect()
    }
    fn allocated_devices(&self, _node: &FixtureNode) -> Vec<AllocatedShare> {
        Vec::new()
    }
    fn idle_gpus(&self, node: &FixtureNode) -> f64 {
        f64::from(node.gpus)
    }
}

pub struct FixtureSource(Arc<FixtureView>);

impl ViewSource for FixtureSource {
    type View = FixtureView;
    fn snapshot(&self) -> Arc<FixtureView> {
        Arc::clone(&self.0)
    }
}

/// A scorer for which nothing fits: the wire tests exercise the filter and the neutral paths
/// of prioritize, which never reach scoring.
pub struct NothingFits;

impl NodeScorer<FixtureNode> for NothingFits {
    fn evaluate(
        &self,
        _node: &FixtureNode,
        _market: &NodeMarket,
        _demand: &PodDemand,
        _tolerance: &Tolerance,
    ) -> Option<Evaluation> {
        None
    }
    fn to_extender_scores(&self, raw: &[f64]) -> Vec<i64> {
        vec![5; raw.len()]
    }
    fn hourly_cost(&self, market: &NodeMarket, gpus: f64) -> f64 {
        market.price_per_gpu_hour().unwrap_or(0.0) * gpus
    }
}

/// A fixture cluster and the metrics its router records into.
pub struct Fixture {
    view: FixtureView,
    registry: Registry,
    metrics: ExtenderMetrics,
}

impl Fixture {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let metrics = ExtenderMetrics::register(&mut registry);
        Fixture {
            view: FixtureView::default(),
            registry,
            metrics,
        }
    }

    pub fn node(mut self, name: &str, node: FixtureNode) -> Self {
        self.view.nodes.insert(name.to_owned(), node);
        self
    }

    pub fn pod(mut self, pod: PodObject) -> Self {
        self.view.pods.push(pod);
        self
    }

    pub fn router(&mut self, prefix: &str) -> axum::Router {
        self.router_with_limit(prefix, TEST_BODY_LIMIT)
    }

    pub fn router_with_limit(&mut self, prefix: &str, limit: usize) -> axum::Router {
        let view = std::mem::take(&mut self.view);
        let decider = Decider::new(
            FixtureSource(Arc::new(view)),
            NothingFits,
            DeviceClasses::new("gpu.tessera.dev"),
            Arc::new(PriceCatalog::builtin().unwrap()),
            Arc::new(SpotAdvisor::builtin().unwrap()),
        );
        router(prefix, Arc::new(decider), self.metrics.clone(), limit)
    }

    pub fn metrics_text(&self) -> String {
        tessera::metrics::encode(&self.registry).unwrap()
    }
}
