//! Reports of simulation runs: binned curves, the summary table, CSV and SVG.
//!
//! Input is what `sim` records after every pod; output is text and files. Pure apart from
//! the writer, which only touches the output directory it is given.
//!
//! The read-out follows the FGD protocol (`placement-benchmark.md` §3.4): per run, samples are
//! binned on the rounded arrived workload %; per policy, runs are reduced to the median and
//! the spread across seeds.

pub mod cost;
pub mod curves;
pub mod family;
pub mod mig;
pub mod published;
pub mod summary;
pub mod write;

pub use curves::{
    CurvePoint, PolicyCurve, PolicyPoint, PolicyRuns, RunCurve, Spread, group_by_policy,
    policy_curves, run_curve,
};
pub use summary::{Summary, SummaryRow, summarize};
pub use write::{ReportError, Written, write_all};

/// What the simulator records after each pod arrives (placed or not).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// GPU milli requested by every pod that has arrived so far, failed ones included.
    pub arrived_milli: u64,
    /// GPU milli allocated to placed pods.
    pub used_milli: u64,
    /// Cluster fragmentation amount in GPU milli (FGD's definition: idle GPU milli that
    /// typical pods cannot use, weighted by their popularity).
    pub frag_milli: f64,
}

/// One simulation run: one policy, one seed.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    /// Policy name as the user typed it (`fgd`, `tessera`, …).
    pub policy: String,
    /// Seed of the run.
    pub seed: u64,
    /// Cluster GPU capacity in milli (GPUs × 1000).
    pub capacity_milli: u64,
    /// Pods that arrived.
    pub pods: u64,
    /// Pods that fitted nowhere.
    pub failed_pods: u64,
    /// One sample after every arrived pod, in arrival order.
    pub samples: Vec<Sample>,
}
