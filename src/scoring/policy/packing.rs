//! GpuPacking: fill partially used GPUs first, then free GPUs on used nodes, then idle nodes.
//!
//! Score bands (FGD simulator `gpu_packing_score.go`): 50–100 when only partially used GPUs
//! are needed (the less free on them, the higher), 33–50 when fully free GPUs of a used node
//! are needed (fewer is higher), below 33 for an idle node (fewer GPUs is higher).

use super::MAX_NODE_SCORE;
use crate::model::{Demand, MILLI_PER_GPU, NodeState};

pub(super) fn score(node: &NodeState, demand: &Demand) -> Option<i64> {
    if demand.gpu_milli == 0 {
        return Some(0);
    }
    let fully_free = node.fully_free_gpus() as i64;
    if fully_free == i64::from(node.gpus) {
        return Some((MAX_NODE_SCORE / 3 - fully_free).max(fully_free));
    }
    // GPUs by free milli ascending (stable: lower index first among equals).
    let mut order: Vec<(u16, usize)> = node
        .gpu_free()
        .iter()
        .copied()
        .enumerate()
        .map(|(i, f)| (f, i))
        .collect();
    order.sort();
    let mut wanted = demand.gpus;
    let mut free_used = 0i64;
    let mut pct_on_used = 0i64;
    for (free, _) in order {
        if wanted == 0 {
            break;
        }
        if free >= demand.gpu_milli {
            wanted -= 1;
            if free == MILLI_PER_GPU {
                free_used += 1;
            }
            pct_on_used += i64::from(free) * 100 / i64::from(MILLI_PER_GPU);
        }
    }
    if wanted != 0 {
        return None;
    }
    if free_used > 0 {
        return Some((MAX_NODE_SCORE / 2 - free_used).max(MAX_NODE_SCORE / 3));
    }
    Some((MAX_NODE_SCORE - pct_on_used / 10).max(MAX_NODE_SCORE / 2))
}
