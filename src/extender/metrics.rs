//! The extender's Prometheus metrics, all under the `tessera_extender` prefix.
//!
//! Request latency and decisions are labelled only by bounded sets (verb, status code,
//! reason). Cost attribution is labelled by allocation, so its series come and go with
//! allocations; [`super::attribution`] keeps them current and bounded.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::metrics::latency_buckets;

/// A gauge holding dollars.
pub type DollarGauge = Gauge<f64, AtomicU64>;

/// The extender's verbs, as metric label values (`filter`, `prioritize`, `explain`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    /// `POST …/filter`.
    Filter,
    /// `POST …/prioritize`.
    Prioritize,
    /// `GET …/explain`.
    Explain,
}

impl Verb {
    /// The verb as its route spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Filter => "filter",
            Verb::Prioritize => "prioritize",
            Verb::Explain => "explain",
        }
    }
}

impl EncodeLabelValue for Verb {
    fn encode(
        &self,
        encoder: &mut prometheus_client::encoding::LabelValueEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct VerbLabels {
    verb: Verb,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    verb: Verb,
    code: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DecisionLabels {
    verb: Verb,
    reason: &'static str,
}

/// Labels of one allocation's cost.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct AllocationLabels {
    /// Namespace of the claim.
    pub namespace: String,
    /// Pod using the claim (empty when no pod has reserved it yet).
    pub pod: String,
    /// Claim name.
    pub claim: String,
    /// Node the device is on.
    pub node: String,
    /// Device name.
    pub device: String,
    /// `gpu`, `mig`, `shared` or `share`.
    #[prometheus(flatten)]
    pub kind: KindLabel,
}

/// The device type label (`type` is a Rust keyword, hence the wrapper).
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct KindLabel {
    /// The device type.
    pub r#type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct NamespaceLabels {
    pub(crate) namespace: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct NodeLabels {
    pub(crate) node: String,
}

/// Every metric the extender records.
#[derive(Debug, Clone)]
pub struct ExtenderMetrics {
    request_duration: Family<VerbLabels, Histogram>,
    requests: Family<RequestLabels, Counter>,
    decisions: Family<DecisionLabels, Counter>,
    pub(crate) allocation_cost: Family<AllocationLabels, DollarGauge>,
    pub(crate) namespace_cost: Family<NamespaceLabels, DollarGauge>,
    pub(crate) idle_gpu_cost: Family<NodeLabels, DollarGauge>,
    pub(crate) attribution_dropped: Gauge,
    pub(crate) attribution_refresh: DollarGauge,
}

impl ExtenderMetrics {
    /// Registers every metric in `registry` under `tessera_extender`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = ExtenderMetrics {
            request_duration: Family::new_with_constructor(|| Histogram::new(latency_buckets())),
            requests: Family::default(),
            decisions: Family::default(),
            allocation_cost: Family::default(),
            namespace_cost: Family::default(),
            idle_gpu_cost: Family::default(),
            attribution_dropped: Gauge::default(),
            attribution_refresh: DollarGauge::default(),
        };
        let r = registry.sub_registry_with_prefix("tessera_extender");
        r.register(
            "request_duration_seconds",
            "Time to answer one request, by verb",
            metrics.request_duration.clone(),
        );
        r.register(
            "requests",
            "Requests answered, by verb and HTTP status code",
            metrics.requests.clone(),
        );
        r.register(
            "decisions",
            "Filter verdicts per node (passed or the refusal reason) and prioritize outcomes per request",
            metrics.decisions.clone(),
        );
        r.register(
            "allocation_cost_dollars_per_hour",
            "Hourly cost of each allocated device, attributed to its claim and pod (largest first, bounded)",
            metrics.allocation_cost.clone(),
        );
        r.register(
            "namespace_cost_dollars_per_hour",
            "Hourly cost of every allocated device of a namespace (complete, never truncated)",
            metrics.namespace_cost.clone(),
        );
        r.register(
            "idle_gpu_cost_dollars_per_hour",
            "Hourly cost of the unallocated GPU capacity of each node",
            metrics.idle_gpu_cost.clone(),
        );
        r.register(
            "attribution_series_dropped",
            "Allocations left out of allocation_cost_dollars_per_hour by the series cap",
            metrics.attribution_dropped.clone(),
        );
        r.register(
            "attribution_refresh_seconds",
            "Time the last cost attribution refresh took",
            metrics.attribution_refresh.clone(),
        );
        metrics
    }

    /// Records one answered request.
    pub fn observe_request(&self, verb: Verb, code: u16, took: Duration) {
        self.request_duration
            .get_or_create(&VerbLabels { verb })
            .observe(took.as_secs_f64());
        self.requests
            .get_or_create(&RequestLabels { verb, code })
            .inc();
    }

    /// Counts `count` decisions of `verb` for `reason`.
    pub fn count_decisions(&self, verb: Verb, reason: &'static str, count: u64) {
        if count > 0 {
            self.decisions
                .get_or_create(&DecisionLabels { verb, reason })
                .inc_by(count);
        }
    }
}
