//! DeviceClass, ResourceClaim(Template) spec and allocation results → allocator input.

use std::collections::BTreeMap;

use k8s_openapi::api::resource::v1 as api;

use super::{Notes, TranslateError};
use crate::allocator::{
    AllocatedDevice, AllocationMode, Claim, DeviceChoice, DeviceClass, Features, Quantity, Request,
    Toleration, TolerationOperator,
};

/// A DeviceClass's name and CEL selectors.
pub fn class(object: &api::DeviceClass) -> Result<DeviceClass, TranslateError> {
    let name = object.metadata.name.clone().unwrap_or_default();
    let mut selectors = Vec::new();
    for s in object.spec.selectors.iter().flatten() {
        match &s.cel {
            Some(cel) => selectors.push(cel.expression.clone()),
            None => {
                return Err(TranslateError {
                    object: format!("DeviceClass {name}"),
                    problem: "has a selector that is not CEL".into(),
                });
            }
        }
    }
    Ok(DeviceClass { name, selectors })
}

/// A claim `name` with `spec`, for `features`.
pub fn claim_from_spec(
    name: &str,
    spec: &api::ResourceClaimSpec,
    features: Features,
    notes: &mut Notes,
) -> Result<Claim, TranslateError> {
    let err = |problem: String| TranslateError {
        object: format!("claim {name}"),
        problem,
    };
    let devices = spec
        .devices
        .as_ref()
        .ok_or_else(|| err("has no spec.devices".into()))?;
    if devices.constraints.as_ref().is_some_and(|c| !c.is_empty()) {
        return Err(err(
            "has constraints (matchAttribute/distinctAttribute), which the allocator model does not handle".into(),
        ));
    }
    let mut requests = Vec::new();
    for r in devices.requests.iter().flatten() {
        match (&r.exactly, &r.first_available) {
            (Some(e), None) => {
                if e.admin_access == Some(true) {
                    return Err(err(format!(
                        "request {}: adminAccess is not modelled",
                        r.name
                    )));
                }
                let choice = choice(
                    &r.name,
                    &e.device_class_name,
                    e.selectors.as_deref(),
                    e.allocation_mode.as_deref(),
                    e.count,
                    e.tolerations.as_deref(),
                    e.capacity.as_ref(),
                    features,
                    notes,
                    name,
                )
                .map_err(&err)?;
                requests.push(Request::Exactly(choice));
            }
            (None, Some(subs)) => {
                let mut subrequests = Vec::new();
                for s in subs {
                    subrequests.push(
                        choice(
                            &s.name,
                            &s.device_class_name,
                            s.selectors.as_deref(),
                            s.allocation_mode.as_deref(),
                            s.count,
                            s.tolerations.as_deref(),
                            s.capacity.as_ref(),
                            features,
                            notes,
                            name,
                        )
                        .map_err(&err)?,
                    );
                }
                requests.push(Request::FirstAvailable {
                    name: r.name.clone(),
                    subrequests,
                });
            }
            _ => {
                return Err(err(format!(
                    "request {} must set exactly one of exactly and firstAvailable",
                    r.name
                )));
            }
        }
    }
    let claim = Claim {
        name: name.to_owned(),
        requests,
    };
    claim.validate().map_err(|e| err(e.to_string()))?;
    Ok(claim)
}

#[allow(clippy::too_many_arguments)]
fn choice(
    name: &str,
    class: &str,
    selectors: Option<&[api::DeviceSelector]>,
    mode: Option<&str>,
    count: Option<i64>,
    tolerations: Option<&[api::DeviceToleration]>,
    capacity: Option<&api::CapacityRequirements>,
    features: Features,
    notes: &mut Notes,
    claim: &str,
) -> Result<DeviceChoice, String> {
    let mut out = DeviceChoice::one(name, class);
    for s in selectors.into_iter().flatten() {
        match &s.cel {
            Some(cel) => out.selectors.push(cel.expression.clone()),
            None => return Err(format!("request {name}: a selector that is not CEL")),
        }
    }
    out.mode = match mode.unwrap_or("ExactCount") {
        "ExactCount" => {
            let n = count.unwrap_or(1);
            AllocationMode::ExactCount(
                u32::try_from(n).map_err(|_| format!("request {name}: count {n} out of range"))?,
            )
        }
        "All" => AllocationMode::All,
        other => return Err(format!("request {name}: unknown allocationMode {other:?}")),
    };
    for t in tolerations.into_iter().flatten() {
        out.tolerations.push(Toleration {
            key: t.key.clone().unwrap_or_default(),
            operator: match t.operator.as_deref().unwrap_or("Equal") {
                "Equal" => TolerationOperator::Equal,
                "Exists" => TolerationOperator::Exists,
                other => {
                    return Err(format!(
                        "request {name}: unknown toleration operator {other:?}"
                    ));
                }
            },
            value: t.value.clone().unwrap_or_default(),
            effect: match t.effect.as_deref() {
                None | Some("") => None,
                Some("NoSchedule") => Some(crate::allocator::TaintEffect::NoSchedule),
                Some("NoExecute") => Some(crate::allocator::TaintEffect::NoExecute),
                Some(_) => Some(crate::allocator::TaintEffect::None),
            },
        });
    }
    let requested = capacity.and_then(|c| c.requests.as_ref());
    if let Some(requests) = requested.filter(|r| !r.is_empty()) {
        if features.consumable_capacity {
            for (cap, amount) in requests {
                out.capacity_requests.insert(
                    cap.clone(),
                    Quantity::parse(&amount.0).map_err(|e| format!("request {name}: {e}"))?,
                );
            }
        } else {
            notes.push(format!(
                "claim {claim}, request {name}: capacity requests dropped (DRAConsumableCapacity off)"
            ));
        }
    }
    Ok(out)
}

/// Every device result of the allocated claims among `claims` (unallocated ones are skipped).
pub fn allocated_devices(
    claims: &[api::ResourceClaim],
) -> Result<Vec<AllocatedDevice>, TranslateError> {
    let mut out = Vec::new();
    for c in claims {
        let Some(allocation) = c.status.as_ref().and_then(|s| s.allocation.as_ref()) else {
            continue;
        };
        for r in allocation
            .devices
            .iter()
            .flat_map(|d| d.results.iter().flatten())
        {
            let mut consumed = BTreeMap::new();
            for (name, q) in r.consumed_capacity.iter().flatten() {
                consumed.insert(
                    name.clone(),
                    Quantity::parse(&q.0).map_err(|e| TranslateError {
                        object: format!(
                            "ResourceClaim {}/{}",
                            c.metadata.namespace.as_deref().unwrap_or_default(),
                            c.metadata.name.as_deref().unwrap_or_default()
                        ),
                        problem: e.to_string(),
                    })?,
                );
            }
            out.push(AllocatedDevice {
                driver: r.driver.clone(),
                pool: r.pool.clone(),
                device: r.device.clone(),
                shared: r.share_id.is_some(),
                consumed_capacity: consumed,
                admin_access: r.admin_access == Some(true),
            });
        }
    }
    Ok(out)
}
