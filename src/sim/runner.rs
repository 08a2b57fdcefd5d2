//! Many runs (policies × seeds) in parallel, results in a stable order.

use rayon::prelude::*;

use super::SimError;
use super::engine::{RunConfig, run};
use super::placement::Placement;
use super::typical::TypicalSource;
use super::workload::Workload;
use crate::report::RunRecord;
use crate::scoring::{Policy, TesseraWeights};

/// A set of runs over one workload.
#[derive(Debug, Clone, PartialEq)]
pub struct Experiment {
    /// Policies, in report order.
    pub policies: Vec<Policy>,
    /// Seeds.
    pub seeds: Vec<u64>,
    /// Inflation ratio.
    pub tune: f64,
    /// tessera's weights.
    pub weights: TesseraWeights,
    /// Share of pods the typical pods cover, percent.
    pub typical_threshold_pct: f64,
    /// Who chooses the node and the device.
    pub placement: Placement,
    /// Where the policies' typical pods come from.
    pub typical: TypicalSource,
}

impl Experiment {
    /// Every (policy, seed) run, policy-major. kube-scheduler alone uses no policy: one
    /// run per seed.
    pub fn configs(&self) -> Vec<RunConfig> {
        let policies = match self.placement {
            Placement::Kube => &self.policies[..self.policies.len().min(1)],
            _ => &self.policies[..],
        };
        policies
            .iter()
            .flat_map(|policy| {
                self.seeds.iter().map(|seed| RunConfig {
                    policy: *policy,
                    seed: *seed,
                    tune: self.tune,
                    weights: self.weights,
                    typical_threshold_pct: self.typical_threshold_pct,
                    placement: self.placement,
                    typical: self.typical.clone(),
                })
            })
            .collect()
    }
}

/// Run every configuration of `experiment` on the rayon pool; records come back policy-major,
/// seeds in the given order, whatever order the threads finished in.
pub fn run_all(
    workload: &Workload,
    experiment: &Experiment,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<RunRecord>, SimError> {
    experiment
        .configs()
        .par_iter()
        .map(|config| run(workload, config, progress))
        .collect()
}
