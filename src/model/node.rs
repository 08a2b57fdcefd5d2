//! One node's capacity and what is still free on it, GPU by GPU.

use serde::Serialize;

use super::demand::Demand;
use super::gpu_model::ModelId;

/// Most GPUs one node can hold in this model.
pub const MAX_GPUS: usize = 16;
/// A whole GPU, in milli-GPU.
pub const MILLI_PER_GPU: u16 = 1000;

/// Errors when changing a node's state.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NodeError {
    /// The node was declared with more GPUs than the model supports.
    #[error("a node has {gpus} GPUs; at most {MAX_GPUS} are supported")]
    TooManyGpus {
        /// GPUs declared.
        gpus: u32,
    },
    /// The chosen GPUs do not match the demand or do not have room.
    #[error("GPU choice {pick:?} does not fit a demand of {gpus} × {milli} milli-GPU")]
    BadPick {
        /// The choice.
        pick: GpuPick,
        /// GPUs asked.
        gpus: u8,
        /// Milli per GPU asked.
        milli: u16,
    },
    /// CPU or memory would go below zero.
    #[error("not enough CPU or memory on the node for the demand")]
    NoRoom,
    /// Releasing more than was allocated.
    #[error("release would exceed the node's capacity")]
    OverRelease,
}

/// A set of GPU indices on one node (bit i = GPU i).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct GpuPick(pub u16);

impl GpuPick {
    /// No GPU (CPU-only pods).
    pub const NONE: GpuPick = GpuPick(0);

    /// The single GPU `index`.
    pub fn single(index: usize) -> Self {
        GpuPick(1u16.checked_shl(index as u32).unwrap_or(0))
    }

    /// This pick plus GPU `index`.
    pub fn with(self, index: usize) -> Self {
        GpuPick(self.0 | Self::single(index).0)
    }

    /// Number of GPUs picked.
    pub fn count(self) -> u32 {
        self.0.count_ones()
    }

    /// Indices picked, ascending.
    pub fn indices(self) -> impl Iterator<Item = usize> {
        (0..MAX_GPUS).filter(move |i| self.0 & (1u16 << i) != 0)
    }
}

/// A node: its GPU model, capacity, and free CPU, memory and milli-GPU per GPU.
///
/// `Copy` and fixed-size on purpose: scoring tries placements on copies, and the simulator
/// keeps a thousand of these in one vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct NodeState {
    /// GPU model; `None` for a node without GPUs.
    pub model: Option<ModelId>,
    /// Number of GPUs.
    pub gpus: u8,
    /// CPU capacity in milli-cores.
    pub cpu_capacity: u64,
    /// Free CPU in milli-cores.
    pub cpu_free: u64,
    /// Memory capacity in MiB.
    pub memory_capacity: u64,
    /// Free memory in MiB.
    pub memory_free: u64,
    /// Free milli-GPU of each GPU; only the first `gpus` entries are meaningful.
    pub gpu_free_milli: [u16; MAX_GPUS],
    /// Pods on the node by class: index 0 sharing pods, index n pods of n whole GPUs.
    pub pods_by_class: [u16; MAX_GPUS + 1],
}

impl NodeState {
    /// An empty node.
    pub fn new(
        model: Option<ModelId>,
        gpus: u32,
        cpu_milli: u64,
        memory_mib: u64,
    ) -> Result<Self, NodeError> {
        let count = u8::try_from(gpus)
            .ok()
            .filter(|g| usize::from(*g) <= MAX_GPUS)
            .ok_or(NodeError::TooManyGpus { gpus })?;
        let mut gpu_free_milli = [0; MAX_GPUS];
        for slot in gpu_free_milli.iter_mut().take(usize::from(count)) {
            *slot = MILLI_PER_GPU;
        }
        Ok(NodeState {
            model: if count == 0 { None } else { model },
            gpus: count,
            cpu_capacity: cpu_milli,
            cpu_free: cpu_milli,
            memory_capacity: memory_mib,
            memory_free: memory_mib,
            gpu_free_milli,
            pods_by_class: [0; MAX_GPUS + 1],
        })
    }

    /// Free milli-GPU of each GPU (length = number of GPUs).
    pub fn gpu_free(&self) -> &[u16] {
        self.gpu_free_milli
            .get(..usize::from(self.gpus))
            .unwrap_or(&[])
    }

    /// Free milli-GPU summed over GPUs.
    pub fn total_gpu_free(&self) -> u64 {
        self.gpu_free().iter().map(|m| u64::from(*m)).sum()
    }

    /// GPU capacity in milli.
    pub fn gpu_capacity_milli(&self) -> u64 {
        u64::from(self.gpus) * u64::from(MILLI_PER_GPU)
    }

    /// GPUs with nothing allocated.
    pub fn fully_free_gpus(&self) -> usize {
        self.gpu_free()
            .iter()
            .filter(|m| **m == MILLI_PER_GPU)
            .count()
    }

    /// GPUs that could each hold `milli`.
    pub fn gpus_with_at_least(&self, milli: u16) -> usize {
        self.gpu_free().iter().filter(|m| **m >= milli).count()
    }

    /// Whether any pod is on the node (any GPU used or any pod counted).
    pub fn is_empty(&self) -> bool {
        self.cpu_free == self.cpu_capacity
            && self.memory_free == self.memory_capacity
            && self.pods_by_class.iter().all(|c| *c == 0)
    }

    /// Allocate `demand` on the GPUs in `pick`.
    ///
    /// Checks everything, changes nothing on error.
    pub fn allocate(&mut self, demand: &Demand, pick: GpuPick) -> Result<(), NodeError> {
        if self.cpu_free < demand.cpu_milli || self.memory_free < demand.memory_mib {
            return Err(NodeError::NoRoom);
        }
        let bad_pick = NodeError::BadPick {
            pick,
            gpus: demand.gpus,
            milli: demand.gpu_milli,
        };
        let wanted = if demand.is_cpu_only() { 0 } else { demand.gpus };
        if pick.count() != u32::from(wanted) {
            return Err(bad_pick);
        }
        let mut next = *self;
        for i in pick.indices() {
            match next.gpu_free_milli.get_mut(i) {
                Some(free) if i < usize::from(self.gpus) && *free >= demand.gpu_milli => {
                    *free -= demand.gpu_milli;
                }
                _ => return Err(bad_pick),
            }
        }
        next.cpu_free -= demand.cpu_milli;
        next.memory_free -= demand.memory_mib;
        if let Some(c) = demand
            .class()
            .counter_index()
            .and_then(|i| next.pods_by_class.get_mut(i))
        {
            *c = c.saturating_add(1);
        }
        *self = next;
        Ok(())
    }

    /// Give back what [`NodeState::allocate`] took.
    pub fn release(&mut self, demand: &Demand, pick: GpuPick) -> Result<(), NodeError> {
        let mut next = *self;
        for i in pick.indices() {
            match next.gpu_free_milli.get_mut(i) {
                Some(free)
                    if i < usize::from(self.gpus) && *free + demand.gpu_milli <= MILLI_PER_GPU =>
                {
                    *free += demand.gpu_milli;
                }
                _ => return Err(NodeError::OverRelease),
            }
        }
        next.cpu_free += demand.cpu_milli;
        next.memory_free += demand.memory_mib;
        if next.cpu_free > next.cpu_capacity || next.memory_free > next.memory_capacity {
            return Err(NodeError::OverRelease);
        }
        if let Some(c) = demand
            .class()
            .counter_index()
            .and_then(|i| next.pods_by_class.get_mut(i))
        {
            *c = c.checked_sub(1).ok_or(NodeError::OverRelease)?;
        }
        *self = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelSet;

    fn share(milli: u16) -> Demand {
        Demand {
            cpu_milli: 1000,
            memory_mib: 1024,
            gpus: 1,
            gpu_milli: milli,
            models: ModelSet::ANY,
        }
    }

    #[test]
    fn allocate_then_release_restores_the_node() {
        let mut node = NodeState::new(None, 4, 8000, 32768).unwrap();
        let before = node;
        node.allocate(&share(300), GpuPick::single(2)).unwrap();
        assert_eq!(node.gpu_free(), &[1000, 1000, 700, 1000]);
        assert_eq!(node.pods_by_class[0], 1);
        node.release(&share(300), GpuPick::single(2)).unwrap();
        assert_eq!(node, before);
    }

    #[test]
    fn allocate_refuses_bad_picks_and_changes_nothing() {
        let mut node = NodeState::new(None, 2, 8000, 32768).unwrap();
        let before = node;
        assert!(node.allocate(&share(300), GpuPick::single(5)).is_err());
        assert!(
            node.allocate(&share(300), GpuPick::single(0).with(1))
                .is_err()
        );
        node.allocate(&share(800), GpuPick::single(0)).unwrap();
        let after_one = node;
        assert!(node.allocate(&share(300), GpuPick::single(0)).is_err());
        assert_eq!(node, after_one);
        assert_ne!(node, before);
        assert!(node.release(&share(300), GpuPick::single(1)).is_err());
    }

    #[test]
    fn too_many_gpus_is_an_error() {
        assert_eq!(
            NodeState::new(None, 17, 1, 1),
            Err(NodeError::TooManyGpus { gpus: 17 })
        );
    }
}
