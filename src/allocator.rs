//! A pure model of kube-scheduler's DRA allocator: which device(s) a claim gets on a node.
//!
//! The scheduler's allocator (`staging/src/k8s.io/dynamic-resource-allocation/structured/`)
//! does no scoring: it searches depth-first and takes the **first full solution**, trying a
//! node's devices in published order inside a slice, and slices in name order only on 1.36+
//! with the default gates (arbitrary order on 1.34/1.35 and with the stable allocator). This
//! module reproduces those rules so that the extender, the simulator and `tessera allocate`
//! can predict what a pod will really get (`docs/allocator.md`).
//!
//! # API
//!
//! ```text
//! NodeDevices::new(slices, features)        once per node (and per slice change)
//! Classes::new(&device_classes)             once
//! PreparedClaims::new(&claims, &classes, features)   once per pod
//! AllocatedState::new(&node, &allocated_results)      once per node state
//! allocate(&node, &state, &prepared, &order) -> Outcome    per node × order: cheap
//! default_order(release, features) -> Option<SliceOrder>  ByName where deterministic
//! orders::distribution(..)                   outcomes over all (or sampled) slice orders
//! ```
//!
//! [`Outcome::Allocated`] carries, per claim, the devices (as indices into
//! [`NodeDevices`], with request name, share flag and consumed capacity); [`Outcome::Unsatisfiable`]
//! means no assignment exists on the node. Errors ([`AllocatorError`]) mean the scheduler
//! would refuse the claim outright, or the model cannot tell (a selector it does not
//! understand), never "no fit".
//!
//! Rules (each module cites the upstream function and release it follows): pool and slice
//! order ([`features`], [`node`]); first fit in published order and exhaustive DFS with
//! whole-pod backtracking through `firstAvailable` ([`search`]); CEL selectors ([`cel`]);
//! shared counters; consumable capacity with `requestPolicy` ([`capacity`]);
//! `allowMultipleAllocations` (a fresh share each time, counters drawn once with the first
//! share); `allocationMode` All/ExactCount; device taints and tolerations; claims allocated
//! earlier ([`state`]). Not modelled (refused with an error, never ignored): `adminAccess`,
//! claim constraints (`matchAttribute`, `distinctAttribute`).

pub mod capacity;
pub mod cel;
mod error;
pub mod features;
pub mod input;
pub mod node;
pub mod orders;
mod prepared;
pub mod quantity;
mod search;
pub mod state;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

pub use error::AllocatorError;
pub use features::{Features, Implementation, Release, SliceOrder};
pub use input::{
    AllocatedDevice, AllocationMode, AttributeValue, Capacity, Claim, CounterConsumption,
    CounterSet, Device, DeviceChoice, DeviceClass, Request, RequestPolicy, Slice, Taint,
    TaintEffect, Toleration, TolerationOperator, ValidRange,
};
pub use node::{NodeDevices, Pool, PoolStatus};
pub use prepared::{Classes, PreparedClaims};
pub use quantity::Quantity;
pub use search::STEP_BUDGET;
pub use state::AllocatedState;

/// One device given to one request of a claim.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceResult {
    /// `request` or `request/subrequest`.
    pub request: String,
    /// Index of the device in the [`NodeDevices`] it was allocated from.
    pub device: usize,
    /// Whether this is a share of a multiply-allocatable device (gets a `shareID`).
    pub share: bool,
    /// What the share consumes, per capacity (shares only).
    pub consumed_capacity: BTreeMap<String, Quantity>,
}

/// A claim's allocation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClaimResult {
    /// The claim's name.
    pub claim: String,
    /// Its devices, in request order.
    pub devices: Vec<DeviceResult>,
}

/// What the allocator does with a pod's claims on one node.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// The first full solution: one result per claim, in claim order.
    Allocated(Vec<ClaimResult>),
    /// No assignment of the node's free devices satisfies every claim.
    Unsatisfiable,
}

/// The order a release's allocator visits slices in when it is deterministic (name order),
/// `None` when it is arbitrary (1.34, 1.35, 1.36+ stable).
pub fn default_order(release: Release, features: Features) -> Option<SliceOrder> {
    features.sorts_slices(release).then_some(SliceOrder::ByName)
}

/// Allocates `claims` on `node` after `state`, visiting slices in `order`.
///
/// Gives up with [`AllocatorError::SearchBudget`] after [`STEP_BUDGET`] search steps (the
/// scheduler bounds the same search by time instead: `DynamicResourcesArgs.filterTimeout`,
/// `staging/src/k8s.io/kube-scheduler/config/v1/types.go`, 10 s per node by default).
pub fn allocate(
    node: &NodeDevices,
    state: &AllocatedState,
    claims: &PreparedClaims,
    order: &SliceOrder,
) -> Result<Outcome, AllocatorError> {
    allocate_bounded(node, state, claims, order, STEP_BUDGET)
}

/// [`allocate`] with a chosen step budget.
pub fn allocate_bounded(
    node: &NodeDevices,
    state: &AllocatedState,
    claims: &PreparedClaims,
    order: &SliceOrder,
    max_steps: u64,
) -> Result<Outcome, AllocatorError> {
    let visit = node.visit_order(order)?;
    let _span = tracing::trace_span!(
        "allocate",
        devices = visit.len(),
        claims = claims.claims.len()
    )
    .entered();
    match search::Search::new(node, state, claims, visit, max_steps).run()? {
        Some(results) => Ok(Outcome::Allocated(results)),
        None => Ok(Outcome::Unsatisfiable),
    }
}
