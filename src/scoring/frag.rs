//! GPU fragmentation as the FGD paper defines it, and its fast incremental evaluation.
//!
//! A node's fragmentation is the idle GPU milli that the *typical pods* of the workload
//! could not use, weighted by how popular each typical pod is (placement-benchmark.md §3.4):
//! for each typical pod, if the node can host it (model allowed, enough GPUs with room,
//! enough CPU), the idle milli of GPUs too small for it counts; otherwise all idle milli
//! counts. CPU-only typical pods count all idle GPU milli (FGD's XL/XR classes).

pub mod online;
pub mod typical;
pub mod waste;

pub use online::{OnlineError, OnlineTypical, OnlineWindow};
pub use typical::{TypicalPod, TypicalPods};

use crate::model::{Demand, GpuPick, ModelId, NodeState};

/// Fragmentation of one node, in GPU milli, computed directly from the definition.
///
/// The reference implementation: `FragEval` must agree with it (a property test checks).
pub fn node_frag(node: &NodeState, typical: &TypicalPods) -> f64 {
    let total: u64 = node.total_gpu_free();
    if total == 0 {
        return 0.0;
    }
    let free = node.gpu_free();
    typical
        .iter()
        .map(|t| {
            let counted = if t.gpu_milli == 0 || !t.models.allows(node.model) {
                total
            } else {
                let room = free.iter().filter(|f| **f >= t.gpu_milli).count();
                if room >= usize::from(t.gpus) && node.cpu_free >= t.cpu_milli {
                    free.iter()
                        .filter(|f| **f < t.gpu_milli)
                        .map(|f| u64::from(*f))
                        .sum()
                } else {
                    total
                }
            };
            t.freq * counted as f64
        })
        .sum()
}

/// A node's fragmentation terms per typical pod, precomputed so that the fragmentation
/// after changing a few GPUs costs O(typical pods) instead of O(typical pods × GPUs).
#[derive(Debug, Clone)]
pub struct FragEval<'a> {
    typical: &'a TypicalPods,
    model: Option<ModelId>,
    total: u64,
    cpu_free: u64,
    /// Per typical pod: GPUs with at least its milli free.
    room: Vec<u8>,
    /// Per typical pod: idle milli on GPUs too small for it.
    small: Vec<u64>,
}

impl<'a> FragEval<'a> {
    /// Precompute the terms of `node`.
    pub fn new(node: &NodeState, typical: &'a TypicalPods) -> Self {
        let free = node.gpu_free();
        let mut room = Vec::with_capacity(typical.len());
        let mut small = Vec::with_capacity(typical.len());
        for t in typical.iter() {
            let mut r = 0u8;
            let mut s = 0u64;
            for f in free {
                if *f >= t.gpu_milli {
                    r += 1;
                } else {
                    s += u64::from(*f);
                }
            }
            room.push(r);
            small.push(s);
        }
        FragEval {
            typical,
            model: node.model,
            total: node.total_gpu_free(),
            cpu_free: node.cpu_free,
            room,
            small,
        }
    }

    /// Fragmentation of the node as it is.
    pub fn current(&self) -> f64 {
        self.after(&[], 0)
    }

    /// Fragmentation after `demand` is allocated on the GPUs of `pick` of `node` (the node
    /// this evaluator was built from).
    pub fn after_pick(&self, node: &NodeState, demand: &Demand, pick: GpuPick) -> f64 {
        let changes: Vec<(u16, u16)> = pick
            .indices()
            .filter_map(|i| node.gpu_free_milli.get(i))
            .map(|free| (*free, free - demand.gpu_milli.min(*free)))
            .collect();
        self.after(&changes, demand.cpu_milli)
    }

    /// Fragmentation after the GPUs in `changes` go from `old` to `new` free milli and
    /// `cpu_taken` milli-CPU is allocated.
    pub fn after(&self, changes: &[(u16, u16)], cpu_taken: u64) -> f64 {
        let taken: u64 = changes
            .iter()
            .map(|(old, new)| u64::from(old.saturating_sub(*new)))
            .sum();
        let total = self.total.saturating_sub(taken);
        if total == 0 {
            return 0.0;
        }
        let cpu_free = self.cpu_free.saturating_sub(cpu_taken);
        let mut frag = 0.0;
        for ((t, room), small) in self.typical.iter().zip(&self.room).zip(&self.small) {
            let counted = if t.gpu_milli == 0 || !t.models.allows(self.model) {
                total
            } else {
                let mut r = i32::from(*room);
                let mut s = *small;
                for (old, new) in changes {
                    if *old >= t.gpu_milli {
                        r -= 1;
                    } else {
                        s -= u64::from(*old);
                    }
                    if *new >= t.gpu_milli {
                        r += 1;
                    } else {
                        s += u64::from(*new);
                    }
                }
                if r >= i32::from(t.gpus) && cpu_free >= t.cpu_milli {
                    s
                } else {
                    total
                }
            };
            frag += t.freq * counted as f64;
        }
        frag
    }
}

#[cfg(test)]
mod tests;
