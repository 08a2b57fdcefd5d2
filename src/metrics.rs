//! Prometheus metrics plumbing: one `prometheus-client` registry per process, encoded in
//! OpenMetrics text for `/metrics`. Components register their own families under a prefix
//! (`registry.sub_registry_with_prefix("tessera_plugin")`), so names never collide.

use prometheus_client::registry::Registry;
use thiserror::Error;

/// The content type Prometheus negotiates for OpenMetrics text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Why the registry could not be encoded.
#[derive(Debug, Error)]
pub enum MetricsError {
    /// A metric's encoder failed (a label value could not be written).
    #[error("cannot encode metrics: {0}")]
    Encode(#[from] std::fmt::Error),
}

/// Encode every metric in `registry` as OpenMetrics text.
pub fn encode(registry: &Registry) -> Result<String, MetricsError> {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry)?;
    Ok(out)
}

/// Latency buckets in seconds from 100 µs to about 3 s: both the extender (sub-millisecond
/// answers) and prepare (milliseconds, or seconds when MIG instances are created) fit.
pub fn latency_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(0.0001, 2.0, 16)
}
