//! One run of the cost experiment: the placement protocol of `engine`, on priced nodes with a
//! seeded share of spot capacity, pods that declare a tolerance, and the blended score.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::interruptions::{draw_interruptions, lost_gpu_hours};
use super::pricing::{NodeOffers, NodePrice};
use super::tolerance::assign_tolerances;
use super::{CostError, CostPolicy, PricedWorkload};
use crate::market::CapacityType;
use crate::model::{Demand, NodeState};
use crate::report::cost::{COST_POINTS_PCT, CostRunRecord, CostSnapshot};
use crate::report::{RunRecord, Sample};
use crate::scoring::{
    NodeInputs, NodeScore, PodInputs, Policy, Scorer, Tolerance, Weights, demand_gpus, score_node,
};
use crate::sim::cluster::SimCluster;
use crate::sim::engine::{ScoreCache, record_name, resolve_gpus, select_node, setup};
use crate::sim::placement::{Placement, first_fit, kube_node};

/// Stream of the run's seed the spot nodes are drawn from.
const SPOT_STREAM: u64 = 1;

/// How to run one cost run.
#[derive(Debug, Clone, PartialEq)]
pub struct CostRunConfig {
    /// The policy.
    pub policy: CostPolicy,
    /// Seed of every random stream of the run.
    pub seed: u64,
    /// Inflate the workload to this multiple of the cluster's GPU capacity.
    pub tune: f64,
    /// Weights of the blended score (tessera) and the lost-work assumptions (every policy).
    pub weights: Weights,
    /// Share of nodes (of those the node list leaves open) bought as spot, in `[0, 1]`.
    pub spot_share: f64,
    /// Share of pods the typical pods must cover, percent.
    pub typical_threshold_pct: f64,
    /// Who chooses the node and the device.
    pub placement: Placement,
}

/// Which nodes are spot: those the node list marks so, plus `share` of the others (rounded),
/// chosen by a seeded shuffle that depends on the seed alone, not on the policy.
pub fn spot_nodes(offers: &[NodeOffers], share: f64, seed: u64) -> Vec<bool> {
    let mut spot: Vec<bool> = offers
        .iter()
        .map(|o| o.fixed == Some(CapacityType::Spot))
        .collect();
    let mut open: Vec<usize> = offers
        .iter()
        .enumerate()
        .filter(|(_, o)| o.fixed.is_none())
        .map(|(i, _)| i)
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(SPOT_STREAM);
    open.shuffle(&mut rng);
    let count = (share.clamp(0.0, 1.0) * open.len() as f64).round() as usize;
    for &i in open.iter().take(count) {
        if let Some(s) = spot.get_mut(i) {
            *s = true;
        }
    }
    spot
}

/// Per-node running totals the snapshots read.
#[derive(Debug, Clone, Default)]
struct NodeTally {
    /// GPU milli held by the node's pods, per tolerance.
    milli_by_tolerance: [u64; 3],
    /// Intolerant pods on the node.
    intolerant_pods: u64,
    /// Whether any pod runs on the node.
    occupied: bool,
}

/// Replays the priced workload under `config`; `progress` is called with the number of pods
/// done since its last call.
pub fn run_cost(
    priced: &PricedWorkload<'_>,
    config: &CostRunConfig,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<CostRunRecord, CostError> {
    let workload = priced.workload;
    if config.policy.base() == Policy::Random {
        return Err(CostError::UnsupportedPolicy(Policy::Random));
    }
    let setup = setup(
        workload,
        config.seed,
        config.tune,
        config.typical_threshold_pct,
    )?;
    let spot = spot_nodes(&priced.offers, config.spot_share, config.seed);
    let prices: Vec<&NodePrice> = priced
        .offers
        .iter()
        .zip(&spot)
        .map(|(o, s)| o.priced(*s))
        .collect();
    let tolerances = assign_tolerances(workload, priced.trace_pods, config.seed);
    let probabilities: Vec<f64> = prices
        .iter()
        .map(|p| p.hourly_interruption_probability)
        .collect();
    let interruptions = draw_interruptions(&probabilities, config.seed);
    let weights = match config.policy {
        CostPolicy::Tessera { cost: false } => config.weights.without_cost(),
        _ => config.weights,
    };

    let scorer = Scorer::new(
        config.policy.base(),
        setup.typical.clone(),
        weights.fragmentation,
    )
    .with_model_capacity(&workload.model_capacity_milli());
    let mut cluster = SimCluster::new(workload.nodes.clone(), &setup.typical);
    let tolerance_count = Tolerance::ALL.len();
    let mut cache = ScoreCache::new(
        workload.shapes.len().saturating_mul(tolerance_count),
        workload.nodes.len(),
    );
    let mut rng = setup.rng;
    let mut tally = vec![NodeTally::default(); workload.nodes.len()];
    let mut occupied_usd = 0.0;
    let mut spot_milli = 0u64;
    let mut samples = Vec::with_capacity(setup.order.len());
    let mut occupied_series = Vec::with_capacity(setup.order.len());
    let mut snapshots = Vec::with_capacity(COST_POINTS_PCT.len());
    let mut next_point = COST_POINTS_PCT.iter().copied().peekable();
    let mut arrived_milli = 0u64;
    let mut failed = 0u64;
    let mut since_report = 0u64;
    let mut kube_order: Vec<usize> = (0..workload.nodes.len()).collect();
    kube_order.sort_by_key(|i| setup.rank.get(*i).copied().unwrap_or(u32::MAX));
    let mut kube_start = 0usize;

    for &pod_index in &setup.order {
        let (Some(pod), Some(&tolerance)) =
            (workload.pods.get(pod_index), tolerances.get(pod_index))
        else {
            continue;
        };
        arrived_milli += pod.demand.total_gpu_milli();
        let shape = pod.shape.saturating_mul(tolerance_count as u32) + tolerance.index() as u32;
        let score = |index: usize, node: &NodeState| {
            let price = prices.get(index)?;
            score_pod(
                &scorer,
                config.policy,
                config.placement,
                &weights,
                node,
                price,
                &pod.demand,
                tolerance,
            )
        };
        let choice = match config.placement {
            // kube-scheduler alone, held to the same spot filter as every policy.
            Placement::Kube => kube_node(
                cluster.nodes(),
                &kube_order,
                &mut kube_start,
                &pod.demand,
                &mut rng,
                |index, node| score(index, node).is_some(),
            )
            .map(|(index, pick)| (index, crate::scoring::GpuChoice::Pick(pick))),
            _ => select_node(&cluster, cache.row(shape), &setup.rank, score),
        };
        let placed = choice.and_then(|(index, choice)| {
            let node = cluster.nodes().get(index)?;
            let pick = if config.placement.allocator_picks() {
                first_fit(node, &pod.demand)?
            } else {
                resolve_gpus(node, &pod.demand, choice, &mut rng)?
            };
            cluster
                .place(index, &pod.demand, pick, &setup.typical)
                .ok()?;
            Some(index)
        });
        match placed {
            Some(index) => {
                let milli = pod.demand.total_gpu_milli();
                if let (Some(t), Some(price)) = (tally.get_mut(index), prices.get(index)) {
                    t.milli_by_tolerance[tolerance.index()] += milli;
                    if tolerance == Tolerance::Intolerant {
                        t.intolerant_pods += 1;
                    }
                    if !t.occupied {
                        t.occupied = true;
                        occupied_usd += price.node_hourly_price;
                    }
                    if price.capacity == CapacityType::Spot {
                        spot_milli += milli;
                    }
                }
            }
            None => failed += 1,
        }
        samples.push(Sample {
            arrived_milli,
            used_milli: cluster.used_milli(),
            frag_milli: cluster.frag_milli(),
        });
        occupied_series.push(occupied_usd);
        while let Some(point) =
            next_point.next_if(|p| arrived_milli * 100 >= u64::from(*p) * workload.capacity_milli)
        {
            snapshots.push(CostSnapshot {
                arrived_pct: point,
                occupied_nodes: tally.iter().filter(|t| t.occupied).count() as u64,
                occupied_usd_per_hour: occupied_usd,
                allocated_milli: cluster.used_milli(),
                spot_allocated_milli: spot_milli,
                lost_gpu_hours: lost_work(&tally, &interruptions, &weights),
                intolerant_on_spot: tally
                    .iter()
                    .zip(&prices)
                    .filter(|(_, p)| p.capacity == CapacityType::Spot)
                    .map(|(t, _)| t.intolerant_pods)
                    .sum(),
            });
        }
        since_report += 1;
        if since_report == 256 {
            progress(since_report);
            since_report = 0;
        }
    }
    progress(since_report);

    Ok(CostRunRecord {
        run: RunRecord {
            policy: record_name(config.placement, config.policy.name()),
            seed: config.seed,
            capacity_milli: workload.capacity_milli,
            pods: setup.order.len() as u64,
            failed_pods: failed,
            samples,
        },
        occupied_usd_per_hour: occupied_series,
        snapshots,
    })
}

/// A node's score for a pod in the cost experiment, `None` if the pod may not go there.
///
/// Every policy is held to the same filter (`score_node`'s: intolerant pods stay off spot
/// nodes), as a spot taint without a toleration would hold any scheduler to it. Only tessera's
/// score is the blended one; the baselines keep their own.
#[allow(clippy::too_many_arguments)]
fn score_pod(
    scorer: &Scorer,
    policy: CostPolicy,
    placement: Placement,
    weights: &Weights,
    node: &NodeState,
    price: &NodePrice,
    demand: &Demand,
    tolerance: Tolerance,
) -> Option<NodeScore> {
    // Where the allocator picks the GPUs, the policy scores what it will pick.
    let base = match placement {
        Placement::Tessera => scorer.score(node, demand)?,
        Placement::Extender | Placement::Kube => {
            scorer.score_pick(node, demand, first_fit(node, demand)?)?
        }
    };
    let inputs = NodeInputs {
        price_per_gpu_hour: price.price_per_gpu_hour,
        node_hourly_price: price.node_hourly_price,
        in_use: !node.is_empty(),
        capacity: price.capacity,
        hourly_interruption_probability: price.hourly_interruption_probability,
        interruption_notice: false,
    };
    let pod = PodInputs {
        tolerance,
        partition_gpus: demand_gpus(demand),
        // tessera's score is minus its fragmentation term in milli-GPU.
        frag_gpus: -base.score / 1000.0,
    };
    let decision = score_node(&inputs, &pod, weights);
    if !decision.is_feasible() {
        return None;
    }
    match policy {
        CostPolicy::Tessera { .. } => Some(NodeScore {
            score: decision.score,
            choice: base.choice,
        }),
        CostPolicy::Baseline(_) => Some(base),
    }
}

/// GPU-hours lost over the horizon by the pods as they sit now.
fn lost_work(tally: &[NodeTally], interruptions: &[Vec<f64>], weights: &Weights) -> f64 {
    let loss = weights.loss();
    tally
        .iter()
        .zip(interruptions)
        .map(|(t, events)| lost_gpu_hours(events, &t.milli_by_tolerance, &loss))
        .sum()
}
