//! Market data for GPU nodes: what a node costs per hour and how likely it is to be taken away.
//!
//! This module only *provides* data; it makes no placement decisions. The extender and the
//! simulator both call it with plain maps and slices (labels, annotations, taints), so it uses
//! no async runtime, no Kubernetes client, no wall clock and no RNG. Scoring turns these numbers
//! into a score (see `docs/cost-model.md` for the contract).
//!
//! - [`price`]: the built-in GPU price catalog, user overrides and the fallback price.
//! - [`annotation`]: the per-node `tessera.dev/hourly-price` override.
//! - [`band`]: Spot Advisor interruption bands and their hourly interruption probability.
//! - [`spot`]: the built-in Spot Advisor table (band and savings per region and type).
//! - [`capacity`]: on-demand, spot or reserved, from cloud labels.
//! - [`taint`]: taints that announce an imminent interruption.
//! - [`node`]: everything above resolved for one node.

pub mod annotation;
pub mod band;
pub mod capacity;
mod error;
mod fields;
pub mod labels;
pub mod node;
pub mod price;
pub mod spot;
pub mod taint;

#[cfg(test)]
mod properties;

pub use annotation::node_price_override;
pub use band::InterruptionBand;
pub use capacity::{CapacityType, capacity_type};
pub use error::MarketError;
pub use node::{DEFAULT_SPOT_BAND, NodeMarket, PriceSource, RiskSource, node_market};
pub use price::{FALLBACK_USD_PER_GPU_HOUR, InstancePrice, PriceCatalog};
pub use spot::SpotAdvisor;
pub use taint::{Taint, interruption_notice};
