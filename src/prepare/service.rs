//! [`Preparer`]: what the gRPC layer calls. Reads each claim from the API server (slow,
//! concurrent, outside the lock), then hands all the claims it could read to [`DeviceState`]
//! in one batch (one lock, two checkpoint writes for the whole call), keeping every claim's
//! failure to that claim.

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
use super::state::{DeviceState, MpsReport, RecoveryReport};
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

    /// The sequencer underneath (gauges).
    pub fn state(&self) -> &DeviceState {
        &self.state
    }

    /// Recovery against the GPUs discovery sees now, counted in the metrics.
    pub async fn recover(&self) -> Result<RecoveryReport, PrepareError> {
        let inventory = self.inventory.borrow().clone();
        let report = self
            .state
            .recover(&inventory)
            .instrument(info_span!("recover"))
            .await?;
        self.metrics.observe_recovery(&report);
        Ok(report)
    }

    /// One MPS supervision pass (see [`DeviceState::supervise_mps`]), counted in the metrics.
    pub async fn supervise_mps(&self) -> Result<MpsReport, PrepareError> {
        let report = self
            .state
            .supervise_mps()
            .instrument(info_span!("supervise_mps"))
            .await?;
        self.metrics.observe_mps(&report);
        Ok(report)
    }

    /// Prepare every claim; one entry per distinct UID.
    pub async fn prepare(&self, claims: &[ClaimRef]) -> PrepareResults {
        let started = Instant::now();
        let claims: Vec<ClaimRef> = distinct(claims).into_iter().cloned().collect();
        let fetched: Vec<_> = futures::stream::iter(claims)
            .map(|claim: ClaimRef| async move {
                let devices = self.fetch(&claim).await;
                (claim, devices)
            })
            .buffered(FETCH_CONCURRENCY)
            .collect()
            .await;
        let mut outcomes = Vec::with_capacity(fetched.len());
        let mut readable = Vec::with_capacity(fetched.len());
        for (claim, devices) in fetched {
            match devices {
                Ok(devices) => readable.push((claim, devices)),
                Err(error) => outcomes.push((claim, Err(error))),
            }
        }
        if !readable.is_empty() {
            // A copy, so discovery can publish a new inventory meanwhile.
            let inventory = self.inventory.borrow().clone();
            let prepared = self
                .state
                .prepare_all(&readable, &inventory)
                .instrument(info_span!("prepare", claims = readable.len()))
                .await;
            outcomes.extend(readable.into_iter().map(|(claim, _)| claim).zip(prepared));
        }
        // The claims of one call finish together: each one's latency is the call's.
        let took = started.elapsed();
        let mut out = BTreeMap::new();
        for (claim, outcome) in outcomes {
            self.metrics
                .observe(Operation::Prepare, took, outcome.as_ref().err());
            match &outcome {
                Ok(devices) => info!(claim = %claim, devices = devices.len(), "prepared"),
                Err(error) => {
                    warn!(claim = %claim, %error, kind = error.metric_label(), "prepare failed");
                }
            }
            out.insert(claim.uid, outcome);
        }
        self.metrics.set_prepared(self.state.prepared_claims());
        out
    }

    /// Unprepare every claim; one entry per distinct UID. Nothing is fetched: the checkpoint
    /// holds all that is needed, and the claim may already be deleted.
    pub async fn unprepare(&self, claims: &[ClaimRef]) -> UnprepareResults {
        let started = Instant::now();
        let mut outcomes = Vec::new();
        let mut valid = Vec::new();
        for claim in distinct(claims) {
            match claim.validate() {
                Ok(()) => valid.push(claim.clone()),
                Err(error) => outcomes.push((claim.clone(), Err(error))),
            }
        }
        if !valid.is_empty() {
            let unprepared = self
                .state
                .unprepare_all(&valid)
                .instrument(info_span!("unprepare", claims = valid.len()))
                .await;
            outcomes.extend(valid.into_iter().zip(unprepared));
        }
        let took = started.elapsed();
        let mut out = BTreeMap::new();
        for (claim, outcome) in outcomes {
            self.metrics
                .observe(Operation::Unprepare, took, outcome.as_ref().err());
            match &outcome {
                Ok(()) => info!(claim = %claim, "unprepared"),
                Err(error) => {
                    warn!(claim = %claim, %error, kind = error.metric_label(), "unprepare failed");
                }
            }
            out.insert(claim.uid, outcome);
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
