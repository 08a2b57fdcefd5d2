//! A node view and cached claims in the allocator model's terms (`crate::allocator`), so the
//! extender can ask what kube-scheduler's allocator will give a pod on the node.
//!
//! Translation only, from what the cache keeps:
//!
//! - slices: the node's slices of our driver at their newest generation (the view's), devices
//!   in published order, with the attributes the cache reads (`type`, `index`, `model`,
//!   `profile`, `uuid`, `parentUUID`), every capacity with its request policy, counter
//!   consumption, `allowMultipleAllocations`, and a `NoSchedule` taint for a device the cache
//!   marks tainted (claims' tolerations are not cached, so such a device is never predicted);
//! - earlier allocations: every allocated result on the node's devices, with its share flag
//!   and consumed capacity;
//! - claims: requests, `firstAvailable` alternatives, class, CEL selectors, mode and capacity
//!   requests. A claim the cache could not read in full has no model form.
//!
//! Attributes the cache drops (`architecture`, `cudaComputeCapability`, `driverVersion`,
//! `migCapable`, `pciBusID`) are missing here, so a selector naming them cannot be evaluated:
//! the allocator model then reports an error and the extender falls back to its own fit.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use super::NodeView;
use crate::allocator::{
    AllocatedDevice as ModelAllocated, AllocationMode as ModelMode, AttributeValue, Capacity,
    Claim, CounterConsumption, CounterSet, Device as ModelDevice, DeviceChoice, Quantity, Request,
    RequestPolicy, Slice as ModelSlice, Taint, TaintEffect, ValidRange,
};
use crate::allocator::{AllocatedState, Features, NodeDevices};
use crate::cluster::claim::{AllocationMode, ClaimView};
use crate::cluster::slice::{Amount, Device, DeviceKind};

/// `name` qualified with `driver` unless it already has a domain.
fn qualified(driver: &str, name: &str) -> String {
    if name.contains('/') {
        name.to_owned()
    } else {
        format!("{driver}/{name}")
    }
}

fn quantities(driver: &str, amounts: &[Amount]) -> BTreeMap<String, Quantity> {
    amounts
        .iter()
        .map(|a| (qualified(driver, &a.name), Quantity::from_units(a.value)))
        .collect()
}

/// The view's slices as the allocator model reads them.
pub fn model_slices(view: &NodeView, driver: &str) -> Vec<ModelSlice> {
    view.slices
        .iter()
        .map(|s| ModelSlice {
            name: s.name.to_string(),
            driver: driver.to_owned(),
            pool: s.pool.to_string(),
            generation: s.generation,
            resource_slice_count: s.resource_slice_count,
            devices: s.devices.iter().map(|d| model_device(d, driver)).collect(),
            shared_counters: s
                .counter_sets
                .iter()
                .map(|set| CounterSet {
                    name: set.name.to_string(),
                    counters: set
                        .counters
                        .iter()
                        .map(|a| (a.name.to_string(), Quantity::from_units(a.value)))
                        .collect(),
                })
                .collect(),
        })
        .collect()
}

fn model_device(d: &Device, driver: &str) -> ModelDevice {
    let mut attributes = BTreeMap::new();
    let mut attribute = |name: &str, value: AttributeValue| {
        attributes.insert(qualified(driver, name), value);
    };
    if d.kind != DeviceKind::Other {
        attribute("type", AttributeValue::String(d.kind.as_str().to_owned()));
    }
    if let Some(gpu) = d.gpu {
        attribute("index", AttributeValue::Int(i64::from(gpu)));
    }
    if let Some(model) = &d.model {
        attribute("model", AttributeValue::String(model.to_string()));
    }
    if let Some(mig) = &d.mig {
        attribute("profile", AttributeValue::String(mig.profile.to_string()));
    }
    if let Some(uuid) = &d.uuid {
        attribute("uuid", AttributeValue::String(uuid.to_string()));
    }
    if let Some(parent) = &d.parent_uuid {
        attribute("parentUUID", AttributeValue::String(parent.to_string()));
    }
    let capacity = d
        .capacity
        .iter()
        .map(|a| {
            let policy = d.policy(&a.name).map(|p| RequestPolicy {
                default: p.default.map(Quantity::from_units),
                valid_values: p
                    .valid_values
                    .iter()
                    .map(|v| Quantity::from_units(*v))
                    .collect(),
                valid_range: p.min.map(|min| ValidRange {
                    min: Quantity::from_units(min),
                    max: p.max.map(Quantity::from_units),
                    step: p.step.map(Quantity::from_units),
                }),
            });
            (
                qualified(driver, &a.name),
                Capacity {
                    value: Quantity::from_units(a.value),
                    policy,
                },
            )
        })
        .collect();
    ModelDevice {
        name: d.name.to_string(),
        attributes,
        capacity,
        consumes_counters: d
            .consumes
            .iter()
            .map(|c| CounterConsumption {
                counter_set: c.counter_set.to_string(),
                counters: c
                    .counters
                    .iter()
                    .map(|a| (a.name.to_string(), Quantity::from_units(a.value)))
                    .collect(),
            })
            .collect(),
        taints: if d.tainted {
            vec![Taint {
                key: "tessera.dev/cached-taint".to_owned(),
                value: String::new(),
                effect: TaintEffect::NoSchedule,
            }]
        } else {
            Vec::new()
        },
        allow_multiple_allocations: d.multiple_allocations,
        has_binding_conditions: false,
    }
}

/// Every allocated result on the view's devices.
pub fn model_allocations(view: &NodeView, driver: &str) -> Vec<ModelAllocated> {
    view.allocations
        .iter()
        .filter_map(|a| {
            let result = a.result()?;
            Some(ModelAllocated {
                driver: driver.to_owned(),
                pool: result.pool.to_string(),
                device: result.device.to_string(),
                shared: result.share_id.is_some(),
                consumed_capacity: quantities(driver, &result.consumed),
                admin_access: result.admin_access,
            })
        })
        .collect()
}

/// A cached claim as the allocator model reads it; `None` when the cache could not read it
/// in full or it is already allocated.
pub fn model_claim(claim: &ClaimView, driver: &str) -> Option<Claim> {
    if claim.is_allocated() {
        return None;
    }
    let mut requests = Vec::with_capacity(claim.spec.requests.len());
    for request in claim.spec.requests.iter() {
        let mut choices = Vec::with_capacity(request.alternatives.len());
        for alt in request.alternatives.iter() {
            if alt.unreadable || alt.admin_access {
                return None;
            }
            choices.push(DeviceChoice {
                name: alt.name.as_deref().unwrap_or(&request.name).to_owned(),
                device_class_name: alt.device_class.to_string(),
                selectors: alt.selectors.iter().map(|s| s.to_string()).collect(),
                mode: match alt.mode {
                    AllocationMode::ExactCount(n) => ModelMode::ExactCount(n),
                    AllocationMode::All => ModelMode::All,
                },
                tolerations: Vec::new(),
                capacity_requests: quantities(driver, &alt.capacity),
                admin_access: false,
            });
        }
        requests.push(if request.first_available {
            Request::FirstAvailable {
                name: request.name.to_string(),
                subrequests: choices,
            }
        } else {
            Request::Exactly(choices.into_iter().next()?)
        });
    }
    Some(Claim {
        name: claim.key.as_str().to_owned(),
        requests,
    })
}

/// A node view in the allocator model's terms, built once per view and feature set.
#[derive(Debug)]
pub struct ModelNode {
    /// The features it was built for.
    pub features: Features,
    /// The node's devices.
    pub devices: NodeDevices,
    /// What earlier claims hold.
    pub state: AllocatedState,
}

impl ModelNode {
    /// The model of `view`'s slices and allocations for `driver` under `features`.
    pub fn build(view: &NodeView, driver: &str, features: Features) -> Result<ModelNode, String> {
        let devices =
            NodeDevices::new(model_slices(view, driver), features).map_err(|e| e.to_string())?;
        let state = AllocatedState::new(&devices, &model_allocations(view, driver))
            .map_err(|e| e.to_string())?;
        Ok(ModelNode {
            features,
            devices,
            state,
        })
    }
}

/// A view's [`ModelNode`], built on first use: a view is immutable, so the model stays right
/// for as long as the view is current (the extender then asks it for every pod shape).
#[derive(Default)]
pub struct ModelCell(OnceLock<Result<Arc<ModelNode>, String>>);

impl ModelCell {
    /// The model of `view` for `driver` and `features` (built now if needed; a request for
    /// other features than the cached ones builds afresh without caching).
    pub fn get(
        &self,
        view: &NodeView,
        driver: &str,
        features: Features,
    ) -> Result<Arc<ModelNode>, String> {
        let cached = self
            .0
            .get_or_init(|| ModelNode::build(view, driver, features).map(Arc::new));
        match cached {
            Ok(node) if node.features == features => Ok(Arc::clone(node)),
            Ok(_) => ModelNode::build(view, driver, features).map(Arc::new),
            Err(e) => Err(e.clone()),
        }
    }
}

// A copy of a view starts without the model (it is rebuilt on use); views compare by content,
// which the model only mirrors.
impl Clone for ModelCell {
    fn clone(&self) -> Self {
        ModelCell::default()
    }
}

impl PartialEq for ModelCell {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for ModelCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0.get() {
            Some(Ok(_)) => "ModelCell(built)",
            Some(Err(_)) => "ModelCell(error)",
            None => "ModelCell(empty)",
        })
    }
}
