//! DotProd: prefer the node whose free (CPU, GPU) vector is least aligned with the request.
//!
//! FGD simulator settings `-gpusel best -dimext merge -norm max`: both vectors are divided
//! by the largest node's capacity, the dot product is halved (two dimensions) and the score
//! is `100 × (1 − dot)`, truncated.

use super::{MAX_NODE_SCORE, MAX_SPEC_CPU, MAX_SPEC_GPU};
use crate::model::{Demand, NodeState};

pub(super) fn score(node: &NodeState, demand: &Demand) -> i64 {
    let free = [
        node.cpu_free as f64 / MAX_SPEC_CPU,
        node.total_gpu_free() as f64 / MAX_SPEC_GPU,
    ];
    let req = [
        demand.cpu_milli as f64 / MAX_SPEC_CPU,
        demand.total_gpu_milli() as f64 / MAX_SPEC_GPU,
    ];
    let dot = (free[0] * req[0] + free[1] * req[1]) / 2.0;
    (MAX_NODE_SCORE as f64 * (1.0 - dot)) as i64
}
