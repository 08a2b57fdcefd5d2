//! What the cache keeps of a ResourceClaim: what it asks for (so the extender can place a
//! pending pod's claims), what it was given (devices, shares, consumed capacity) and which
//! pods hold it.

use std::sync::Arc;

use k8s_openapi::api::resource::v1::{
    AllocationResult, DeviceRequest as ApiRequest, DeviceSubRequest, ExactDeviceRequest,
    ResourceClaim, ResourceClaimSpec,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::intern::Interners;
use super::key::{ObjectKey, Uid, truncate};
use super::slice::{Amount, MAX_NAME_LEN, read_amounts};

/// Most requests, constraints and allocation results read per claim (the API allows 32).
pub const MAX_CLAIM_ENTRIES: usize = 64;
/// Most `firstAvailable` alternatives read per request (the API allows 8).
pub const MAX_ALTERNATIVES: usize = 16;
/// Most selectors read per request (the API allows 32).
pub const MAX_SELECTORS: usize = 64;
/// Most `reservedFor` entries read (the API allows 256).
pub const MAX_RESERVED_FOR: usize = 256;
/// Longest CEL selector kept (the API allows 10 KiB); a longer one marks the request
/// [`RequestAlternative::unreadable`] rather than being cut, which would change its meaning.
pub const MAX_SELECTOR_LEN: usize = 10 * 1024;

/// A ResourceClaim as the cache keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimView {
    /// `namespace/name`.
    pub key: ObjectKey,
    /// `metadata.uid`.
    pub uid: Uid,
    /// What the claim asks for (shared by all claims made from one template).
    pub spec: Arc<ClaimSpec>,
    /// `status.allocation`, once allocated.
    pub allocation: Option<ClaimAllocation>,
    /// Pods in `status.reservedFor` (other consumer kinds are not kept).
    pub reserved_for: Box<[PodRef]>,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
}

impl ClaimView {
    /// Whether the claim has an allocation.
    pub fn is_allocated(&self) -> bool {
        self.allocation.is_some()
    }

    /// The allocated devices (empty before allocation).
    pub fn devices(&self) -> &[AllocatedDevice] {
        self.allocation.as_ref().map_or(&[], |a| &a.devices)
    }
}

/// A pod holding a claim, from `status.reservedFor` (its namespace is the claim's).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PodRef {
    /// Pod name.
    pub name: Arc<str>,
    /// Pod UID.
    pub uid: Uid,
}

/// `status.allocation`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimAllocation {
    /// The node the allocation is bound to, when `nodeSelector` names exactly one node by
    /// `metadata.name` (what the scheduler writes for node-local devices).
    pub node: Option<Arc<str>>,
    /// `devices.results`, in order.
    pub devices: Box<[AllocatedDevice]>,
}

/// One allocation result: a device, or one share of a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocatedDevice {
    /// Driver name.
    pub driver: Arc<str>,
    /// Pool name (for our driver, the node's pool).
    pub pool: Arc<str>,
    /// Device name in the pool.
    pub device: Arc<str>,
    /// Request that got it: `req`, or `req/sub` for a `firstAvailable` alternative.
    pub request: Arc<str>,
    /// `shareID`, for a share of a device with `allowMultipleAllocations`.
    pub share_id: Option<Uid>,
    /// `consumedCapacity` of that share, names without our driver's domain.
    pub consumed: Arc<[Amount]>,
    /// `adminAccess`: monitoring access that does not use the device up.
    pub admin_access: bool,
}

impl AllocatedDevice {
    /// The `firstAvailable` alternative chosen, for `req/sub` requests.
    pub fn subrequest(&self) -> Option<&str> {
        self.request.split_once('/').map(|(_, sub)| sub)
    }
}

/// `spec.devices`: the requests and constraints (opaque config is not kept).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ClaimSpec {
    /// `requests`, in order.
    pub requests: Box<[DeviceRequest]>,
    /// `constraints`.
    pub constraints: Box<[Constraint]>,
}

/// One named request of a claim.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeviceRequest {
    /// Request name.
    pub name: Arc<str>,
    /// One alternative for `exactly`; the `firstAvailable` list in preference order otherwise.
    pub alternatives: Box<[RequestAlternative]>,
    /// Whether this is a `firstAvailable` request.
    pub first_available: bool,
}

/// One way of satisfying a request: `exactly`, or one `firstAvailable` subrequest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestAlternative {
    /// Subrequest name (`firstAvailable` only).
    pub name: Option<Arc<str>>,
    /// `deviceClassName`.
    pub device_class: Arc<str>,
    /// CEL selector expressions.
    pub selectors: Box<[Arc<str>]>,
    /// `allocationMode` and `count`.
    pub mode: AllocationMode,
    /// `capacity.requests`, names without our driver's domain.
    pub capacity: Arc<[Amount]>,
    /// `adminAccess`.
    pub admin_access: bool,
    /// Whether some part could not be read (an over-long selector, a bad quantity, an
    /// unknown allocation mode): a reader should not guess what the request means.
    pub unreadable: bool,
}

/// How many devices a request wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AllocationMode {
    /// `ExactCount` with `count` (default 1).
    ExactCount(u32),
    /// `All` matching devices.
    All,
}

/// One constraint across requests.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Constraint {
    /// Requests it applies to (all when empty).
    pub requests: Box<[Arc<str>]>,
    /// The attribute every device must share or must differ in.
    pub attribute: ConstraintAttribute,
}

/// `matchAttribute` or `distinctAttribute`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ConstraintAttribute {
    /// All devices must have the same value.
    Match(Arc<str>),
    /// All devices must have different values.
    Distinct(Arc<str>),
}

/// The compact form of `claim`; `None` for a claim without a name.
pub(crate) fn read_claim(
    claim: &ResourceClaim,
    driver: &str,
    interners: &mut Interners,
) -> Option<ClaimView> {
    let meta = &claim.metadata;
    let name = meta.name.as_deref().filter(|n| !n.is_empty())?;
    let namespace = meta.namespace.as_deref().unwrap_or_default();
    let spec = read_spec(&claim.spec, driver, interners);
    let status = claim.status.as_ref();
    let allocation = status
        .and_then(|s| s.allocation.as_ref())
        .map(|a| read_allocation(a, driver, interners));
    let mut reserved_for: Vec<PodRef> = status
        .and_then(|s| s.reserved_for.as_ref())
        .into_iter()
        .flatten()
        .take(MAX_RESERVED_FOR)
        .filter(|r| r.resource == "pods" && r.api_group.as_deref().unwrap_or_default().is_empty())
        .map(|r| PodRef {
            name: Arc::from(truncate(&r.name, MAX_NAME_LEN)),
            uid: Uid::new(&r.uid),
        })
        .collect();
    reserved_for.sort();
    Some(ClaimView {
        key: ObjectKey::new(
            truncate(namespace, MAX_NAME_LEN),
            truncate(name, MAX_NAME_LEN),
        ),
        uid: Uid::new(meta.uid.as_deref().unwrap_or_default()),
        spec,
        allocation,
        reserved_for: reserved_for.into(),
        deleting: meta.deletion_timestamp.is_some(),
    })
}

fn read_allocation(
    allocation: &AllocationResult,
    driver: &str,
    interners: &mut Interners,
) -> ClaimAllocation {
    let node = allocation
        .node_selector
        .as_ref()
        .and_then(|s| match s.node_selector_terms.as_slice() {
            [term] => term.match_fields.as_deref(),
            _ => None,
        })
        .and_then(|fields| match fields {
            [field] if field.key == "metadata.name" && field.operator == "In" => {
                match field.values.as_deref() {
                    Some([node]) => Some(interners.str(truncate(node, MAX_NAME_LEN))),
                    _ => None,
                }
            }
            _ => None,
        });
    let devices = allocation
        .devices
        .as_ref()
        .and_then(|d| d.results.as_ref())
        .into_iter()
        .flatten()
        .take(MAX_CLAIM_ENTRIES)
        .map(|r| AllocatedDevice {
            driver: interners.str(truncate(&r.driver, MAX_NAME_LEN)),
            pool: interners.str(truncate(&r.pool, MAX_NAME_LEN)),
            device: interners.str(truncate(&r.device, MAX_NAME_LEN)),
            request: interners.str(truncate(&r.request, MAX_NAME_LEN)),
            share_id: r.share_id.as_deref().map(Uid::new),
            consumed: quantities(r.consumed_capacity.as_ref(), driver, interners).0,
            admin_access: r.admin_access.unwrap_or(false),
        })
        .collect();
    ClaimAllocation { node, devices }
}

fn read_spec(spec: &ResourceClaimSpec, driver: &str, interners: &mut Interners) -> Arc<ClaimSpec> {
    let Some(devices) = spec.devices.as_ref() else {
        return interners.spec(ClaimSpec::default());
    };
    let requests = devices
        .requests
        .iter()
        .flatten()
        .take(MAX_CLAIM_ENTRIES)
        .map(|r| read_request(r, driver, interners))
        .collect();
    let constraints = devices
        .constraints
        .iter()
        .flatten()
        .take(MAX_CLAIM_ENTRIES)
        .filter_map(|c| {
            let attribute = match (&c.match_attribute, &c.distinct_attribute) {
                (Some(a), _) => {
                    ConstraintAttribute::Match(interners.str(truncate(a, MAX_NAME_LEN)))
                }
                (None, Some(a)) => {
                    ConstraintAttribute::Distinct(interners.str(truncate(a, MAX_NAME_LEN)))
                }
                (None, None) => return None,
            };
            let requests = c
                .requests
                .iter()
                .flatten()
                .take(MAX_CLAIM_ENTRIES)
                .map(|r| interners.str(truncate(r, MAX_NAME_LEN)))
                .collect();
            Some(Constraint {
                requests,
                attribute,
            })
        })
        .collect();
    interners.spec(ClaimSpec {
        requests,
        constraints,
    })
}

fn read_request(request: &ApiRequest, driver: &str, interners: &mut Interners) -> DeviceRequest {
    let (alternatives, first_available) = match (&request.exactly, &request.first_available) {
        (Some(exact), _) => (vec![read_exact(exact, driver, interners)], false),
        (None, Some(subs)) => (
            subs.iter()
                .take(MAX_ALTERNATIVES)
                .map(|s| read_sub(s, driver, interners))
                .collect(),
            true,
        ),
        (None, None) => (Vec::new(), false),
    };
    DeviceRequest {
        name: interners.str(truncate(&request.name, MAX_NAME_LEN)),
        alternatives: alternatives.into(),
        first_available,
    }
}

/// The fields `exactly` and a `firstAvailable` subrequest share.
struct AlternativeFields<'a> {
    name: Option<&'a str>,
    device_class: &'a str,
    selectors: Option<&'a Vec<k8s_openapi::api::resource::v1::DeviceSelector>>,
    allocation_mode: Option<&'a str>,
    count: Option<i64>,
    capacity: Option<&'a std::collections::BTreeMap<String, Quantity>>,
    admin_access: bool,
}

fn read_exact(
    r: &ExactDeviceRequest,
    driver: &str,
    interners: &mut Interners,
) -> RequestAlternative {
    read_alternative(
        AlternativeFields {
            name: None,
            device_class: &r.device_class_name,
            selectors: r.selectors.as_ref(),
            allocation_mode: r.allocation_mode.as_deref(),
            count: r.count,
            capacity: r.capacity.as_ref().and_then(|c| c.requests.as_ref()),
            admin_access: r.admin_access.unwrap_or(false),
        },
        driver,
        interners,
    )
}

fn read_sub(r: &DeviceSubRequest, driver: &str, interners: &mut Interners) -> RequestAlternative {
    read_alternative(
        AlternativeFields {
            name: Some(&r.name),
            device_class: &r.device_class_name,
            selectors: r.selectors.as_ref(),
            allocation_mode: r.allocation_mode.as_deref(),
            count: r.count,
            capacity: r.capacity.as_ref().and_then(|c| c.requests.as_ref()),
            admin_access: false,
        },
        driver,
        interners,
    )
}

fn read_alternative(
    f: AlternativeFields<'_>,
    driver: &str,
    interners: &mut Interners,
) -> RequestAlternative {
    let mut unreadable = false;
    let mut selectors = Vec::new();
    for selector in f.selectors.into_iter().flatten() {
        match &selector.cel {
            Some(cel)
                if cel.expression.len() <= MAX_SELECTOR_LEN && selectors.len() < MAX_SELECTORS =>
            {
                selectors.push(interners.str(&cel.expression));
            }
            // An unknown selector kind, or one we cannot keep whole: the request narrows the
            // devices in a way we do not know.
            _ => unreadable = true,
        }
    }
    let mode = match f.allocation_mode.unwrap_or("ExactCount") {
        "All" => AllocationMode::All,
        "ExactCount" => match u32::try_from(f.count.unwrap_or(1)) {
            Ok(count) if count > 0 => AllocationMode::ExactCount(count),
            _ => {
                unreadable = true;
                AllocationMode::ExactCount(1)
            }
        },
        _ => {
            unreadable = true;
            AllocationMode::ExactCount(f.count.and_then(|c| u32::try_from(c).ok()).unwrap_or(1))
        }
    };
    let (capacity, skipped) = quantities(f.capacity, driver, interners);
    RequestAlternative {
        name: f.name.map(|n| interners.str(truncate(n, MAX_NAME_LEN))),
        device_class: interners.str(truncate(f.device_class, MAX_NAME_LEN)),
        selectors: selectors.into(),
        mode,
        capacity,
        admin_access: f.admin_access,
        unreadable: unreadable || skipped,
    }
}

/// A quantity map as an amount list, and whether some entry could not be read.
fn quantities(
    map: Option<&std::collections::BTreeMap<String, Quantity>>,
    driver: &str,
    interners: &mut Interners,
) -> (Arc<[Amount]>, bool) {
    let total = map.map_or(0, |m| m.len());
    let amounts = read_amounts(
        map.into_iter().flatten().map(|(k, q)| (k, q.0.as_str())),
        driver,
        interners,
    );
    let skipped = amounts.len() < total;
    (amounts, skipped)
}

#[cfg(test)]
mod tests;
