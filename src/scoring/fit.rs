//! Feasibility: can a node hold a pod at all, and which GPUs would it use.
//!
//! The rules of the FGD protocol (placement-benchmark.md §3.3): CPU and memory must fit,
//! `gpus` GPUs on the node must each have at least `gpu_milli` free, and a pod that names
//! GPU models runs only on those models.

use crate::model::{Demand, GpuPick, MILLI_PER_GPU, NodeState};

/// Whether the node's GPU model is one the pod accepts (always true for pods that need
/// no GPU or name no model).
pub fn model_allows(node: &NodeState, demand: &Demand) -> bool {
    demand.is_cpu_only() || demand.models.allows(node.model)
}

/// Whether `demand` fits on `node` now.
pub fn fits(node: &NodeState, demand: &Demand) -> bool {
    if node.cpu_free < demand.cpu_milli || node.memory_free < demand.memory_mib {
        return false;
    }
    if demand.is_cpu_only() {
        return true;
    }
    model_allows(node, demand)
        && node.gpus_with_at_least(demand.gpu_milli) >= usize::from(demand.gpus)
}

/// The GPU a sharing pod fits most tightly: least free milli that still holds it, lowest
/// index among equals. `None` if no GPU has room.
pub fn tightest_gpu(node: &NodeState, milli: u16) -> Option<usize> {
    let mut best: Option<(usize, u16)> = None;
    for (i, free) in node.gpu_free().iter().copied().enumerate() {
        if free >= milli && best.is_none_or(|(_, b)| free < b) {
            best = Some((i, free));
        }
    }
    best.map(|(i, _)| i)
}

/// The first `count` fully free GPUs in index order, as whole-GPU pods get them.
pub fn first_free_gpus(node: &NodeState, count: u8) -> Option<GpuPick> {
    let mut pick = GpuPick::NONE;
    let mut left = count;
    for (i, free) in node.gpu_free().iter().enumerate() {
        if left == 0 {
            break;
        }
        if *free == MILLI_PER_GPU {
            pick = pick.with(i);
            left -= 1;
        }
    }
    (left == 0).then_some(pick)
}

/// Candidate GPUs for a sharing pod of `milli`: `(index, free milli)` of each GPU with room,
/// keeping only the first GPU of each distinct free amount — GPUs with the same free milli
/// are interchangeable for scoring, and the lowest index wins ties.
pub fn distinct_share_candidates(node: &NodeState, milli: u16) -> Vec<(usize, u16)> {
    let mut out: Vec<(usize, u16)> = Vec::with_capacity(node.gpu_free().len());
    for (i, free) in node.gpu_free().iter().copied().enumerate() {
        if free >= milli && !out.iter().any(|(_, f)| *f == free) {
            out.push((i, free));
        }
    }
    out
}

/// The default GPU choice for a feasible demand: the tightest GPU for a sharing pod, the
/// first free GPUs for whole-GPU pods, none for CPU-only pods.
pub fn default_pick(node: &NodeState, demand: &Demand) -> Option<GpuPick> {
    if demand.is_cpu_only() {
        Some(GpuPick::NONE)
    } else if demand.is_sharing() {
        tightest_gpu(node, demand.gpu_milli).map(GpuPick::single)
    } else {
        first_free_gpus(node, demand.gpus)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ModelRegistry, ModelSet};
    use crate::scoring::test_util::demand;

    fn node_with(free: &[u16]) -> NodeState {
        let mut n = NodeState::new(None, free.len() as u32, 32_000, 65_536).unwrap();
        n.gpu_free_milli[..free.len()].copy_from_slice(free);
        n
    }

    #[test]
    fn cpu_memory_gpu_count_and_share_all_limit_fit() {
        let node = node_with(&[1000, 400, 0, 1000]);
        assert!(fits(&node, &demand(32_000, 2, 1000)));
        assert!(!fits(&node, &demand(32_001, 1, 100)), "CPU");
        let mut big_mem = demand(1000, 1, 100);
        big_mem.memory_mib = 65_537;
        assert!(!fits(&node, &big_mem), "memory");
        assert!(
            !fits(&node, &demand(1000, 3, 1000)),
            "only two whole GPUs free"
        );
        assert!(fits(&node, &demand(1000, 1, 400)));
        assert!(
            fits(&node, &demand(1000, 3, 400)),
            "three GPUs with ≥ 400 each"
        );
        assert!(!fits(&node, &demand(1000, 4, 400)));
        assert!(
            fits(&node, &demand(1000, 0, 0)),
            "CPU-only pods need no GPU"
        );
    }

    #[test]
    fn model_constraint_is_respected() {
        let mut reg = ModelRegistry::new();
        let t4 = reg.intern("T4").unwrap();
        let p100 = reg.intern("P100").unwrap();
        let node = NodeState::new(Some(t4), 2, 8000, 8192).unwrap();
        let mut d = demand(1000, 1, 500);
        d.models = ModelSet::only(p100);
        assert!(!fits(&node, &d));
        d.models = ModelSet::only(p100).with(t4);
        assert!(fits(&node, &d));
        let cpu_node = NodeState::new(None, 0, 8000, 8192).unwrap();
        assert!(!fits(&cpu_node, &d));
    }

    #[test]
    fn gpu_choices_follow_best_fit_and_index_order() {
        let node = node_with(&[1000, 400, 300, 1000, 300]);
        assert_eq!(
            tightest_gpu(&node, 250),
            Some(2),
            "least free that fits, lowest index"
        );
        assert_eq!(tightest_gpu(&node, 350), Some(1));
        assert_eq!(tightest_gpu(&node, 1001), None);
        assert_eq!(first_free_gpus(&node, 2), Some(GpuPick::single(0).with(3)));
        assert_eq!(first_free_gpus(&node, 3), None);
        assert_eq!(default_pick(&node, &demand(1, 0, 0)), Some(GpuPick::NONE));
        assert_eq!(
            distinct_share_candidates(&node, 300),
            vec![(0, 1000), (1, 400), (2, 300)],
            "GPU 3 (1000) and GPU 4 (300) repeat earlier free amounts"
        );
    }
}
