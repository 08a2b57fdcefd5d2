//! Usage metrics, registered under the plugin's prefix (`tessera_plugin_gpu_…`).

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::attribute::Attribution;
use super::held::HeldDevice;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UsageLabels {
    namespace: String,
    pod: String,
    container: String,
    claim: String,
    device: String,
    r#type: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UtilLabels {
    #[prometheus(flatten)]
    usage: UsageLabels,
    source: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HeldLabels {
    #[prometheus(flatten)]
    key: UsageKeyLabels,
    gpu_model: String,
    gpu_memory_bytes: String,
    profile: String,
    memory_bytes: String,
    compute_percent: String,
}

/// The held-device key without the descriptive labels, so a query can divide usage by it.
/// [`HeldLabels`] starts with these same labels, in this order.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UsageKeyLabels {
    namespace: String,
    pod: String,
    claim: String,
    device: String,
    r#type: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    kind: &'static str,
}

/// GPU memory and compute per container, and what could not be attributed.
#[derive(Debug, Clone, Default)]
pub struct UsageMetrics {
    memory: Family<UsageLabels, Gauge>,
    utilization: Family<UtilLabels, Gauge<f64, AtomicU64>>,
    held: Family<HeldLabels, Gauge>,
    held_memory: Family<UsageKeyLabels, Gauge>,
    processes: Family<OutcomeLabels, Counter>,
    overflow: Counter,
    errors: Family<ErrorLabels, Counter>,
}

const MEMORY_HELP: &str = "GPU memory in use by a container's processes on a prepared device, in bytes (NVML running compute processes, per GPU and per MIG instance; graphics-only processes are not listed by NVML)";
const UTIL_HELP: &str = "Compute utilization of a prepared device by a container, percent. source=process: sum of the container's per-process SM samples (whole GPUs, time-sliced and MPS shares alike). NVML has no per-process samples inside MIG instances: there source=instance is the instance's own utilization, and source=device the whole GPU's when it gives no per-process samples; both only for a device one claim holds alone. A shared GPU without per-process samples has no series rather than a guess";
const HELD_HELP: &str = "1 for every device a prepared claim holds on this node, per pod the claim is reserved for, whether or not a process runs on it: the device's GPU model (NVML product name) and memory, its MIG profile, and the memory (bytes) and compute (percent of the GPU's SMs) it gives the claim where the node knows them (empty for a time-sliced share, whose reservation is in the claim's allocation). Cardinality bounded by --usage-max-series";
const HELD_MEMORY_HELP: &str = "GPU memory a prepared claim's device gives it, bytes (the GPU's, the MIG instance's, or an MPS share's pinned-memory limit), per pod the claim is reserved for: the allocation to compare tessera_plugin_gpu_memory_used_bytes with. No series where the node does not know the size (a time-sliced share)";
const PROCESSES_HELP: &str = "GPU compute processes seen per sample by outcome: attributed; exited (gone between the NVML and /proc reads); not_pod (cgroup is not a pod's: host daemons, other agents; counted, not attributed); unreadable (/proc/<pid>/cgroup not readable); unclaimed (a pod's process on a device none of its prepared claims holds)";
const OVERFLOW_HELP: &str = "Usage series dropped because a sample had more than --usage-max-series (namespace, pod, container, claim, device) combinations";

impl UsageMetrics {
    /// Create the metrics and register them in `registry` under `tessera_plugin_`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = UsageMetrics::default();
        let registry = registry.sub_registry_with_prefix("tessera_plugin");
        registry.register("gpu_memory_used_bytes", MEMORY_HELP, metrics.memory.clone());
        registry.register(
            "gpu_utilization_percent",
            UTIL_HELP,
            metrics.utilization.clone(),
        );
        registry.register("claim_device_info", HELD_HELP, metrics.held.clone());
        registry.register(
            "claim_device_memory_bytes",
            HELD_MEMORY_HELP,
            metrics.held_memory.clone(),
        );
        registry.register(
            "gpu_usage_processes",
            PROCESSES_HELP,
            metrics.processes.clone(),
        );
        registry.register(
            "gpu_usage_series_overflow",
            OVERFLOW_HELP,
            metrics.overflow.clone(),
        );
        registry.register(
            "gpu_usage_errors",
            "GPU usage samples that failed, by kind (nvml, checkpoint, host_proc, ...)",
            metrics.errors.clone(),
        );
        metrics
    }

    /// Replace the usage series with `attribution`'s and add its counts. Series of
    /// containers that stopped using a device disappear.
    pub fn record(&self, attribution: &Attribution) {
        self.memory.clear();
        self.utilization.clear();
        for row in &attribution.rows {
            let labels = UsageLabels {
                namespace: row.namespace.clone(),
                pod: row.pod.clone(),
                container: row.container.clone(),
                claim: row.claim.clone(),
                device: row.device.clone(),
                r#type: row.device_type,
            };
            let bytes = i64::try_from(row.memory_bytes).unwrap_or(i64::MAX);
            self.memory.get_or_create(&labels).set(bytes);
            if let Some((percent, source)) = row.utilization {
                let labels = UtilLabels {
                    usage: labels,
                    source: source.label(),
                };
                self.utilization
                    .get_or_create(&labels)
                    .set(f64::from(percent));
            }
        }
        for (outcome, n) in [
            ("attributed", attribution.attributed),
            ("exited", attribution.exited),
            ("not_pod", attribution.not_pod),
            ("unreadable", attribution.unreadable),
            ("unclaimed", attribution.unclaimed),
        ] {
            self.processes
                .get_or_create(&OutcomeLabels { outcome })
                .inc_by(n);
        }
        self.overflow.inc_by(attribution.overflow);
    }

    /// Replace the held-device series with `held`'s.
    pub fn record_held(&self, held: &[HeldDevice]) {
        self.held.clear();
        self.held_memory.clear();
        let text = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
        for row in held {
            let key = UsageKeyLabels {
                namespace: row.namespace.clone(),
                pod: row.pod.clone(),
                claim: row.claim.clone(),
                device: row.device.clone(),
                r#type: row.device_type,
            };
            let labels = HeldLabels {
                key: key.clone(),
                gpu_model: row.gpu_model.clone(),
                gpu_memory_bytes: text(Some(row.gpu_memory_bytes).filter(|b| *b > 0)),
                profile: row.profile.clone(),
                memory_bytes: text(row.memory_bytes),
                compute_percent: text(row.compute_percent.map(u64::from)),
            };
            self.held.get_or_create(&labels).set(1);
            if let Some(bytes) = row.memory_bytes {
                self.held_memory
                    .get_or_create(&key)
                    .set(i64::try_from(bytes).unwrap_or(i64::MAX));
            }
        }
    }

    /// Count a failed sample; the last good series stay out (cleared) so no stale figure is
    /// reported as current.
    pub fn record_error(&self, kind: &'static str) {
        self.memory.clear();
        self.utilization.clear();
        self.errors.get_or_create(&ErrorLabels { kind }).inc();
    }
}
