//! Placement decisions: feasibility, fragmentation, the policies that score nodes, and the
//! blended cost-aware score ([`score_node`]) the simulator and the extender share.
//!
//! Pure functions of a node's state and a pod's demand. The simulator and the scheduler
//! extender call the same code, so a policy that wins in simulation is, line for line, the
//! policy that runs in the cluster.

pub mod blend;
pub mod cost;
pub mod extender_range;
pub mod filter;
pub mod fit;
pub mod frag;
pub mod partition;
pub mod policy;
pub mod risk;
pub mod weights;

#[cfg(test)]
mod test_util;

pub use blend::{FilterReason, NodeDecision, NodeInputs, PodInputs, filter_reason, score_node};
pub use cost::{demand_gpus, partition_hourly_cost};
pub use extender_range::{MAX_EXTENDER_PRIORITY, to_extender_range};
pub use fit::fits;
pub use frag::{
    FragEval, OnlineError, OnlineTypical, OnlineWindow, TypicalPod, TypicalPods, node_frag,
};
pub use policy::{GpuChoice, NodeScore, Policy, PolicyError, Scorer, TesseraWeights};
pub use risk::{INTERRUPTION_ANNOTATION, LossAssumptions, Tolerance, ToleranceError};
pub use weights::{Weights, WeightsError};
