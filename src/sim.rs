//! Deterministic trace replay: the FGD placement protocol over a simulated cluster.
//!
//! The protocol (placement-benchmark.md §3): pods sorted by name and shuffled by seed, the
//! workload inflated by seeded resampling to `tune` × the cluster's GPU capacity, then
//! placed online one at a time; a pod that fits nowhere fails and is never retried, and no
//! pod leaves. After every pod the run records arrived GPU milli, allocated GPU milli and
//! the cluster's fragmentation.
//!
//! Pure: the only randomness is a `ChaCha8Rng` seeded from the run's seed, so the same
//! inputs and seed give the same record on every machine.

pub mod cluster;
pub mod cost;
pub mod engine;
pub mod mig;
pub mod oracle;
pub mod placement;
pub mod runner;
pub mod typical;
pub mod workload;

#[cfg(test)]
mod test_util;

pub use engine::{RunConfig, run, run_until};
pub use placement::Placement;
pub use runner::{Experiment, run_all};
pub use typical::{TypicalSource, bundled_prior};
pub use workload::{Workload, WorkloadPod, arrival_order};

/// Errors of building a simulation from a trace.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The trace has more GPU models than the model supports.
    #[error("trace GPU models: {0}")]
    Models(#[from] crate::model::ModelError),
    /// A node the model cannot represent.
    #[error("node {name}: {source}")]
    Node {
        /// Node name.
        name: String,
        /// Why.
        #[source]
        source: crate::model::NodeError,
    },
    /// A pod the model cannot represent.
    #[error("pod {name}: {reason}")]
    Pod {
        /// Pod name.
        name: String,
        /// Why.
        reason: String,
    },
    /// A trace with no GPU capacity or no pods cannot be replayed.
    #[error("nothing to simulate: {0}")]
    Empty(&'static str),
    /// A tune ratio that is not a positive finite number.
    #[error("tune ratio must be a positive number, got {0}")]
    BadTune(f64),
    /// `--typical online` settings out of range.
    #[error("online typical pods: {0}")]
    Online(#[from] crate::scoring::OnlineError),
}
