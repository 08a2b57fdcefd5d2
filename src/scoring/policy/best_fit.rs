//! BestFit: least leftover CPU and GPU after placement, each normalised by the largest node
//! and weighted one half; `100 × (1 − leftover)`, truncated. The simulator then min-max
//! normalises scores across nodes, which keeps the same best nodes, so it is not repeated.

use super::{MAX_NODE_SCORE, MAX_SPEC_CPU, MAX_SPEC_GPU};
use crate::model::{Demand, NodeState};

pub(super) fn score(node: &NodeState, demand: &Demand) -> i64 {
    let cpu_left = node.cpu_free.saturating_sub(demand.cpu_milli) as f64;
    let gpu_left = node
        .total_gpu_free()
        .saturating_sub(demand.total_gpu_milli()) as f64;
    let leftover = 0.5 * cpu_left / MAX_SPEC_CPU + 0.5 * gpu_left / MAX_SPEC_GPU;
    ((1.0 - leftover) * MAX_NODE_SCORE as f64) as i64
}
