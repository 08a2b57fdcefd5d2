//! The cost experiment (`tessera simulate --cost`): the openb replay on priced nodes, a seeded
//! share of them spot, pods with a declared interruption tolerance, and tessera's blended
//! score against baselines that ignore money (`docs/cost-model.md`, `docs/simulation.md`).

pub mod interruptions;
pub mod pricing;
pub mod run;
pub mod tolerance;

use std::collections::HashMap;

use rayon::prelude::*;

pub use pricing::{NodeOffers, NodePrice, SIM_REGION, node_offers, openb_instance_type};
pub use run::{CostRunConfig, run_cost, spot_nodes};

use super::placement::Placement;
use super::{SimError, Workload};
use crate::market::{MarketError, PriceCatalog, SpotAdvisor};
use crate::report::cost::CostRunRecord;
use crate::scoring::{Policy, Weights};
use crate::trace::{TraceNode, TracePod};

/// Errors of setting up the cost experiment.
#[derive(Debug, thiserror::Error)]
pub enum CostError {
    /// A node the market data cannot price.
    #[error("pricing node {node}: {source}")]
    Pricing {
        /// Node name.
        node: String,
        /// Why.
        #[source]
        source: MarketError,
    },
    /// The node list of the trace and the workload disagree (a node missing from one).
    #[error("node {0} of the workload is not in the node list")]
    MissingNode(String),
    /// A policy the experiment cannot run: Random picks GPUs with the run's own random
    /// stream, which the cost run does not replay.
    #[error("policy {0} is not supported by the cost experiment")]
    UnsupportedPolicy(Policy),
    /// A spot share outside `[0, 1]`.
    #[error("spot share must be a number in [0, 1], got {0}")]
    BadSpotShare(f64),
    /// The replay itself failed.
    #[error(transparent)]
    Sim(#[from] SimError),
}

/// A policy of the cost experiment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CostPolicy {
    /// A baseline scoring as it always does; the intolerant-pod filter applies to it too.
    Baseline(Policy),
    /// tessera's blended score: with the cost weights (`cost: true`), or with them zeroed,
    /// leaving its fragmentation policy alone.
    Tessera {
        /// Whether the money terms count.
        cost: bool,
    },
}

impl CostPolicy {
    /// The comparison the experiment runs by default: tessera with and without its cost
    /// weights, FGD, BestFit and kube-scheduler's LeastAllocated spread.
    pub const DEFAULT: [CostPolicy; 5] = [
        CostPolicy::Tessera { cost: true },
        CostPolicy::Tessera { cost: false },
        CostPolicy::Baseline(Policy::Fgd),
        CostPolicy::Baseline(Policy::BestFit),
        CostPolicy::Baseline(Policy::LeastAllocated),
    ];

    /// The cost policy for a command-line policy: tessera is the cost-weighted one.
    pub fn from_policy(policy: Policy) -> CostPolicy {
        match policy {
            Policy::Tessera => CostPolicy::Tessera { cost: true },
            other => CostPolicy::Baseline(other),
        }
    }

    /// The placement policy whose fit, GPU choice and fragmentation term it uses.
    pub fn base(self) -> Policy {
        match self {
            CostPolicy::Baseline(p) => p,
            CostPolicy::Tessera { .. } => Policy::Tessera,
        }
    }

    /// The name reports use.
    pub fn name(self) -> &'static str {
        match self {
            CostPolicy::Tessera { cost: true } => "tessera",
            CostPolicy::Tessera { cost: false } => "tessera-nocost",
            CostPolicy::Baseline(p) => p.name(),
        }
    }
}

/// A workload with every node priced on-demand and on spot, and the trace pods the
/// tolerances are read from.
#[derive(Debug, Clone)]
pub struct PricedWorkload<'a> {
    /// The workload.
    pub workload: &'a Workload,
    /// Offers per node, in `workload.nodes` order.
    pub offers: Vec<NodeOffers>,
    /// The trace's pods (QoS classes for the tolerance rule).
    pub trace_pods: &'a [TracePod],
}

impl<'a> PricedWorkload<'a> {
    /// Prices every node of `workload` (built from `trace_nodes` and `trace_pods`).
    pub fn new(
        workload: &'a Workload,
        trace_nodes: &[TraceNode],
        trace_pods: &'a [TracePod],
        catalog: &PriceCatalog,
        advisor: &SpotAdvisor,
    ) -> Result<Self, CostError> {
        let by_name: HashMap<&str, &TraceNode> =
            trace_nodes.iter().map(|n| (n.name.as_str(), n)).collect();
        let offers = workload
            .node_names
            .iter()
            .map(|name| {
                let node = by_name
                    .get(name.as_str())
                    .ok_or_else(|| CostError::MissingNode(name.clone()))?;
                node_offers(node, catalog, advisor).map_err(|source| CostError::Pricing {
                    node: name.clone(),
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PricedWorkload {
            workload,
            offers,
            trace_pods,
        })
    }
}

/// The cost experiment: policies × seeds over one priced workload.
#[derive(Debug, Clone, PartialEq)]
pub struct CostExperiment {
    /// Policies, in report order.
    pub policies: Vec<CostPolicy>,
    /// Seeds.
    pub seeds: Vec<u64>,
    /// Inflation ratio.
    pub tune: f64,
    /// Weights of the blended score and lost-work assumptions.
    pub weights: Weights,
    /// Share of nodes bought as spot.
    pub spot_share: f64,
    /// Share of pods the typical pods cover, percent.
    pub typical_threshold_pct: f64,
    /// Who chooses the node and the device.
    pub placement: Placement,
}

impl CostExperiment {
    /// Every (policy, seed) run, policy-major; kube-scheduler alone uses no policy: one run
    /// per seed.
    pub fn configs(&self) -> Vec<CostRunConfig> {
        let policies = match self.placement {
            Placement::Kube => &self.policies[..self.policies.len().min(1)],
            _ => &self.policies[..],
        };
        policies
            .iter()
            .flat_map(|policy| {
                self.seeds.iter().map(|seed| CostRunConfig {
                    policy: *policy,
                    seed: *seed,
                    tune: self.tune,
                    weights: self.weights,
                    spot_share: self.spot_share,
                    typical_threshold_pct: self.typical_threshold_pct,
                    placement: self.placement,
                })
            })
            .collect()
    }
}

/// Runs every configuration on the rayon pool; records come back policy-major, seeds in the
/// given order.
pub fn run_cost_all(
    priced: &PricedWorkload<'_>,
    experiment: &CostExperiment,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<CostRunRecord>, CostError> {
    if !(0.0..=1.0).contains(&experiment.spot_share) {
        return Err(CostError::BadSpotShare(experiment.spot_share));
    }
    experiment
        .configs()
        .par_iter()
        .map(|config| run_cost(priced, config, progress))
        .collect()
}

#[cfg(test)]
mod tests;
