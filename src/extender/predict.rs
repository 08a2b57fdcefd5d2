//! What kube-scheduler's allocator will give a pod on a node: the allocator model
//! (`crate::allocator`) run on the node's cached slices and allocations, for the cluster's
//! release and feature gates.
//!
//! - **Exact** where the release sorts slices by name (1.36+ with the default gates): one
//!   outcome, the first full solution in name order.
//! - **Expected** where the slice order is arbitrary (1.34, 1.35, the 1.36+ "stable"
//!   allocator) and the node has several device slices: every slice order is equally likely,
//!   so each distinct outcome is weighted by the share of orders that give it (every order up
//!   to 6 device slices, a seeded sample of 720 beyond; exact from one search per slice when the
//!   pod asks for one device: `allocator::orders`). Scoring takes
//!   the expected price, risk and fragmentation over them (`docs/extender.md` says why the
//!   mean and not the worst case).
//!
//! The extender falls back to its own fit (`scoring::partition::fit`) when the model cannot
//! answer: a request the cache could not read, classic `nvidia.com/gpu` requests, a selector
//! the model does not understand. `/explain` says which.

use std::sync::Arc;

use serde::Serialize;

use crate::allocator::{
    self, Claim, Classes, DeviceClass, Features, Outcome, PreparedClaims, Release, SliceOrder,
};
use crate::cluster::view::allocator::ModelNode;
use crate::cluster::{DeviceRef, NodeView};

/// Seed of the sampled slice orders (more than 6 device slices): fixed, so that every replica
/// and every request predicts the same.
const ORDER_SEED: u64 = 14;

/// How sure a prediction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Certainty {
    /// The release sorts slices by name: this is what the scheduler will do.
    Exact,
    /// The slice order is arbitrary: each outcome is as likely as the orders that give it.
    Expected {
        /// Slice orders tried.
        orders: usize,
        /// Whether they were a sample rather than all of them.
        sampled: bool,
    },
}

/// One device the allocator gives.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictedDevice {
    /// `<namespace>/<claim>`.
    pub claim: String,
    /// `request` or `request/subrequest`.
    pub request: String,
    /// The device in the view.
    pub device: DeviceRef,
    /// What a share consumes (capacity name without domain, amount); empty for exclusive
    /// devices.
    pub consumed: Vec<(String, u64)>,
}

/// One possible outcome and its probability.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictedOutcome {
    /// The devices, claim by claim, request by request.
    pub devices: Vec<PredictedDevice>,
    /// Probability (1 for an exact prediction).
    pub probability: f64,
}

/// What the allocator will give a pod on a node.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The possible outcomes (the pod does not fit when there are none).
    pub outcomes: Vec<PredictedOutcome>,
    /// Exact or expected.
    pub certainty: Certainty,
}

/// The cluster's release and gates, tessera's device classes, and the driver.
#[derive(Debug, Clone)]
pub struct Predictor {
    release: Release,
    features: Features,
    classes: Arc<Classes>,
    driver: Arc<str>,
}

impl Predictor {
    /// A predictor for a cluster of `release` with its default feature gates, whose claims
    /// use the DeviceClasses tessera's chart installs for `driver` (`<driver>`, `mig.`,
    /// `shared.`, `share.`: each `device.driver == driver && type == …`).
    pub fn new(release: Release, driver: &str) -> Self {
        Predictor::with_features(release, Features::defaults(release), driver)
    }

    /// As [`Predictor::new`] with explicit feature gates.
    pub fn with_features(release: Release, features: Features, driver: &str) -> Self {
        Predictor {
            release,
            features,
            classes: Arc::new(Classes::new(&chart_classes(driver))),
            driver: Arc::from(driver),
        }
    }

    /// The release it predicts for.
    pub fn release(&self) -> Release {
        self.release
    }

    /// What the allocator gives `claims` (one pod's pending claims) on `view`; an error
    /// when the model cannot tell (the reason, for `/explain`).
    pub fn predict(&self, view: &NodeView, claims: &[Arc<Claim>]) -> Result<Prediction, String> {
        let features = self.features_for(view);
        let node = view.model.get(view, &self.driver, features)?;
        let prepared =
            PreparedClaims::new(claims, &self.classes, features).map_err(|e| e.to_string())?;
        match allocator::default_order(self.release, features) {
            Some(order) => {
                let outcome = allocator::allocate(&node.devices, &node.state, &prepared, &order)
                    .map_err(|e| e.to_string())?;
                Ok(Prediction {
                    outcomes: self
                        .outcome(view, &node, &outcome, 1.0)
                        .into_iter()
                        .collect(),
                    certainty: Certainty::Exact,
                })
            }
            None => {
                let d = allocator::orders::distribution(
                    &node.devices,
                    &node.state,
                    &prepared,
                    ORDER_SEED,
                )
                .map_err(|e| e.to_string())?;
                let total = d.orders.max(1) as f64;
                let outcomes = d
                    .outcomes
                    .iter()
                    .filter_map(|(o, n)| self.outcome(view, &node, o, *n as f64 / total))
                    .collect();
                let single = node.devices.device_slice_indices().len() <= 1;
                Ok(Prediction {
                    outcomes,
                    certainty: if single {
                        Certainty::Exact
                    } else {
                        Certainty::Expected {
                            orders: d.orders,
                            sampled: !matches!(d.coverage, allocator::orders::Coverage::Exhaustive),
                        }
                    },
                })
            }
        }
    }

    /// The release's gates, plus those the node's slices prove on: the API server drops
    /// `sharedCounters`/`consumesCounters` while `DRAPartitionableDevices` is off and
    /// `allowMultipleAllocations` while `DRAConsumableCapacity` is off, so slices that carry
    /// them come from a cluster that turned the gates on (1.34/1.35 with alpha gates).
    fn features_for(&self, view: &NodeView) -> Features {
        let mut features = self.features;
        let devices = || view.slices.iter().flat_map(|s| s.devices.iter());
        if view.slices.iter().any(|s| !s.counter_sets.is_empty())
            || devices().any(|d| !d.consumes.is_empty())
        {
            features.partitionable_devices = true;
        }
        if devices().any(|d| d.multiple_allocations) {
            features.consumable_capacity = true;
        }
        features
    }

    fn outcome(
        &self,
        view: &NodeView,
        node: &ModelNode,
        outcome: &Outcome,
        probability: f64,
    ) -> Option<PredictedOutcome> {
        let Outcome::Allocated(claims) = outcome else {
            return None;
        };
        let mut devices = Vec::new();
        for claim in claims {
            for r in &claim.devices {
                let (_, pool, name) = node.devices.device_id(r.device)?;
                let device = view.find_device(pool, name)?;
                let domain = format!("{}/", self.driver);
                let consumed = r
                    .consumed_capacity
                    .iter()
                    .map(|(k, q)| {
                        let local = k.strip_prefix(&domain).unwrap_or(k).to_owned();
                        let units = u64::try_from(q.units_ceil()).unwrap_or(u64::MAX);
                        (local, units)
                    })
                    .collect();
                devices.push(PredictedDevice {
                    claim: claim.claim.clone(),
                    request: r.request.clone(),
                    device,
                    consumed,
                });
            }
        }
        Some(PredictedOutcome {
            devices,
            probability,
        })
    }
}

/// The DeviceClasses `deploy/helm/tessera/templates/deviceclasses.yaml` installs.
pub fn chart_classes(driver: &str) -> Vec<DeviceClass> {
    [
        (driver.to_owned(), "gpu"),
        (format!("mig.{driver}"), "mig"),
        (format!("shared.{driver}"), "shared"),
        (format!("share.{driver}"), "share"),
    ]
    .into_iter()
    .map(|(name, kind)| DeviceClass {
        name,
        selectors: vec![format!(
            "device.driver == '{driver}' && device.attributes['{driver}'].type == '{kind}'"
        )],
    })
    .collect()
}

/// Whether the release's allocator visits slices by name (an exact prediction on any node).
pub fn sorts_slices(release: Release, features: Features) -> bool {
    allocator::default_order(release, features) == Some(SliceOrder::ByName)
}

#[cfg(test)]
mod tests;
