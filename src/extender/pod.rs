//! Pod → what the extender needs to decide: its GPU demand (claims and classic requests) and
//! its placement policy annotations.

use std::collections::BTreeMap;

use super::api::object::{Container, PodObject};
use super::claim::ClaimRequests;
use super::demand::{Alternative, Count, DeviceKind, GpuRequest, PodDemand};
use super::quantity;
pub use crate::scoring::INTERRUPTION_ANNOTATION;
use crate::scoring::{Tolerance, ToleranceError};

/// The classic extended resource for NVIDIA GPUs (device plugin, or DRA-backed through a
/// DeviceClass's `extendedResourceName`).
pub const CLASSIC_GPU_RESOURCE: &str = "nvidia.com/gpu";
/// Pod annotation: the most the pod may cost, US dollars per hour.
pub const MAX_HOURLY_COST_ANNOTATION: &str = "tessera.dev/max-hourly-cost";
/// Longest annotation value echoed in reasons.
const MAX_ECHO: usize = 64;
/// Most classic GPUs one pod may ask for; far above any node.
const MAX_CLASSIC_GPUS: f64 = 1024.0;

/// The pod's `tessera.dev/max-hourly-cost` annotation.
#[derive(Debug, Clone, PartialEq)]
pub enum MaxHourlyCost {
    /// No limit.
    Unlimited,
    /// At most this many US dollars per hour (finite, ≥ 0).
    Usd(f64),
    /// A value that is not a non-negative number (shortened).
    Invalid(String),
}

/// As `/explain` shows it: `unlimited`, `3.0000 $/h`, or `invalid: "<value>"`.
impl std::fmt::Display for MaxHourlyCost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MaxHourlyCost::Unlimited => f.write_str("unlimited"),
            MaxHourlyCost::Usd(usd) => write!(f, "{usd:.4} $/h"),
            MaxHourlyCost::Invalid(value) => write!(f, "invalid: {value:?}"),
        }
    }
}

/// The placement annotations of a pod.
#[derive(Debug, Clone, PartialEq)]
pub struct PodPolicy {
    /// Interruption tolerance: the annotation's, `checkpointed` without one, and `intolerant`
    /// for a value tessera does not know (a misspelt "intolerant" must not land a pod on
    /// spot).
    pub tolerance: Tolerance,
    /// The unknown `tessera.dev/interruption` value, shortened, when there was one.
    pub unrecognized_tolerance: Option<String>,
    /// Cost ceiling.
    pub max_hourly_cost: MaxHourlyCost,
}

impl PodPolicy {
    /// Reads the annotations; values are trimmed and compared ignoring ASCII case.
    pub fn from_annotations(annotations: &BTreeMap<String, String>) -> Self {
        let (tolerance, unrecognized_tolerance) = match Tolerance::from_annotation(
            annotations.get(INTERRUPTION_ANNOTATION).map(String::as_str),
        ) {
            Ok(t) => (t, None),
            Err(ToleranceError::Unknown { value }) => (Tolerance::Intolerant, Some(value)),
        };
        let max_hourly_cost = match annotations.get(MAX_HOURLY_COST_ANNOTATION) {
            None => MaxHourlyCost::Unlimited,
            Some(v) => match v.trim().parse::<f64>() {
                Ok(usd) if usd.is_finite() && usd >= 0.0 => MaxHourlyCost::Usd(usd + 0.0),
                _ => MaxHourlyCost::Invalid(shorten(v)),
            },
        };
        PodPolicy {
            tolerance,
            unrecognized_tolerance,
            max_hourly_cost,
        }
    }
}

fn shorten(value: &str) -> String {
    value.chars().take(MAX_ECHO).collect()
}

/// A claim the pod uses, as `<namespace>/<name>`; `None` for a claim from a template whose
/// generated name is not in the pod's status yet.
pub fn claim_refs(pod: &PodObject) -> Vec<(String, Option<String>)> {
    let namespace = &pod.metadata.namespace;
    pod.spec
        .resource_claims
        .iter()
        .map(|entry| {
            let name = match &entry.resource_claim_name {
                Some(name) => Some(name.clone()),
                None => pod
                    .status
                    .resource_claim_statuses
                    .iter()
                    .find(|s| s.name == entry.name)
                    .and_then(|s| s.resource_claim_name.clone()),
            };
            (entry.name.clone(), name.map(|n| format!("{namespace}/{n}")))
        })
        .collect()
}

/// The pod's GPU demand: its claims' requests (looked up by `<namespace>/<name>` through
/// `claims`) and its classic `nvidia.com/gpu` request.
pub fn pod_demand(
    pod: &PodObject,
    mut claims: impl FnMut(&str) -> Option<ClaimRequests>,
) -> PodDemand {
    let mut demand = PodDemand::default();
    for (entry, claim) in claim_refs(pod) {
        let Some(id) = claim else {
            demand.missing_claims.push(format!(
                "{}/<{entry} not generated yet>",
                pod.metadata.namespace
            ));
            continue;
        };
        match claims(&id) {
            Some(found) => {
                if !found.requests.is_empty() {
                    match found.model {
                        Some(model) => demand.model_claims.push(model),
                        None => demand.model_missing = true,
                    }
                }
                demand.requests.extend(found.requests);
                demand.unreadable.extend(found.unreadable);
            }
            None => demand.missing_claims.push(id),
        }
    }
    match classic_gpus(pod) {
        Ok(0) => {}
        Ok(count) => {
            demand.model_missing = true;
            demand.requests.push(GpuRequest {
                source: CLASSIC_GPU_RESOURCE.to_owned(),
                alternatives: vec![Alternative {
                    subrequest: None,
                    kind: DeviceKind::Whole,
                    count: Count::Exact(count),
                    memory_bytes: None,
                    compute_percent: None,
                    mig_profile: None,
                    gpu_model: None,
                }],
            });
        }
        Err(reason) => demand.unreadable.push(reason),
    }
    match cpu_and_memory(pod) {
        Ok((cpu, memory)) => {
            demand.cpu_milli = cpu;
            demand.memory_mib = memory;
        }
        Err(reason) => demand.unreadable.push(reason),
    }
    demand
}

/// The pod's effective `nvidia.com/gpu` request (see [`effective_request`]), a whole number.
pub fn classic_gpus(pod: &PodObject) -> Result<u32, String> {
    let total = effective_request(pod, CLASSIC_GPU_RESOURCE)?;
    if total < 0.0 || total.fract() != 0.0 || total > MAX_CLASSIC_GPUS {
        return Err(format!(
            "{CLASSIC_GPU_RESOURCE}: {total} is not a whole number of GPUs in 0..=1024"
        ));
    }
    // Whole, non-negative and at most 1024: the cast is exact.
    Ok(total as u32)
}

/// The pod's effective request of `resource`, as the scheduler computes effective requests:
/// the larger of (regular containers + sidecars) and, for each plain init container, itself
/// plus the sidecars started before it. A container without a request uses its limit (as
/// the API server defaults it).
pub fn effective_request(pod: &PodObject, resource: &str) -> Result<f64, String> {
    let amount = |c: &Container| -> Result<f64, String> {
        let Some(q) = c
            .resources
            .requests
            .get(resource)
            .or_else(|| c.resources.limits.get(resource))
        else {
            return Ok(0.0);
        };
        let v = quantity::parse(&q.0).map_err(|e| format!("{resource}: {e}"))?;
        if v < 0.0 {
            return Err(format!("{resource}: {:?} is negative", q.0));
        }
        Ok(v)
    };
    let mut sidecars = 0.0;
    let mut init_peak: f64 = 0.0;
    for c in &pod.spec.init_containers {
        let v = amount(c)?;
        if c.restart_policy.as_deref() == Some("Always") {
            sidecars += v;
            init_peak = init_peak.max(sidecars);
        } else {
            init_peak = init_peak.max(sidecars + v);
        }
    }
    let mut regular = 0.0;
    for c in &pod.spec.containers {
        regular += amount(c)?;
    }
    Ok((regular + sidecars).max(init_peak))
}

/// The pod's CPU (milli-cores) and memory (MiB) requests, rounded up; what the fragmentation
/// term counts against a node's free CPU, as the simulator does.
pub fn cpu_and_memory(pod: &PodObject) -> Result<(u64, u64), String> {
    let cpu = effective_request(pod, "cpu")?;
    let memory = effective_request(pod, "memory")?;
    // Saturating casts: a request beyond u64 is absurd and fits nowhere anyway.
    Ok((
        (cpu * 1000.0).ceil() as u64,
        (memory / (1024.0 * 1024.0)).ceil() as u64,
    ))
}

#[cfg(test)]
mod tests;
