//! Checks rendered ResourceSlices against every limit `resource.k8s.io/v1` documents, so an
//! invalid slice is caught here, with a message naming the slice and field, rather than
//! refused by the API server (or worse, accepted and never allocatable).
//!
//! Per slice: names and syntaxes, exactly one node selection, counters and devices not in one
//! slice, ≤ 128 devices (≤ 64 with counters, taints or list attributes), ≤ 8 counter sets of
//! ≤ 32 counters. Per device: ≤ 32 attributes + capacities, ≤ 48 attribute values, value
//! lengths and semver, request policies only on multi-allocatable devices and consistent
//! with the capacity, ≤ 2 counter consumptions of ≤ 32 counters, ≤ 16 taints, ≤ 4 binding
//! conditions. Across the pool: one driver, node, generation and slice count; unique slice,
//! device and counter-set names; every consumption names an existing set and counter and
//! draws no more than the counter holds.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use k8s_openapi::api::resource::v1::{Device, DeviceAttribute, ResourceSlice, ResourceSliceSpec};
use thiserror::Error;

mod policy;
mod pool;
mod quantity;
mod syntax;

pub use syntax::{is_c_identifier, is_dns_label, is_dns_subdomain, is_semver};

/// Documented limits, named as in `resource.k8s.io/v1`'s types.
pub mod limits {
    /// `ResourceSliceMaxDevices`.
    pub const MAX_DEVICES: usize = 128;
    /// `ResourceSliceMaxDevicesWithAdvancedFeatures` (taints, counters, list attributes).
    pub const MAX_DEVICES_WITH_ADVANCED_FEATURES: usize = 64;
    /// `ResourceSliceMaxAttributesAndCapacitiesPerDevice`.
    pub const MAX_ATTRIBUTES_AND_CAPACITIES: usize = 32;
    /// `ResourceSliceMaxAttributeValuesPerDevice` (1.36+).
    pub const MAX_ATTRIBUTE_VALUES: usize = 48;
    /// `DeviceAttributeMaxValueLength`.
    pub const MAX_ATTRIBUTE_VALUE_LEN: usize = 64;
    /// `ResourceSliceMaxCounterSets`.
    pub const MAX_COUNTER_SETS: usize = 8;
    /// `ResourceSliceMaxCountersPerCounterSet`.
    pub const MAX_COUNTERS_PER_SET: usize = 32;
    /// `ResourceSliceMaxDeviceCounterConsumptionsPerDevice`.
    pub const MAX_CONSUMPTIONS_PER_DEVICE: usize = 2;
    /// `ResourceSliceMaxCountersPerDeviceCounterConsumption`.
    pub const MAX_COUNTERS_PER_CONSUMPTION: usize = 32;
    /// `DeviceTaintsMaxLength`.
    pub const MAX_TAINTS: usize = 16;
    /// `BindingConditionsMaxSize` and `BindingFailureConditionsMaxSize`.
    pub const MAX_BINDING_CONDITIONS: usize = 4;
    /// `CapacityRequestPolicyDiscreteMaxOptions`.
    pub const MAX_VALID_VALUES: usize = 10;
    /// `DriverNameMaxLength`.
    pub const MAX_DRIVER_NAME_LEN: usize = 63;
    /// `PoolNameMaxLength`, and the limit on object names.
    pub const MAX_POOL_NAME_LEN: usize = 253;
}

use limits::*;

/// Violations listed in full; the rest are counted.
const MAX_LISTED: usize = 50;

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The slice's name (or `#<index>` when it has none).
    pub slice: String,
    /// The field, in the API's path syntax: `spec.devices[3].attributes[model]`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "slice {}: {}: {}", self.slice, self.path, self.message)
    }
}

/// Every broken rule of a set of slices.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub struct ValidationError {
    /// The first 50 violations.
    pub violations: Vec<Violation>,
    /// How many more there were.
    pub omitted: usize,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.violations.len() + self.omitted;
        write!(f, "{total} ResourceSlice limit violation(s)")?;
        for v in &self.violations {
            write!(f, "\n  {v}")?;
        }
        if self.omitted > 0 {
            write!(f, "\n  … and {} more", self.omitted)?;
        }
        Ok(())
    }
}

/// Checks `slices`, all of one pool, against every documented limit.
pub fn validate(slices: &[ResourceSlice]) -> Result<(), ValidationError> {
    let mut out = Out::default();
    for (i, slice) in slices.iter().enumerate() {
        let name = slice
            .metadata
            .name
            .clone()
            .unwrap_or_else(|| format!("#{i}"));
        let mut at = At {
            out: &mut out,
            slice: &name,
        };
        check_slice(&mut at, slice);
    }
    pool::check(&mut out, slices);
    if out.violations.is_empty() {
        Ok(())
    } else {
        Err(ValidationError {
            violations: out.violations,
            omitted: out.omitted,
        })
    }
}

#[derive(Default)]
struct Out {
    violations: Vec<Violation>,
    omitted: usize,
}

/// Violations of one slice.
struct At<'a> {
    out: &'a mut Out,
    slice: &'a str,
}

impl At<'_> {
    fn fail(&mut self, path: impl Into<String>, message: impl Into<String>) {
        push(self.out, self.slice, path.into(), message.into());
    }
}

fn push(out: &mut Out, slice: &str, path: String, message: String) {
    if out.violations.len() < MAX_LISTED {
        out.violations.push(Violation {
            slice: slice.to_owned(),
            path,
            message,
        });
    } else {
        out.omitted += 1;
    }
}

fn check_slice(at: &mut At<'_>, slice: &ResourceSlice) {
    match slice.metadata.name.as_deref() {
        None => at.fail("metadata.name", "is required"),
        Some(n) if !is_dns_subdomain(n, MAX_POOL_NAME_LEN) => at.fail(
            "metadata.name",
            format!("must be a DNS subdomain of at most {MAX_POOL_NAME_LEN} characters"),
        ),
        Some(_) => {}
    }
    let spec = &slice.spec;
    if !is_dns_subdomain(&spec.driver, MAX_DRIVER_NAME_LEN) {
        at.fail(
            "spec.driver",
            format!(
                "{:?} must be a DNS subdomain of at most {MAX_DRIVER_NAME_LEN} characters",
                truncate(&spec.driver)
            ),
        );
    }
    check_pool_fields(at, spec);
    check_node_selection(at, spec);
    if spec.shared_counters.is_some() && spec.devices.is_some() {
        at.fail(
            "spec",
            "only one of sharedCounters or devices is allowed (the 1.35+ split shape)",
        );
    }
    check_devices(at, spec);
    check_counter_sets(at, spec);
}

fn check_pool_fields(at: &mut At<'_>, spec: &ResourceSliceSpec) {
    let pool = &spec.pool;
    if pool.name.is_empty() || pool.name.len() > MAX_POOL_NAME_LEN {
        at.fail(
            "spec.pool.name",
            format!("must be 1 to {MAX_POOL_NAME_LEN} characters"),
        );
    } else if !pool
        .name
        .split('/')
        .all(|p| is_dns_subdomain(p, MAX_POOL_NAME_LEN))
    {
        at.fail("spec.pool.name", "must be DNS subdomains separated by '/'");
    }
    if pool.generation < 0 {
        at.fail("spec.pool.generation", "must be zero or more");
    }
    if pool.resource_slice_count <= 0 {
        at.fail("spec.pool.resourceSliceCount", "must be greater than zero");
    }
}

fn check_node_selection(at: &mut At<'_>, spec: &ResourceSliceSpec) {
    let mut set = 0;
    if let Some(node) = &spec.node_name {
        set += 1;
        if !is_dns_subdomain(node, MAX_POOL_NAME_LEN) {
            at.fail("spec.nodeName", "must be a valid node name");
        }
    }
    if spec.node_selector.is_some() {
        set += 1;
    }
    match spec.all_nodes {
        Some(true) => set += 1,
        Some(false) => at.fail("spec.allNodes", "must be unset or true"),
        None => {}
    }
    match spec.per_device_node_selection {
        Some(true) => set += 1,
        Some(false) => at.fail("spec.perDeviceNodeSelection", "must be unset or true"),
        None => {}
    }
    if set != 1 {
        at.fail(
            "spec",
            format!(
                "exactly one of nodeName, nodeSelector, allNodes, perDeviceNodeSelection is required, {set} are set"
            ),
        );
    }
}

fn check_devices(at: &mut At<'_>, spec: &ResourceSliceSpec) {
    let Some(devices) = &spec.devices else {
        return;
    };
    let advanced = devices.iter().any(|d| {
        d.taints.as_ref().is_some_and(|t| !t.is_empty())
            || d.consumes_counters.as_ref().is_some_and(|c| !c.is_empty())
            || d.attributes
                .iter()
                .flat_map(|a| a.values())
                .any(is_list_attribute)
    });
    let max = if advanced {
        MAX_DEVICES_WITH_ADVANCED_FEATURES
    } else {
        MAX_DEVICES
    };
    if devices.len() > max {
        let why = if advanced {
            " (devices use counters, taints or list attributes)"
        } else {
            ""
        };
        at.fail(
            "spec.devices",
            format!("has {} devices, at most {max} allowed{why}", devices.len()),
        );
    }
    let mut names = BTreeSet::new();
    for (i, device) in devices.iter().enumerate() {
        let path = format!("spec.devices[{i}]");
        if !names.insert(device.name.as_str()) {
            at.fail(
                format!("{path}.name"),
                format!("duplicate device {:?}", device.name),
            );
        }
        check_device(
            at,
            &path,
            device,
            spec.per_device_node_selection == Some(true),
        );
    }
}

fn check_device(at: &mut At<'_>, path: &str, device: &Device, per_device_nodes: bool) {
    if !is_dns_label(&device.name) {
        at.fail(
            format!("{path}.name"),
            format!(
                "{:?} must be a DNS label (at most 63 characters of a-z, 0-9, '-')",
                truncate(&device.name)
            ),
        );
    }
    let attributes = device.attributes.as_ref();
    let capacities = device.capacity.as_ref();
    let n = attributes.map_or(0, BTreeMap::len) + capacities.map_or(0, BTreeMap::len);
    if n > MAX_ATTRIBUTES_AND_CAPACITIES {
        at.fail(
            path,
            format!(
                "has {n} attributes and capacities, at most {MAX_ATTRIBUTES_AND_CAPACITIES} allowed"
            ),
        );
    }
    let values: usize = attributes
        .iter()
        .flat_map(|a| a.values())
        .map(attribute_values)
        .sum();
    if values > MAX_ATTRIBUTE_VALUES {
        at.fail(
            path,
            format!("has {values} attribute values, at most {MAX_ATTRIBUTE_VALUES} allowed"),
        );
    }
    for (key, attribute) in attributes.into_iter().flatten() {
        let p = format!("{path}.attributes[{key}]");
        if let Some(problem) = syntax::qualified_name_problem(key) {
            at.fail(&p, problem);
        }
        check_attribute(at, &p, attribute);
    }
    let multi = device.allow_multiple_allocations == Some(true);
    for (key, capacity) in capacities.into_iter().flatten() {
        let p = format!("{path}.capacity[{key}]");
        if let Some(problem) = syntax::qualified_name_problem(key) {
            at.fail(&p, problem);
        }
        let value = quantity::nanos(&capacity.value.0);
        if value.is_none() {
            at.fail(
                format!("{p}.value"),
                format!("{:?} is not a quantity", truncate(&capacity.value.0)),
            );
        }
        if let Some(policy) = &capacity.request_policy {
            if !multi {
                at.fail(
                    format!("{p}.requestPolicy"),
                    "allowMultipleAllocations must be true",
                );
            }
            if let Some(value) = value {
                policy::check(at, &format!("{p}.requestPolicy"), value, policy);
            }
        }
    }
    check_consumptions(at, path, device);
    let taints = device.taints.as_ref().map_or(0, Vec::len);
    if taints > MAX_TAINTS {
        at.fail(
            format!("{path}.taints"),
            format!("has {taints}, at most {MAX_TAINTS} allowed"),
        );
    }
    for (field, list) in [
        ("bindingConditions", &device.binding_conditions),
        (
            "bindingFailureConditions",
            &device.binding_failure_conditions,
        ),
    ] {
        let n = list.as_ref().map_or(0, Vec::len);
        if n > MAX_BINDING_CONDITIONS {
            at.fail(
                format!("{path}.{field}"),
                format!("has {n}, at most {MAX_BINDING_CONDITIONS} allowed"),
            );
        }
    }
    let own_nodes =
        device.node_name.is_some() || device.node_selector.is_some() || device.all_nodes.is_some();
    if own_nodes && !per_device_nodes {
        at.fail(
            path,
            "nodeName, nodeSelector and allNodes need perDeviceNodeSelection on the slice",
        );
    }
}

fn check_attribute(at: &mut At<'_>, path: &str, a: &DeviceAttribute) {
    let set = [
        a.int.is_some(),
        a.bool.is_some(),
        a.string.is_some(),
        a.version.is_some(),
        a.ints.is_some(),
        a.bools.is_some(),
        a.strings.is_some(),
        a.versions.is_some(),
    ]
    .into_iter()
    .filter(|s| *s)
    .count();
    if set != 1 {
        at.fail(path, format!("exactly one value must be set, {set} are"));
    }
    let strings = a.string.iter().chain(a.strings.iter().flatten());
    for s in strings {
        if s.len() > MAX_ATTRIBUTE_VALUE_LEN {
            at.fail(
                path,
                format!(
                    "string of {} characters, at most {MAX_ATTRIBUTE_VALUE_LEN} allowed",
                    s.len()
                ),
            );
        }
    }
    let versions = a.version.iter().chain(a.versions.iter().flatten());
    for v in versions {
        if !is_semver(v) || v.len() > MAX_ATTRIBUTE_VALUE_LEN {
            at.fail(path, format!("version {:?} is not semver 2.0.0 of at most {MAX_ATTRIBUTE_VALUE_LEN} characters", truncate(v)));
        }
    }
    let empty_list = a.ints.as_ref().is_some_and(Vec::is_empty)
        || a.bools.as_ref().is_some_and(Vec::is_empty)
        || a.strings.as_ref().is_some_and(Vec::is_empty)
        || a.versions.as_ref().is_some_and(Vec::is_empty);
    if empty_list {
        at.fail(path, "a list value must not be empty");
    }
}

fn check_consumptions(at: &mut At<'_>, path: &str, device: &Device) {
    let Some(consumptions) = &device.consumes_counters else {
        return;
    };
    if consumptions.len() > MAX_CONSUMPTIONS_PER_DEVICE {
        at.fail(
            format!("{path}.consumesCounters"),
            format!(
                "has {}, at most {MAX_CONSUMPTIONS_PER_DEVICE} allowed",
                consumptions.len()
            ),
        );
    }
    let mut sets = BTreeSet::new();
    for (k, c) in consumptions.iter().enumerate() {
        let p = format!("{path}.consumesCounters[{k}]");
        if !is_dns_label(&c.counter_set) {
            at.fail(format!("{p}.counterSet"), "must be a DNS label");
        }
        if !sets.insert(c.counter_set.as_str()) {
            at.fail(
                format!("{p}.counterSet"),
                format!("duplicate counter set {:?}", c.counter_set),
            );
        }
        check_counters(at, &p, &c.counters, MAX_COUNTERS_PER_CONSUMPTION);
    }
}

/// A counter map (of a counter set or of a device's consumption): 1 to `max` counters, DNS
/// label names, quantity values.
fn check_counters(
    at: &mut At<'_>,
    p: &str,
    counters: &std::collections::BTreeMap<String, k8s_openapi::api::resource::v1::Counter>,
    max: usize,
) {
    if counters.is_empty() || counters.len() > max {
        at.fail(
            format!("{p}.counters"),
            format!("has {}, 1 to {max} allowed", counters.len()),
        );
    }
    for (name, counter) in counters {
        if !is_dns_label(name) {
            at.fail(
                format!("{p}.counters[{name}]"),
                "counter names must be DNS labels",
            );
        }
        if quantity::nanos(&counter.value.0).is_none() {
            at.fail(format!("{p}.counters[{name}]"), "value is not a quantity");
        }
    }
}

fn check_counter_sets(at: &mut At<'_>, spec: &ResourceSliceSpec) {
    let Some(sets) = &spec.shared_counters else {
        return;
    };
    if sets.len() > MAX_COUNTER_SETS {
        at.fail(
            "spec.sharedCounters",
            format!(
                "has {} counter sets, at most {MAX_COUNTER_SETS} allowed",
                sets.len()
            ),
        );
    }
    let mut names = BTreeSet::new();
    for (i, set) in sets.iter().enumerate() {
        let p = format!("spec.sharedCounters[{i}]");
        if !is_dns_label(&set.name) {
            at.fail(format!("{p}.name"), "must be a DNS label");
        }
        if !names.insert(set.name.as_str()) {
            at.fail(
                format!("{p}.name"),
                format!("duplicate counter set {:?}", set.name),
            );
        }
        check_counters(at, &p, &set.counters, MAX_COUNTERS_PER_SET);
    }
}

fn is_list_attribute(a: &DeviceAttribute) -> bool {
    a.ints.is_some() || a.bools.is_some() || a.strings.is_some() || a.versions.is_some()
}

fn attribute_values(a: &DeviceAttribute) -> usize {
    if is_list_attribute(a) {
        a.ints.as_ref().map_or(0, Vec::len)
            + a.bools.as_ref().map_or(0, Vec::len)
            + a.strings.as_ref().map_or(0, Vec::len)
            + a.versions.as_ref().map_or(0, Vec::len)
    } else {
        1
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests;
