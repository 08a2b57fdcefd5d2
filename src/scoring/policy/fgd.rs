//! FGD: place where the node's fragmentation grows least (Weng et al., ATC '23).
//!
//! Score = `100 × sigmoid((frag_before − frag_after) / 1000)`, truncated to an integer as the
//! FGD simulator does (`fgd_score.go`). A sharing pod tries every GPU with room and keeps the
//! first with the best score; whole-GPU pods take the first free GPUs.

use super::{GpuChoice, MAX_NODE_SCORE, NodeScore};
use crate::model::{Demand, GpuPick, MILLI_PER_GPU, NodeState};
use crate::scoring::fit;
use crate::scoring::frag::{FragEval, TypicalPods};

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn to_score(before: f64, after: f64) -> i64 {
    (sigmoid((before - after) / f64::from(MILLI_PER_GPU)) * MAX_NODE_SCORE as f64) as i64
}

/// FGD's score of the placement on exactly the GPUs `pick` (someone else chose them).
pub(super) fn score_pick(
    node: &NodeState,
    demand: &Demand,
    pick: GpuPick,
    typical: &TypicalPods,
) -> NodeScore {
    let eval = FragEval::new(node, typical);
    let after = eval.after_pick(node, demand, pick);
    NodeScore {
        score: to_score(eval.current(), after) as f64,
        choice: GpuChoice::Pick(pick),
    }
}

pub(super) fn score(node: &NodeState, demand: &Demand, typical: &TypicalPods) -> Option<NodeScore> {
    let eval = FragEval::new(node, typical);
    let before = eval.current();
    if demand.is_sharing() {
        let mut best: Option<(i64, usize)> = None;
        for (i, free) in fit::distinct_share_candidates(node, demand.gpu_milli) {
            let after = eval.after(&[(free, free - demand.gpu_milli)], demand.cpu_milli);
            let s = to_score(before, after);
            if best.is_none_or(|(b, _)| s > b) {
                best = Some((s, i));
            }
        }
        let (s, i) = best?;
        return Some(NodeScore {
            score: s as f64,
            choice: GpuChoice::Pick(GpuPick::single(i)),
        });
    }
    let pick = fit::default_pick(node, demand)?;
    let after = eval.after_pick(node, demand, pick);
    Some(NodeScore {
        score: to_score(before, after) as f64,
        choice: GpuChoice::Pick(pick),
    })
}
