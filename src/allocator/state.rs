//! What claims allocated earlier already hold on the node: busy devices, shares with their
//! consumed capacity, and the counters both draw.
//!
//! Upstream builds this as `AllocatedState` (`structured/schedulerapi/types.go`,
//! kubernetes-1.36.0): results without a `shareID` make a device busy; results with one add
//! their `consumedCapacity` to the device's aggregate. Counters are subtracted per allocated
//! device in `checkAvailableCounters`. One deliberate difference: kubernetes-1.36.0 subtracts
//! counters only for busy devices, not for a shared device that holds shares (fixed upstream
//! by kubernetes PR #139040); the model follows the fix, so a share keeps its GPU's MIG
//! placements out, as the observed v1.36.2 scheduler did (`reference/resource-api.md`).

use super::error::AllocatorError;
use super::input::AllocatedDevice;
use super::node::NodeDevices;
use super::quantity::Quantity;

/// Earlier allocations on one node, indexed against a [`NodeDevices`].
#[derive(Debug, Clone)]
pub struct AllocatedState {
    /// Device index → busy (an exclusive allocation).
    pub(super) busy: Vec<bool>,
    /// Device index → shares held.
    pub(super) shares: Vec<u32>,
    /// Device index → consumed capacity per capacity of the device (in the device's
    /// capacity map order).
    pub(super) capacity_used: Vec<Vec<Quantity>>,
    /// Counter (global index) → amount drawn.
    pub(super) counters_used: Vec<Quantity>,
    /// Results that name a device this node does not publish (another node's, or stale).
    pub unknown_devices: usize,
}

impl AllocatedState {
    /// Nothing allocated.
    pub fn empty(node: &NodeDevices) -> AllocatedState {
        AllocatedState {
            busy: vec![false; node.device_count()],
            shares: vec![0; node.device_count()],
            capacity_used: (0..node.device_count())
                .map(|d| vec![Quantity::ZERO; node.device(d).map_or(0, |x| x.capacity.len())])
                .collect(),
            counters_used: vec![Quantity::ZERO; node.counter_totals.len()],
            unknown_devices: 0,
        }
    }

    /// The state after `results` (every device result of every allocated claim; other
    /// nodes' results are counted in [`AllocatedState::unknown_devices`] and ignored).
    pub fn new(
        node: &NodeDevices,
        results: &[AllocatedDevice],
    ) -> Result<AllocatedState, AllocatorError> {
        let mut state = AllocatedState::empty(node);
        for result in results {
            if result.admin_access {
                continue;
            }
            let Some(d) = node.find(&result.driver, &result.pool, &result.device) else {
                state.unknown_devices += 1;
                continue;
            };
            let Some(device) = node.device(d) else {
                continue;
            };
            let holds_counters_already = state.busy[d] || state.shares[d] > 0;
            if result.shared && node.features().consumable_capacity {
                state.shares[d] = state.shares[d].saturating_add(1);
                for (slot, name) in device.capacity.keys().enumerate() {
                    if let Some(amount) = result.consumed_capacity.get(name) {
                        state.capacity_used[d][slot] = state.capacity_used[d][slot].plus(*amount);
                    }
                }
            } else {
                state.busy[d] = true;
            }
            if !holds_counters_already {
                for &(counter, amount) in &node.devices[d].counters {
                    state.counters_used[counter] = state.counters_used[counter].plus(amount);
                }
            }
        }
        Ok(state)
    }

    /// Whether device `d` is held exclusively.
    pub fn is_busy(&self, d: usize) -> bool {
        self.busy.get(d).copied().unwrap_or(false)
    }

    /// Shares device `d` holds.
    pub fn share_count(&self, d: usize) -> u32 {
        self.shares.get(d).copied().unwrap_or(0)
    }

    /// Commits one allocation `outcome` into the state (the simulator's and the extender's
    /// "and then the next pod"), so that successive claims see each other.
    pub fn commit(&mut self, node: &NodeDevices, outcome: &[super::ClaimResult]) {
        for claim in outcome {
            for result in &claim.devices {
                let d = result.device;
                let Some(device) = node.device(d) else {
                    continue;
                };
                let holds = self.busy[d] || self.shares[d] > 0;
                if result.share {
                    self.shares[d] = self.shares[d].saturating_add(1);
                    for (slot, name) in device.capacity.keys().enumerate() {
                        if let Some(amount) = result.consumed_capacity.get(name) {
                            self.capacity_used[d][slot] = self.capacity_used[d][slot].plus(*amount);
                        }
                    }
                } else {
                    self.busy[d] = true;
                }
                if !holds {
                    for &(counter, amount) in &node.devices[d].counters {
                        self.counters_used[counter] = self.counters_used[counter].plus(amount);
                    }
                }
            }
        }
    }
}
