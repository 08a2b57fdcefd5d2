//! What the cache keeps of a Pod: where it runs, its classic `nvidia.com/gpu`, CPU and memory
//! requests, the ResourceClaims it uses and its `tessera.dev/` annotations.
//!
//! Only pods that matter to GPU placement are kept: not finished, and either using
//! ResourceClaims or requesting `nvidia.com/gpu`.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use tracing::debug;

use super::error::ClusterError;
use super::intern::Interners;
use super::key::{ObjectKey, Uid, truncate};
use super::node::CLASSIC_GPU_RESOURCE;
use super::quantity::{parse_quantity, parse_quantity_milli};
use super::slice::MAX_NAME_LEN;

/// Annotation prefix of the pod settings the extender reads (`tessera.dev/interruption`,
/// `tessera.dev/max-hourly-cost`).
pub const ANNOTATION_PREFIX: &str = "tessera.dev/";
/// Most `tessera.dev/` annotations kept per pod.
pub const MAX_ANNOTATIONS: usize = 16;
/// Longest `tessera.dev/` annotation value kept; longer values are dropped, not cut, so a
/// reader never acts on half a value.
pub const MAX_ANNOTATION_LEN: usize = 256;
/// Most pod claims read (the API allows 32).
pub const MAX_POD_CLAIMS: usize = 64;

/// Bytes in a MiB.
const MIB: u64 = 1024 * 1024;

/// A Pod as the cache keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodView {
    /// `namespace/name`.
    pub key: ObjectKey,
    /// `metadata.uid`.
    pub uid: Uid,
    /// `spec.nodeName`, once scheduled.
    pub node: Option<Arc<str>>,
    /// The pod's effective `nvidia.com/gpu` request (what the scheduler counts against the
    /// node's allocatable).
    pub gpu_request: u32,
    /// The pod's effective `cpu` request in milli-cores, by the same rules.
    pub cpu_request_milli: u64,
    /// The pod's effective `memory` request in MiB, rounded **down** (a node's free memory is
    /// only ever over-estimated, never under).
    pub memory_request_mib: u64,
    /// `spec.resourceClaims`, resolved to ResourceClaim names where known.
    pub claims: Box<[PodClaim]>,
    /// `tessera.dev/*` annotations, sorted by key.
    pub annotations: Box<[(Arc<str>, Box<str>)]>,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    /// `metadata.creationTimestamp`, seconds since the Unix epoch (0 when absent). The
    /// typical-pod learner orders a list by it, so that a restarted extender replays the
    /// pods it finds in the order they were created, whatever order the list returns.
    pub created_unix_s: i64,
}

impl PodView {
    /// The value of the annotation `key` (full key, `tessera.dev/...`).
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations
            .iter()
            .find(|(k, _)| &**k == key)
            .map(|(_, v)| &**v)
    }

    /// Names of the ResourceClaims the pod uses, as far as they are known.
    pub fn claim_names(&self) -> impl Iterator<Item = &str> {
        self.claims.iter().filter_map(|c| c.claim.as_deref())
    }
}

/// One entry of `spec.resourceClaims`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodClaim {
    /// The name the pod's containers use for it.
    pub name: Arc<str>,
    /// The ResourceClaim: `resourceClaimName`, or for a template the name in
    /// `status.resourceClaimStatuses`; `None` until the claim has been generated (or when
    /// the template needs no claim).
    pub claim: Option<Arc<str>>,
    /// Whether it comes from a `resourceClaimTemplateName`.
    pub from_template: bool,
}

/// The compact form of `pod`, or `None` when the pod does not matter to GPU placement
/// (finished, or neither claims nor `nvidia.com/gpu`).
pub(crate) fn read_pod(pod: &Pod, interners: &mut Interners) -> Option<PodView> {
    let meta = &pod.metadata;
    let name = meta.name.as_deref().filter(|n| !n.is_empty())?;
    let namespace = meta.namespace.as_deref().unwrap_or_default();
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if matches!(phase, Some("Succeeded" | "Failed")) {
        return None;
    }
    let spec = pod.spec.as_ref()?;
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.resource_claim_statuses.as_deref())
        .unwrap_or_default();
    let claims: Box<[PodClaim]> = spec
        .resource_claims
        .iter()
        .flatten()
        .take(MAX_POD_CLAIMS)
        .map(|c| {
            let from_template = c.resource_claim_name.is_none();
            let claim = match &c.resource_claim_name {
                Some(direct) => Some(direct.as_str()),
                None => statuses
                    .iter()
                    .find(|s| s.name == c.name)
                    .and_then(|s| s.resource_claim_name.as_deref()),
            };
            PodClaim {
                name: interners.str(truncate(&c.name, MAX_NAME_LEN)),
                claim: claim.map(|n| Arc::from(truncate(n, MAX_NAME_LEN))),
                from_template,
            }
        })
        .collect();
    let request = |resource: &str, parse: fn(&str) -> Result<u64, ClusterError>| {
        effective_request(
            &spec.containers,
            spec.init_containers.as_deref().unwrap_or_default(),
            spec.overhead.as_ref(),
            resource,
            parse,
        )
    };
    let gpu_request =
        u32::try_from(request(CLASSIC_GPU_RESOURCE, parse_quantity)).unwrap_or(u32::MAX);
    if claims.is_empty() && gpu_request == 0 {
        return None;
    }
    let cpu_request_milli = request("cpu", parse_quantity_milli);
    let memory_request_mib = request("memory", parse_quantity) / MIB;
    let mut annotations: Vec<(Arc<str>, Box<str>)> = meta
        .annotations
        .iter()
        .flatten()
        .filter(|(k, v)| {
            k.starts_with(ANNOTATION_PREFIX)
                && k.len() <= MAX_NAME_LEN
                && v.len() <= MAX_ANNOTATION_LEN
        })
        .take(MAX_ANNOTATIONS)
        .map(|(k, v)| (interners.str(k), Box::from(v.as_str())))
        .collect();
    annotations.sort();
    Some(PodView {
        key: ObjectKey::new(
            truncate(namespace, MAX_NAME_LEN),
            truncate(name, MAX_NAME_LEN),
        ),
        uid: Uid::new(meta.uid.as_deref().unwrap_or_default()),
        node: spec
            .node_name
            .as_deref()
            .filter(|n| !n.is_empty())
            .map(|n| interners.str(truncate(n, MAX_NAME_LEN))),
        gpu_request,
        cpu_request_milli,
        memory_request_mib,
        claims,
        annotations: annotations.into(),
        deleting: meta.deletion_timestamp.is_some(),
        created_unix_s: meta
            .creation_timestamp
            .as_ref()
            .map_or(0, |t| t.0.as_second()),
    })
}

/// The pod's request of `resource` as the scheduler counts it, in the units `parse` reads:
/// the larger of the app containers plus sidecars (restartable init containers), and the
/// peak during init (each init container plus the sidecars started before it), plus pod
/// overhead. An unreadable quantity counts as 0.
fn effective_request(
    containers: &[Container],
    init: &[Container],
    overhead: Option<&BTreeMap<String, Quantity>>,
    resource: &str,
    parse: fn(&str) -> Result<u64, ClusterError>,
) -> u64 {
    let amount = |c: &Container| container_request(c, resource, parse);
    let app: u64 = containers.iter().map(amount).fold(0, u64::saturating_add);
    let mut sidecars: u64 = 0;
    let mut init_peak: u64 = 0;
    for c in init {
        let request = amount(c);
        if c.restart_policy.as_deref() == Some("Always") {
            sidecars = sidecars.saturating_add(request);
            init_peak = init_peak.max(sidecars);
        } else {
            init_peak = init_peak.max(sidecars.saturating_add(request));
        }
    }
    let overhead = overhead
        .and_then(|o| o.get(resource))
        .map_or(0, |q| quantity_or_zero(&q.0, "overhead", resource, parse));
    app.saturating_add(sidecars)
        .max(init_peak)
        .saturating_add(overhead)
}

/// A container's request of `resource`: its request, else its limit (the API server defaults
/// a missing request to the limit, and for extended resources a limit alone implies an equal
/// request).
fn container_request(
    c: &Container,
    resource: &str,
    parse: fn(&str) -> Result<u64, ClusterError>,
) -> u64 {
    let Some(resources) = c.resources.as_ref() else {
        return 0;
    };
    let quantity = resources
        .requests
        .as_ref()
        .and_then(|r| r.get(resource))
        .or_else(|| resources.limits.as_ref().and_then(|l| l.get(resource)));
    quantity.map_or(0, |q| quantity_or_zero(&q.0, &c.name, resource, parse))
}

fn quantity_or_zero(
    text: &str,
    container: &str,
    resource: &str,
    parse: fn(&str) -> Result<u64, ClusterError>,
) -> u64 {
    parse(text).unwrap_or_else(|error| {
        debug!(container = truncate(container, MAX_NAME_LEN), resource, %error, "request skipped");
        0
    })
}

#[cfg(test)]
mod tests;
