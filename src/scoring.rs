//! Placement decisions: feasibility, fragmentation and the policies that score nodes.
//!
//! Pure functions of a node's state and a pod's demand. The simulator and the scheduler
//! extender call the same code, so a policy that wins in simulation is, line for line, the
//! policy that runs in the cluster.

pub mod fit;
pub mod frag;
pub mod partition;
pub mod policy;

#[cfg(test)]
mod test_util;

pub use fit::fits;
pub use frag::{FragEval, TypicalPod, TypicalPods, node_frag};
pub use policy::{GpuChoice, NodeScore, Policy, PolicyError, Scorer, TesseraWeights};
