//! An offline oracle: how few GPUs stay unallocated when every pod that has arrived by an
//! arrival bin is known in advance and packed at once, instead of online in arrival order.
//!
//! Best-fit decreasing (the classic offline bin-packing heuristic): the run's arrived pods
//! sorted by GPU demand, largest first, each put on the feasible node it leaves with the least
//! free GPU (then least free CPU), the tightest GPU for a sharing pod. Two orders are tried —
//! largest first, and pods pinned to GPU models first (they have the fewest places to go) —
//! and the better packing is kept. It is an achievable placement, not a proof of optimality:
//! it shows how much of an online policy's idle capacity is the price of not knowing the
//! future, and how much any placement of those pods would leave.
//!
//! Same arrival order, inflation and seed as a run of the protocol (`engine::setup`), so the
//! oracle packs exactly the pods a policy saw.

use super::SimError;
use super::engine::setup;
use super::workload::Workload;
use crate::model::{Demand, NodeState};
use crate::scoring::fit;

/// Unallocated GPU % of capacity when the pods arrived by the end of bin `at_pct` (arrived
/// GPU milli rounded to a whole % of capacity, as the read-out bins it) are packed offline;
/// `None` if the run never reaches that bin.
pub fn offline_unallocated_pct(
    workload: &Workload,
    seed: u64,
    tune: f64,
    typical_threshold_pct: f64,
    at_pct: u32,
) -> Result<Option<f64>, SimError> {
    let run = setup(workload, seed, tune, typical_threshold_pct)?;
    let capacity = workload.capacity_milli as f64;
    let mut arrived = 0u64;
    let mut reached = false;
    let mut pods: Vec<Demand> = Vec::new();
    for &index in &run.order {
        let Some(pod) = workload.pods.get(index) else {
            continue;
        };
        let after = arrived + pod.demand.total_gpu_milli();
        if (after as f64 / capacity * 100.0).round_ties_even() > f64::from(at_pct) {
            reached = true;
            break;
        }
        arrived = after;
        pods.push(pod.demand);
    }
    if !reached && (arrived as f64 / capacity * 100.0).round_ties_even() < f64::from(at_pct) {
        return Ok(None);
    }
    let largest_first = |a: &Demand, b: &Demand| {
        b.total_gpu_milli()
            .cmp(&a.total_gpu_milli())
            .then(b.gpu_milli.cmp(&a.gpu_milli))
            .then(b.cpu_milli.cmp(&a.cpu_milli))
    };
    let mut by_size = pods.clone();
    by_size.sort_by(largest_first);
    let mut pinned_first = pods;
    pinned_first.sort_by(|a, b| pinned(b).cmp(&pinned(a)).then_with(|| largest_first(a, b)));
    let used = pack(&workload.nodes, &by_size).max(pack(&workload.nodes, &pinned_first));
    Ok(Some(100.0 - used as f64 / capacity * 100.0))
}

/// Whether a GPU pod names the GPU models it may run on.
fn pinned(demand: &Demand) -> bool {
    !demand.is_cpu_only() && !demand.models.is_any()
}

/// Best-fit packing of `pods` in the given order onto copies of `nodes`; the GPU milli
/// allocated.
fn pack(nodes: &[NodeState], pods: &[Demand]) -> u64 {
    let mut nodes = nodes.to_vec();
    let mut used = 0u64;
    for demand in pods {
        let need = demand.total_gpu_milli();
        let mut best: Option<(u64, u64, usize)> = None;
        for (index, node) in nodes.iter().enumerate() {
            if !fit::fits(node, demand) {
                continue;
            }
            let key = (
                node.total_gpu_free().saturating_sub(need),
                node.cpu_free.saturating_sub(demand.cpu_milli),
                index,
            );
            if best.is_none_or(|b| key < b) {
                best = Some(key);
            }
        }
        let Some((_, _, index)) = best else {
            continue;
        };
        let Some(node) = nodes.get_mut(index) else {
            continue;
        };
        let Some(pick) = fit::default_pick(node, demand) else {
            continue;
        };
        if node.allocate(demand, pick).is_ok() {
            used += u64::from(pick.count()) * u64::from(demand.gpu_milli);
        }
    }
    used
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::frag::typical::DEFAULT_POPULARITY_THRESHOLD_PCT;
    use crate::sim::test_util::{tnode, tpod};

    #[test]
    fn the_oracle_pairs_shares_that_fill_gpus_whatever_the_arrival_order() {
        // Two one-GPU nodes and 600 + 600 + 400 + 400 milli: packed as 600 + 400 twice,
        // nothing is idle; online, two 600s first would strand 400 each.
        let nodes = [tnode("a", 1, "T4"), tnode("b", 1, "T4")];
        let pods = [
            tpod("p1", 1000, 1, 600),
            tpod("p2", 1000, 1, 600),
            tpod("p3", 1000, 1, 400),
            tpod("p4", 1000, 1, 400),
        ];
        let workload = Workload::from_trace(&nodes, &pods).unwrap();
        for seed in [1, 2, 3] {
            let oracle = offline_unallocated_pct(
                &workload,
                seed,
                1.0,
                DEFAULT_POPULARITY_THRESHOLD_PCT,
                100,
            )
            .unwrap();
            assert_eq!(oracle, Some(0.0), "seed {seed}");
        }
        assert_eq!(
            offline_unallocated_pct(&workload, 1, 0.5, DEFAULT_POPULARITY_THRESHOLD_PCT, 100)
                .unwrap(),
            None,
            "a run trimmed to 50 % never reaches 100 %"
        );
    }
}
