//! The placement policies: six published baselines and tessera's own.
//!
//! Each policy scores one feasible node for one pod; the caller places the pod on a node
//! with the highest score, breaking exact ties uniformly at random (as kube-scheduler's
//! `selectHost` does). Baselines reproduce the integer scores of the FGD paper's simulator
//! (`hkust-adsl/kubernetes-scheduler-simulator`, `pkg/simulator/plugin/*`), because their
//! ties are part of their behaviour.

mod best_fit;
mod clustering;
mod dot_product;
mod fgd;
mod least_allocated;
mod packing;
mod tessera;

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

pub use tessera::{MAX_PRICED_SIZES, ModelPressure, SharePrices, TesseraWeights};

use super::fit;
use super::frag::TypicalPods;
use crate::model::{Demand, GpuPick, NodeState};

/// The kube-scheduler score range the baselines use (`framework.MaxNodeScore`).
pub(crate) const MAX_NODE_SCORE: i64 = 100;
/// FGD's normalisation constants: the largest node in the openb trace (`MaxSpecCpu`, `MaxSpecGpu`).
pub(crate) const MAX_SPEC_CPU: f64 = 128_000.0;
pub(crate) const MAX_SPEC_GPU: f64 = 8_000.0;

/// Errors of policy selection.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    /// A policy name that is not one of ours.
    #[error("unknown policy {name:?}; expected one of: {}", Policy::KNOWN.iter().map(|p| p.name()).collect::<Vec<_>>().join(", "))]
    Unknown {
        /// What was asked for.
        name: String,
    },
}

/// A placement policy.
///
/// ```
/// use tessera::scoring::Policy;
///
/// assert_eq!("fgd".parse::<Policy>().unwrap(), Policy::Fgd);
/// assert_eq!(Policy::Tessera.to_string(), "tessera");
/// assert!("worst".parse::<Policy>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Policy {
    /// A uniformly random feasible node, a random fitting GPU.
    Random,
    /// Smallest dot product of free and requested (CPU, GPU), normalised by the largest node.
    DotProd,
    /// Nodes already running pods of the same GPU class first.
    GpuClustering,
    /// Partially used GPUs first, then used nodes, then idle nodes.
    GpuPacking,
    /// Least leftover CPU and GPU after placement.
    BestFit,
    /// Fragmentation gradient descent (Weng et al., ATC '23).
    Fgd,
    /// tessera's own: bucketed fragmentation gradient, share prices from the typical pods'
    /// packing LP, and CPU stranding.
    Tessera,
    /// kube-scheduler's default spread: most free CPU, memory and GPU after placement. Not in
    /// [`Policy::ALL`] (the FGD benchmark's set); the cost experiment compares against it.
    LeastAllocated,
}

impl Policy {
    /// Every policy, baselines first, in the order reports list them.
    pub const ALL: [Policy; 7] = [
        Policy::Random,
        Policy::DotProd,
        Policy::GpuClustering,
        Policy::GpuPacking,
        Policy::BestFit,
        Policy::Fgd,
        Policy::Tessera,
    ];

    /// Every policy the command line accepts: [`Policy::ALL`] plus the spread baseline.
    pub const KNOWN: [Policy; 8] = [
        Policy::Random,
        Policy::DotProd,
        Policy::GpuClustering,
        Policy::GpuPacking,
        Policy::BestFit,
        Policy::Fgd,
        Policy::Tessera,
        Policy::LeastAllocated,
    ];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Random => "random",
            Policy::DotProd => "dotprod",
            Policy::GpuClustering => "clustering",
            Policy::GpuPacking => "packing",
            Policy::BestFit => "bestfit",
            Policy::Fgd => "fgd",
            Policy::Tessera => "tessera",
            Policy::LeastAllocated => "leastallocated",
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Policy {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        Policy::KNOWN
            .into_iter()
            .find(|p| {
                p.name() == wanted
                    || matches!(
                        (p, wanted.as_str()),
                        (Policy::GpuClustering, "gpuclustering")
                            | (Policy::GpuPacking, "gpupacking")
                            | (Policy::DotProd, "dotproduct")
                            | (Policy::LeastAllocated, "least-allocated" | "spread")
                    )
            })
            .ok_or(PolicyError::Unknown {
                name: s.to_string(),
            })
    }
}

/// Which GPUs of the chosen node the pod gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum GpuChoice {
    /// These GPUs.
    Pick(GpuPick),
    /// Any GPU that fits, chosen uniformly at random by the caller (the Random baseline).
    AnyFitting,
}

/// A feasible node's score for a pod and the GPUs the pod would get there.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct NodeScore {
    /// Higher is better; compare only scores of the same policy.
    pub score: f64,
    /// The GPUs.
    pub choice: GpuChoice,
}

/// A policy with what it needs to score: the workload's typical pods, tessera's weights and
/// (for tessera) the typical sharing pods' prices.
#[derive(Debug, Clone)]
pub struct Scorer {
    policy: Policy,
    typical: TypicalPods,
    weights: TesseraWeights,
    prices: SharePrices,
    pressure: ModelPressure,
}

impl Scorer {
    /// A scorer for `policy` with the workload's typical pods. For tessera this solves the
    /// share-price LP once (milliseconds; see [`SharePrices`]).
    pub fn new(policy: Policy, typical: TypicalPods, weights: TesseraWeights) -> Self {
        let prices = if policy == Policy::Tessera {
            SharePrices::from_typical(&typical)
        } else {
            SharePrices::default()
        };
        Scorer {
            policy,
            typical,
            weights,
            prices,
            pressure: ModelPressure::default(),
        }
    }

    /// This scorer on a cluster with `capacity_milli[m]` GPU milli of model `m` (index of
    /// the model in the workload's registry): tessera then weighs the model pressure of the
    /// typical pods pinned to models ([`ModelPressure`]). Without it the pressure is zero.
    pub fn with_model_capacity(mut self, capacity_milli: &[u64]) -> Self {
        if self.policy == Policy::Tessera {
            self.pressure = ModelPressure::new(&self.typical, capacity_milli);
        }
        self
    }

    /// The model pressure tessera's score uses (zero for the other policies).
    pub fn pressure(&self) -> &ModelPressure {
        &self.pressure
    }

    /// The share prices tessera's score uses (all zero for the other policies).
    pub fn prices(&self) -> &SharePrices {
        &self.prices
    }

    /// The policy.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// The typical pods the fragmentation terms use.
    pub fn typical(&self) -> &TypicalPods {
        &self.typical
    }

    /// Score `node` for `demand`; `None` if the pod does not fit there.
    pub fn score(&self, node: &NodeState, demand: &Demand) -> Option<NodeScore> {
        if !fit::fits(node, demand) {
            return None;
        }
        match self.policy {
            Policy::Random => Some(NodeScore {
                score: 0.0,
                choice: if demand.is_sharing() {
                    GpuChoice::AnyFitting
                } else {
                    GpuChoice::Pick(fit::default_pick(node, demand)?)
                },
            }),
            Policy::DotProd => with_default_pick(node, demand, dot_product::score(node, demand)),
            Policy::GpuClustering => {
                with_default_pick(node, demand, clustering::score(node, demand))
            }
            Policy::GpuPacking => with_default_pick(node, demand, packing::score(node, demand)?),
            Policy::BestFit => with_default_pick(node, demand, best_fit::score(node, demand)),
            Policy::LeastAllocated => {
                with_default_pick(node, demand, least_allocated::score(node, demand))
            }
            Policy::Fgd => fgd::score(node, demand, &self.typical),
            Policy::Tessera => tessera::score(
                node,
                demand,
                &tessera::Context {
                    typical: &self.typical,
                    prices: &self.prices,
                    pressure: &self.pressure,
                },
                &self.weights,
            ),
        }
    }
}

impl Scorer {
    /// Score `node` for `demand` placed on exactly the GPUs `pick`, chosen by someone else
    /// (the scheduler's allocator, in the simulator's `extender` deployment); `None` if the
    /// pod does not fit the node or the pick does not fit the demand. tessera and FGD score
    /// the placement they are given; the other policies' node scores do not depend on which
    /// GPUs, so they keep their score and take the pick.
    pub fn score_pick(
        &self,
        node: &NodeState,
        demand: &Demand,
        pick: GpuPick,
    ) -> Option<NodeScore> {
        if !fit::fits(node, demand) || !pick_fits(node, demand, pick) {
            return None;
        }
        match self.policy {
            Policy::Tessera => Some(tessera::score_pick(
                node,
                demand,
                pick,
                &tessera::Context {
                    typical: &self.typical,
                    prices: &self.prices,
                    pressure: &self.pressure,
                },
                &self.weights,
            )),
            Policy::Fgd => Some(fgd::score_pick(node, demand, pick, &self.typical)),
            _ => self.score(node, demand).map(|s| NodeScore {
                score: s.score,
                choice: GpuChoice::Pick(pick),
            }),
        }
    }
}

/// Whether `pick` names `demand.gpus` GPUs of the node, each with room for the demand.
fn pick_fits(node: &NodeState, demand: &Demand, pick: GpuPick) -> bool {
    pick.count() == u32::from(demand.gpus)
        && pick.indices().all(|i| {
            node.gpu_free()
                .get(i)
                .is_some_and(|f| *f >= demand.gpu_milli)
        })
}

fn with_default_pick(node: &NodeState, demand: &Demand, score: i64) -> Option<NodeScore> {
    Some(NodeScore {
        score: score as f64,
        choice: GpuChoice::Pick(fit::default_pick(node, demand)?),
    })
}

#[cfg(test)]
mod tests;
