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
    /// Sum of `frag`, kept up to date so that recording it after every pod is O(1).
    frag_total: f64,
    used_milli: u64,
}

impl SimCluster {
    /// A cluster of `nodes` as given (normally empty), fragmentation by `typical`.
    pub fn new(nodes: Vec<NodeState>, typical: &TypicalPods) -> Self {
        let frag: Vec<f64> = nodes.iter().map(|n| node_frag(n, typical)).collect();
        let frag_total = frag.iter().sum();
        let used_milli = nodes
            .iter()
            .map(|n| n.gpu_capacity_milli() - n.total_gpu_free())
            .sum();
        SimCluster {
            generation: vec![0; nodes.len()],
            nodes,
            frag,
            frag_total,
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
        self.frag_total
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
        let updated = node_frag(node, typical);
        self.frag_total += updated - *frag;
        *frag = updated;
        self.used_milli += u64::from(pick.count()) * u64::from(demand.gpu_milli);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ModelSet, NodeState};
    use crate::scoring::frag::TypicalPod;

    #[test]
    fn running_totals_match_a_recount_after_placements() {
        let typical = TypicalPods::from_pods(vec![TypicalPod {
            cpu_milli: 1000,
            gpu_milli: 500,
            gpus: 1,
            models: ModelSet::ANY,
            freq: 1.0,
        }]);
        let nodes = vec![NodeState::new(None, 2, 8000, 8192).unwrap(); 3];
        let mut cluster = SimCluster::new(nodes, &typical);
        let share = Demand {
            cpu_milli: 1000,
            memory_mib: 1,
            gpus: 1,
            gpu_milli: 700,
            models: ModelSet::ANY,
        };
        cluster
            .place(1, &share, GpuPick::single(0), &typical)
            .unwrap();
        cluster
            .place(1, &share, GpuPick::single(1), &typical)
            .unwrap();
        cluster
            .place(2, &share, GpuPick::single(1), &typical)
            .unwrap();
        let recount: f64 = cluster.nodes().iter().map(|n| node_frag(n, &typical)).sum();
        assert!((cluster.frag_milli() - recount).abs() < 1e-9);
        // Node 1: two 300-milli leftovers; node 2: one. Each is too small for a 500 pod.
        assert_eq!(recount, 900.0);
        assert_eq!(cluster.used_milli(), 2100);
        assert_eq!(cluster.generations(), &[0, 2, 1]);
        assert!(
            cluster
                .place(9, &share, GpuPick::single(0), &typical)
                .is_err()
        );
    }
}
