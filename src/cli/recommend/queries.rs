//! The PromQL `tessera recommend` sends, one instant query each, evaluated at `--end`.
//!
//! `k` below is `namespace, pod, claim, device`: one allocation. Usage series exist only while
//! a process runs, so they are filled with 0 wherever the held-device series says the device
//! was held (`or on (k) 0 * held`), and percentiles run over a subquery at `--step`
//! resolution. A utilization series is filled with 0 only while no process ran at all: where
//! processes ran but the driver gave no utilization (a MIG instance without instance
//! utilization), compute stays unmeasured rather than 0.

/// The held-device info metric of the plugin.
pub const HELD: &str = "tessera_plugin_claim_device_info";
/// Memory in use per container.
pub const MEMORY: &str = "tessera_plugin_gpu_memory_used_bytes";
/// Compute per container.
pub const UTILIZATION: &str = "tessera_plugin_gpu_utilization_percent";
/// Counted on every usage sample: its presence says the plugin's sampler is scraped.
pub const PROCESSES: &str = "tessera_plugin_gpu_usage_processes_total";
/// The extender's per-allocation cost.
pub const EXTENDER_COST: &str = "tessera_extender_allocation_cost_dollars_per_hour";

const K: &str = "namespace, pod, claim, device";

/// A query's range (`7d`, `86400s`) and subquery step, in Prometheus duration syntax.
#[derive(Debug, Clone)]
pub struct Range {
    /// The range, e.g. `604800s`.
    pub range: String,
    /// The subquery resolution, e.g. `60s`.
    pub step: String,
}

impl Range {
    /// A range of `seconds` at `step_seconds` resolution.
    pub fn new(seconds: u64, step_seconds: u64) -> Self {
        Range {
            range: format!("{seconds}s"),
            step: format!("{step_seconds}s"),
        }
    }

    fn sub(&self) -> String {
        format!("[{}:{}]", self.range, self.step)
    }
}

fn held() -> String {
    format!("max by ({K}) ({HELD})")
}

fn memory_raw() -> String {
    format!("sum by ({K}) ({MEMORY})")
}

fn util_raw() -> String {
    format!("sum by ({K}) ({UTILIZATION})")
}

/// Memory in use per allocation, 0 while held with nothing running.
fn memory_filled() -> String {
    format!("({} or on ({K}) 0 * {})", memory_raw(), held())
}

/// Compute per allocation, 0 while held with no process at all.
fn util_filled() -> String {
    format!(
        "({} or on ({K}) 0 * ({} unless on ({K}) {}))",
        util_raw(),
        held(),
        memory_raw()
    )
}

/// Every allocation seen in the window, with what it holds.
pub fn allocations(r: &Range) -> String {
    format!(
        "max by ({K}, type, gpu_model, gpu_memory_bytes, profile, memory_bytes, compute_percent) \
         (max_over_time({HELD}[{}]))",
        r.range
    )
}

/// Samples of the held series per allocation (× step = seconds held).
pub fn held_samples(r: &Range) -> String {
    format!("count_over_time({}{})", held(), r.sub())
}

/// p95 memory.
pub fn memory_p95(r: &Range) -> String {
    format!("quantile_over_time(0.95, {}{})", memory_filled(), r.sub())
}

/// Peak memory.
pub fn memory_peak(r: &Range) -> String {
    format!("max_over_time({}{})", memory_filled(), r.sub())
}

/// p95 compute.
pub fn util_p95(r: &Range) -> String {
    format!("quantile_over_time(0.95, {}{})", util_filled(), r.sub())
}

/// Peak compute.
pub fn util_peak(r: &Range) -> String {
    format!("max_over_time({}{})", util_filled(), r.sub())
}

/// Present for allocations whose compute was measured at least once.
pub fn util_measured(r: &Range) -> String {
    format!("max_over_time({}{})", util_raw(), r.sub())
}

/// Present for allocations on which a process ran at least once.
pub fn process_ran(r: &Range) -> String {
    format!("max_over_time({}{})", memory_raw(), r.sub())
}

/// The extender's mean cost per allocation (joined on namespace, claim, device).
pub fn extender_cost(r: &Range) -> String {
    format!(
        "max by (namespace, claim, device) (avg_over_time({EXTENDER_COST}[{}]))",
        r.range
    )
}

fn pods(r: &Range) -> String {
    format!(
        "max by (namespace, pod) (max_over_time({HELD}[{}]))",
        r.range
    )
}

/// kube-state-metrics' owners of the pods that held devices.
pub fn pod_owners(r: &Range) -> String {
    format!(
        "max by (namespace, pod, owner_kind, owner_name) \
         (max_over_time(kube_pod_owner[{}]) and on (namespace, pod) {})",
        r.range,
        pods(r)
    )
}

/// kube-state-metrics' owners of the ReplicaSets owning those pods.
pub fn replicaset_owners(r: &Range) -> String {
    middle_owners(r, "kube_replicaset_owner", "ReplicaSet", "replicaset")
}

/// kube-state-metrics' owners of the Jobs owning those pods (CronJobs).
pub fn job_owners(r: &Range) -> String {
    middle_owners(r, "kube_job_owner", "Job", "job_name")
}

/// `metric` (the owners of objects of `kind`, named by label `label`) for the objects of that
/// kind that own a pod which held a device.
fn middle_owners(r: &Range, metric: &str, kind: &str, label: &str) -> String {
    format!(
        "max by (namespace, {label}, owner_kind, owner_name) \
         (max_over_time({metric}[{range}]) and on (namespace, {label}) \
         label_replace(max by (namespace, owner_name) \
         (max_over_time(kube_pod_owner{{owner_kind=\"{kind}\"}}[{range}]) \
         and on (namespace, pod) {pods}), \"{label}\", \"$1\", \"owner_name\", \"(.*)\"))",
        range = r.range,
        pods = pods(r)
    )
}

/// One series when `metric` has any sample in the window.
pub fn present(metric: &str, r: &Range) -> String {
    format!("count(max_over_time({metric}[{}]))", r.range)
}
