//! ResourceClaim → [`GpuRequest`]s: the translation of `spec.devices.requests`.
//!
//! Only requests whose DeviceClass is one of tessera's ([`DeviceClasses`]) become GPU
//! requests; other drivers' requests are not ours to price. A `firstAvailable` list keeps its
//! order, which is the order the allocator tries. CEL selectors are not evaluated (that is the
//! allocator's job); the one form read is a MIG profile pin,
//! `device.attributes["<driver>"].profile == "1g.10gb"`, because it decides the partition.

use k8s_openapi::api::resource::v1::{
    CapacityRequirements, DeviceRequest, DeviceSelector, ResourceClaim,
};

use super::demand::{Alternative, Count, DeviceClasses, DeviceKind, GpuRequest};
use super::quantity;

/// Requests per claim the API allows (`DeviceRequestsMaxSize`).
const MAX_REQUESTS: usize = 32;
/// `firstAvailable` entries per request the API allows.
const MAX_SUBREQUESTS: usize = 8;
/// Selectors per request the API allows.
const MAX_SELECTORS: usize = 32;
/// Devices one request may ask for; far above any node's GPU count.
const MAX_COUNT: i64 = 1024;

/// What a claim asks of tessera's GPUs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClaimRequests {
    /// Requests for tessera's device classes; empty when the claim is already allocated.
    pub requests: Vec<GpuRequest>,
    /// Requests that could not be read, with the reason.
    pub unreadable: Vec<String>,
    /// Whether the claim already has an allocation (its devices are fixed and paid for).
    pub allocated: bool,
    /// The claim in the allocator model's terms, when every request is for tessera's classes
    /// and was read in full (`None` otherwise: its devices cannot be predicted).
    pub model: Option<std::sync::Arc<crate::allocator::Claim>>,
}

/// The GPU requests of `claim`.
pub fn claim_requests(claim: &ResourceClaim, classes: &DeviceClasses) -> ClaimRequests {
    let id = format!(
        "{}/{}",
        claim.metadata.namespace.as_deref().unwrap_or_default(),
        claim.metadata.name.as_deref().unwrap_or_default()
    );
    let allocated = claim
        .status
        .as_ref()
        .is_some_and(|s| s.allocation.is_some());
    let mut out = ClaimRequests {
        allocated,
        ..ClaimRequests::default()
    };
    if allocated {
        return out;
    }
    let requests = claim
        .spec
        .devices
        .as_ref()
        .and_then(|d| d.requests.as_deref())
        .unwrap_or_default();
    if requests.len() > MAX_REQUESTS {
        out.unreadable.push(format!(
            "{id}: {} requests, more than the API's {MAX_REQUESTS}",
            requests.len()
        ));
        return out;
    }
    for request in requests {
        let source = format!("{id}/{}", request.name);
        match alternatives(request, classes) {
            Ok(alts) if alts.is_empty() => {}
            Ok(alternatives) => out.requests.push(GpuRequest {
                source,
                alternatives,
            }),
            Err(reason) => out.unreadable.push(format!("{source}: {reason}")),
        }
    }
    out
}

/// The alternatives of one request that target tessera's classes, in order.
fn alternatives(
    request: &DeviceRequest,
    classes: &DeviceClasses,
) -> Result<Vec<Alternative>, String> {
    if let Some(exact) = &request.exactly {
        let Some(kind) = classes.kind(&exact.device_class_name) else {
            return Ok(Vec::new());
        };
        let alt = alternative(
            None,
            kind,
            exact.allocation_mode.as_deref(),
            exact.count,
            exact.capacity.as_ref(),
            exact.selectors.as_deref(),
            classes,
        )?;
        return Ok(vec![alt]);
    }
    let Some(subrequests) = &request.first_available else {
        return Err("has neither `exactly` nor `firstAvailable`".to_owned());
    };
    if subrequests.len() > MAX_SUBREQUESTS {
        return Err(format!(
            "{} firstAvailable entries, more than the API's {MAX_SUBREQUESTS}",
            subrequests.len()
        ));
    }
    let mut out = Vec::with_capacity(subrequests.len());
    for sub in subrequests {
        // Another driver's entry cannot be priced here; the allocator may still pick it, in
        // which case this pod uses no tessera GPU on that node.
        let Some(kind) = classes.kind(&sub.device_class_name) else {
            continue;
        };
        let alt = alternative(
            Some(sub.name.clone()),
            kind,
            sub.allocation_mode.as_deref(),
            sub.count,
            sub.capacity.as_ref(),
            sub.selectors.as_deref(),
            classes,
        )
        .map_err(|e| format!("firstAvailable {:?}: {e}", sub.name))?;
        out.push(alt);
    }
    Ok(out)
}

fn alternative(
    subrequest: Option<String>,
    kind: DeviceKind,
    mode: Option<&str>,
    count: Option<i64>,
    capacity: Option<&CapacityRequirements>,
    selectors: Option<&[DeviceSelector]>,
    classes: &DeviceClasses,
) -> Result<Alternative, String> {
    let count = match mode.unwrap_or("ExactCount") {
        "ExactCount" => {
            let n = count.unwrap_or(1);
            exact_count(
                u64::try_from(n).map_err(|_| format!("count {n} is outside 1..={MAX_COUNT}"))?,
            )?
        }
        "All" => Count::All,
        other => return Err(format!("unknown allocationMode {other:?}")),
    };
    let mut amounts = Vec::new();
    for (key, value) in capacity
        .and_then(|c| c.requests.as_ref())
        .into_iter()
        .flatten()
    {
        let name = key
            .strip_prefix(classes.driver())
            .and_then(|rest| rest.strip_prefix('/'))
            .unwrap_or(key);
        let v = quantity::parse(&value.0).map_err(|e| format!("capacity {key}: {e}"))?;
        amounts.push((name, v));
    }
    let selectors = selectors.unwrap_or_default();
    if selectors.len() > MAX_SELECTORS {
        return Err(format!(
            "{} selectors, more than the API's {MAX_SELECTORS}",
            selectors.len()
        ));
    }
    alternative_from(
        subrequest,
        kind,
        count,
        amounts,
        selectors
            .iter()
            .filter_map(|s| s.cel.as_ref())
            .map(|cel| cel.expression.as_str()),
    )
}

/// `ExactCount` of `n` devices, bounded to `1..=MAX_COUNT`.
pub fn exact_count(n: u64) -> Result<Count, String> {
    if !(1..=MAX_COUNT as u64).contains(&n) {
        return Err(format!("count {n} is outside 1..={MAX_COUNT}"));
    }
    u32::try_from(n)
        .map(Count::Exact)
        .map_err(|_| format!("count {n} is out of range"))
}

/// An alternative from its parts, however they were read: `capacity` holds requested amounts
/// by name without the driver's domain (`memory` in bytes, `compute` in percent; others are
/// ignored), `selectors` the CEL expressions.
pub fn alternative_from<'a>(
    subrequest: Option<String>,
    kind: DeviceKind,
    count: Count,
    capacity: impl IntoIterator<Item = (&'a str, f64)>,
    selectors: impl IntoIterator<Item = &'a str>,
) -> Result<Alternative, String> {
    let mut memory_bytes = None;
    let mut compute_percent = None;
    for (name, value) in capacity {
        if !value.is_finite() || value < 0.0 {
            return Err(format!(
                "capacity {name} = {value} is not a non-negative amount"
            ));
        }
        match name {
            // Bytes are whole: round a fractional quantity up, as the allocator does.
            "memory" => memory_bytes = Some(value.ceil() as u64),
            "compute" => compute_percent = Some(value),
            _ => {}
        }
    }
    let mut mig_profile = None;
    let mut gpu_model = None;
    for expression in selectors {
        mig_profile = mig_profile.or_else(|| pinned_profile(expression));
        gpu_model = gpu_model.or_else(|| pinned_model(expression));
    }
    Ok(Alternative {
        subrequest,
        kind,
        count,
        memory_bytes,
        compute_percent,
        mig_profile,
        gpu_model,
    })
}

/// The profile in `….profile == "<name>"` (either quote style; the attribute must come first,
/// as every example and chart writes it).
fn pinned_profile(expression: &str) -> Option<String> {
    // Profile names are short (`1g.10gb+me`); anything else is not a pin we understand.
    pinned(expression, "].profile", 32)
}

/// The GPU product in `….model == "<name>"` (`NVIDIA H100 80GB HBM3`), read like a profile
/// pin; only the typical-pod learner reads it (the allocator applies the selector itself).
fn pinned_model(expression: &str) -> Option<String> {
    pinned(expression, "].model", 128)
}

/// The quoted string compared with `==` right after `attribute`, at most `max_len` bytes.
fn pinned(expression: &str, attribute: &str, max_len: usize) -> Option<String> {
    let after = expression.get(expression.find(attribute)? + attribute.len()..)?;
    let rest = after.trim_start().strip_prefix("==")?.trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let body = rest.get(1..)?;
    let name = body.get(..body.find(quote)?)?;
    (!name.is_empty() && name.len() <= max_len).then(|| name.to_owned())
}

#[cfg(test)]
mod tests;
