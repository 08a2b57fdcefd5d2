//! The pure step behind `tessera_plugin_claim_device_info`: what each prepared claim holds,
//! whether or not anything runs on it.
//!
//! Usage series exist only while a process runs, so on their own they cannot tell an idle
//! allocation from no allocation, nor say what a claim holds (GPU model, MIG profile, size).
//! `tessera recommend` needs both: this gives one row per (claim, device, pod) with the
//! device's model and size, from the checkpoint and the discovered inventory.

use std::collections::BTreeMap;

use super::attribute::PodDirectory;
use super::holdings::Holding;
use crate::model::Gpu;
use crate::model::mig::{GpuProduct, profile};

/// One device a prepared claim holds, for one pod the claim is reserved for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct HeldDevice {
    /// Claim namespace.
    pub namespace: String,
    /// Pod name; its UID until the API server named it; empty when no pod is known yet.
    pub pod: String,
    /// Claim name.
    pub claim: String,
    /// Published device name.
    pub device: String,
    /// `gpu`, `mig`, `shared` or `share`.
    pub device_type: &'static str,
    /// NVML product name of the physical GPU, e.g. `NVIDIA H100 80GB HBM3`; empty when the
    /// inventory no longer lists the GPU.
    pub gpu_model: String,
    /// The physical GPU's memory, bytes (0 when unknown).
    pub gpu_memory_bytes: u64,
    /// MIG profile of a `mig` device (empty otherwise).
    pub profile: String,
    /// Memory the device gives the claim, bytes, where the node knows it: the GPU's for a whole
    /// GPU, the instance's for MIG, the MPS pinned-memory limit for an MPS share.
    pub memory_bytes: Option<u64>,
    /// Compute the device gives the claim, percent of the GPU's SMs, where the node knows it:
    /// 100 for a whole GPU, the profile's compute slices for MIG, the MPS active-thread
    /// percentage for an MPS share.
    pub compute_percent: Option<u32>,
}

/// Every held device of `held`, once per pod its claim is reserved for (pods from `pods`),
/// sized from the node's discovered `gpus`; at most `cap` rows, in label order.
pub fn held_devices(
    held: &[Holding],
    pods: &PodDirectory,
    gpus: &[Gpu],
    cap: usize,
) -> Vec<HeldDevice> {
    let mut by_claim: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (uid, names) in pods {
        for claim in &names.claim_uids {
            let pod = if names.name.is_empty() {
                uid.as_str()
            } else {
                names.name.as_str()
            };
            by_claim.entry(claim.as_str()).or_default().push(pod);
        }
    }
    let mut rows = Vec::new();
    for holding in held {
        let gpu = gpus.iter().find(|g| g.uuid == holding.gpu_uuid);
        let gpu_model = gpu.map(|g| g.product_name.clone()).unwrap_or_default();
        let gpu_memory_bytes = gpu.map_or(0, |g| g.memory_bytes);
        let product = gpu.and_then(|g| g.mig_product());
        let (memory_bytes, compute_percent) = size(holding, gpu_memory_bytes, product);
        let pods_of_claim = by_claim
            .get(holding.claim_uid.as_str())
            .cloned()
            .unwrap_or_else(|| vec![""]);
        for pod in pods_of_claim {
            rows.push(HeldDevice {
                namespace: holding.namespace.clone(),
                pod: pod.to_owned(),
                claim: holding.claim.clone(),
                device: holding.device.clone(),
                device_type: holding.device_type,
                gpu_model: gpu_model.clone(),
                gpu_memory_bytes,
                profile: holding.profile.clone().unwrap_or_default(),
                memory_bytes,
                compute_percent,
            });
        }
    }
    rows.sort();
    rows.dedup();
    rows.truncate(cap);
    rows
}

/// What the device gives its claim, where the node knows it. A time-sliced share's
/// reservation lives in the claim's allocation, not on the node: left unknown.
fn size(
    holding: &Holding,
    gpu_memory_bytes: u64,
    product: Option<GpuProduct>,
) -> (Option<u64>, Option<u32>) {
    let known = |bytes: u64| (bytes > 0).then_some(bytes);
    match holding.device_type {
        "gpu" => (known(gpu_memory_bytes), Some(100)),
        "mig" => {
            let Some(p) = product
                .zip(holding.profile.as_deref())
                .and_then(|(product, name)| {
                    profile(product, name).map(|p| (p, product.total_compute_slices()))
                })
            else {
                return (None, None);
            };
            let (p, total) = p;
            let compute = u32::from(p.compute_slices) * 100 / u32::from(total.max(1));
            (Some(p.capacity_mib() * 1024 * 1024), Some(compute))
        }
        _ => match holding.mps {
            Some(limits) => (
                limits.pinned_memory_limit_bytes,
                limits.active_thread_percentage,
            ),
            None => (None, None),
        },
    }
}
