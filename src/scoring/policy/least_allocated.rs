//! LeastAllocated: kube-scheduler's default `NodeResourcesFit` scoring strategy, a spread.
//!
//! Per resource, `(allocatable − requested) × 100 / allocatable` in integers, with the pod's
//! request counted in; the node's score is the weighted mean. kube-scheduler scores CPU and
//! memory by default; GPU milli is added here with the same weight, as a cluster that spreads
//! GPU pods would configure it (`scoringStrategy.resources`). Resources a node does not have
//! are skipped, as kube-scheduler skips resources with zero allocatable.

use super::MAX_NODE_SCORE;
use crate::model::{Demand, NodeState};

pub(super) fn score(node: &NodeState, demand: &Demand) -> i64 {
    let gpu_capacity = node.gpu_capacity_milli();
    let resources = [
        (node.cpu_capacity, node.cpu_free, demand.cpu_milli),
        (node.memory_capacity, node.memory_free, demand.memory_mib),
        (
            gpu_capacity,
            node.total_gpu_free(),
            demand.total_gpu_milli(),
        ),
    ];
    let mut sum = 0i64;
    let mut weight = 0i64;
    for (capacity, free, request) in resources {
        if capacity == 0 {
            continue;
        }
        let left = free.saturating_sub(request);
        // ≤ 100 × capacity / capacity: fits in i64 for any u64 inputs once divided.
        let pct = u128::from(left) * MAX_NODE_SCORE as u128 / u128::from(capacity);
        sum += i64::try_from(pct).unwrap_or(MAX_NODE_SCORE);
        weight += 1;
    }
    if weight == 0 { 0 } else { sum / weight }
}
