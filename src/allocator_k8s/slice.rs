//! ResourceSlice → [`Slice`].

use std::collections::BTreeMap;

use k8s_openapi::api::resource::v1 as api;

use super::{Notes, TranslateError};
use crate::allocator::{
    AttributeValue, Capacity, CounterConsumption, CounterSet, Device, Features, Quantity,
    RequestPolicy, Slice, Taint, TaintEffect, ValidRange,
};

/// Which nodes a slice is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SliceTarget {
    /// `spec.nodeName`.
    Node(String),
    /// `spec.allNodes`.
    AllNodes,
}

/// Translates one ResourceSlice for `features`.
pub fn slice(
    object: &api::ResourceSlice,
    features: Features,
    notes: &mut Notes,
) -> Result<(SliceTarget, Slice), TranslateError> {
    let name = object.metadata.name.clone().unwrap_or_default();
    let err = |problem: String| TranslateError {
        object: format!("ResourceSlice {name}"),
        problem,
    };
    if name.is_empty() {
        return Err(err("has no metadata.name".into()));
    }
    let spec = &object.spec;
    let target = if let Some(node) = spec.node_name.as_ref().filter(|n| !n.is_empty()) {
        SliceTarget::Node(node.clone())
    } else if spec.all_nodes == Some(true) {
        SliceTarget::AllNodes
    } else {
        return Err(err(
            "selects nodes by nodeSelector or perDeviceNodeSelection, which the allocator model does not handle".into(),
        ));
    };
    let mut shared_counters = Vec::new();
    for set in spec.shared_counters.iter().flatten() {
        let mut counters = BTreeMap::new();
        for (counter, value) in &set.counters {
            counters.insert(counter.clone(), quantity(&value.value.0).map_err(&err)?);
        }
        shared_counters.push(CounterSet {
            name: set.name.clone(),
            counters,
        });
    }
    if !shared_counters.is_empty() && !features.partitionable_devices {
        notes.push("slice sharedCounters dropped (DRAPartitionableDevices off)".to_owned());
        shared_counters.clear();
    }
    let mut devices = Vec::new();
    for d in spec.devices.iter().flatten() {
        devices.push(device(d, features, &name, notes).map_err(&err)?);
    }
    Ok((
        target,
        Slice {
            name: name.clone(),
            driver: spec.driver.clone(),
            pool: spec.pool.name.clone(),
            generation: spec.pool.generation,
            resource_slice_count: spec.pool.resource_slice_count,
            devices,
            shared_counters,
        },
    ))
}

fn quantity(text: &str) -> Result<Quantity, String> {
    Quantity::parse(text).map_err(|e| e.to_string())
}

fn device(
    d: &api::Device,
    features: Features,
    slice: &str,
    notes: &mut Notes,
) -> Result<Device, String> {
    if d.node_name.is_some() || d.node_selector.is_some() || d.all_nodes.is_some() {
        return Err(format!(
            "device {} selects nodes itself (perDeviceNodeSelection), which the model does not handle",
            d.name
        ));
    }
    let mut out = Device::named(d.name.clone());
    for (name, value) in d.attributes.iter().flatten() {
        let v = if let Some(i) = value.int {
            AttributeValue::Int(i)
        } else if let Some(b) = value.bool {
            AttributeValue::Bool(b)
        } else if let Some(s) = &value.string {
            AttributeValue::String(s.clone())
        } else if let Some(v) = &value.version {
            AttributeValue::Version(v.clone())
        } else {
            // List attributes (1.36 alpha) are not read by the subset's selectors.
            continue;
        };
        out.attributes.insert(name.clone(), v);
    }
    for (name, cap) in d.capacity.iter().flatten() {
        let policy = match &cap.request_policy {
            Some(p) if features.consumable_capacity => Some(RequestPolicy {
                default: p.default.as_ref().map(|q| quantity(&q.0)).transpose()?,
                valid_values: p
                    .valid_values
                    .iter()
                    .flatten()
                    .map(|q| quantity(&q.0))
                    .collect::<Result<_, _>>()?,
                valid_range: p
                    .valid_range
                    .as_ref()
                    .map(|r| -> Result<ValidRange, String> {
                        Ok(ValidRange {
                            min: quantity(&r.min.0)?,
                            max: r.max.as_ref().map(|q| quantity(&q.0)).transpose()?,
                            step: r.step.as_ref().map(|q| quantity(&q.0)).transpose()?,
                        })
                    })
                    .transpose()?,
            }),
            _ => None,
        };
        out.capacity.insert(
            name.clone(),
            Capacity {
                value: quantity(&cap.value.0)?,
                policy,
            },
        );
    }
    if features.partitionable_devices {
        for c in d.consumes_counters.iter().flatten() {
            let mut counters = BTreeMap::new();
            for (name, value) in &c.counters {
                counters.insert(name.clone(), quantity(&value.value.0)?);
            }
            out.consumes_counters.push(CounterConsumption {
                counter_set: c.counter_set.clone(),
                counters,
            });
        }
    } else if d.consumes_counters.as_ref().is_some_and(|c| !c.is_empty()) {
        let _ = slice;
        notes.push("device consumesCounters dropped (DRAPartitionableDevices off)".to_owned());
    }
    if features.device_taints {
        for t in d.taints.iter().flatten() {
            out.taints.push(Taint {
                key: t.key.clone(),
                value: t.value.clone().unwrap_or_default(),
                effect: match t.effect.as_str() {
                    "NoSchedule" => TaintEffect::NoSchedule,
                    "NoExecute" => TaintEffect::NoExecute,
                    _ => TaintEffect::None,
                },
            });
        }
    }
    let multi = d.allow_multiple_allocations == Some(true);
    if multi && !features.consumable_capacity {
        notes.push(
            "device allowMultipleAllocations dropped (DRAConsumableCapacity off): shared devices are allocated whole"
                .to_owned(),
        );
    }
    out.allow_multiple_allocations = multi && features.consumable_capacity;
    out.has_binding_conditions = d.binding_conditions.as_ref().is_some_and(|b| !b.is_empty());
    Ok(out)
}
