//! A fixture cluster for extender tests: the view the watch cache would hold after the API
//! server sent a few nodes, claims and pods, scored by the real `Scoring` and served through
//! the real router.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::resource::v1::ResourceClaim;
use prometheus_client::registry::Registry;
use tessera::extender::api::object::PodObject;
use tessera::extender::claim::{ClaimRequests, claim_requests};
use tessera::extender::demand::DeviceClasses;
use tessera::extender::evaluate::{
    ByPosition, GpuNode, NodeGpus, Scoring, default_typical_pods, milli_view,
};
use tessera::extender::view::{AllocatedShare, ClusterView, ViewSource};
use tessera::extender::{BodyLimits, Decider, ExtenderMetrics, RouteOptions, router_with};
use tessera::market::{
    CapacityType, InterruptionBand, MarketError, NodeMarket, PriceCatalog, PriceSource, RiskSource,
    SpotAdvisor,
};
use tessera::model::NodeState;
use tessera::model::mig::GpuProduct;
use tessera::model::partition::PartitionGpu;
use tessera::scoring::filter::NodeCondition;
use tessera::scoring::{TypicalPods, Weights};

/// Body limit the tests use unless they test the limit.
pub const TEST_BODY_LIMIT: usize = 8 * 1024 * 1024;
/// The product name an H100 80GB reports.
pub const H100: &str = "NVIDIA H100 80GB HBM3";
/// Its memory, MiB.
pub const H100_MIB: u64 = 81_559;
/// The driver the fixture's claims use.
pub const DRIVER: &str = "gpu.tessera.dev";

/// One cached node.
#[derive(Debug, Clone)]
pub struct FixtureNode {
    pub condition: NodeCondition,
    pub market: NodeMarket,
    pub gpus: Vec<PartitionGpu>,
    pub milli: NodeState,
    pub in_use: bool,
}

impl FixtureNode {
    /// A node of `gpus` whole H100s costing `hourly` dollars, on `capacity`, already running
    /// pods (so starting it costs nothing extra).
    pub fn priced(capacity: CapacityType, hourly: f64, gpus: u32) -> Self {
        Self::with_gpus(
            capacity,
            hourly,
            vec![PartitionGpu::whole(H100, H100_MIB); gpus as usize],
        )
    }

    /// A node of `gpus` dynamic-MIG H100s.
    pub fn mig(capacity: CapacityType, hourly: f64, gpus: u32) -> Self {
        Self::with_gpus(
            capacity,
            hourly,
            vec![PartitionGpu::dynamic_mig(H100, H100_MIB, GpuProduct::H100_80GB); gpus as usize],
        )
    }

    /// A node with these GPUs.
    pub fn with_gpus(capacity: CapacityType, hourly: f64, gpus: Vec<PartitionGpu>) -> Self {
        let spot = capacity == CapacityType::Spot;
        let band = spot.then_some(InterruptionBand::Over20);
        let probability = band.map_or(0.0, InterruptionBand::hourly_interruption_probability);
        let milli = milli_view(&gpus, 96_000, 96_000, 393_216, 393_216);
        FixtureNode {
            condition: NodeCondition {
                capacity,
                hourly_interruption_probability: probability,
                interruption_notice: None,
                deleting: false,
            },
            market: NodeMarket {
                hourly_price_usd: hourly,
                gpus: gpus.len() as f64,
                capacity,
                band,
                hourly_interruption_probability: probability,
                source: PriceSource::Annotation,
                risk_source: if spot {
                    RiskSource::Default
                } else {
                    RiskSource::NotSpot
                },
            },
            milli,
            gpus,
            in_use: true,
        }
    }

    /// The same node with `cpu_free` milli-CPU left of 96,000.
    pub fn cpu_free(mut self, cpu_free: u64) -> Self {
        self.milli = milli_view(&self.gpus, 96_000, cpu_free, 393_216, 393_216);
        self
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

impl GpuNode for FixtureNode {
    fn node_gpus(&self) -> NodeGpus<'_> {
        NodeGpus {
            gpus: &self.gpus,
            milli: self.milli,
            in_use: self.in_use,
            layout: &ByPosition,
        }
    }
}

/// The cached objects.
#[derive(Debug, Default)]
pub struct FixtureView {
    nodes: BTreeMap<String, FixtureNode>,
    claims: BTreeMap<String, ClaimRequests>,
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
        node.gpus.len() as u32
    }
    fn claim(&self, id: &str) -> Option<ClaimRequests> {
        self.claims.get(id).cloned()
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
        node.gpus.iter().map(|g| 1.0 - g.used_fraction()).sum()
    }
}

pub struct FixtureSource(Arc<FixtureView>);

impl ViewSource for FixtureSource {
    type View = FixtureView;
    fn snapshot(&self) -> Arc<FixtureView> {
        Arc::clone(&self.0)
    }
}

/// A fixture cluster and the metrics its router records into.
pub struct Fixture {
    view: FixtureView,
    registry: Registry,
    metrics: ExtenderMetrics,
    typical: TypicalPods,
}

impl Fixture {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let metrics = ExtenderMetrics::register(&mut registry);
        Fixture {
            view: FixtureView::default(),
            registry,
            metrics,
            typical: default_typical_pods().unwrap(),
        }
    }

    pub fn node(mut self, name: &str, node: FixtureNode) -> Self {
        self.view.nodes.insert(name.to_owned(), node);
        self
    }

    /// A ResourceClaim as the API server would send it.
    pub fn claim(mut self, claim: serde_json::Value) -> Self {
        let claim: ResourceClaim = serde_json::from_value(claim).unwrap();
        let id = format!(
            "{}/{}",
            claim.metadata.namespace.as_deref().unwrap(),
            claim.metadata.name.as_deref().unwrap()
        );
        let requests = claim_requests(&claim, &DeviceClasses::new(DRIVER));
        self.view.claims.insert(id, requests);
        self
    }

    pub fn pod(mut self, pod: PodObject) -> Self {
        self.view.pods.push(pod);
        self
    }

    /// The typical pods scoring measures fragmentation against.
    pub fn typical(&self) -> &TypicalPods {
        &self.typical
    }

    pub fn router(&mut self, prefix: &str) -> axum::Router {
        self.router_with_limit(prefix, TEST_BODY_LIMIT)
    }

    pub fn router_with_limit(&mut self, prefix: &str, limit: usize) -> axum::Router {
        let options = RouteOptions {
            limits: BodyLimits::with_max_body(limit),
            explain_access: None,
        };
        self.router_with_options(prefix, options)
    }

    pub fn router_with_options(&mut self, prefix: &str, options: RouteOptions) -> axum::Router {
        let view = std::mem::take(&mut self.view);
        let decider = Decider::new(
            FixtureSource(Arc::new(view)),
            Scoring::new(Weights::default(), self.typical.clone()),
            DeviceClasses::new(DRIVER),
            Arc::new(PriceCatalog::builtin().unwrap()),
            Arc::new(SpotAdvisor::builtin().unwrap()),
        );
        router_with(prefix, Arc::new(decider), self.metrics.clone(), options)
    }

    pub fn metrics_text(&self) -> String {
        tessera::metrics::encode(&self.registry).unwrap()
    }
}
