//! tessera's placement policy.
//!
//! Four terms, all in milli-GPU so that they add up:
//! - **fragmentation** — FGD's fragmentation increase of the node, computed exactly and then
//!   bucketed to `quantum` milli-GPU. Bucketing matters: changes smaller than a few percent
//!   of a GPU are noise, and treating them as ties lets the caller's stable node order act as
//!   first-fit consolidation, which is what makes FGD's integer scores work so well;
//! - **share loss** (sharing pods only) — the packing value the placement gives up at the
//!   typical sharing pods' cutting-stock prices ([`SharePrices`]): a 320-milli pod belongs
//!   next to a 650 or with two more 320s, not in a 470's leftover where it strands 210 milli.
//!   FGD's measure is myopic here (it prefers the smaller leftover now); the prices see the
//!   whole packing;
//! - **stranding** — idle GPU milli the node's remaining CPU can no longer feed at
//!   `cpu_per_gpu` milli-CPU per GPU. FGD sees CPU only through whether each typical pod
//!   still fits; on the openb trace a third of the GPUs FGD leaves idle sit on nodes whose CPU
//!   ran out, and this term keeps CPU-heavy pods off CPU-poor nodes;
//! - **packing** — free GPU milli left on the node (off by default; measured not to help);
//! - **model pressure** — GPU milli taken on a model that pods pinned to few models depend on
//!   ([`ModelPressure`]): a pod that may run anywhere leaves the T4s to the T4-only pods.
//!   Zero on a workload with no pinned pods.
//!
//! Inside a node, a sharing pod takes the GPU with the least bucketed fragmentation plus share
//! loss; among equals the tightest, then the lowest index.
//! The measurements behind the defaults are in `docs/simulation.md`.

mod pressure;
mod prices;
mod simplex;

pub use pressure::ModelPressure;
pub use prices::{MAX_PRICED_SIZES, SharePrices};

use serde::{Deserialize, Serialize};

use super::{GpuChoice, NodeScore};
use crate::model::{Demand, GpuPick, NodeState};
use crate::scoring::fit;
use crate::scoring::frag::{FragEval, TypicalPods};

/// Weights of tessera's score terms.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TesseraWeights {
    /// Weight of the fragmentation increase.
    pub frag: f64,
    /// Weight of the node's free GPU milli left after placement.
    pub pack: f64,
    /// Fragmentation changes are bucketed to this many milli-GPU (0: exact).
    pub quantum: f64,
    /// Weight of the increase of stranded GPU milli.
    pub strand: f64,
    /// Milli-CPU one GPU's worth of typical work needs (for stranding).
    pub cpu_per_gpu: f64,
    /// Weight of the share loss (packing value a sharing pod's placement gives up).
    pub share_loss: f64,
    /// Weight of the model pressure (GPU milli taken × how much pinned pods need the model).
    pub pressure: f64,
}

impl Default for TesseraWeights {
    fn default() -> Self {
        TesseraWeights {
            frag: 1.0,
            pack: 0.0,
            quantum: 60.0,
            strand: 2.0,
            cpu_per_gpu: 11_000.0,
            share_loss: 10.0,
            pressure: PRESSURE_DEFAULT,
        }
    }
}

/// Default weight of the model-pressure term (`docs/simulation.md`, "Pinned pods").
const PRESSURE_DEFAULT: f64 = 1.0;

/// What tessera's score needs besides the node and the pod: the workload's typical pods, the
/// share prices and the model pressure derived from them.
pub(super) struct Context<'a> {
    pub(super) typical: &'a TypicalPods,
    pub(super) prices: &'a SharePrices,
    pub(super) pressure: &'a ModelPressure,
}

pub(super) fn score(
    node: &NodeState,
    demand: &Demand,
    context: &Context<'_>,
    weights: &TesseraWeights,
) -> Option<NodeScore> {
    let Context {
        typical,
        prices,
        pressure,
    } = context;
    let eval = FragEval::new(node, typical);
    let before = eval.current();
    let (frag_delta, pick) = if demand.is_sharing() {
        // (bucketed fragmentation + share loss, exact fragmentation, free milli, GPU)
        let mut best: Option<(f64, f64, u16, usize)> = None;
        for (i, free) in fit::distinct_share_candidates(node, demand.gpu_milli) {
            let after = eval.after(&[(free, free - demand.gpu_milli)], demand.cpu_milli);
            let key = bucket(after - before, weights.quantum)
                + weights.share_loss * prices.loss(free, demand.gpu_milli);
            // Least key; among equals the tightest GPU, then the lowest index.
            let better = best
                .is_none_or(|(b_key, _, b_free, _)| key < b_key || (key == b_key && free < b_free));
            if better {
                best = Some((key, after, free, i));
            }
        }
        let (key, _, _, i) = best?;
        (key, GpuPick::single(i))
    } else {
        let pick = fit::default_pick(node, demand)?;
        let after = eval.after_pick(node, demand, pick);
        (bucket(after - before, weights.quantum), pick)
    };

    Some(finish(node, demand, weights, frag_delta, pick, pressure))
}

/// tessera's score of the placement on exactly the GPUs `pick` (someone else chose them: the
/// scheduler's allocator), with the same terms as [`score`].
pub(super) fn score_pick(
    node: &NodeState,
    demand: &Demand,
    pick: GpuPick,
    context: &Context<'_>,
    weights: &TesseraWeights,
) -> NodeScore {
    let Context {
        typical,
        prices,
        pressure,
    } = context;
    let eval = FragEval::new(node, typical);
    let before = eval.current();
    let after = eval.after_pick(node, demand, pick);
    let mut frag_delta = bucket(after - before, weights.quantum);
    if demand.is_sharing()
        && let Some(free) = pick.indices().next().and_then(|i| node.gpu_free().get(i))
    {
        frag_delta += weights.share_loss * prices.loss(*free, demand.gpu_milli);
    }
    finish(node, demand, weights, frag_delta, pick, pressure)
}

/// The score from the placement's fragmentation term: stranding, packing and model pressure
/// added.
fn finish(
    node: &NodeState,
    demand: &Demand,
    weights: &TesseraWeights,
    frag_delta: f64,
    pick: GpuPick,
    pressure: &ModelPressure,
) -> NodeScore {
    let idle_after = node
        .total_gpu_free()
        .saturating_sub(demand.total_gpu_milli()) as f64;
    let cpu_after = node.cpu_free.saturating_sub(demand.cpu_milli) as f64;
    let strand_delta = stranded(idle_after, cpu_after, weights.cpu_per_gpu)
        - stranded(
            node.total_gpu_free() as f64,
            node.cpu_free as f64,
            weights.cpu_per_gpu,
        );
    let pressure_cost = pressure.of(node.model) * demand.total_gpu_milli() as f64;
    let score = -weights.frag * frag_delta
        - weights.strand * strand_delta
        - weights.pack * idle_after
        - weights.pressure * pressure_cost;
    NodeScore {
        score,
        choice: GpuChoice::Pick(pick),
    }
}

/// `value` rounded down to a multiple of `quantum` (unchanged when `quantum` ≤ 0).
fn bucket(value: f64, quantum: f64) -> f64 {
    if quantum > 0.0 {
        (value / quantum).floor() * quantum
    } else {
        value
    }
}

/// Idle GPU milli that `cpu_free` milli-CPU cannot feed at `cpu_per_gpu` milli-CPU per GPU.
fn stranded(idle_gpu_milli: f64, cpu_free: f64, cpu_per_gpu: f64) -> f64 {
    if cpu_per_gpu <= 0.0 {
        return 0.0;
    }
    let feedable = cpu_free / cpu_per_gpu * 1000.0;
    (idle_gpu_milli - feedable).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stranding_counts_idle_gpu_the_cpu_cannot_feed() {
        // 4 idle GPUs, CPU for 2.5 of them at 8,000 per GPU: 1,500 milli stranded.
        assert_eq!(stranded(4000.0, 20_000.0, 8000.0), 1500.0);
        assert_eq!(stranded(1000.0, 20_000.0, 8000.0), 0.0);
        assert_eq!(stranded(1000.0, 0.0, 0.0), 0.0, "disabled");
    }

    #[test]
    fn buckets_round_down() {
        assert_eq!(bucket(59.0, 60.0), 0.0);
        assert_eq!(bucket(-1.0, 60.0), -60.0);
        assert_eq!(bucket(121.0, 60.0), 120.0);
        assert_eq!(bucket(12.5, 0.0), 12.5);
    }
}
