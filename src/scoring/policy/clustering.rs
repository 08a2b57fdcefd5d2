//! GpuClustering: put pods with the same GPU request next to each other.
//!
//! Score bands (FGD simulator `gpu_clustering_score.go`): 75–100 for a node running only
//! pods of the same class, 50–75 for a node running that class among others, 25–50 for a
//! node running no GPU pod, 0–25 for a node running only other classes; within a band, the
//! fuller the node the higher. Integer arithmetic as in the original.

use super::{MAX_NODE_SCORE, MAX_SPEC_GPU};
use crate::model::{Demand, NodeState};

pub(super) fn score(node: &NodeState, demand: &Demand) -> i64 {
    let Some(class) = demand.class().counter_index() else {
        return 0;
    };
    let quarter = MAX_NODE_SCORE / 4;
    let max_gpu = MAX_SPEC_GPU as i64;
    let used = max_gpu - node.total_gpu_free() as i64;
    let within = quarter * used / max_gpu;
    let classes_present = node.pods_by_class.iter().filter(|c| **c > 0).count();
    let same_present = node.pods_by_class.get(class).is_some_and(|c| *c > 0);
    let band = match (same_present, classes_present) {
        (true, 1) => 3,
        (true, _) => 2,
        (false, 0) => 1,
        (false, _) => 0,
    };
    within + band * quarter
}
