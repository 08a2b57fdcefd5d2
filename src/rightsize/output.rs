//! What `tessera recommend` reports: the serialized shape of the table and JSON
//! (`docs/recommend.md` documents every field).

use serde::Serialize;

use super::owner::Workload;
use super::partition::Holds;
use super::price::PriceSource;

/// Version of the JSON schema (`docs/recommend.md`); bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// The window the numbers cover.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Window {
    /// End, Unix seconds.
    pub end_unix: f64,
    /// End, RFC 3339.
    pub end: String,
    /// Length, seconds.
    pub seconds: f64,
}

/// The rules' settings as the report states them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// Memory headroom over peak.
    pub headroom: f64,
    /// Allowed target kinds besides `gpu`.
    pub partition_kinds: Vec<&'static str>,
    /// Idle threshold, percent of the device.
    pub idle_threshold_percent: f64,
    /// Idle window, seconds.
    pub idle_for_seconds: f64,
}

/// Everything `tessera recommend` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The window.
    pub window: Window,
    /// The rules.
    pub settings: Settings,
    /// One row per (workload, GPU model, what it holds), largest saving first.
    pub workloads: Vec<WorkloadRow>,
    /// Allocations held and unused for the whole idle window, most expensive first.
    pub idle: Vec<IdleRow>,
    /// Sums.
    pub totals: Totals,
}

/// Memory figures, bytes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemoryStats {
    /// 95th percentile.
    pub p95_bytes: f64,
    /// Peak.
    pub peak_bytes: f64,
}

/// Compute figures, percent of a whole GPU (a MIG instance's own utilization scaled by its
/// share of the SMs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComputeStats {
    /// 95th percentile.
    pub p95_percent: f64,
    /// Peak.
    pub peak_percent: f64,
}

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    /// Move to the smaller partition.
    Shrink,
    /// Already the smallest adequate partition.
    Keep,
    /// The workload needs more than it holds.
    Grow,
    /// Move, but what it holds now is not known on the node (a time-sliced share).
    Resize,
    /// No recommendation (see the reason).
    Unknown,
}

impl Action {
    /// The JSON and table word.
    pub fn label(self) -> &'static str {
        match self {
            Action::Shrink => "shrink",
            Action::Keep => "keep",
            Action::Grow => "grow",
            Action::Resize => "resize",
            Action::Unknown => "unknown",
        }
    }
}

/// The recommended partition.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recommendation {
    /// What to do.
    pub action: Action,
    /// The smallest adequate partition, when one was found.
    pub target: Option<Holds>,
    /// Why, in words.
    pub reason: String,
}

/// Dollars.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cost {
    /// Price of one GPU-hour of this model (held-time weighted over the allocations).
    pub price_per_gpu_hour: f64,
    /// Where the price came from (of the longest-held allocation).
    pub price_source: PriceSource,
    /// Average spend rate over the window, dollars per hour; `None` when a device's share of
    /// its GPU is unknown and the extender gave no cost.
    pub now_per_hour: Option<f64>,
    /// The same after the change.
    pub after_per_hour: Option<f64>,
    /// `now_per_hour` × 730.
    pub now_per_month: Option<f64>,
    /// `after_per_hour` × 730.
    pub after_per_month: Option<f64>,
    /// `now_per_month − after_per_month`.
    pub savings_per_month: Option<f64>,
}

/// One workload on one GPU model holding one kind of device.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadRow {
    /// The owner.
    pub workload: Workload,
    /// NVML product name of its GPUs.
    pub gpu_model: String,
    /// What each of its devices is now.
    pub holds: Holds,
    /// Distinct pods seen.
    pub pods: usize,
    /// (pod, claim, device) allocations seen.
    pub allocations: usize,
    /// Most devices of this kind one pod held.
    pub devices_per_pod: u32,
    /// Device-hours held in the window.
    pub held_hours: f64,
    /// Memory in use per device (the most demanding allocation's).
    pub memory: MemoryStats,
    /// Compute per device; `None` when it was not measured.
    pub compute: Option<ComputeStats>,
    /// The change.
    pub recommendation: Recommendation,
    /// Dollars.
    pub cost: Cost,
    /// The ResourceClaimTemplate to use, for `shrink`, `grow` and `resize`.
    pub claim_template: Option<String>,
    /// Caveats (short history, guessed owner, …).
    pub notes: Vec<String>,
}

/// A device held and unused for the whole idle window.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdleRow {
    /// The pod's owner.
    pub workload: Workload,
    /// Pod.
    pub pod: String,
    /// Claim.
    pub claim: String,
    /// Device.
    pub device: String,
    /// NVML product name.
    pub gpu_model: String,
    /// What the device is.
    pub holds: Holds,
    /// Held, seconds of the idle window.
    pub held_seconds: f64,
    /// Peak compute in the idle window, percent of the device.
    pub peak_compute_percent: f64,
    /// Peak memory in use in the idle window, bytes.
    pub peak_memory_bytes: f64,
    /// What it costs, dollars per hour, when known.
    pub cost_per_hour: Option<f64>,
    /// × 730.
    pub cost_per_month: Option<f64>,
}

/// Sums over the rows whose figures are known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    /// Σ now per month.
    pub now_per_month: f64,
    /// Σ after per month.
    pub after_per_month: f64,
    /// Σ savings per month.
    pub savings_per_month: f64,
    /// Σ idle allocations' cost per month.
    pub idle_per_month: f64,
}
