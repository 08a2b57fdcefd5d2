//! Publishing metrics, registered by the plugin runtime next to its own.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::publisher::{PublishError, PublishReport};

/// `type` label: `gpu`, `mig`, `shared` or `share`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabel {
    r#type: String,
}

/// `result` label: `ok` or an error's metric label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

/// The publisher's metrics; cheap to clone (handles to the same series).
#[derive(Debug, Clone, Default)]
pub struct PublishMetrics {
    devices: Family<TypeLabel, Gauge>,
    slices: Gauge,
    generation: Gauge,
    publishes: Family<ResultLabel, Counter>,
}

impl PublishMetrics {
    /// Registers the families under the `tessera_plugin` prefix:
    /// `tessera_plugin_devices_advertised{type}`, `tessera_plugin_resource_slices`,
    /// `tessera_plugin_pool_generation` and `tessera_plugin_publishes_total{result}`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = PublishMetrics::default();
        let sub = registry.sub_registry_with_prefix("tessera_plugin");
        sub.register(
            "devices_advertised",
            "Devices in this node's published ResourceSlices, by type (gpu, mig, shared, share)",
            metrics.devices.clone(),
        );
        sub.register(
            "resource_slices",
            "ResourceSlices published for this node",
            metrics.slices.clone(),
        );
        sub.register(
            "pool_generation",
            "Generation of this node's published pool",
            metrics.generation.clone(),
        );
        sub.register(
            "publishes",
            "Publish attempts, by result (ok or the error kind)",
            metrics.publishes.clone(),
        );
        metrics
    }

    pub(super) fn record_success(&self, report: &PublishReport) {
        for (kind, count) in &report.devices {
            self.devices
                .get_or_create(&TypeLabel {
                    r#type: (*kind).to_owned(),
                })
                .set(i64::try_from(*count).unwrap_or(i64::MAX));
        }
        self.slices
            .set(i64::try_from(report.slices.len()).unwrap_or(i64::MAX));
        self.generation.set(report.generation);
        self.publishes
            .get_or_create(&ResultLabel { result: "ok" })
            .inc();
    }

    pub(super) fn record_failure(&self, error: &PublishError) {
        self.publishes
            .get_or_create(&ResultLabel {
                result: error.metric_label(),
            })
            .inc();
    }
}
