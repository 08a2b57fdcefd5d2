//! Rules that span all slices of one pool.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::resource::v1::ResourceSlice;

use super::{Out, push, quantity};

/// One driver, node, generation and slice count; unique slice, device and counter-set
/// names; every consumption names an existing set and counter and draws no more than it holds.
pub(super) fn check(out: &mut Out, slices: &[ResourceSlice]) {
    let Some(first) = slices.first() else {
        return;
    };
    let pool_slice = first
        .metadata
        .name
        .clone()
        .unwrap_or_else(|| "#0".to_owned());
    let count = i64::try_from(slices.len()).unwrap_or(i64::MAX);
    let mut slice_names = BTreeSet::new();
    let mut device_names = BTreeMap::new();
    // counter set name → counter name → value
    let mut counter_sets: BTreeMap<&str, BTreeMap<&str, Option<i128>>> = BTreeMap::new();
    for (i, slice) in slices.iter().enumerate() {
        let name = slice
            .metadata
            .name
            .clone()
            .unwrap_or_else(|| format!("#{i}"));
        let spec = &slice.spec;
        let mut fail = |path: &str, message: String| push(out, &name, path.to_owned(), message);
        if !slice_names.insert(name.clone()) {
            fail("metadata.name", "two slices share this name".to_owned());
        }
        if spec.driver != first.spec.driver {
            fail("spec.driver", format!("differs from slice {pool_slice}"));
        }
        if spec.pool.name != first.spec.pool.name {
            fail("spec.pool.name", format!("differs from slice {pool_slice}"));
        }
        if spec.node_name != first.spec.node_name {
            fail("spec.nodeName", format!("differs from slice {pool_slice}"));
        }
        if spec.pool.generation != first.spec.pool.generation {
            fail(
                "spec.pool.generation",
                format!("differs from slice {pool_slice}; consumers would ignore the older slices"),
            );
        }
        if spec.pool.resource_slice_count != count {
            fail(
                "spec.pool.resourceSliceCount",
                format!(
                    "is {}, but the pool has {count} slices",
                    spec.pool.resource_slice_count
                ),
            );
        }
        for (k, device) in spec.devices.iter().flatten().enumerate() {
            if let Some(other) = device_names.insert(device.name.as_str(), name.clone()) {
                fail(
                    &format!("spec.devices[{k}].name"),
                    format!(
                        "device {:?} is also in slice {other}; names must be unique in the pool",
                        device.name
                    ),
                );
            }
        }
        for (k, set) in spec.shared_counters.iter().flatten().enumerate() {
            let counters = set
                .counters
                .iter()
                .map(|(n, c)| (n.as_str(), quantity::nanos(&c.value.0)))
                .collect();
            if counter_sets.insert(set.name.as_str(), counters).is_some() {
                fail(
                    &format!("spec.sharedCounters[{k}].name"),
                    format!("counter set {:?} is defined twice in the pool", set.name),
                );
            }
        }
    }
    for (i, slice) in slices.iter().enumerate() {
        let name = slice
            .metadata
            .name
            .clone()
            .unwrap_or_else(|| format!("#{i}"));
        for (k, device) in slice.spec.devices.iter().flatten().enumerate() {
            for (c, consumption) in device.consumes_counters.iter().flatten().enumerate() {
                let path = format!("spec.devices[{k}].consumesCounters[{c}]");
                let Some(set) = counter_sets.get(consumption.counter_set.as_str()) else {
                    push(
                        out,
                        &name,
                        path,
                        format!(
                            "counter set {:?} is not defined in the pool",
                            consumption.counter_set
                        ),
                    );
                    continue;
                };
                for (counter, amount) in &consumption.counters {
                    let available = set.get(counter.as_str()).copied().flatten();
                    match (available, quantity::nanos(&amount.value.0)) {
                        (None, _) => push(
                            out,
                            &name,
                            format!("{path}.counters[{counter}]"),
                            format!(
                                "counter {counter:?} is not in set {:?}",
                                consumption.counter_set
                            ),
                        ),
                        (Some(have), Some(want)) if want > have => push(
                            out,
                            &name,
                            format!("{path}.counters[{counter}]"),
                            format!(
                                "draws {} but the set holds {}; the device could never be allocated",
                                amount.value.0,
                                counter_value(set, counter)
                            ),
                        ),
                        _ => {}
                    }
                }
            }
        }
    }
}

fn counter_value(set: &BTreeMap<&str, Option<i128>>, counter: &str) -> String {
    match set.get(counter).copied().flatten() {
        Some(nanos) => format!("{} units", nanos / 1_000_000_000),
        None => "nothing".to_owned(),
    }
}
