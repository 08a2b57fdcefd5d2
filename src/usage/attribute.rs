//! The pure step: device samples + PID owners + prepared claims → usage per (namespace, pod,
//! container, claim, device, type).
//!
//! What NVML can attribute, and what this does where it cannot:
//! - memory: per process on whole GPUs and inside MIG instances (a process on a MIG instance
//!   is listed under the instance's handle), summed per container;
//! - compute: per-process SM samples exist only on whole GPUs (not inside MIG instances). A
//!   container's utilization is the sum of its processes' samples (`source="process"`). On a
//!   MIG instance the instance's own utilization is reported instead (`source="instance"`),
//!   and on a whole GPU without per-process samples the GPU's (`source="device"`), both only
//!   for devices one claim holds exclusively; a shared GPU without per-process samples gets no
//!   compute figure rather than a guess.
//! - time-sliced and MPS clients of one GPU look the same to NVML (processes of that GPU);
//!   their pod UIDs tell their claims apart.

use std::collections::{BTreeMap, HashMap};

use super::DeviceSample;
use super::cgroup::{Lookup, Owner};
use super::holdings::Holding;

/// What the API server says about a pod, for labels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodNames {
    /// Pod namespace.
    pub namespace: String,
    /// Pod name.
    pub name: String,
    /// UIDs of the claims the pod holds.
    pub claim_uids: Vec<String>,
    /// Container ID (64 hex, no runtime prefix) → container name.
    pub containers: HashMap<String, String>,
}

/// Pod UID → names.
pub type PodDirectory = HashMap<String, PodNames>;

/// Where a row's utilization figure comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UtilizationSource {
    /// Sum of the container's per-process SM samples.
    Process,
    /// The MIG instance's own utilization (NVML has no per-process samples there).
    Instance,
    /// The whole GPU's utilization, which one claim holds alone.
    Device,
}

impl UtilizationSource {
    /// The `source` label value.
    pub fn label(self) -> &'static str {
        match self {
            UtilizationSource::Process => "process",
            UtilizationSource::Instance => "instance",
            UtilizationSource::Device => "device",
        }
    }
}

/// Usage of one container on one device of one claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRow {
    /// Pod namespace.
    pub namespace: String,
    /// Pod name (the pod UID while the API server has not named it).
    pub pod: String,
    /// Container name (the 12-character container ID while unknown; empty for a process in
    /// the pod's own cgroup).
    pub container: String,
    /// Claim `name` (in the pod's namespace).
    pub claim: String,
    /// Device name.
    pub device: String,
    /// Device type.
    pub device_type: &'static str,
    /// GPU memory held by the container's processes on the device, in bytes.
    pub memory_bytes: u64,
    /// Processes counted.
    pub processes: u32,
    /// Compute utilization in percent, and where it comes from; `None` where NVML cannot say.
    pub utilization: Option<(u32, UtilizationSource)>,
}

/// One attribution pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attribution {
    /// At most `cap` rows, ordered by (namespace, pod, container, claim, device).
    pub rows: Vec<UsageRow>,
    /// Processes attributed to a row.
    pub attributed: u64,
    /// Processes that exited between the GPU read and the `/proc` read.
    pub exited: u64,
    /// Processes whose cgroup is not a pod's (host daemons, other node agents).
    pub not_pod: u64,
    /// Processes whose `/proc/<pid>/cgroup` could not be read (not the host's `/proc`?).
    pub unreadable: u64,
    /// Pod processes on a device none of the pod's prepared claims holds (another driver's
    /// GPU, or a claim prepared by another plugin instance not yet in the checkpoint).
    pub unclaimed: u64,
    /// Rows dropped because there were more than `cap`.
    pub overflow: u64,
}

type Key = (String, String, String, String, String);

/// Attribute every process of `samples` to the claim, pod and container holding it.
///
/// `owner` reads a PID's cgroup (`cgroup::lookup` on the host's `/proc` in production);
/// `pods` names pod UIDs; at most `cap` rows are returned.
pub fn attribute(
    samples: &[DeviceSample],
    holdings: &[Holding],
    pods: &PodDirectory,
    mut owner: impl FnMut(u32) -> Lookup,
    cap: usize,
) -> Attribution {
    let mut by_uuid: HashMap<&str, Vec<&Holding>> = HashMap::new();
    for holding in holdings {
        by_uuid.entry(&holding.uuid).or_default().push(holding);
    }
    let mut out = Attribution::default();
    let mut rows: BTreeMap<Key, UsageRow> = BTreeMap::new();
    // Per-process samples count only where the driver gave any on that device: a whole GPU
    // that reports samples for some processes reports none for the idle ones (0 %).
    for sample in samples {
        let held = by_uuid.get(sample.uuid.as_str());
        let has_process_samples =
            !sample.is_mig() && sample.processes.iter().any(|p| p.sm_percent.is_some());
        let mut touched: Vec<Key> = Vec::new();
        for process in &sample.processes {
            let (pod_uid, container_id) = match owner(process.pid) {
                Lookup::Gone => {
                    out.exited += 1;
                    continue;
                }
                Lookup::Unreadable => {
                    out.unreadable += 1;
                    continue;
                }
                Lookup::Found(Owner::NotPod) => {
                    out.not_pod += 1;
                    continue;
                }
                Lookup::Found(Owner::Pod {
                    pod_uid,
                    container_id,
                }) => (pod_uid, container_id),
            };
            let names = pods.get(&pod_uid);
            let Some(holding) = held.and_then(|h| pick(h, names)) else {
                out.unclaimed += 1;
                continue;
            };
            out.attributed += 1;
            let container = match (&container_id, names) {
                (Some(id), Some(n)) => n.containers.get(id).cloned().unwrap_or_else(|| short(id)),
                (Some(id), None) => short(id),
                (None, _) => String::new(),
            };
            let (namespace, pod) = match names {
                Some(n) => (n.namespace.clone(), n.name.clone()),
                None => (holding.namespace.clone(), pod_uid.clone()),
            };
            let key = (
                namespace.clone(),
                pod.clone(),
                container.clone(),
                holding.claim.clone(),
                holding.device.clone(),
            );
            let row = rows.entry(key.clone()).or_insert_with(|| UsageRow {
                namespace,
                pod,
                container,
                claim: holding.claim.clone(),
                device: holding.device.clone(),
                device_type: holding.device_type,
                memory_bytes: 0,
                processes: 0,
                utilization: None,
            });
            row.memory_bytes = row
                .memory_bytes
                .saturating_add(process.used_memory_bytes.unwrap_or(0));
            row.processes = row.processes.saturating_add(1);
            if has_process_samples {
                let sm = process.sm_percent.unwrap_or(0);
                let total = row.utilization.map_or(0, |(u, _)| u).saturating_add(sm);
                row.utilization = Some((total.min(100), UtilizationSource::Process));
            }
            touched.push(key);
        }
        // Fallbacks, only where one claim holds the device alone.
        let exclusive = held.is_some_and(|h| h.len() == 1 && h[0].exclusive());
        if !has_process_samples
            && exclusive
            && let Some(util) = sample.utilization_percent
        {
            let source = if sample.is_mig() {
                UtilizationSource::Instance
            } else {
                UtilizationSource::Device
            };
            for key in &touched {
                if let Some(row) = rows.get_mut(key) {
                    row.utilization = Some((util.min(100), source));
                }
            }
        }
    }
    out.overflow = rows.len().saturating_sub(cap) as u64;
    out.rows = rows.into_values().take(cap).collect();
    out
}

/// The holding of `holders` this pod's process belongs to: the one among the pod's claims, or
/// the only holder of an exclusive device when the pod is not (yet) named.
fn pick<'a>(holders: &[&'a Holding], names: Option<&PodNames>) -> Option<&'a Holding> {
    match names {
        Some(n) => holders
            .iter()
            .find(|h| n.claim_uids.contains(&h.claim_uid))
            .copied(),
        None => match holders {
            [only] if only.exclusive() => Some(*only),
            _ => None,
        },
    }
}

fn short(container_id: &str) -> String {
    container_id.chars().take(12).collect()
}
