//! Two offline references for a run's pods, each knowing every pod that has arrived by an
//! arrival bin (same arrival order, inflation and seed as a run of the protocol,
//! `engine::setup`, so they see exactly the pods a policy saw):
//!
//! - [`unallocated_lower_bound_pct`] — a **lower bound** on the unallocated GPU % that *any*
//!   placement of those pods leaves, online or offline. A sharing pod of `s` > 500 milli has
//!   its GPU to itself among such pods (two cannot share), so it leaves a gap of `1000 − s`
//!   that only pods of at most that size can fill; if it is not placed at all, its `s` ≥ the
//!   gap is idle instead (at the bin the arrived demand is the capacity, so every milli not
//!   placed is idle somewhere). Filling the gaps is a fractional transport problem with
//!   nested eligibility (a pod that fits a small gap fits every larger one), solved exactly
//!   by filling the smallest gaps first from the pods small enough for them. A policy can
//!   also refuse large pods, which removes their gaps but leaves their milli idle (at the
//!   bin, arrived demand is the capacity); the bound is the least idle over every choice of
//!   refusals (see the function). It ignores
//!   CPU, memory, GPU models and multi-GPU pods (relaxations only loosen it), so the true
//!   optimum may be higher; but no policy can go below it. Its core is the counting argument
//!   in `docs/simulation.md`: an 810-milli pod strands 190 milli that only the few pods of
//!   ≤ 190 milli can use.
//! - [`offline_unallocated_pct`] — best-fit decreasing, an achievable offline packing, kept
//!   for comparison: packing the largest pods first ignores CPU and strands more GPUs than
//!   the online policies do, which shows that knowing the future is not the same as using it.

use super::SimError;
use super::engine::setup;
use super::workload::Workload;
use crate::model::{Demand, MILLI_PER_GPU, NodeState};
use crate::scoring::fit;

/// The demands of the pods arrived by the end of bin `at_pct` (arrived GPU milli rounded to
/// a whole % of capacity, as the read-out bins it) and their total GPU milli; `None` if the
/// run never reaches that bin.
fn arrived_by(
    workload: &Workload,
    seed: u64,
    tune: f64,
    typical_threshold_pct: f64,
    at_pct: u32,
) -> Result<Option<(Vec<Demand>, u64)>, SimError> {
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
    Ok(Some((pods, arrived)))
}

/// A lower bound on the unallocated GPU % of capacity that any placement of the pods arrived
/// by the end of bin `at_pct` leaves (module docs); `None` if the run never reaches the bin.
/// A policy's read-out at the bin (a mean over the bin, allocation only growing) is never
/// below it.
pub fn unallocated_lower_bound_pct(
    workload: &Workload,
    seed: u64,
    tune: f64,
    typical_threshold_pct: f64,
    at_pct: u32,
) -> Result<Option<f64>, SimError> {
    let Some((pods, arrived)) = arrived_by(workload, seed, tune, typical_threshold_pct, at_pct)?
    else {
        return Ok(None);
    };
    let capacity = workload.capacity_milli;
    let half = MILLI_PER_GPU / 2;
    // Gaps next to the large shares, and how much GPU milli pods of each size bring.
    let mut gaps: Vec<u64> = Vec::new();
    let mut by_size = [0u64; MILLI_PER_GPU as usize + 1];
    for d in &pods {
        if !d.is_sharing() {
            continue;
        }
        if d.gpu_milli > half {
            gaps.push(u64::from(MILLI_PER_GPU - d.gpu_milli));
        } else if let Some(total) = by_size.get_mut(usize::from(d.gpu_milli)) {
            *total += u64::from(d.gpu_milli);
        }
    }
    gaps.sort_unstable();
    // Smallest gaps first, each from the pods small enough for it (smallest pods first, so
    // those that also fit the larger gaps are kept for them no better than any other).
    let mut filled = 0u64;
    let mut next_size = 0usize;
    for gap in &gaps {
        let mut room = *gap;
        while room > 0 && next_size <= *gap as usize {
            let Some(available) = by_size.get_mut(next_size) else {
                break;
            };
            let take = room.min(*available);
            *available -= take;
            room -= take;
            filled += take;
            if *available == 0 {
                next_size += 1;
            }
        }
    }
    // Every large pod placed: its gap minus what fills it is idle on its GPU.
    let unfilled = gaps.iter().sum::<u64>().saturating_sub(filled) as f64;
    // Idle is also capacity − arrived + every milli not placed. A policy may refuse large
    // pods to avoid their gaps: each refused pod of `s` adds `s` to the second count and
    // takes at most its gap `1000 − s` off the first (fewer gaps never take more filling).
    // Idle is at least the larger of the two counts for whatever it refuses, so the bound is
    // the least such maximum: refuse the pods that save most gap per milli refused (the
    // smallest shares) until the two counts meet.
    let spare = capacity as f64 - arrived as f64;
    let mut shares: Vec<u64> = gaps.iter().map(|g| u64::from(MILLI_PER_GPU) - g).collect();
    shares.sort_unstable();
    let (mut refused, mut saved) = (0.0f64, 0.0f64);
    let mut bound = spare.max(unfilled);
    if spare < unfilled {
        bound = (spare + refused).max(unfilled - saved);
        for share in shares {
            let (s, gap) = (share as f64, f64::from(MILLI_PER_GPU) - share as f64);
            if spare + refused + s >= unfilled - saved - gap {
                // Meet inside this pod: refusing a fraction f adds f·s and saves f·gap.
                let f = ((unfilled - saved - spare - refused) / (s + gap)).clamp(0.0, 1.0);
                bound = spare + refused + f * s;
                break;
            }
            refused += s;
            saved += gap;
            bound = (spare + refused).max(unfilled - saved);
        }
    }
    let capacity = capacity as f64;
    Ok(Some(bound.clamp(0.0, capacity) / capacity * 100.0))
}

/// Unallocated GPU % of capacity when the pods arrived by the end of bin `at_pct` are packed
/// offline by best-fit decreasing; `None` if the run never reaches that bin.
pub fn offline_unallocated_pct(
    workload: &Workload,
    seed: u64,
    tune: f64,
    typical_threshold_pct: f64,
    at_pct: u32,
) -> Result<Option<f64>, SimError> {
    let Some((pods, _)) = arrived_by(workload, seed, tune, typical_threshold_pct, at_pct)? else {
        return Ok(None);
    };
    let capacity = workload.capacity_milli as f64;
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

    #[test]
    fn a_full_cluster_of_large_shares_trades_gaps_against_refusals() {
        // Two one-GPU nodes, two 810s and a 380: capacity 2,000 = arrived. Nothing fits a
        // 190 gap: unfilled 380, spare 0. Refusing an 810 adds 810 idle and saves 190; the
        // two counts meet at f = 380 / 1000 of one pod: 0.38 × 810 = 307.8 milli.
        let nodes: Vec<_> = (0..2).map(|i| tnode(&format!("n{i}"), 1, "T4")).collect();
        let pods = [
            tpod("a", 1000, 1, 810),
            tpod("b", 1000, 1, 810),
            tpod("c", 1000, 1, 380),
        ];
        let workload = Workload::from_trace(&nodes, &pods).unwrap();
        let bound =
            unallocated_lower_bound_pct(&workload, 1, 1.0, DEFAULT_POPULARITY_THRESHOLD_PCT, 100)
                .unwrap()
                .unwrap();
        assert!((bound - 307.8 / 20.0).abs() < 1e-9, "{bound}");
    }

    #[test]
    fn the_bound_counts_gaps_beside_large_shares_that_no_pod_is_small_enough_to_fill() {
        // Four one-GPU nodes; 810 + 810 + 190 + 190 + 1000 milli arrive (3,000 of 4,000,
        // read at 75 %). Both 190s fill both gaps exactly: only the 1,000 not arrived is
        // idle. With 200-milli pods instead nothing fits a gap, but the 980 milli never
        // arrived already outweigh the 380 of gaps, so the bound is that 980.
        let nodes: Vec<_> = (0..4).map(|i| tnode(&format!("n{i}"), 1, "T4")).collect();
        let bound = |small: u32| {
            let pods = [
                tpod("a", 1000, 1, 810),
                tpod("b", 1000, 1, 810),
                tpod("c", 1000, 1, small),
                tpod("d", 1000, 1, small),
                tpod("e", 1000, 1, 1000),
            ];
            let workload = Workload::from_trace(&nodes, &pods).unwrap();
            let arrived = workload.requested_milli() as f64 / 4000.0;
            unallocated_lower_bound_pct(
                &workload,
                3,
                arrived,
                DEFAULT_POPULARITY_THRESHOLD_PCT,
                (arrived * 100.0).round() as u32,
            )
            .unwrap()
            .unwrap()
        };
        // 190s: 4,000 − 3,000 arrived = 1,000 idle; gaps 2 × 190 filled.
        assert!((bound(190) - 25.0).abs() < 1e-9, "{}", bound(190));
        assert!((bound(200) - 24.5).abs() < 1e-9, "{}", bound(200));
    }
}
