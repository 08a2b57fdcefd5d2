//! tessera's placement policy.
//!
//! Fragmentation gradient with exact (untruncated) deltas, the best GPU inside the node
//! chosen by the same measure, and a packing term that prefers fuller nodes so empty nodes
//! stay whole for large pods and can be scaled away.

use serde::{Deserialize, Serialize};

use super::{GpuChoice, NodeScore};
use crate::model::{Demand, GpuPick, NodeState};
use crate::scoring::fit;
use crate::scoring::frag::{FragEval, TypicalPods};

/// Weights of tessera's score terms.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TesseraWeights {
    /// Weight of the fragmentation increase, per milli-GPU.
    pub frag: f64,
    /// Weight of the node's free GPU milli left after placement (packing), per milli-GPU.
    pub pack: f64,
}

impl Default for TesseraWeights {
    fn default() -> Self {
        TesseraWeights {
            frag: 1.0,
            pack: 0.01,
        }
    }
}

pub(super) fn score(
    node: &NodeState,
    demand: &Demand,
    typical: &TypicalPods,
    weights: &TesseraWeights,
) -> Option<NodeScore> {
    let eval = FragEval::new(node, typical);
    let before = eval.current();
    let left_after = node
        .total_gpu_free()
        .saturating_sub(demand.total_gpu_milli()) as f64;
    let (after, pick) = if demand.is_sharing() {
        let mut best: Option<(f64, u16, usize)> = None;
        for (i, free) in node.gpu_free().iter().copied().enumerate() {
            if free < demand.gpu_milli {
                continue;
            }
            let after = eval.after(&[(free, free - demand.gpu_milli)], demand.cpu_milli);
            // Least fragmentation; among equals the tightest GPU, then the lowest index.
            let better = best.is_none_or(|(b_after, b_free, _)| {
                after < b_after || (after == b_after && free < b_free)
            });
            if better {
                best = Some((after, free, i));
            }
        }
        let (after, _, i) = best?;
        (after, GpuPick::single(i))
    } else {
        let pick = fit::default_pick(node, demand)?;
        let changes: Vec<(u16, u16)> = pick
            .indices()
            .filter_map(|i| node.gpu_free_milli.get(i))
            .map(|free| (*free, free - demand.gpu_milli.min(*free)))
            .collect();
        (eval.after(&changes, demand.cpu_milli), pick)
    };
    let score = -weights.frag * (after - before) - weights.pack * left_after;
    Some(NodeScore {
        score,
        choice: GpuChoice::Pick(pick),
    })
}
