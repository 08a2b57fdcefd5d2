//! What the recommender is given: one [`Allocation`] per (namespace, pod, claim, device) seen
//! in the window, and who owns which pod.

use std::collections::BTreeMap;

/// One device a claim held for one pod during the window, with its usage.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Allocation {
    /// Namespace of the claim and pod.
    pub namespace: String,
    /// Pod name (empty when the plugin never learnt which pod the claim was reserved for).
    pub pod: String,
    /// Claim name.
    pub claim: String,
    /// Published device name, e.g. `gpu-0`, `gpu-1-mig-1g10gb-0`.
    pub device: String,
    /// `gpu`, `mig`, `shared` or `share`.
    pub device_type: String,
    /// NVML product name of the physical GPU, e.g. `NVIDIA H100 80GB HBM3`.
    pub gpu_model: String,
    /// The physical GPU's memory in bytes, when known.
    pub gpu_memory_bytes: Option<u64>,
    /// MIG profile of a `mig` device.
    pub profile: Option<String>,
    /// Memory the device gives the claim, bytes, when the node knows it.
    pub memory_bytes: Option<u64>,
    /// Compute the device gives the claim, percent of the GPU, when the node knows it.
    pub compute_percent: Option<f64>,
    /// Seconds of the window the device was held (samples of the held-device series × step).
    pub held_seconds: f64,
    /// Usage over the window.
    pub usage: Usage,
    /// The extender's attributed cost of this allocation, dollars per hour (mean over the
    /// window), when the extender runs.
    pub extender_cost_per_hour: Option<f64>,
    /// The most recent stretch of the window, for idle detection.
    pub idle: IdleWindow,
}

/// Usage of one allocation over the window. Memory sums the pod's containers; compute is in
/// percent **of the device** as the plugin measured it (of the MIG instance for `mig`, of the
/// GPU otherwise).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// 95th percentile of memory in use, bytes (0 while no process ran).
    pub p95_memory_bytes: f64,
    /// Peak memory in use, bytes.
    pub peak_memory_bytes: f64,
    /// 95th percentile of compute, percent of the device; `None` when never measured (a MIG
    /// instance whose driver reports no utilization).
    pub p95_compute_percent: Option<f64>,
    /// Peak compute, percent of the device.
    pub peak_compute_percent: Option<f64>,
}

/// The last `--idle-for` of the window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct IdleWindow {
    /// Seconds of it the device was held.
    pub held_seconds: f64,
    /// Peak compute in it, percent of the device (0 while no process ran); `None` when a
    /// process ran but its compute was never measured.
    pub peak_compute_percent: Option<f64>,
    /// Peak memory in use in it, bytes.
    pub peak_memory_bytes: f64,
}

/// Pod and ReplicaSet owners, as kube-state-metrics reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owners {
    /// (namespace, pod) → (owner kind, owner name), from `kube_pod_owner`.
    pub pods: BTreeMap<(String, String), (String, String)>,
    /// (namespace, ReplicaSet) → (owner kind, owner name), from `kube_replicaset_owner`.
    pub replicasets: BTreeMap<(String, String), (String, String)>,
    /// (namespace, Job) → (owner kind, owner name), from `kube_job_owner` (a CronJob's runs).
    pub jobs: BTreeMap<(String, String), (String, String)>,
}
