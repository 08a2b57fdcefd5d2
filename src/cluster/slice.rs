//! What the cache keeps of a ResourceSlice of our driver: its pool, counter sets and devices,
//! in compact form.
//!
//! Only node-local slices (`spec.nodeName` set) are kept: the plugin publishes one pool per
//! node, counters-only slices included, so a slice without a node name is not one of ours to
//! place pods by.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::resource::v1::{
    CapacityRequestPolicy, Counter, Device as ApiDevice, DeviceAttribute, DeviceCapacity,
    ResourceSlice,
};
use tracing::debug;

use super::intern::Interners;
use super::key::truncate;
use super::quantity::parse_quantity;
use crate::model::DeviceName;
use crate::model::mig::{GpuProduct, Placement, profile};

/// Most devices read from one slice (the API allows 128).
pub const MAX_DEVICES_PER_SLICE: usize = 256;
/// Most counter sets read from one slice (the API allows 8).
pub const MAX_COUNTER_SETS_PER_SLICE: usize = 32;
/// Most entries read from one capacity, counter or consumption map (the API allows 32).
pub const MAX_AMOUNTS: usize = 64;
/// Most counter consumptions read per device (the API allows 2).
pub const MAX_CONSUMPTIONS_PER_DEVICE: usize = 8;
/// Longest attribute string kept (the API allows 64).
pub const MAX_ATTRIBUTE_LEN: usize = 64;
/// Longest object, pool or device name kept (the API allows 253 for pools).
pub const MAX_NAME_LEN: usize = 253;

/// A named amount: one capacity, counter or consumed capacity, in base units.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Amount {
    /// Capacity or counter name, without our driver's domain (`memory`, not
    /// `gpu.tessera.dev/memory`); names of other domains keep theirs.
    pub name: Arc<str>,
    /// The amount (bytes for memory, a count otherwise), rounded up to a whole unit.
    pub value: u64,
}

/// Looks up `name` in a list of amounts.
pub fn amount(list: &[Amount], name: &str) -> Option<u64> {
    list.iter().find(|a| &*a.name == name).map(|a| a.value)
}

/// One counter set: counters that devices of the same pool draw from (dynamic MIG, shares).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CounterSet {
    /// Set name, unique in the pool.
    pub name: Arc<str>,
    /// Counters and their totals.
    pub counters: Arc<[Amount]>,
}

/// What a device takes from one counter set of its pool while allocated.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CounterConsumption {
    /// The counter set's name.
    pub counter_set: Arc<str>,
    /// Counters consumed.
    pub counters: Arc<[Amount]>,
}

/// `requestPolicy` of one consumable capacity: how the scheduler turns a claim's request
/// (or its absence) into the amount a share consumes.
///
/// The rules are upstream's (`staging/src/k8s.io/dynamic-resource-allocation/structured/
/// internal/incubating/consumable_capacity.go`, `calculateConsumedQuantity` and
/// `violatesPolicy`, kubernetes-1.36.0): no request consumes `default`, or the whole value
/// when there is no default; a request is raised to `validRange.min` and then up to the next
/// `min + k × step`, or to the next `validValues` entry; an amount above `validRange.max` or
/// past the last valid value does not fit the device.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestPolicy {
    /// Capacity name, without our driver's domain (as in [`Amount::name`]).
    pub name: Arc<str>,
    /// `default`.
    pub default: Option<u64>,
    /// `validRange.min`.
    pub min: Option<u64>,
    /// `validRange.max`.
    pub max: Option<u64>,
    /// `validRange.step`.
    pub step: Option<u64>,
    /// `validValues`, ascending (empty when the policy uses a range or nothing).
    pub valid_values: Box<[u64]>,
}

impl RequestPolicy {
    /// What a share consumes of a capacity whose total is `total` when the claim asks for
    /// `requested` (`None`: does not name the capacity); `None` when the policy refuses it.
    pub fn consumed(
        policy: Option<&RequestPolicy>,
        requested: Option<u64>,
        total: u64,
    ) -> Option<u64> {
        let Some(policy) = policy else {
            return Some(requested.unwrap_or(total));
        };
        let Some(requested) = requested else {
            return Some(policy.default.unwrap_or(total));
        };
        if let Some(min) = policy.min {
            let mut amount = requested.max(min);
            if let Some(step) = policy.step.filter(|s| *s > 0) {
                let over = amount - min;
                amount = min.checked_add(over.div_ceil(step).checked_mul(step)?)?;
            }
            return policy.max.is_none_or(|max| amount <= max).then_some(amount);
        }
        if !policy.valid_values.is_empty() {
            return policy
                .valid_values
                .iter()
                .copied()
                .find(|v| *v >= requested);
        }
        Some(requested)
    }
}

/// What kind of device the `type` attribute says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeviceKind {
    /// A whole GPU (`type=gpu`).
    Gpu,
    /// A MIG partition (`type=mig`), static or dynamic.
    Mig,
    /// A GPU shared through consumable capacity (`type=shared`).
    Shared,
    /// One time-sliced replica of a GPU (`type=share`).
    Share,
    /// Anything else our driver publishes.
    Other,
}

impl DeviceKind {
    /// The `type` attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Gpu => "gpu",
            DeviceKind::Mig => "mig",
            DeviceKind::Shared => "shared",
            DeviceKind::Share => "share",
            DeviceKind::Other => "other",
        }
    }

    fn from_attribute(value: &str) -> Option<Self> {
        match value {
            "gpu" => Some(DeviceKind::Gpu),
            "mig" => Some(DeviceKind::Mig),
            "shared" => Some(DeviceKind::Shared),
            "share" => Some(DeviceKind::Share),
            _ => None,
        }
    }
}

/// The MIG facts of a MIG device.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MigInfo {
    /// Profile as NVML names it (`1g.10gb`), from the `profile` attribute.
    pub profile: Arc<str>,
    /// Memory slices occupied: start from the device name, size from the `memorySlices`
    /// capacity or else the MIG catalog; `None` when neither says.
    pub placement: Option<Placement>,
}

/// One device of our driver, as advertised: its own identity plus a [`DeviceSpec`] shared
/// with every identical device in the cluster.
///
/// Nodes of one type advertise the same devices (`gpu-0-mig-1g10gb-0` with the same
/// profile, capacities and counters on every H100 node) except for UUIDs. Holding that part
/// once is what keeps 300,000 devices small. `Device` derefs to its spec, so `device.kind`,
/// `device.name` and the other spec fields read as if they were its own.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Device {
    /// `uuid` attribute.
    pub uuid: Option<Arc<str>>,
    /// `parentUUID` attribute (MIG and shared devices).
    pub parent_uuid: Option<Arc<str>>,
    /// Everything else, shared.
    pub spec: Arc<DeviceSpec>,
}

impl std::ops::Deref for Device {
    type Target = DeviceSpec;

    fn deref(&self) -> &DeviceSpec {
        &self.spec
    }
}

/// What a device is, apart from its UUIDs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeviceSpec {
    /// Device name, unique in its pool (`gpu-0-mig-1g10gb-0`).
    pub name: Arc<str>,
    /// Whole GPU, MIG, shared, share or other.
    pub kind: DeviceKind,
    /// Index of the physical GPU: the `index` attribute, else the device name's.
    pub gpu: Option<u32>,
    /// Product name: the `model` attribute, else `productName`.
    pub model: Option<Arc<str>>,
    /// MIG profile and placement, for MIG devices.
    pub mig: Option<MigInfo>,
    /// Capacities (`memory` in bytes, `compute` in percent, `computeSlices`, …).
    pub capacity: Arc<[Amount]>,
    /// The `requestPolicy` of each consumable capacity that has one, sorted by name.
    pub policies: Arc<[RequestPolicy]>,
    /// Counters this device takes while allocated.
    pub consumes: Arc<[CounterConsumption]>,
    /// `allowMultipleAllocations`: several claims may hold it, each consuming capacity.
    pub multiple_allocations: bool,
    /// Whether a device taint with effect `NoSchedule` or `NoExecute` keeps new pods off it.
    pub tainted: bool,
}

impl DeviceSpec {
    /// The capacity named `name` (`memory`, `compute`, …).
    pub fn capacity(&self, name: &str) -> Option<u64> {
        amount(&self.capacity, name)
    }

    /// The `memory` capacity in bytes.
    pub fn memory_bytes(&self) -> Option<u64> {
        self.capacity("memory")
    }

    /// The request policy of capacity `name`.
    pub fn policy(&self, name: &str) -> Option<&RequestPolicy> {
        self.policies.iter().find(|p| &*p.name == name)
    }

    /// What one share of this device consumes of capacity `name` when a claim asks for
    /// `requested` ([`RequestPolicy::consumed`]); `None` when the device has no such capacity
    /// or its policy refuses the amount.
    pub fn consumed(&self, name: &str, requested: Option<u64>) -> Option<u64> {
        let total = self.capacity(name)?;
        RequestPolicy::consumed(self.policy(name), requested, total)
    }
}

/// A node-local ResourceSlice of our driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slice {
    /// Object name.
    pub name: Arc<str>,
    /// `spec.nodeName`.
    pub node: Arc<str>,
    /// `spec.pool.name`.
    pub pool: Arc<str>,
    /// `spec.pool.generation`: only a pool's newest generation counts.
    pub generation: i64,
    /// `spec.pool.resourceSliceCount`.
    pub resource_slice_count: i64,
    /// `spec.sharedCounters`.
    pub counter_sets: Box<[CounterSet]>,
    /// `spec.devices`, in published order (the allocator's preference order).
    pub devices: Box<[Device]>,
}

/// The compact form of `slice`, or `None` when it is not a node-local slice of `driver`.
pub(crate) fn read_slice(
    slice: &ResourceSlice,
    driver: &str,
    interners: &mut Interners,
) -> Option<Slice> {
    let spec = &slice.spec;
    if spec.driver != driver {
        return None;
    }
    let node = spec.node_name.as_deref().filter(|n| !n.is_empty())?;
    let name = slice.metadata.name.as_deref().unwrap_or_default();
    let counter_sets = spec
        .shared_counters
        .iter()
        .flatten()
        .take(MAX_COUNTER_SETS_PER_SLICE)
        .map(|set| CounterSet {
            name: interners.str(truncate(&set.name, MAX_NAME_LEN)),
            counters: read_counters(&set.counters, driver, interners),
        })
        .collect();
    let devices = spec
        .devices
        .iter()
        .flatten()
        .take(MAX_DEVICES_PER_SLICE)
        .map(|device| read_device(device, driver, interners))
        .collect();
    Some(Slice {
        name: interners.str(truncate(name, MAX_NAME_LEN)),
        node: interners.str(truncate(node, MAX_NAME_LEN)),
        pool: interners.str(truncate(&spec.pool.name, MAX_NAME_LEN)),
        generation: spec.pool.generation,
        resource_slice_count: spec.pool.resource_slice_count,
        counter_sets,
        devices,
    })
}

fn read_device(device: &ApiDevice, driver: &str, interners: &mut Interners) -> Device {
    let attributes = Attributes {
        map: device.attributes.as_ref(),
        driver,
    };
    let parsed_name: Option<DeviceName> = device.name.parse().ok();
    let kind = attributes
        .string("type")
        .and_then(DeviceKind::from_attribute)
        .or_else(|| {
            parsed_name.as_ref().map(|n| match n {
                DeviceName::Whole { .. } => DeviceKind::Gpu,
                DeviceName::Mig { .. } => DeviceKind::Mig,
                DeviceName::Shared { .. } => DeviceKind::Shared,
                DeviceName::Share { .. } => DeviceKind::Share,
            })
        })
        .unwrap_or(DeviceKind::Other);
    let gpu = attributes
        .int("index")
        .and_then(|i| u32::try_from(i).ok())
        .or_else(|| parsed_name.as_ref().map(DeviceName::gpu));
    let mut string = |id: &str| {
        attributes
            .string(id)
            .map(|s| interners.str(truncate(s, MAX_ATTRIBUTE_LEN)))
    };
    let uuid = string("uuid");
    let parent_uuid = string("parentUUID");
    let model = string("model").or_else(|| string("productName"));
    let profile = string("profile");
    let capacity = read_capacities(device.capacity.as_ref(), driver, interners);
    let policies = read_policies(device.capacity.as_ref(), driver, interners);
    let mig = match (kind, profile) {
        (DeviceKind::Mig, Some(profile)) => {
            let start = match &parsed_name {
                Some(DeviceName::Mig { start, .. }) => Some(*start),
                _ => None,
            };
            let size = amount(&capacity, "memorySlices")
                .and_then(|s| u8::try_from(s).ok())
                .or_else(|| catalog_slices(model.as_deref(), &profile));
            let placement = start
                .zip(size)
                .map(|(start, size)| Placement::new(start, size));
            Some(MigInfo { profile, placement })
        }
        _ => None,
    };
    let consumes = device
        .consumes_counters
        .iter()
        .flatten()
        .take(MAX_CONSUMPTIONS_PER_DEVICE)
        .map(|c| CounterConsumption {
            counter_set: interners.str(truncate(&c.counter_set, MAX_NAME_LEN)),
            counters: read_counters(&c.counters, driver, interners),
        })
        .collect();
    let tainted = device
        .taints
        .iter()
        .flatten()
        .any(|t| t.effect == "NoSchedule" || t.effect == "NoExecute");
    let spec = DeviceSpec {
        name: interners.str(truncate(&device.name, MAX_NAME_LEN)),
        kind,
        gpu,
        model,
        mig,
        capacity,
        policies,
        consumes: interners.consumptions(consumes),
        multiple_allocations: device.allow_multiple_allocations.unwrap_or(false),
        tainted,
    };
    Device {
        uuid,
        parent_uuid,
        spec: interners.device(spec),
    }
}

/// Memory slices of `profile` on the product named `model`, from the MIG catalog.
fn catalog_slices(model: Option<&str>, profile_name: &str) -> Option<u8> {
    let product = GpuProduct::from_product_name(model?)?;
    profile(product, profile_name).map(|p| p.memory_slices)
}

/// A map key without our driver's domain: `gpu.tessera.dev/memory` and `memory` are the same
/// capacity.
pub(crate) fn local_name<'a>(key: &'a str, driver: &str) -> &'a str {
    key.strip_prefix(driver)
        .and_then(|rest| rest.strip_prefix('/'))
        .unwrap_or(key)
}

/// Reads quantities into a sorted, interned amount list, skipping (and logging) bad values.
pub(crate) fn read_amounts<'a>(
    entries: impl Iterator<Item = (&'a String, &'a str)>,
    driver: &str,
    interners: &mut Interners,
) -> Arc<[Amount]> {
    let mut amounts: Vec<Amount> = Vec::new();
    for (key, text) in entries.take(MAX_AMOUNTS) {
        match parse_quantity(text) {
            Ok(value) => amounts.push(Amount {
                name: interners.str(truncate(local_name(key, driver), MAX_NAME_LEN)),
                value,
            }),
            Err(error) => debug!(%error, key = %truncate(key, MAX_NAME_LEN), "quantity skipped"),
        }
    }
    amounts.sort();
    amounts.dedup_by(|a, b| a.name == b.name);
    interners.amounts(amounts)
}

fn read_counters(
    map: &BTreeMap<String, Counter>,
    driver: &str,
    interners: &mut Interners,
) -> Arc<[Amount]> {
    read_amounts(
        map.iter().map(|(k, c)| (k, c.value.0.as_str())),
        driver,
        interners,
    )
}

fn read_capacities(
    map: Option<&BTreeMap<String, DeviceCapacity>>,
    driver: &str,
    interners: &mut Interners,
) -> Arc<[Amount]> {
    read_amounts(
        map.into_iter()
            .flatten()
            .map(|(k, c)| (k, c.value.0.as_str())),
        driver,
        interners,
    )
}

/// The request policies of a device's capacities; a policy with an unreadable quantity is
/// skipped (and logged) whole, so no half-read policy rounds differently from the scheduler.
fn read_policies(
    map: Option<&BTreeMap<String, DeviceCapacity>>,
    driver: &str,
    interners: &mut Interners,
) -> Arc<[RequestPolicy]> {
    let mut policies: Vec<RequestPolicy> = map
        .into_iter()
        .flatten()
        .take(MAX_AMOUNTS)
        .filter_map(|(key, c)| {
            let policy = c.request_policy.as_ref()?;
            let read = read_policy(policy);
            if read.is_none() {
                debug!(key = %truncate(key, MAX_NAME_LEN), "request policy skipped");
            }
            let (default, min, max, step, valid_values) = read?;
            Some(RequestPolicy {
                name: interners.str(truncate(local_name(key, driver), MAX_NAME_LEN)),
                default,
                min,
                max,
                step,
                valid_values,
            })
        })
        .collect();
    policies.sort_by(|a, b| a.name.cmp(&b.name));
    policies.dedup_by(|a, b| a.name == b.name);
    policies.into()
}

/// (default, min, max, step, validValues) of one policy; `None` if a quantity is unreadable.
#[allow(clippy::type_complexity)]
fn read_policy(
    policy: &CapacityRequestPolicy,
) -> Option<(
    Option<u64>,
    Option<u64>,
    Option<u64>,
    Option<u64>,
    Box<[u64]>,
)> {
    let read = |q: Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity>| {
        q.map(|q| parse_quantity(&q.0).ok())
            .map_or(Some(None), |v| v.map(Some))
    };
    let range = policy.valid_range.as_ref();
    let default = read(policy.default.as_ref())?;
    let min = read(range.map(|r| &r.min))?;
    let max = read(range.and_then(|r| r.max.as_ref()))?;
    let step = read(range.and_then(|r| r.step.as_ref()))?;
    // The API allows 10 valid values; more are not a policy we could have been given.
    let mut values = Vec::new();
    for q in policy.valid_values.iter().flatten().take(16) {
        values.push(parse_quantity(&q.0).ok()?);
    }
    values.sort_unstable();
    Some((default, min, max, step, values.into()))
}

/// A device's attributes, read by identifier with or without our driver's domain.
struct Attributes<'a> {
    map: Option<&'a BTreeMap<String, DeviceAttribute>>,
    driver: &'a str,
}

impl<'a> Attributes<'a> {
    fn get(&self, id: &str) -> Option<&'a DeviceAttribute> {
        let map = self.map?;
        map.get(id)
            .or_else(|| map.get(&format!("{}/{id}", self.driver)))
    }

    fn string(&self, id: &str) -> Option<&'a str> {
        self.get(id)?.string.as_deref()
    }

    fn int(&self, id: &str) -> Option<i64> {
        self.get(id)?.int
    }
}

#[cfg(test)]
mod tests;
