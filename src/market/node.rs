//! One node's market data: hourly price, GPU count, capacity type and interruption risk.

use std::collections::BTreeMap;

use super::annotation::node_price_override;
use super::band::InterruptionBand;
use super::capacity::{CapacityType, capacity_type};
use super::error::MarketError;
use super::labels;
use super::price::{FALLBACK_USD_PER_GPU_HOUR, InstancePrice, PriceCatalog};
use super::spot::SpotAdvisor;

/// Band assumed for a spot node whose region and instance type the Spot Advisor does not list
/// (GKE, AKS, unknown AWS types, nodes without a region label).
///
/// `>20%` is the most common band among the GPU entries of the built-in table (253 of 540) and
/// the most cautious one: over-stating the risk of an unknown spot node costs a missed saving,
/// under-stating it costs lost work.
pub const DEFAULT_SPOT_BAND: InterruptionBand = InterruptionBand::Over20;

/// Where a node's hourly price came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceSource {
    /// The node's `tessera.dev/hourly-price` annotation.
    Annotation,
    /// The catalog's on-demand price (on-demand and reserved nodes).
    CatalogOnDemand,
    /// The catalog's spot price (listed, or the catalog's own estimate).
    CatalogSpot,
    /// Catalog on-demand price × (1 − Spot Advisor savings for the node's region).
    SpotAdvisorEstimate,
    /// A spot node with no known spot price: the catalog's on-demand price, an upper bound.
    CatalogOnDemandForSpot,
    /// No catalog entry: [`FALLBACK_USD_PER_GPU_HOUR`] × GPUs.
    Fallback,
}

impl PriceSource {
    /// A stable, human-readable name (in `/explain` and logs).
    pub fn as_str(self) -> &'static str {
        match self {
            PriceSource::Annotation => "node annotation",
            PriceSource::CatalogOnDemand => "catalog on-demand",
            PriceSource::CatalogSpot => "catalog spot",
            PriceSource::SpotAdvisorEstimate => "spot advisor estimate",
            PriceSource::CatalogOnDemandForSpot => "catalog on-demand, spot price unknown",
            PriceSource::Fallback => "fallback price",
        }
    }
}

impl std::fmt::Display for PriceSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a node's interruption probability came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RiskSource {
    /// Not a spot node: probability 0.
    NotSpot,
    /// The Spot Advisor entry for the node's region and instance type.
    SpotAdvisor,
    /// The band of the catalog row for the node's own region.
    Catalog,
    /// Nothing known: [`DEFAULT_SPOT_BAND`].
    Default,
}

/// Market data for one node, resolved from its labels and annotations.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeMarket {
    /// Price of the whole node, US dollars per hour; finite and ≥ 0.
    pub hourly_price_usd: f64,
    /// Physical GPUs the price covers: the catalog's count for the instance type (fractional for
    /// partitioned offerings), else the caller's `gpus_on_node`.
    pub gpus: f64,
    /// On-demand, spot or reserved.
    pub capacity: CapacityType,
    /// Interruption band used, for spot nodes only.
    pub band: Option<InterruptionBand>,
    /// Probability the node is interrupted within one hour; 0 unless spot, always in `[0, 1)`.
    pub hourly_interruption_probability: f64,
    /// Where `hourly_price_usd` came from.
    pub source: PriceSource,
    /// Where `band` and `hourly_interruption_probability` came from.
    pub risk_source: RiskSource,
}

impl NodeMarket {
    /// Price of one whole GPU on this node per hour, `None` when the node has no GPU.
    pub fn price_per_gpu_hour(&self) -> Option<f64> {
        (self.gpus > 0.0).then(|| self.hourly_price_usd / self.gpus)
    }
}

/// Resolves a node's market data.
///
/// Price: the `tessera.dev/hourly-price` annotation, else the catalog row for
/// `node.kubernetes.io/instance-type` (exact `topology.kubernetes.io/region` first, then any
/// region) — its spot price for spot nodes — else [`FALLBACK_USD_PER_GPU_HOUR`] ×
/// `gpus_on_node`. Risk: 0 for on-demand and reserved nodes; for spot nodes the Spot Advisor
/// band of (region, type), else the band of the catalog row for that region, else
/// [`DEFAULT_SPOT_BAND`]. The only error is an invalid price annotation.
pub fn node_market(
    node_labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
    gpus_on_node: u32,
    catalog: &PriceCatalog,
    advisor: &SpotAdvisor,
) -> Result<NodeMarket, MarketError> {
    let capacity = capacity_type(node_labels);
    let region = node_labels.get(labels::REGION).map(String::as_str);
    let instance_type = node_labels.get(labels::INSTANCE_TYPE).map(String::as_str);
    let row = instance_type.and_then(|t| catalog.lookup(t, region));
    let advice = match (region, instance_type) {
        (Some(r), Some(t)) => advisor.band(r, t),
        _ => None,
    };
    let exact_row = row.filter(|row| Some(row.region.as_str()) == region);

    let gpus = row.map_or(f64::from(gpus_on_node), |row| row.gpus);
    let (hourly_price_usd, source) = match (node_price_override(annotations)?, row) {
        (Some(price), _) => (price, PriceSource::Annotation),
        (None, Some(row)) if capacity == CapacityType::Spot => {
            spot_price(row, exact_row.is_some(), advice.map(|(_, savings)| savings))
        }
        (None, Some(row)) => (row.od_usd_hr, PriceSource::CatalogOnDemand),
        (None, None) => (FALLBACK_USD_PER_GPU_HOUR * gpus, PriceSource::Fallback),
    };

    let (band, risk_source) = if capacity != CapacityType::Spot {
        (None, RiskSource::NotSpot)
    } else if let Some((band, _)) = advice {
        (Some(band), RiskSource::SpotAdvisor)
    } else if let Some(band) = exact_row.and_then(|row| row.interruption_band) {
        (Some(band), RiskSource::Catalog)
    } else {
        (Some(DEFAULT_SPOT_BAND), RiskSource::Default)
    };
    let hourly_interruption_probability =
        band.map_or(0.0, InterruptionBand::hourly_interruption_probability);

    Ok(NodeMarket {
        hourly_price_usd,
        gpus,
        capacity,
        band,
        hourly_interruption_probability,
        source,
        risk_source,
    })
}

/// The spot price of a catalog row for a node. A spot price listed for the node's own region
/// wins; otherwise the Spot Advisor's savings for the node's region applied to the row's
/// on-demand price (savings vary more between regions than on-demand prices do); otherwise a
/// spot price listed for another region; otherwise the on-demand price, as an upper bound.
fn spot_price(
    row: &InstancePrice,
    row_is_node_region: bool,
    region_savings_pct: Option<f64>,
) -> (f64, PriceSource) {
    match (row.spot_usd_hr, region_savings_pct) {
        (Some(spot), _) if row_is_node_region => (spot, PriceSource::CatalogSpot),
        // Savings are validated to −100..=100 on load, so the estimate is never negative. The
        // feed has negative savings (spot above on-demand); AWS's default maximum spot price is
        // the on-demand price, so a running spot node never pays more: cap at on-demand.
        (_, Some(savings)) => (
            (row.od_usd_hr * (1.0 - savings / 100.0)).min(row.od_usd_hr),
            PriceSource::SpotAdvisorEstimate,
        ),
        (Some(spot), None) => (spot, PriceSource::CatalogSpot),
        (None, None) => (row.od_usd_hr, PriceSource::CatalogOnDemandForSpot),
    }
}

#[cfg(test)]
mod tests;
