//! Claims and classes checked and compiled once, then allocated against many nodes and slice
//! orders (the extender calls per node, the simulator per pod, `tessera allocate` per order).
//!
//! The checks are upstream's `validateDeviceRequest` (`allocator_incubating.go`,
//! kubernetes-1.36.0): a missing class, `firstAvailable` without DRAPrioritizedList, capacity
//! requests without DRAConsumableCapacity and `adminAccess` without DRAAdminAccess fail the
//! allocation outright instead of matching nothing.

use std::collections::{BTreeMap, HashMap};

use super::cel::Selector;
use super::error::AllocatorError;
use super::features::Features;
use super::input::{AllocationMode, Claim, DeviceClass, Request, Toleration};
use super::quantity::Quantity;

/// DeviceClasses with their selectors compiled. A selector the model does not understand is
/// an error only when a request uses its class (as upstream reports CEL errors only when it
/// evaluates them).
#[derive(Debug, Clone, Default)]
pub struct Classes {
    by_name: HashMap<String, Result<CompiledClass, AllocatorError>>,
}

/// A class ready for evaluation.
#[derive(Debug, Clone)]
pub(super) struct CompiledClass {
    pub name: String,
    pub selectors: Vec<Selector>,
}

impl Classes {
    /// Compiles `classes`.
    pub fn new(classes: &[DeviceClass]) -> Classes {
        let by_name = classes
            .iter()
            .map(|class| {
                let compiled = class
                    .selectors
                    .iter()
                    .map(|s| Selector::compile(s))
                    .collect::<Result<Vec<_>, _>>()
                    .map(|selectors| CompiledClass {
                        name: class.name.clone(),
                        selectors,
                    });
                (class.name.clone(), compiled)
            })
            .collect();
        Classes { by_name }
    }

    /// Names of the classes given.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }
}

/// One alternative of a request, compiled.
#[derive(Debug, Clone)]
pub(super) struct PreparedAlternative {
    /// Index among all alternatives of all claims (for caches).
    pub global: usize,
    /// `request` or `request/subrequest`, as in allocation results.
    pub result_name: String,
    /// Index into [`PreparedClaims::classes`].
    pub class: usize,
    pub selectors: Vec<Selector>,
    pub mode: AllocationMode,
    pub tolerations: Vec<Toleration>,
    pub capacity_requests: BTreeMap<String, Quantity>,
}

/// One request, compiled.
#[derive(Debug, Clone)]
pub(super) struct PreparedRequest {
    pub first_available: bool,
    pub alternatives: Vec<PreparedAlternative>,
}

/// One claim, compiled.
#[derive(Debug, Clone)]
pub(super) struct PreparedClaim {
    pub name: String,
    pub requests: Vec<PreparedRequest>,
}

/// One pod's claims (to allocate together), checked and compiled for one feature level.
#[derive(Debug, Clone)]
pub struct PreparedClaims {
    pub(super) claims: Vec<PreparedClaim>,
    pub(super) classes: Vec<CompiledClass>,
    alternatives: usize,
}

impl PreparedClaims {
    /// Checks and compiles `claims` against `classes` for `features`. Borrowed claims
    /// (`Arc<Claim>` from the extender's cache) are read in place, not copied.
    pub fn new<C: std::borrow::Borrow<Claim>>(
        claims: &[C],
        classes: &Classes,
        features: Features,
    ) -> Result<PreparedClaims, AllocatorError> {
        if claims.len() > super::input::limits::CLAIMS {
            return Err(AllocatorError::Invalid(format!(
                "{} claims in one allocation, more than {}",
                claims.len(),
                super::input::limits::CLAIMS
            )));
        }
        let mut used_classes: Vec<CompiledClass> = Vec::new();
        let mut class_index: HashMap<String, usize> = HashMap::new();
        let mut prepared = Vec::with_capacity(claims.len());
        let mut global = 0usize;
        for claim in claims {
            let claim: &Claim = claim.borrow();
            claim.validate()?;
            let mut requests = Vec::with_capacity(claim.requests.len());
            for request in &claim.requests {
                let first_available = matches!(request, Request::FirstAvailable { .. });
                if first_available && !features.prioritized_list {
                    return Err(AllocatorError::FeatureDisabled {
                        claim: claim.name.clone(),
                        request: request.name().to_owned(),
                        what: "has subrequests (firstAvailable)",
                        gate: "DRAPrioritizedList",
                    });
                }
                let mut alternatives = Vec::new();
                for choice in request.alternatives() {
                    let result_name = if first_available {
                        format!("{}/{}", request.name(), choice.name)
                    } else {
                        choice.name.clone()
                    };
                    if !choice.capacity_requests.is_empty() && !features.consumable_capacity {
                        return Err(AllocatorError::FeatureDisabled {
                            claim: claim.name.clone(),
                            request: result_name,
                            what: "has capacity requests",
                            gate: "DRAConsumableCapacity",
                        });
                    }
                    if choice.admin_access {
                        return Err(AllocatorError::Unsupported(format!(
                            "claim {}, request {result_name}: adminAccess is not modelled",
                            claim.name
                        )));
                    }
                    let class = match class_index.get(&choice.device_class_name) {
                        Some(&i) => i,
                        None => {
                            let compiled = classes
                                .by_name
                                .get(&choice.device_class_name)
                                .ok_or_else(|| AllocatorError::UnknownClass {
                                    claim: claim.name.clone(),
                                    request: result_name.clone(),
                                    class: choice.device_class_name.clone(),
                                })?
                                .clone()?;
                            used_classes.push(compiled);
                            class_index
                                .insert(choice.device_class_name.clone(), used_classes.len() - 1);
                            used_classes.len() - 1
                        }
                    };
                    let selectors = choice
                        .selectors
                        .iter()
                        .map(|s| Selector::compile(s))
                        .collect::<Result<Vec<_>, _>>()?;
                    alternatives.push(PreparedAlternative {
                        global,
                        result_name,
                        class,
                        selectors,
                        mode: choice.mode,
                        tolerations: choice.tolerations.clone(),
                        capacity_requests: choice.capacity_requests.clone(),
                    });
                    global += 1;
                }
                requests.push(PreparedRequest {
                    first_available,
                    alternatives,
                });
            }
            prepared.push(PreparedClaim {
                name: claim.name.clone(),
                requests,
            });
        }
        Ok(PreparedClaims {
            claims: prepared,
            classes: used_classes,
            alternatives: global,
        })
    }

    /// Number of alternatives over all requests.
    pub(super) fn alternative_count(&self) -> usize {
        self.alternatives
    }
}
