//! [`Preparer`]: what the gRPC layer calls. Reads each claim from the API server (slow,
//! concurrent, outside the lock), then hands it to [`DeviceState`] one at a time, keeping
//! every claim's failure to that claim.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use tokio::sync::watch;
use tracing::{Instrument, info, info_span, warn};

use super::claim::{AllocatedDevice, ClaimRef, PreparedDevice, allocated_devices};
use super::error::PrepareError;
use super::metrics::{Operation, PrepareMetrics};
use super::source::ClaimSource;
use super::state::DeviceState;
use crate::model::Inventory;

/// Claims read from the API server at the same time.
const FETCH_CONCURRENCY: usize = 8;

/// Prepare and unprepare for the kubelet, per claim.
pub struct Preparer {
    state: DeviceState,
    source: Arc<dyn ClaimSource>,
    inventory: watch::Receiver<Inventory>,
    driver: String,
    pool: String,
    metrics: PrepareMetrics,
}

/// Per-claim outcomes of one prepare call, keyed by claim UID.
pub type PrepareResults = BTreeMap<String, Result<Vec<PreparedDevice>, PrepareError>>;
/// Per-claim outcomes of one unprepare call, keyed by claim UID.
pub type UnprepareResults = BTreeMap<String, Result<(), PrepareError>>;

impl Preparer {
    /// A preparer for `driver` on pool `pool` (the node name), resolving devices against the
    /// latest inventory discovery sent on `inventory`.
    pub fn new(
        state: DeviceState,
        source: Arc<dyn ClaimSource>,
        inventory: watch::Receiver<Inventory>,
        driver: impl Into<String>,
        pool: impl Into<String>,
        metrics: PrepareMetrics,
    ) -> Self {
        Preparer {
            state,
            source,
            inventory,
            driver: driver.into(),
            pool: pool.into(),
            metrics,
        }
    }

    /// The sequencer underneath (recovery, gauges).
    pub fn state(&self) -> &DeviceState {
        &self.state
    }

    /// Prepare every claim; one entry per distinct UID.
    pub async fn prepare(&self, claims: &[ClaimRef]) -> PrepareResults {
        let claims: Vec<ClaimRef> = distinct(claims).into_iter().cloned().collect();
        let fetched: Vec<_> = futures::stream::iter(claims)
            .map(|claim: ClaimRef| async move {
                let started = Instant::now();
                let devices = self.fetch(&claim).await;
                (claim, started, devices)
            })
            .buffered(FETCH_CONCURRENCY)
            .collect()
            .await;
        let mut out = BTreeMap::new();
        for (claim, started, devices) in fetched {
            let span = info_span!("prepare", claim = %claim);
            let outcome = async {
                let devices = devices?;
                // A copy, so discovery can publish a new inventory meanwhile.
                let inventory = self.inventory.borrow().clone();
                self.state.prepare(&claim, &devices, &inventory).await
            }
            .instrument(span.clone())
            .await;
            self.metrics.observe(
                Operation::Prepare,
                started.elapsed(),
                outcome.as_ref().err(),
            );
            span.in_scope(|| match &outcome {
                Ok(devices) => info!(devices = devices.len(), "prepared"),
                Err(error) => warn!(%error, kind = error.metric_label(), "prepare failed"),
            });
            out.insert(claim.uid.clone(), outcome);
        }
        self.metrics.set_prepared(self.state.prepared_claims());
        out
    }

    /// Unprepare every claim; one entry per distinct UID. Nothing is fetched: the checkpoint
    /// holds all that is needed, and the claim may already be deleted.
    pub async fn unprepare(&self, claims: &[ClaimRef]) -> UnprepareResults {
        let mut out = BTreeMap::new();
        for claim in distinct(claims) {
            let started = Instant::now();
            let span = info_span!("unprepare", claim = %claim);
            let outcome = async {
                claim.validate()?;
                self.state.unprepare(claim).await
            }
            .instrument(span.clone())
            .await;
            self.metrics.observe(
                Operation::Unprepare,
                started.elapsed(),
                outcome.as_ref().err(),
            );
            span.in_scope(|| match &outcome {
                Ok(()) => info!("unprepared"),
                Err(error) => warn!(%error, kind = error.metric_label(), "unprepare failed"),
            });
            out.insert(claim.uid.clone(), outcome);
        }
        self.metrics.set_prepared(self.state.prepared_claims());
        out
    }

    async fn fetch(&self, claim: &ClaimRef) -> Result<Vec<AllocatedDevice>, PrepareError> {
        claim.validate()?;
        let object = self.source.get(&claim.namespace, &claim.name).await?;
        allocated_devices(&object, claim, &self.driver, &self.pool)
    }
}

/// The claims with duplicate UIDs removed, first occurrence kept.
fn distinct(claims: &[ClaimRef]) -> Vec<&ClaimRef> {
    let mut seen = std::collections::HashSet::new();
    claims.iter().filter(|c| seen.insert(&c.uid)).collect()
}
