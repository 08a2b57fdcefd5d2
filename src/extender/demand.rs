//! A pod's GPU demand as the extender reads it from the pod and its ResourceClaims.
//!
//! Plain data: which GPU requests the pod makes of tessera's driver, each with its
//! `firstAvailable` alternatives in order, plus what could not be read. Scoring turns a request
//! into the partition a node would give it.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};

use serde::Serialize;

use crate::allocator::Claim;

/// The DeviceClasses tessera's chart installs for a driver name (`gpu.tessera.dev` by
/// default): `<driver>` selects whole GPUs, `mig.<driver>` MIG partitions, `shared.<driver>`
/// shared GPUs with consumable capacity, `share.<driver>` time-sliced replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceClasses {
    driver: String,
    whole: String,
    mig: String,
    shared: String,
    share: String,
}

impl DeviceClasses {
    /// The classes of `driver`.
    pub fn new(driver: &str) -> Self {
        DeviceClasses {
            driver: driver.to_owned(),
            whole: driver.to_owned(),
            mig: format!("mig.{driver}"),
            shared: format!("shared.{driver}"),
            share: format!("share.{driver}"),
        }
    }

    /// The driver name (also the attribute and capacity domain).
    pub fn driver(&self) -> &str {
        &self.driver
    }

    /// The kind of device a class selects; `None` for classes of other drivers.
    pub fn kind(&self, class: &str) -> Option<DeviceKind> {
        if class == self.whole {
            Some(DeviceKind::Whole)
        } else if class == self.mig {
            Some(DeviceKind::Mig)
        } else if class == self.shared {
            Some(DeviceKind::Shared)
        } else if class == self.share {
            Some(DeviceKind::Share)
        } else {
            None
        }
    }
}

/// What kind of device a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    /// Whole GPUs.
    #[serde(rename = "gpu")]
    Whole,
    /// MIG partitions.
    Mig,
    /// Shares of a GPU (consumable `memory` and `compute`).
    Shared,
    /// One time-sliced replica of a GPU (clusters without consumable capacity).
    Share,
}

impl DeviceKind {
    /// Lower-case name, as the `type` device attribute spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Whole => "gpu",
            DeviceKind::Mig => "mig",
            DeviceKind::Shared => "shared",
            DeviceKind::Share => "share",
        }
    }
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many devices an alternative takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Count {
    /// Exactly this many (`allocationMode: ExactCount`).
    Exact(u32),
    /// Every matching device on the node (`allocationMode: All`).
    All,
}

/// One way of satisfying a request: the request itself, or one `firstAvailable` entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Alternative {
    /// Subrequest name (`firstAvailable`), `None` for an exact request.
    pub subrequest: Option<String>,
    /// Device kind, from the DeviceClass.
    pub kind: DeviceKind,
    /// Devices wanted.
    pub count: Count,
    /// Memory asked per device, bytes (capacity request on shared devices, or a MIG profile's
    /// minimum); `None` when unstated.
    pub memory_bytes: Option<u64>,
    /// Compute asked per device, percent of the GPU's SMs (shared devices); `None` when
    /// unstated.
    pub compute_percent: Option<f64>,
    /// MIG profile named by a selector (`device.attributes["<driver>"].profile == "1g.10gb"`).
    pub mig_profile: Option<String>,
    /// GPU product named by a selector (`device.attributes["<driver>"].model == "NVIDIA L4"`):
    /// what the typical-pod learner pins the pod's shape to.
    pub gpu_model: Option<String>,
}

/// One GPU request: a claim request (with its alternatives in order) or a classic
/// `nvidia.com/gpu` extended-resource request.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GpuRequest {
    /// Where it comes from: `<namespace>/<claim>/<request>`, or `nvidia.com/gpu`.
    pub source: String,
    /// The alternatives in the order the allocator tries them (one for an exact request).
    pub alternatives: Vec<Alternative>,
}

/// Everything the pod asks of tessera's GPUs.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodDemand {
    /// GPU requests still to be allocated.
    pub requests: Vec<GpuRequest>,
    /// Claims the pod references that are not (yet) in the cache, as `<namespace>/<name>`;
    /// also pod claims from a template whose generated name is not in the pod status yet.
    pub missing_claims: Vec<String>,
    /// Requests that cannot be read (reason per request); they are left out of `requests`.
    pub unreadable: Vec<String>,
    /// CPU request, milli-cores (for the fragmentation term).
    pub cpu_milli: u64,
    /// Memory request, MiB.
    pub memory_mib: u64,
    /// The pod's pending claims that hold GPU requests, in the allocator model's terms.
    #[serde(skip)]
    pub model_claims: Vec<Arc<Claim>>,
    /// Whether some GPU request has no model form (classic `nvidia.com/gpu`, a claim also
    /// asking another driver, a claim not read in full): the allocator cannot be predicted.
    #[serde(skip)]
    pub model_missing: bool,
    /// [`PodDemand::shape_key`], computed once.
    #[serde(skip)]
    pub shape: OnceLock<u64>,
}

impl PodDemand {
    /// A hash of what scoring reads of the demand (each request's alternatives and the CPU
    /// and memory asked, not where they come from): two pods with equal keys score alike on
    /// every node, so a node's score can be remembered across pods of one shape.
    pub fn shape_key(&self) -> u64 {
        *self.shape.get_or_init(|| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            for request in &self.requests {
                request.alternatives.len().hash(&mut h);
                for a in &request.alternatives {
                    a.kind.hash(&mut h);
                    match a.count {
                        Count::Exact(n) => (0u8, n).hash(&mut h),
                        Count::All => (1u8, 0u32).hash(&mut h),
                    }
                    a.memory_bytes.hash(&mut h);
                    a.compute_percent.map(f64::to_bits).hash(&mut h);
                    a.mig_profile.hash(&mut h);
                    a.gpu_model.hash(&mut h);
                }
            }
            (self.requests.len(), self.cpu_milli, self.memory_mib).hash(&mut h);
            // What the allocator model reads (selectors above all), names aside: two pods
            // whose claims differ only in a CEL selector get different devices.
            self.model_missing.hash(&mut h);
            for claim in &self.model_claims {
                format!("{:?}", claim.requests).hash(&mut h);
            }
            h.finish()
        })
    }

    /// Whether the pod asks for any GPU, or might (a claim not seen yet may hold one).
    pub fn may_need_gpu(&self) -> bool {
        !self.requests.is_empty() || !self.missing_claims.is_empty()
    }

    /// Whether every part of the demand is known, so it can be scored.
    pub fn is_complete(&self) -> bool {
        self.missing_claims.is_empty() && self.unreadable.is_empty()
    }
}
