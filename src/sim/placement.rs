//! Who chooses the node and who chooses the device (`tessera simulate --placement`).
//!
//! An installed tessera does not pick the GPU: kube-scheduler's allocator takes the first
//! device that fits in the order the plugin publishes (`docs/device-model.md`, "Device
//! order"). The three deployments the simulator compares:
//!
//! | placement | node | device |
//! |---|---|---|
//! | [`Placement::Kube`] | kube-scheduler alone: its default Score plugins ([`kube_score`]) over the nodes it samples ([`nodes_to_find`]), ties broken at random | the allocator's first fit ([`first_fit`]) |
//! | [`Placement::Extender`] | the policy's score of what the allocator will give on each node ([`crate::scoring::Scorer::score_pick`]) | the allocator's first fit |
//! | [`Placement::Tessera`] | the policy's score | the policy's own choice (the ideal: what taking the device choice over could win) |
//!
//! # The allocator's first fit in openb terms
//!
//! On a node of the openb trace (MIG off, `consumable` level) the plugin publishes, per GPU,
//! the whole GPU `gpu-<i>` and the shared GPU `gpu-<i>-shared`, both drawing the GPU's whole
//! memory counter, so one excludes the other; a share holds the counter from its first share
//! on. All of a node's devices fit one device slice (16 GPUs × 2 devices ≤ 64), so the slice
//! order the release decides (name order on 1.36+, arbitrary on 1.34/1.35) cannot change the
//! outcome: both release families give the same first fit here. The published order is
//! shared GPUs from GPU 0 up, then whole GPUs from the highest index down
//! (`model::device_order`). A trace pod becomes a claim:
//!
//! - a sharing pod (one GPU, `gpu_milli` < 1000) asks the shared class for
//!   `gpu_milli / 10` % compute (and memory in proportion): the first shared GPU in published
//!   order with that much room, i.e. the lowest-index GPU with `free ≥ gpu_milli` that no
//!   pod holds whole. Compute is kept in milli, not rounded to the device's 1 % step, so
//!   that every placement mode is measured on the same accounting;
//! - an `n`-GPU pod asks for `n` whole GPUs: the first `n` fully free GPUs from the highest
//!   index down.
//!
//! A test (`tests/placement_projection.rs`) runs the allocator model on what
//! `tessera slices` publishes for such a node and checks it gives the same devices.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::model::{Demand, GpuPick, MILLI_PER_GPU, NodeState};
use crate::scoring::fit;

/// Who chooses the node and the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Placement {
    /// kube-scheduler alone: default scoring, the allocator's first fit.
    Kube,
    /// tessera as a scheduler extender: its node score of the allocator's first fit.
    Extender,
    /// tessera chooses node and device.
    Tessera,
}

impl Placement {
    /// Every placement, in report order.
    pub const ALL: [Placement; 3] = [Placement::Kube, Placement::Extender, Placement::Tessera];

    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Placement::Kube => "kube",
            Placement::Extender => "extender",
            Placement::Tessera => "tessera",
        }
    }

    /// Whether the scheduler's allocator, not the policy, picks the GPUs.
    pub fn allocator_picks(self) -> bool {
        self != Placement::Tessera
    }
}

/// The Kubernetes release family, as far as the allocator's slice order goes
/// (`docs/device-model.md`, "Device order").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Release {
    /// 1.34 and 1.35 (and 1.36+ running the "stable" allocator): a node's slices in an
    /// arbitrary order, drawn per pod from the run's seeded stream.
    Arbitrary,
    /// 1.36+ with the default gates: slices by name.
    NameOrder,
}

impl Release {
    /// The release family of Kubernetes `major.minor` (`1.35`, `1.36`); `None` for a version
    /// without `resource.k8s.io/v1` (before 1.34) or one that is not a version.
    pub fn from_version(text: &str) -> Option<Release> {
        let (major, minor) = text.trim().trim_start_matches('v').split_once('.')?;
        let minor = minor.split('.').next()?;
        match (major.parse::<u32>().ok()?, minor.parse::<u32>().ok()?) {
            (1, 34 | 35) => Some(Release::Arbitrary),
            (1, m) if m >= 36 => Some(Release::NameOrder),
            (m, _) if m > 1 => Some(Release::NameOrder),
            _ => None,
        }
    }

    /// How reports name it.
    pub fn name(self) -> &'static str {
        match self {
            Release::Arbitrary => "1.34/1.35",
            Release::NameOrder => "1.36+",
        }
    }
}

/// The allocator's first fit for `demand` on `node`, in openb terms (see the module docs);
/// `None` if no GPU set fits. CPU and memory are not looked at.
pub fn first_fit(node: &NodeState, demand: &Demand) -> Option<GpuPick> {
    if demand.is_cpu_only() {
        return Some(GpuPick::NONE);
    }
    let free = node.gpu_free();
    let mut pick = GpuPick::NONE;
    let mut left = demand.gpus;
    if demand.gpu_milli < MILLI_PER_GPU {
        // Shared GPUs, lowest index first. A GPU held whole has no room left.
        for (i, f) in free.iter().enumerate() {
            if left == 0 {
                break;
            }
            if *f >= demand.gpu_milli {
                pick = pick.with(i);
                left -= 1;
            }
        }
    } else {
        // Whole GPUs, highest index first; a GPU with any share holds its counter.
        for (i, f) in free.iter().enumerate().rev() {
            if left == 0 {
                break;
            }
            if *f == MILLI_PER_GPU {
                pick = pick.with(i);
                left -= 1;
            }
        }
    }
    (left == 0).then_some(pick)
}

/// kube-scheduler's default node score for a pod whose GPUs come through DRA: the default
/// Score plugins that see a difference between these nodes, each 0–100, weight 1
/// (`pkg/scheduler/apis/config/v1/default_plugins.go`, kubernetes-1.36.0):
///
/// - `NodeResourcesFit` with its default `LeastAllocated` strategy over CPU and memory
///   (`pkg/scheduler/framework/plugins/noderesources/least_allocated.go`): per resource
///   `(allocatable − requested) × 100 / allocatable`, the pod's request counted in, averaged.
///   DRA devices are not a resource of this plugin;
/// - `NodeResourcesBalancedAllocation` over CPU and memory (`balanced_allocation.go`):
///   `(1 − |cpu fraction − memory fraction| / 2) × 100`, fractions capped at 1;
/// - `DynamicResources` ranks nodes by which `firstAvailable` alternative they can satisfy
///   (`dynamicresources.go`, `computeScore`); a trace pod has one alternative, so it adds
///   the same to every node and is left out.
pub fn kube_score(node: &NodeState, demand: &Demand) -> i64 {
    let resources = [
        (node.cpu_capacity, node.cpu_free, demand.cpu_milli),
        (node.memory_capacity, node.memory_free, demand.memory_mib),
    ];
    let mut least = 0i64;
    let mut counted = 0i64;
    let mut fractions = [0.0f64; 2];
    for (slot, (capacity, free, request)) in fractions.iter_mut().zip(resources) {
        if capacity == 0 {
            continue;
        }
        let left = free.saturating_sub(request);
        let pct = u128::from(left) * 100 / u128::from(capacity);
        least += i64::try_from(pct).unwrap_or(100);
        counted += 1;
        let requested = capacity.saturating_sub(left);
        *slot = (requested as f64 / capacity as f64).min(1.0);
    }
    let least = if counted == 0 { 0 } else { least / counted };
    let std = ((fractions[0] - fractions[1]) / 2.0).abs();
    let balanced = ((1.0 - std) * 100.0) as i64;
    least + balanced
}

/// How many feasible nodes kube-scheduler looks for before it stops filtering and scores
/// those, with the default `percentageOfNodesToScore` (adaptive): all of a cluster under
/// 100 nodes; else `50 − nodes / 125` percent (at least 5 %) of them, at least 100
/// (`pkg/scheduler/schedule_one.go`, `numFeasibleNodesToFind`).
pub fn nodes_to_find(nodes: usize) -> usize {
    const MIN_NODES: usize = 100;
    if nodes < MIN_NODES {
        return nodes;
    }
    let percentage = 50usize.saturating_sub(nodes / 125).max(5);
    (nodes * percentage / 100).max(MIN_NODES)
}

/// kube-scheduler's node choice: starting where the previous pod's search stopped (`start`,
/// advanced by the nodes this search looked at, as `nextStartNodeIndex` is), walk the nodes
/// in `order` until [`nodes_to_find`] feasible ones are found, score them with
/// [`kube_score`] and take the best, ties uniformly at random (`selectHost`). `allowed`
/// is any further Filter (the cost experiment's spot taint). Returns the node index and the
/// allocator's first fit there.
pub fn kube_node(
    nodes: &[NodeState],
    order: &[usize],
    start: &mut usize,
    demand: &Demand,
    rng: &mut ChaCha8Rng,
    allowed: impl Fn(usize, &NodeState) -> bool,
) -> Option<(usize, GpuPick)> {
    let index = kube_select(order, start, rng, |index| {
        let node = nodes.get(index)?;
        if !fit::fits(node, demand) || !allowed(index, node) {
            return None;
        }
        first_fit(node, demand)?;
        Some(kube_score(node, demand))
    })?;
    let pick = first_fit(nodes.get(index)?, demand)?;
    Some((index, pick))
}

/// kube-scheduler's sampling and selection over any node type: `score(index)` is `None` for a
/// node that fails a Filter, else its score. See [`kube_node`].
pub fn kube_select(
    order: &[usize],
    start: &mut usize,
    rng: &mut ChaCha8Rng,
    mut score: impl FnMut(usize) -> Option<i64>,
) -> Option<usize> {
    let total = order.len();
    if total == 0 {
        return None;
    }
    let wanted = nodes_to_find(total);
    let mut found = 0usize;
    let mut looked = 0usize;
    let mut best: Option<(i64, usize)> = None;
    let mut ties = 0u32;
    while looked < total && found < wanted {
        let Some(&index) = order.get((*start + looked) % total) else {
            break;
        };
        looked += 1;
        let Some(s) = score(index) else {
            continue;
        };
        found += 1;
        match best {
            Some((top, _)) if s < top => {}
            Some((top, _)) if s == top => {
                ties += 1;
                if rng.random_range(0..ties) == 0 {
                    best = Some((s, index));
                }
            }
            _ => {
                ties = 1;
                best = Some((s, index));
            }
        }
    }
    *start = (*start + looked) % total;
    best.map(|(_, index)| index)
}

#[cfg(test)]
mod tests;
