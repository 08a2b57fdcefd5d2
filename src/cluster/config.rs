//! What the cache needs to know besides the API objects: our driver's name and the market
//! data that prices nodes.

use std::sync::Arc;

use crate::market::{MarketError, PriceCatalog, SpotAdvisor};

/// The DRA driver name tessera's plugin publishes by default.
pub const DEFAULT_DRIVER: &str = "gpu.tessera.dev";

/// Settings of a cluster cache.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// Our DRA driver's name: only its ResourceSlices and allocation results are read.
    pub driver: Arc<str>,
    /// GPU prices by instance type.
    pub catalog: Arc<PriceCatalog>,
    /// Spot interruption bands by region and instance type.
    pub advisor: Arc<SpotAdvisor>,
}

impl CacheConfig {
    /// A configuration for `driver` with the market data compiled into the binary.
    pub fn builtin(driver: impl Into<Arc<str>>) -> Result<Self, MarketError> {
        Ok(CacheConfig {
            driver: driver.into(),
            catalog: Arc::new(PriceCatalog::builtin()?),
            advisor: Arc::new(SpotAdvisor::builtin()?),
        })
    }
}
