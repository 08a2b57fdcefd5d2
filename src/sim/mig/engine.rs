//! One run of the MIG experiment: one policy, one seed.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::cluster::{MigNode, build_nodes, cluster_shape};
use super::demand::{MigPod, MigWorkload};
use super::{MigPolicy, MigSimError, first_fit};
use crate::report::mig::MigRunRecord;
use crate::report::{RunRecord, Sample};
use crate::scoring::partition::frag::{NodeFrag, PartitionTypicals};
use crate::scoring::partition::{PartitionFit, apply, fit};
use crate::sim::{Workload, arrival_order};

/// How to run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MigRunConfig {
    /// Cluster setup and placement policy.
    pub policy: MigPolicy,
    /// Seed of the run's only random stream.
    pub seed: u64,
    /// Inflate the workload to this multiple of the cluster's GPU capacity.
    pub tune: f64,
}

/// Fragmentation changes are counted in steps of half a compute slice (in GPUs): smaller
/// differences between nodes are popularity-weighted noise, and treating them as ties lets
/// the seeded node order consolidate pods, as tessera's openb policy does with its quantum.
pub const FRAG_QUANTUM_GPUS: f64 = 1.0 / 14.0;

/// How a node's GPUs are chosen, and whether the node's fragmentation after the fit is kept
/// for scoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inside {
    /// [`first_fit::fit`]; no scoring terms.
    FirstFit,
    /// [`fit`], with the fragmentation terms after it.
    Scored,
}

/// A node's answer for one GPU demand, valid while `stamp` is the node's GPU generation + 1.
#[derive(Debug, Clone, Default)]
struct Cached {
    stamp: u32,
    /// The fit and the node's fragmentation terms after it (terms only for scored policies).
    answer: Option<(PartitionFit, Option<NodeFrag>)>,
}

/// The cluster during a run.
struct State<'a> {
    typicals: &'a PartitionTypicals,
    nodes: Vec<MigNode>,
    /// Bumped whenever a node's GPUs change (fits do not depend on CPU).
    gpu_generation: Vec<u32>,
    terms: Vec<NodeFrag>,
    frag: Vec<f64>,
    /// GPUs' worth of capacity held by pods.
    held: f64,
    /// Per (demand, node), demand-major.
    cache: Vec<Cached>,
}

impl<'a> State<'a> {
    fn new(nodes: Vec<MigNode>, typicals: &'a PartitionTypicals, demands: usize) -> Self {
        let terms: Vec<NodeFrag> = nodes
            .iter()
            .map(|n| NodeFrag::new(&n.gpus, typicals))
            .collect();
        let frag: Vec<f64> = terms
            .iter()
            .zip(&nodes)
            .map(|(t, n)| t.frag(typicals, n.cpu_free))
            .collect();
        State {
            typicals,
            gpu_generation: vec![0; nodes.len()],
            frag,
            terms,
            held: 0.0,
            cache: vec![Cached::default(); demands.saturating_mul(nodes.len())],
            nodes,
        }
    }

    /// The cached answer of node `i` for demand `d`, refreshed if the node's GPUs changed.
    /// A run uses one `inside` rule throughout, so the cache never mixes the two.
    fn answer(
        &mut self,
        d: usize,
        i: usize,
        demand: &crate::model::partition::PartitionDemand,
        inside: Inside,
    ) -> Option<&(PartitionFit, Option<NodeFrag>)> {
        let n = self.nodes.len();
        let stamp = self.gpu_generation.get(i)?.wrapping_add(1);
        let node = self.nodes.get(i)?;
        let entry = self.cache.get_mut(d * n + i)?;
        if entry.stamp != stamp {
            let chosen = match inside {
                Inside::FirstFit => first_fit::fit(demand, &node.gpus),
                Inside::Scored => fit(demand, &node.gpus),
            };
            entry.answer = chosen.map(|f| {
                let after = (inside == Inside::Scored).then(|| {
                    let mut gpus = node.gpus.clone();
                    let terms = self.terms.get(i).cloned();
                    match (apply(&f, &mut gpus), terms) {
                        (Ok(()), Some(t)) => {
                            t.updated(&gpus, f.assignments.iter().map(|a| a.gpu), self.typicals)
                        }
                        _ => NodeFrag::new(&gpus, self.typicals),
                    }
                });
                (f, after)
            });
            entry.stamp = stamp;
        }
        entry.answer.as_ref()
    }

    /// Puts `pod` on node `i` with `fit`; false (nothing changed) if it does not go.
    fn place(&mut self, i: usize, pod: &MigPod, fit: Option<&PartitionFit>) -> bool {
        let Some(node) = self.nodes.get_mut(i) else {
            return false;
        };
        if node.cpu_free < pod.cpu_milli || node.memory_free < pod.memory_mib {
            return false;
        }
        if let Some(f) = fit {
            if apply(f, &mut node.gpus).is_err() {
                return false;
            }
            self.held += f.gpu_fraction();
            if let (Some(g), Some(t)) = (self.gpu_generation.get_mut(i), self.terms.get_mut(i)) {
                *g = g.wrapping_add(1);
                *t = t.updated(
                    &node.gpus,
                    f.assignments.iter().map(|a| a.gpu),
                    self.typicals,
                );
            }
        }
        node.cpu_free -= pod.cpu_milli;
        node.memory_free -= pod.memory_mib;
        if let (Some(t), Some(old)) = (self.terms.get(i), self.frag.get_mut(i)) {
            *old = t.frag(self.typicals, node.cpu_free);
        }
        true
    }
}

/// Replay the workload under `config`; `progress` gets the number of pods done since its
/// last call (every 256 pods and at the end).
pub fn run(
    workload: &Workload,
    mig: &MigWorkload,
    config: &MigRunConfig,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<MigRunRecord, MigSimError> {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let order = arrival_order(workload, config.tune, &mut rng)?;
    let shape = cluster_shape(workload.capacity_milli / 1000)?;
    let nodes = build_nodes(&shape, config.policy, mig.static_share)?;
    // A seeded node priority, as in the openb run: first-fit's order and everyone's
    // tie-break.
    let mut rank: Vec<u32> = (0..u32::try_from(nodes.len()).unwrap_or(u32::MAX)).collect();
    rank.shuffle(&mut rng);
    let mut by_rank: Vec<usize> = (0..nodes.len()).collect();
    by_rank.sort_by_key(|i| rank.get(*i).copied().unwrap_or(u32::MAX));

    let mut state = State::new(nodes, &mig.typicals, mig.demands.len());
    let mut samples = Vec::with_capacity(order.len());
    let mut failed_after = Vec::with_capacity(order.len());
    let mut arrived_milli = 0u64;
    let mut failed = 0u64;
    let mut since_report = 0u64;
    for &index in &order {
        let (Some(pod), Some(trace_pod)) = (mig.pods.get(index), workload.pods.get(index)) else {
            continue;
        };
        arrived_milli += trace_pod.demand.total_gpu_milli();
        let choice = match config.policy {
            MigPolicy::DynamicFirstFit => choose_first(&mut state, mig, pod, &by_rank),
            _ => choose_scored(&mut state, mig, pod, &rank),
        };
        let placed = choice.is_some_and(|(i, f)| state.place(i, pod, f.as_ref()));

        if !placed {
            failed += 1;
        }
        failed_after.push(u32::try_from(failed).unwrap_or(u32::MAX));
        samples.push(Sample {
            arrived_milli,
            used_milli: (state.held * 1000.0).round() as u64,
            // Summed afresh: a running total would drift below zero by rounding.
            frag_milli: state.frag.iter().sum::<f64>() * 1000.0,
        });
        since_report += 1;
        if since_report == 256 {
            progress(since_report);
            since_report = 0;
        }
    }
    progress(since_report);
    Ok(MigRunRecord {
        record: RunRecord {
            policy: config.policy.name().to_owned(),
            seed: config.seed,
            capacity_milli: workload.capacity_milli,
            pods: order.len() as u64,
            failed_pods: failed,
            samples,
        },
        failed_after,
    })
}

fn has_room(node: &MigNode, pod: &MigPod) -> bool {
    node.cpu_free >= pod.cpu_milli && node.memory_free >= pod.memory_mib
}

/// The first node in rank order with room, placed first-fit inside.
fn choose_first(
    state: &mut State<'_>,
    mig: &MigWorkload,
    pod: &MigPod,
    by_rank: &[usize],
) -> Option<(usize, Option<PartitionFit>)> {
    for &i in by_rank {
        if !state.nodes.get(i).is_some_and(|n| has_room(n, pod)) {
            continue;
        }
        let Some(d) = pod.demand else {
            return Some((i, None));
        };
        let demand = mig.demands.get(d)?;
        if let Some((f, _)) = state.answer(d, i, demand, Inside::FirstFit) {
            return Some((i, Some(f.clone())));
        }
    }
    None
}

/// The node whose fragmentation grows least (FGD's gradient over partitionable GPUs, in
/// steps of [`FRAG_QUANTUM_GPUS`]), then the lowest rank; inside the node, the GPU and
/// placement [`fit`] picks.
fn choose_scored(
    state: &mut State<'_>,
    mig: &MigWorkload,
    pod: &MigPod,
    rank: &[u32],
) -> Option<(usize, Option<PartitionFit>)> {
    let typicals = state.typicals;
    let mut best: Option<(f64, u32, usize)> = None;
    for i in 0..state.nodes.len() {
        let (cpu_after, before) = match (state.nodes.get(i), state.frag.get(i)) {
            (Some(n), Some(f)) if has_room(n, pod) => (n.cpu_free - pod.cpu_milli, *f),
            _ => continue,
        };
        let after = match pod.demand {
            None => state.terms.get(i)?.frag(typicals, cpu_after),
            Some(d) => {
                let demand = mig.demands.get(d)?;
                match state.answer(d, i, demand, Inside::Scored) {
                    Some((_, Some(t))) => t.frag(typicals, cpu_after),
                    _ => continue,
                }
            }
        };
        // Changes under the quantum are ties, and ties go to the lowest rank: the seeded
        // node order then acts as first-fit consolidation (measured in docs/simulation.md).
        let score = ((after - before) / FRAG_QUANTUM_GPUS).round();
        let node_rank = rank.get(i).copied().unwrap_or(u32::MAX);
        let better = best.is_none_or(|(s, r, _)| score < s || (score == s && node_rank < r));
        if better {
            best = Some((score, node_rank, i));
        }
    }
    let (_, _, i) = best?;
    let fit = match pod.demand {
        None => None,
        Some(d) => {
            let demand = mig.demands.get(d)?;
            Some(state.answer(d, i, demand, Inside::Scored)?.0.clone())
        }
    };
    Some((i, fit))
}

#[cfg(test)]
mod tests;
