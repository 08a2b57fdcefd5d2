//! The allocator's own input model: what the upstream allocator reads from ResourceSlices,
//! DeviceClasses and ResourceClaims, and nothing else. Built by a translator (from
//! `resource.k8s.io/v1` objects, the cluster cache, or the simulator) and checked by
//! [`NodeDevices::new`](super::NodeDevices::new) and [`Claim::validate`].
//!
//! Attribute and capacity names are kept as published (`memory` or `gpu.tessera.dev/memory`):
//! CEL reads a bare name as the driver's domain, while capacity requests are matched to
//! device capacities by the literal name, as upstream does.

use std::collections::BTreeMap;

use super::error::AllocatorError;
use super::quantity::Quantity;

/// Bounds from `resource.k8s.io/v1` validation (`k8s.io/api/resource/v1/types.go`).
pub mod limits {
    /// Devices per slice (`ResourceSliceMaxDevices`).
    pub const DEVICES_PER_SLICE: usize = 128;
    /// Requests per claim (`DeviceRequestsMaxSize`).
    pub const REQUESTS_PER_CLAIM: usize = 32;
    /// `firstAvailable` subrequests (`FirstAvailableDeviceRequestMaxSize`).
    pub const SUBREQUESTS: usize = 8;
    /// Selectors per request or class (`DeviceSelectorsMaxSize`).
    pub const SELECTORS: usize = 32;
    /// Tolerations per request (`DeviceTolerationsMaxLength`).
    pub const TOLERATIONS: usize = 16;
    /// Results per claim (`AllocationResultsMaxSize`).
    pub const RESULTS_PER_CLAIM: usize = 32;
    /// CEL expression length (`CELSelectorExpressionMaxLength`).
    pub const EXPRESSION_LEN: usize = 10 * 1024;
    /// Slices of one node the model accepts (no real node comes close).
    pub const SLICES_PER_NODE: usize = 256;
    /// Claims in one allocation call (one pod's claims).
    pub const CLAIMS: usize = 32;
}

/// One attribute value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeValue {
    /// `int`.
    Int(i64),
    /// `bool`.
    Bool(bool),
    /// `string`.
    String(String),
    /// `version` (semver).
    Version(String),
}

/// A consumable-capacity request policy (`CapacityRequestPolicy`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestPolicy {
    /// `default`: consumed when a request does not name this capacity.
    pub default: Option<Quantity>,
    /// `validValues`, ascending.
    pub valid_values: Vec<Quantity>,
    /// `validRange`.
    pub valid_range: Option<ValidRange>,
}

/// `CapacityRequestPolicyRange`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidRange {
    /// `min` (required).
    pub min: Quantity,
    /// `max`.
    pub max: Option<Quantity>,
    /// `step`.
    pub step: Option<Quantity>,
}

/// One capacity of a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capacity {
    /// `value`: the device's total.
    pub value: Quantity,
    /// `requestPolicy`.
    pub policy: Option<RequestPolicy>,
}

/// A device taint's effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaintEffect {
    /// `NoSchedule`: not allocated unless tolerated.
    NoSchedule,
    /// `NoExecute`: not allocated unless tolerated (and evicts, which the model ignores).
    NoExecute,
    /// `None` or an effect unknown to this release: does not prevent allocation.
    None,
}

/// A device taint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taint {
    /// `key`.
    pub key: String,
    /// `value`.
    pub value: String,
    /// `effect`.
    pub effect: TaintEffect,
}

/// A toleration operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TolerationOperator {
    /// `Equal` (the default): key and value must match.
    #[default]
    Equal,
    /// `Exists`: the key must match (an empty key matches every key).
    Exists,
}

/// A request's toleration of device taints.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Toleration {
    /// `key`; empty with `Exists` tolerates every taint.
    pub key: String,
    /// `operator`.
    pub operator: TolerationOperator,
    /// `value` (for `Equal`).
    pub value: String,
    /// `effect`; `None` tolerates every effect.
    pub effect: Option<TaintEffect>,
}

impl Toleration {
    /// Whether this toleration covers `taint`, as `resourceclaim.ToleratesTaint` decides
    /// (`staging/src/k8s.io/dynamic-resource-allocation/resourceclaim/devicetoleration.go`,
    /// kubernetes-1.36.0).
    pub fn tolerates(&self, taint: &Taint) -> bool {
        if let Some(effect) = self.effect
            && effect != taint.effect
        {
            return false;
        }
        match self.operator {
            TolerationOperator::Exists => self.key.is_empty() || self.key == taint.key,
            TolerationOperator::Equal => self.key == taint.key && self.value == taint.value,
        }
    }
}

/// Counters one device draws from one counter set of its pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterConsumption {
    /// The counter set's name.
    pub counter_set: String,
    /// Counter name → amount.
    pub counters: BTreeMap<String, Quantity>,
}

/// One device of a slice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Device name, unique in its pool.
    pub name: String,
    /// Attribute name (as published) → value.
    pub attributes: BTreeMap<String, AttributeValue>,
    /// Capacity name (as published) → capacity.
    pub capacity: BTreeMap<String, Capacity>,
    /// `consumesCounters`.
    pub consumes_counters: Vec<CounterConsumption>,
    /// `taints`.
    pub taints: Vec<Taint>,
    /// `allowMultipleAllocations`.
    pub allow_multiple_allocations: bool,
    /// Whether the device has binding conditions (such devices go last on 1.36+ and are
    /// skipped when the binding feature is off).
    pub has_binding_conditions: bool,
}

impl Device {
    /// A device with a name and nothing else.
    pub fn named(name: impl Into<String>) -> Device {
        Device {
            name: name.into(),
            attributes: BTreeMap::new(),
            capacity: BTreeMap::new(),
            consumes_counters: Vec::new(),
            taints: Vec::new(),
            allow_multiple_allocations: false,
            has_binding_conditions: false,
        }
    }
}

/// A counter set published in a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterSet {
    /// Name, unique in the pool.
    pub name: String,
    /// Counter name → total.
    pub counters: BTreeMap<String, Quantity>,
}

/// One ResourceSlice that targets the node (or every node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slice {
    /// `metadata.name`: the sort key on 1.36+ incubating.
    pub name: String,
    /// `spec.driver`.
    pub driver: String,
    /// `spec.pool.name`.
    pub pool: String,
    /// `spec.pool.generation`.
    pub generation: i64,
    /// `spec.pool.resourceSliceCount`.
    pub resource_slice_count: i64,
    /// `spec.devices`, in published order.
    pub devices: Vec<Device>,
    /// `spec.sharedCounters`.
    pub shared_counters: Vec<CounterSet>,
}

/// A DeviceClass: its name and CEL selectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceClass {
    /// `metadata.name`.
    pub name: String,
    /// `spec.selectors[].cel.expression`.
    pub selectors: Vec<String>,
}

/// How many devices one request wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllocationMode {
    /// `ExactCount` with `count`.
    ExactCount(u32),
    /// `All`: every matching device on the node.
    All,
}

/// One alternative of a request: the fields `ExactDeviceRequest` and `DeviceSubRequest`
/// share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceChoice {
    /// The request's name, or the subrequest's for a `firstAvailable` entry.
    pub name: String,
    /// `deviceClassName`.
    pub device_class_name: String,
    /// `selectors[].cel.expression`.
    pub selectors: Vec<String>,
    /// `allocationMode` and `count`.
    pub mode: AllocationMode,
    /// `tolerations`.
    pub tolerations: Vec<Toleration>,
    /// `capacity.requests`: capacity name (matched literally) → amount.
    pub capacity_requests: BTreeMap<String, Quantity>,
    /// `adminAccess` (only on `exactly`).
    pub admin_access: bool,
}

impl DeviceChoice {
    /// One device of `class`, nothing else asked.
    pub fn one(name: impl Into<String>, class: impl Into<String>) -> DeviceChoice {
        DeviceChoice {
            name: name.into(),
            device_class_name: class.into(),
            selectors: Vec::new(),
            mode: AllocationMode::ExactCount(1),
            tolerations: Vec::new(),
            capacity_requests: BTreeMap::new(),
            admin_access: false,
        }
    }
}

/// One request of a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `exactly`.
    Exactly(DeviceChoice),
    /// `firstAvailable`: the request's name and its subrequests in priority order.
    FirstAvailable {
        /// The request's name.
        name: String,
        /// The subrequests.
        subrequests: Vec<DeviceChoice>,
    },
}

impl Request {
    /// The request's own name.
    pub fn name(&self) -> &str {
        match self {
            Request::Exactly(choice) => &choice.name,
            Request::FirstAvailable { name, .. } => name,
        }
    }

    /// The alternatives in priority order (one for `exactly`).
    pub fn alternatives(&self) -> &[DeviceChoice] {
        match self {
            Request::Exactly(choice) => std::slice::from_ref(choice),
            Request::FirstAvailable { subrequests, .. } => subrequests,
        }
    }
}

/// A claim to allocate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// `namespace/name` (for messages and results).
    pub name: String,
    /// `spec.devices.requests`.
    pub requests: Vec<Request>,
}

impl Claim {
    /// Checks the bounds the API server enforces, so the search never sees unbounded input.
    pub fn validate(&self) -> Result<(), AllocatorError> {
        let bad = |what: String| {
            Err(AllocatorError::Invalid(format!(
                "claim {}: {what}",
                self.name
            )))
        };
        if self.requests.is_empty() {
            return bad("has no requests".into());
        }
        if self.requests.len() > limits::REQUESTS_PER_CLAIM {
            return bad(format!(
                "has more than {} requests",
                limits::REQUESTS_PER_CLAIM
            ));
        }
        for request in &self.requests {
            let alternatives = request.alternatives();
            if alternatives.is_empty() || alternatives.len() > limits::SUBREQUESTS {
                return bad(format!(
                    "request {} needs 1 to {} alternatives",
                    request.name(),
                    limits::SUBREQUESTS
                ));
            }
            for choice in alternatives {
                if choice.selectors.len() > limits::SELECTORS {
                    return bad(format!("request {} has too many selectors", choice.name));
                }
                if choice.tolerations.len() > limits::TOLERATIONS {
                    return bad(format!("request {} has too many tolerations", choice.name));
                }
                if choice
                    .selectors
                    .iter()
                    .any(|s| s.len() > limits::EXPRESSION_LEN)
                {
                    return bad(format!(
                        "request {} has a selector over 10 KiB",
                        choice.name
                    ));
                }
                match choice.mode {
                    AllocationMode::ExactCount(0) => {
                        return bad(format!("request {} asks for 0 devices", choice.name));
                    }
                    AllocationMode::ExactCount(n) if n as usize > limits::RESULTS_PER_CLAIM => {
                        return bad(format!(
                            "request {} asks for {n} devices, more than the {} a claim can hold",
                            choice.name,
                            limits::RESULTS_PER_CLAIM
                        ));
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

/// One device result of a claim that is already allocated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocatedDevice {
    /// `driver`.
    pub driver: String,
    /// `pool`.
    pub pool: String,
    /// `device`.
    pub device: String,
    /// Whether the result has a `shareID` (a share of a multiply-allocatable device).
    pub shared: bool,
    /// `consumedCapacity` (shares only).
    pub consumed_capacity: BTreeMap<String, Quantity>,
    /// `adminAccess` results do not make a device busy.
    pub admin_access: bool,
}
