//! The simulated cluster and workload built from a trace, and the seeded arrival order.

use std::collections::HashMap;

use rand::Rng;
use rand::seq::SliceRandom;

use super::SimError;
use crate::model::{Demand, MAX_GPUS, MILLI_PER_GPU, ModelRegistry, NodeState};
use crate::trace::{TraceNode, TracePod};

/// A pod of the workload with the index of its demand shape (for score caching).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadPod {
    /// Trace name.
    pub name: String,
    /// What it asks for.
    pub demand: Demand,
    /// Index of `demand` among the workload's distinct demands.
    pub shape: u32,
}

/// Nodes and pods of a trace in the simulator's terms.
#[derive(Debug, Clone)]
pub struct Workload {
    /// GPU model names.
    pub registry: ModelRegistry,
    /// Node names, sorted.
    pub node_names: Vec<String>,
    /// Empty nodes, in name order.
    pub nodes: Vec<NodeState>,
    /// Pods sorted by name (the protocol's starting order).
    pub pods: Vec<WorkloadPod>,
    /// Distinct demands; `WorkloadPod::shape` indexes this.
    pub shapes: Vec<Demand>,
    /// Cluster GPU capacity in milli.
    pub capacity_milli: u64,
}

impl Workload {
    /// Convert trace records; pods are sorted by name.
    pub fn from_trace(nodes: &[TraceNode], pods: &[TracePod]) -> Result<Self, SimError> {
        // Nodes by name: the protocol's node order before its seeded renaming.
        let mut sorted: Vec<&TraceNode> = nodes.iter().collect();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        let mut registry = ModelRegistry::new();
        let mut states = Vec::with_capacity(nodes.len());
        let mut node_names = Vec::with_capacity(nodes.len());
        for n in sorted {
            let model = match (&n.model, n.gpus) {
                (Some(m), g) if g > 0 => Some(registry.intern(m)?),
                _ => None,
            };
            let state =
                NodeState::new(model, n.gpus, n.cpu_milli, n.memory_mib).map_err(|source| {
                    SimError::Node {
                        name: n.name.clone(),
                        source,
                    }
                })?;
            states.push(state);
            node_names.push(n.name.clone());
        }
        let capacity_milli: u64 = states.iter().map(NodeState::gpu_capacity_milli).sum();
        if capacity_milli == 0 {
            return Err(SimError::Empty("the node list has no GPU"));
        }
        if pods.is_empty() {
            return Err(SimError::Empty("the pod list is empty"));
        }

        let mut shape_ids: HashMap<Demand, u32> = HashMap::new();
        let mut shapes = Vec::new();
        let mut converted = Vec::with_capacity(pods.len());
        for p in pods {
            let demand = demand_of(p, &registry)?;
            let next = u32::try_from(shapes.len()).map_err(|_| SimError::Pod {
                name: p.name.clone(),
                reason: "too many distinct pod shapes".into(),
            })?;
            let shape = *shape_ids.entry(demand).or_insert_with(|| {
                shapes.push(demand);
                next
            });
            converted.push(WorkloadPod {
                name: p.name.clone(),
                demand,
                shape,
            });
        }
        converted.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Workload {
            registry,
            node_names,
            nodes: states,
            pods: converted,
            shapes,
            capacity_milli,
        })
    }

    /// GPU milli of each model in the cluster, indexed by the model's registry index.
    pub fn model_capacity_milli(&self) -> Vec<u64> {
        let mut out = Vec::new();
        for node in &self.nodes {
            if let Some(model) = node.model {
                if out.len() <= model.index() {
                    out.resize(model.index() + 1, 0);
                }
                if let Some(c) = out.get_mut(model.index()) {
                    *c += node.gpu_capacity_milli();
                }
            }
        }
        out
    }

    /// Total GPU milli the workload's pods request.
    pub fn requested_milli(&self) -> u64 {
        self.pods.iter().map(|p| p.demand.total_gpu_milli()).sum()
    }
}

fn demand_of(p: &TracePod, registry: &ModelRegistry) -> Result<Demand, SimError> {
    let bad = |reason: String| SimError::Pod {
        name: p.name.clone(),
        reason,
    };
    let gpus = u8::try_from(p.num_gpu)
        .ok()
        .filter(|g| usize::from(*g) <= MAX_GPUS)
        .ok_or_else(|| bad(format!("{} GPUs is more than {MAX_GPUS}", p.num_gpu)))?;
    let gpu_milli = u16::try_from(p.gpu_milli)
        .ok()
        .filter(|m| *m <= MILLI_PER_GPU)
        .ok_or_else(|| {
            bad(format!(
                "gpu_milli {} is above {MILLI_PER_GPU}",
                p.gpu_milli
            ))
        })?;
    let (gpus, gpu_milli) = if gpus == 0 || gpu_milli == 0 {
        (0, 0)
    } else {
        (gpus, gpu_milli)
    };
    Ok(Demand {
        cpu_milli: p.cpu_milli,
        memory_mib: p.memory_mib,
        gpus,
        gpu_milli,
        models: registry.set_of(&p.gpu_spec),
    })
}

/// The protocol's arrival order (placement-benchmark.md §3.2), as indices into
/// `workload.pods`: the name-sorted pods shuffled, then inflated by appending uniform draws
/// (with replacement) until the next draw would pass `tune` × capacity — or, for a tune
/// below the trace's own demand, random pods removed until it is met.
pub fn arrival_order<R: Rng>(
    workload: &Workload,
    tune: f64,
    rng: &mut R,
) -> Result<Vec<usize>, SimError> {
    if !(tune.is_finite() && tune > 0.0) {
        return Err(SimError::BadTune(tune));
    }
    let mut order: Vec<usize> = (0..workload.pods.len()).collect();
    order.shuffle(rng);

    let target = tune * workload.capacity_milli as f64;
    let mut total = workload.requested_milli();
    let n = workload.pods.len();
    if (total as f64) < target {
        loop {
            let idx = rng.random_range(0..n);
            let Some(pod) = workload.pods.get(idx) else {
                break;
            };
            // The FGD simulator compares with the per-GPU share, not the full request.
            if (total + u64::from(pod.demand.gpu_milli)) as f64 > target {
                break;
            }
            total += pod.demand.total_gpu_milli();
            order.push(idx);
        }
    } else {
        while total as f64 > target && !order.is_empty() {
            let at = rng.random_range(0..order.len());
            let idx = order.remove(at);
            if let Some(pod) = workload.pods.get(idx) {
                total -= pod.demand.total_gpu_milli();
            }
        }
    }
    Ok(order)
}

#[cfg(test)]
mod tests;
