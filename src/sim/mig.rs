//! The MIG experiment: the openb pod shapes on a cluster of MIG-capable nodes.
//!
//! The same protocol as the openb run ([`super::arrival_order`]: pods shuffled by seed,
//! inflated to `tune` × capacity, placed online, failures never retried, no departures), on
//! a cluster with the openb node list's GPU count made of H100-80GB and A100-40GB nodes
//! ([`cluster`]). Sharing pods ask for MIG instances by a fixed rule ([`demand`]); whole-GPU
//! pods take whole GPUs. Four policies ([`MigPolicy`]) compare static MIG layouts with MIG
//! instances created on demand, placed first-fit or by tessera's fragmentation-aware score.
//!
//! What is recorded after every pod is the openb run's [`crate::report::Sample`]:
//! - **arrived** — GPU milli the arrived pods asked for in the trace (failed pods included),
//!   so the x axis is the openb run's;
//! - **allocated** — GPU capacity held by pods, in milli: 1000 for a GPU held whole, a MIG
//!   instance's compute slices over the GPU's (a `3g` is 3/7 of a GPU). A static instance no
//!   pod holds, and a GPU nothing is on, are *unallocated*; so unallocated GPU % is
//!   `100 − allocated / GPUs / 10`, the openb metric with MIG's granularity;
//! - **fragmentation** — [`crate::scoring::partition::frag`] over the typical pods, in milli.
//!
//! Pure: the only randomness is the run's seeded `ChaCha8Rng`.

pub mod cluster;
pub mod demand;
pub mod engine;
mod first_fit;
pub mod published;

use rayon::prelude::*;

pub use cluster::{MigNode, NodeSpec, cluster_shape};
pub use demand::{MigPod, MigWorkload};
pub use engine::{MigRunConfig, run};

use super::Workload;
use super::placement::{Placement, Release};
use crate::model::device_order::Layout;
use crate::report::mig::MigRunRecord;

/// How MIG is set up and who places the pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MigPolicy {
    /// A share of the nodes carries mig-parted's `all-1g` layout on every GPU (7 × `1g`),
    /// the others have MIG off; pods placed by tessera's score.
    StaticSmallest,
    /// As [`MigPolicy::StaticSmallest`] with mig-parted's `all-balanced` layout
    /// (2 × `1g` + `2g` + `3g` per GPU).
    StaticBalanced,
    /// MIG on every GPU, instances created on demand; first node (in the run's seeded node
    /// order), first GPU, first placement that fits.
    DynamicFirstFit,
    /// MIG on every GPU, instances created on demand; node by tessera's fragmentation score,
    /// GPU and placement by [`crate::scoring::partition::fit`].
    DynamicTessera,
}

impl MigPolicy {
    /// Every policy, in report order.
    pub const ALL: [MigPolicy; 4] = [
        MigPolicy::StaticSmallest,
        MigPolicy::StaticBalanced,
        MigPolicy::DynamicFirstFit,
        MigPolicy::DynamicTessera,
    ];

    /// The name in reports.
    pub fn name(self) -> &'static str {
        match self {
            MigPolicy::StaticSmallest => "static-1g",
            MigPolicy::StaticBalanced => "static-balanced",
            MigPolicy::DynamicFirstFit => "dynamic-firstfit",
            MigPolicy::DynamicTessera => "dynamic-tessera",
        }
    }
}

/// Errors of the MIG experiment.
#[derive(Debug, thiserror::Error)]
pub enum MigSimError {
    /// The node list has no GPU, or too many to build.
    #[error("cannot build a MIG cluster of {gpus} GPUs (1..={max})")]
    ClusterSize {
        /// GPUs asked for.
        gpus: u64,
        /// The bound.
        max: u64,
    },
    /// A static layout could not be built (a catalog inconsistency).
    #[error("static MIG layout: {0}")]
    Layout(#[from] crate::model::mig::MigError),
    /// The arrival order could not be drawn.
    #[error(transparent)]
    Workload(#[from] super::SimError),
}

/// Every (policy, seed) run on the rayon pool; records come back policy-major, seeds in the
/// given order.
/// With `placement` other than [`Placement::Tessera`] the allocator chooses among the devices
/// of dynamic MIG, so one run per seed replaces the policies.
#[allow(clippy::too_many_arguments)]
pub fn run_all(
    workload: &Workload,
    mig: &MigWorkload,
    policies: &[MigPolicy],
    seeds: &[u64],
    tune: f64,
    placement: Placement,
    release: Release,
    layout: Layout,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<MigRunRecord>, MigSimError> {
    let policies = match placement {
        Placement::Tessera => policies,
        _ => &[MigPolicy::DynamicTessera][..],
    };
    let configs: Vec<MigRunConfig> = policies
        .iter()
        .flat_map(|policy| {
            seeds.iter().map(|seed| MigRunConfig {
                policy: *policy,
                seed: *seed,
                tune,
                placement,
                release,
                layout,
            })
        })
        .collect();
    configs
        .par_iter()
        .map(|config| run(workload, mig, config, progress))
        .collect()
}

#[cfg(test)]
mod tests;
