//! One simulation run: one policy, one seed.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::SimError;
use super::cluster::SimCluster;
use super::placement::{Placement, first_fit, kube_node};
use super::typical::{TypicalSource, refresh_due};
use super::workload::{Workload, arrival_order};
use crate::model::{GpuPick, NodeState};
use crate::report::{RunRecord, Sample};
use crate::scoring::frag::typical::DEFAULT_POPULARITY_THRESHOLD_PCT;
use crate::scoring::{
    GpuChoice, NodeScore, OnlineTypical, Policy, Scorer, TesseraWeights, TypicalPods,
};

/// How to run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunConfig {
    /// The placement policy.
    pub policy: Policy,
    /// Seed of the run's only random stream.
    pub seed: u64,
    /// Inflate (or trim) the workload to this multiple of the cluster's GPU capacity.
    pub tune: f64,
    /// tessera's weights (ignored by the baselines).
    pub weights: TesseraWeights,
    /// Share of pods the typical pods must cover, percent.
    pub typical_threshold_pct: f64,
    /// Who chooses the node and the device.
    pub placement: Placement,
    /// Where the policies' typical pods come from (the protocol: known in advance).
    pub typical: TypicalSource,
}

impl RunConfig {
    /// The protocol's defaults for `policy` and `seed`: tune 1.3, typical pods at 95%.
    pub fn protocol(policy: Policy, seed: u64) -> Self {
        RunConfig {
            policy,
            seed,
            tune: 1.3,
            weights: TesseraWeights::default(),
            typical_threshold_pct: DEFAULT_POPULARITY_THRESHOLD_PCT,
            placement: Placement::Tessera,
            typical: TypicalSource::Known,
        }
    }
}

/// A cached score: valid while `stamp` equals the node's generation + 1 (so the zeroed
/// initial entries are never valid).
#[derive(Clone, Copy)]
pub(super) struct CacheEntry {
    stamp: u32,
    score: Option<NodeScore>,
}

/// Scores of every (pod shape, node) pair, kept until the node changes.
///
/// Scores are pure functions of the node's state and the pod's demand, so a cached score is
/// exactly what scoring again would give. Laid out shape-major so that scoring one pod walks
/// memory in order.
pub(super) struct ScoreCache {
    nodes: usize,
    entries: Vec<CacheEntry>,
}

impl ScoreCache {
    pub(super) fn new(shapes: usize, nodes: usize) -> Self {
        ScoreCache {
            nodes,
            entries: vec![
                CacheEntry {
                    stamp: 0,
                    score: None
                };
                shapes.saturating_mul(nodes)
            ],
        }
    }

    pub(super) fn row(&mut self, shape: u32) -> &mut [CacheEntry] {
        let start = (shape as usize).saturating_mul(self.nodes);
        let end = start.saturating_add(self.nodes).min(self.entries.len());
        self.entries.get_mut(start.min(end)..end).unwrap_or(&mut [])
    }
}

/// Replay `workload` under `config`; `progress` is called with the number of pods done
/// since its last call (every 256 pods and at the end).
pub fn run(
    workload: &Workload,
    config: &RunConfig,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<RunRecord, SimError> {
    run_until(workload, config, None, progress)
}

/// [`run`], stopping before the first pod that would take the arrived workload past
/// `last_pct` % of capacity (rounded as the read-out bins it), when given: the record then
/// reads exactly like the full run's up to that bin. Checks that read one bin need no more.
pub fn run_until(
    workload: &Workload,
    config: &RunConfig,
    last_pct: Option<u32>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<RunRecord, SimError> {
    let capacity = workload.capacity_milli.max(1) as f64;
    let RunSetup {
        mut rng,
        typical,
        order,
        rank,
    } = setup(
        workload,
        config.seed,
        config.tune,
        config.typical_threshold_pct,
    )?;
    let model_capacity = workload.model_capacity_milli();
    let scorer_for = |t: TypicalPods| {
        Scorer::new(config.policy, t, config.weights).with_model_capacity(&model_capacity)
    };
    // Online: the policies score with what was learned from the pods that arrived before;
    // the recorded fragmentation still uses `typical`, the workload's own distribution.
    let mut learner = match &config.typical {
        TypicalSource::Known => None,
        TypicalSource::Online { prior, window } => Some(OnlineTypical::new(prior, *window)?),
    };
    let mut scorer = scorer_for(match &learner {
        Some(l) => l.typical(config.typical_threshold_pct),
        None => typical.clone(),
    });
    let mut cluster = SimCluster::new(workload.nodes.clone(), &typical);
    let mut cache = ScoreCache::new(workload.shapes.len(), workload.nodes.len());

    // kube-scheduler walks its nodes in one fixed order, resuming where it stopped.
    let mut kube_order: Vec<usize> = (0..workload.nodes.len()).collect();
    kube_order.sort_by_key(|i| rank.get(*i).copied().unwrap_or(u32::MAX));
    let mut kube_start = 0usize;

    let mut samples = Vec::with_capacity(order.len());
    let mut arrived_milli = 0u64;
    let mut failed = 0u64;
    let mut since_report = 0u64;
    for &pod_index in &order {
        let Some(pod) = workload.pods.get(pod_index) else {
            continue;
        };
        if let Some(last) = last_pct {
            let after = arrived_milli + pod.demand.total_gpu_milli();
            if (after as f64 / capacity * 100.0).round_ties_even() > f64::from(last) {
                break;
            }
        }
        arrived_milli += pod.demand.total_gpu_milli();
        let demand = &pod.demand;
        let choice = match (config.placement, config.policy) {
            (Placement::Kube, _) => kube_node(
                cluster.nodes(),
                &kube_order,
                &mut kube_start,
                demand,
                &mut rng,
                |_, _| true,
            )
            .map(|(index, pick)| (index, GpuChoice::Pick(pick))),
            (_, Policy::Random) => random_node(&scorer, &cluster, demand, &mut rng),
            (Placement::Extender, _) => {
                select_node(&cluster, cache.row(pod.shape), &rank, |_, node| {
                    scorer.score_pick(node, demand, first_fit(node, demand)?)
                })
            }
            (Placement::Tessera, _) => {
                select_node(&cluster, cache.row(pod.shape), &rank, |_, node| {
                    scorer.score(node, demand)
                })
            }
        };
        let placed = choice.and_then(|(index, choice)| {
            let node = cluster.nodes().get(index)?;
            let pick = if config.placement.allocator_picks() {
                first_fit(node, demand)?
            } else {
                resolve_gpus(node, demand, choice, &mut rng)?
            };
            cluster.place(index, demand, pick, &typical).ok()
        });
        if placed.is_none() {
            failed += 1;
        }
        if let Some(l) = learner.as_mut() {
            l.observe(&pod.demand);
            if refresh_due(l.observed()) {
                scorer = scorer_for(l.typical(config.typical_threshold_pct));
                // Cached scores were computed with the old typical set.
                cache = ScoreCache::new(workload.shapes.len(), workload.nodes.len());
            }
        }
        samples.push(Sample {
            arrived_milli,
            used_milli: cluster.used_milli(),
            frag_milli: cluster.frag_milli(),
        });
        since_report += 1;
        if since_report == 256 {
            progress(since_report);
            since_report = 0;
        }
    }
    progress(since_report);

    Ok(RunRecord {
        policy: record_name(config.placement, config.policy.name()),
        seed: config.seed,
        capacity_milli: workload.capacity_milli,
        pods: samples.len() as u64,
        failed_pods: failed,
        samples,
    })
}

/// A run's name in reports: the policy's, or `kube-scheduler` when kube-scheduler alone
/// places the pods (no policy takes part).
pub fn record_name(placement: Placement, policy: &str) -> String {
    match placement {
        Placement::Kube => KUBE_SCHEDULER.to_owned(),
        _ => policy.to_owned(),
    }
}

/// The report name of [`Placement::Kube`] runs.
pub const KUBE_SCHEDULER: &str = "kube-scheduler";

/// What every run starts from: its random stream after the arrival order and node ranks were
/// drawn, the typical pods, the arrival order and the node ranks.
pub(super) struct RunSetup {
    pub(super) rng: ChaCha8Rng,
    pub(super) typical: TypicalPods,
    pub(super) order: Vec<usize>,
    pub(super) rank: Vec<u32>,
}

/// Draws a run's arrival order and node ranks from `seed`, in the protocol's order.
pub(super) fn setup(
    workload: &Workload,
    seed: u64,
    tune: f64,
    typical_threshold_pct: f64,
) -> Result<RunSetup, SimError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let typical = TypicalPods::from_demands(
        workload.pods.iter().map(|p| &p.demand),
        typical_threshold_pct,
    );
    let order = arrival_order(workload, tune, &mut rng)?;
    // The FGD simulator renames nodes with a seeded permutation prefix and breaks score ties
    // toward the lexicographically smallest name: a fixed, seeded node priority per run.
    let mut rank: Vec<u32> = (0..u32::try_from(workload.nodes.len()).unwrap_or(u32::MAX)).collect();
    rank.shuffle(&mut rng);
    Ok(RunSetup {
        rng,
        typical,
        order,
        rank,
    })
}

/// The highest-scoring feasible node by `score(index, node)` (cached per node until the node
/// changes); exact ties go to the node of lowest `rank`, as the FGD simulator's patched
/// `selectHost` picks the smallest node name.
pub(super) fn select_node(
    cluster: &SimCluster,
    cache: &mut [CacheEntry],
    rank: &[u32],
    score: impl Fn(usize, &NodeState) -> Option<NodeScore>,
) -> Option<(usize, GpuChoice)> {
    let mut best: Option<(f64, u32, usize, GpuChoice)> = None;
    for (index, (((node, generation), entry), node_rank)) in cluster
        .nodes()
        .iter()
        .zip(cluster.generations())
        .zip(cache.iter_mut())
        .zip(rank)
        .enumerate()
    {
        let stamp = generation.wrapping_add(1);
        if entry.stamp != stamp {
            *entry = CacheEntry {
                stamp,
                score: score(index, node),
            };
        }
        let Some(score) = entry.score else {
            continue;
        };
        let better = best.is_none_or(|(top, top_rank, _, _)| {
            score.score > top || (score.score == top && *node_rank < top_rank)
        });
        if better {
            best = Some((score.score, *node_rank, index, score.choice));
        }
    }
    best.map(|(_, _, index, choice)| (index, choice))
}

/// A uniformly random feasible node: the Random baseline draws one node per pod among the
/// feasible ones (`random_score.go`), here by reservoir sampling in one pass.
fn random_node(
    scorer: &Scorer,
    cluster: &SimCluster,
    demand: &crate::model::Demand,
    rng: &mut ChaCha8Rng,
) -> Option<(usize, GpuChoice)> {
    let mut chosen = None;
    let mut seen = 0u32;
    for (index, node) in cluster.nodes().iter().enumerate() {
        if let Some(score) = scorer.score(node, demand) {
            seen += 1;
            if rng.random_range(0..seen) == 0 {
                chosen = Some((index, score.choice));
            }
        }
    }
    chosen
}

/// Turn a policy's GPU choice into GPUs; `AnyFitting` picks uniformly among GPUs with room.
pub(super) fn resolve_gpus(
    node: &NodeState,
    demand: &crate::model::Demand,
    choice: GpuChoice,
    rng: &mut ChaCha8Rng,
) -> Option<GpuPick> {
    match choice {
        GpuChoice::Pick(pick) => Some(pick),
        GpuChoice::AnyFitting => {
            let mut chosen = None;
            let mut seen = 0u32;
            for (i, free) in node.gpu_free().iter().enumerate() {
                if *free >= demand.gpu_milli {
                    seen += 1;
                    if rng.random_range(0..seen) == 0 {
                        chosen = Some(i);
                    }
                }
            }
            chosen.map(GpuPick::single)
        }
    }
}

#[cfg(test)]
mod tests;
