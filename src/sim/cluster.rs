//! The simulated cluster: node states, their fragmentation, and a per-node generation that
//! tells score caches when a node changed.

use crate::model::{Demand, GpuPick, NodeError, NodeState};
use crate::scoring::frag::{TypicalPods, node_frag};

/// Nodes plus the running totals the protocol records after every pod.
#[derive(Debug, Clone)]
pub struct SimCluster {
    nodes: Vec<NodeState>,
    generation: Vec<u32>,
    frag: Vec<f64>,
    used_milli: u64,
}

impl SimCluster {
    /// A cluster of `nodes` as given (normally empty), fragmentation by `typical`.
    pub fn new(nodes: Vec<NodeState>, typical: &TypicalPods) -> Self {
        let frag = nodes.iter().map(|n| node_frag(n, typical)).collect();
        let used_milli = nodes
            .iter()
            .map(|n| n.gpu_capacity_milli() - n.total_gpu_free())
            .sum();
        SimCluster {
            generation: vec![0; nodes.len()],
            nodes,
            frag,
            used_milli,
        }
    }

    /// The nodes.
    pub fn nodes(&self) -> &[NodeState] {
        &self.nodes
    }

    /// How many times each node has changed.
    pub fn generations(&self) -> &[u32] {
        &self.generation
    }

    /// GPU milli allocated in the whole cluster.
    pub fn used_milli(&self) -> u64 {
        self.used_milli
    }

    /// Cluster fragmentation in GPU milli (sum over nodes).
    pub fn frag_milli(&self) -> f64 {
        self.frag.iter().sum()
    }

    /// Allocate `demand` on node `index`, GPUs `pick`; updates totals and the generation.
    pub fn place(
        &mut self,
        index: usize,
        demand: &Demand,
        pick: GpuPick,
        typical: &TypicalPods,
    ) -> Result<(), NodeError> {
        let (Some(node), Some(generation), Some(frag)) = (
            self.nodes.get_mut(index),
            self.generation.get_mut(index),
            self.frag.get_mut(index),
        ) else {
            return Err(NodeError::NoRoom);
        };
        node.allocate(demand, pick)?;
        *generation = generation.wrapping_add(1);
        *frag = node_frag(node, typical);
        self.used_milli += u64::from(pick.count()) * u64::from(demand.gpu_milli);
        Ok(())
    }
}
