//! The cost experiment's records and report: dollars per allocated GPU-hour, work lost to
//! spot interruptions and unallocated GPUs, per policy, at fixed arrival points.

pub mod summary;
pub mod write;

pub use summary::{CostRow, CostSummary, PointStats, summarize_cost};
pub use write::{CostWritten, write_cost};

use super::RunRecord;

/// Arrived-workload points (% of cluster GPU capacity) the cost report reads.
pub const COST_POINTS_PCT: [u32; 3] = [50, 80, 100];

/// The priced cluster as one run left it when the arrived workload first reached a point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CostSnapshot {
    /// The arrival point, % of cluster GPU capacity.
    pub arrived_pct: u32,
    /// Nodes with at least one pod; the others count as scaled away.
    pub occupied_nodes: u64,
    /// Hourly price of the occupied nodes, US dollars.
    pub occupied_usd_per_hour: f64,
    /// GPU milli allocated to pods.
    pub allocated_milli: u64,
    /// GPU milli allocated on spot nodes.
    pub spot_allocated_milli: u64,
    /// GPU-hours of work lost to spot interruptions if this placement is held for the
    /// simulated horizon.
    pub lost_gpu_hours: f64,
    /// Placed pods declared intolerant that sit on a spot node (must be 0).
    pub intolerant_on_spot: u64,
}

impl CostSnapshot {
    /// Dollars per hour of the occupied nodes per allocated GPU; `None` with nothing allocated.
    pub fn usd_per_allocated_gpu_hour(&self) -> Option<f64> {
        (self.allocated_milli > 0)
            .then(|| self.occupied_usd_per_hour / (self.allocated_milli as f64 / 1000.0))
    }
}

/// One run of the cost experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct CostRunRecord {
    /// The placement record every run has (unallocated GPUs, fragmentation).
    pub run: RunRecord,
    /// Hourly price of the occupied nodes after each pod, parallel to `run.samples`.
    pub occupied_usd_per_hour: Vec<f64>,
    /// The cluster at each of [`COST_POINTS_PCT`] the run reached.
    pub snapshots: Vec<CostSnapshot>,
}

impl CostRunRecord {
    /// The snapshot at `arrived_pct`, if the run reached it.
    pub fn snapshot(&self, arrived_pct: u32) -> Option<&CostSnapshot> {
        self.snapshots.iter().find(|s| s.arrived_pct == arrived_pct)
    }
}
