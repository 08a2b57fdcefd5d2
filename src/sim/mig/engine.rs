//! One run of the MIG experiment: one policy, one seed.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::cluster::{MigNode, build_nodes, cluster_shape};
use super::demand::{MigPod, MigWorkload};
use super::published::Published;
use super::{MigPolicy, MigSimError, first_fit};
use crate::model::device_order::Layout;
use crate::model::{Demand, MAX_GPUS, ModelSet, NodeState};
use crate::report::mig::MigRunRecord;
use crate::report::{RunRecord, Sample};
use crate::scoring::partition::frag::{NodeFrag, PartitionTypicals};
use crate::scoring::partition::{PartitionFit, apply, fit};
use crate::sim::engine::record_name;
use crate::sim::placement::{Placement, Release, kube_score, kube_select};
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
    /// Who chooses the node and the device (`kube` and `extender` need dynamic MIG: the
    /// allocator's first fit is over the devices the plugin publishes for it).
    pub placement: Placement,
    /// The release whose slice order the allocator follows (`kube`, `extender`).
    pub release: Release,
    /// How the plugin cuts the node's devices into slices (`kube`, `extender`).
    pub layout: Layout,
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
    /// The allocator's first fit over the published devices ([`Published::outcomes`]: one
    /// answer per equally likely outcome), with the fragmentation terms after each.
    Published(Release),
}

/// A node's answer for one GPU demand, valid while `stamp` is the node's GPU generation + 1.
#[derive(Debug, Clone, Default)]
struct Cached {
    stamp: u32,
    /// The fits (several only for the allocator on an arbitrary slice order) and the node's
    /// fragmentation terms after each (terms only for scored rules).
    answers: Vec<(PartitionFit, Option<NodeFrag>)>,
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
    /// What each node publishes (only for the allocator's rules).
    published: Vec<Published>,
}

impl<'a> State<'a> {
    fn new(
        nodes: Vec<MigNode>,
        typicals: &'a PartitionTypicals,
        demands: usize,
        allocator: bool,
        layout: Layout,
    ) -> Self {
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
            published: if allocator {
                nodes
                    .iter()
                    .map(|n| Published::of(&n.gpus, layout))
                    .collect()
            } else {
                Vec::new()
            },
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
    ) -> &[(PartitionFit, Option<NodeFrag>)] {
        let n = self.nodes.len();
        let (Some(generation), Some(node), Some(entry)) = (
            self.gpu_generation.get(i),
            self.nodes.get(i),
            self.cache.get_mut(d * n + i),
        ) else {
            return &[];
        };
        let stamp = generation.wrapping_add(1);
        if entry.stamp != stamp {
            let chosen: Vec<PartitionFit> = match inside {
                Inside::FirstFit => first_fit::fit(demand, &node.gpus).into_iter().collect(),
                Inside::Scored => fit(demand, &node.gpus).into_iter().collect(),
                Inside::Published(release) => self
                    .published
                    .get(i)
                    .map(|p| p.outcomes(demand, &node.gpus, release))
                    .unwrap_or_default(),
            };
            entry.answers = chosen
                .into_iter()
                .map(|f| {
                    let after = (inside != Inside::FirstFit).then(|| {
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
                })
                .collect();
            entry.stamp = stamp;
        }
        &entry.answers
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
    let policy = match config.placement {
        // The allocator chooses among the devices of dynamic MIG.
        Placement::Kube | Placement::Extender => MigPolicy::DynamicTessera,
        Placement::Tessera => config.policy,
    };
    let nodes = build_nodes(&shape, policy, mig.static_share)?;
    // A seeded node priority, as in the openb run: first-fit's order and everyone's
    // tie-break.
    let mut rank: Vec<u32> = (0..u32::try_from(nodes.len()).unwrap_or(u32::MAX)).collect();
    rank.shuffle(&mut rng);
    let mut by_rank: Vec<usize> = (0..nodes.len()).collect();
    by_rank.sort_by_key(|i| rank.get(*i).copied().unwrap_or(u32::MAX));

    let allocator = config.placement.allocator_picks();
    let mut state = State::new(
        nodes,
        &mig.typicals,
        mig.demands.len(),
        allocator,
        config.layout,
    );
    let mut kube_start = 0usize;
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
        let published = Inside::Published(config.release);
        let choice = match (config.placement, policy) {
            (Placement::Kube, _) => choose_kube(
                &mut state,
                mig,
                pod,
                &by_rank,
                &mut kube_start,
                config.release,
                &mut rng,
            ),
            (Placement::Extender, _) => {
                choose_scored(&mut state, mig, pod, &rank, published, &mut rng)
            }
            (Placement::Tessera, MigPolicy::DynamicFirstFit) => {
                choose_first(&mut state, mig, pod, &by_rank)
            }
            (Placement::Tessera, _) => {
                choose_scored(&mut state, mig, pod, &rank, Inside::Scored, &mut rng)
            }
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
            policy: record_name(config.placement, policy.name()),
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
        if let Some((f, _)) = state.answer(d, i, demand, Inside::FirstFit).first() {
            return Some((i, Some(f.clone())));
        }
    }
    None
}

/// The node whose fragmentation grows least (FGD's gradient over partitionable GPUs, in
/// steps of [`FRAG_QUANTUM_GPUS`]), then the lowest rank; inside the node, the GPU and
/// placement `inside` gives: [`fit`]'s, or the allocator's first fit, scored by the mean over
/// its equally likely outcomes (what the extender predicts) and drawn among them.
fn choose_scored(
    state: &mut State<'_>,
    mig: &MigWorkload,
    pod: &MigPod,
    rank: &[u32],
    inside: Inside,
    rng: &mut ChaCha8Rng,
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
                let answers = state.answer(d, i, demand, inside);
                if answers.is_empty() {
                    continue;
                }
                let sum: f64 = answers
                    .iter()
                    .filter_map(|(_, t)| t.as_ref())
                    .map(|t| t.frag(typicals, cpu_after))
                    .sum();
                sum / answers.len() as f64
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
            Some(draw(state.answer(d, i, demand, inside), rng)?)
        }
    };
    Some((i, fit))
}

/// One of the equally likely answers, drawn from the run's stream (no draw for one).
fn draw(
    answers: &[(PartitionFit, Option<NodeFrag>)],
    rng: &mut ChaCha8Rng,
) -> Option<PartitionFit> {
    let pick = match answers.len() {
        0 => return None,
        1 => 0,
        n => rng.random_range(0..n),
    };
    answers.get(pick).map(|(f, _)| f.clone())
}

/// kube-scheduler alone: its default scoring over the nodes it samples ([`kube_select`];
/// a node passes its Filter when the allocator finds devices there), then the allocator's
/// first fit, drawn among its equally likely outcomes.
fn choose_kube(
    state: &mut State<'_>,
    mig: &MigWorkload,
    pod: &MigPod,
    by_rank: &[usize],
    start: &mut usize,
    release: Release,
    rng: &mut ChaCha8Rng,
) -> Option<(usize, Option<PartitionFit>)> {
    let shape = Demand {
        cpu_milli: pod.cpu_milli,
        memory_mib: pod.memory_mib,
        gpus: 0,
        gpu_milli: 0,
        models: ModelSet::ANY,
    };
    let inside = Inside::Published(release);
    let demand = match pod.demand {
        Some(d) => Some((d, mig.demands.get(d)?)),
        None => None,
    };
    let chosen = kube_select(by_rank, start, rng, |i| {
        let node = state.nodes.get(i)?;
        if !has_room(node, pod) {
            return None;
        }
        let view = kube_view(node);
        if let Some((d, demand)) = demand
            && state.answer(d, i, demand, inside).is_empty()
        {
            return None;
        }
        Some(kube_score(&view, &shape))
    })?;
    let fit = match demand {
        None => None,
        Some((d, demand)) => Some(draw(state.answer(d, chosen, demand, inside), rng)?),
    };
    Some((chosen, fit))
}

/// A MIG node's CPU and memory as the kube-scheduler scores see them.
fn kube_view(node: &MigNode) -> NodeState {
    NodeState {
        model: None,
        gpus: 0,
        cpu_capacity: node.cpu_capacity,
        cpu_free: node.cpu_free,
        memory_capacity: node.memory_capacity,
        memory_free: node.memory_free,
        gpu_free_milli: [0; MAX_GPUS],
        pods_by_class: [0; MAX_GPUS + 1],
    }
}

#[cfg(test)]
mod tests;
