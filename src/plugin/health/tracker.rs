//! Which devices this plugin has advertised and whether each is still there: the state
//! behind the health stream. Pure: no clock, no I/O.

use std::collections::{BTreeMap, BTreeSet};

use tracing::warn;

use crate::model::Inventory;
use crate::publish::{FeatureLevel, SliceOptions, render};

/// Most devices remembered. A node advertises at most a few thousand (8 GPUs with every
/// dynamic MIG placement and share); the rest is room for devices that went away.
pub const MAX_TRACKED_DEVICES: usize = 16_384;

/// A device's health as the stream reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// In the current inventory.
    Present,
    /// Advertised earlier, not in the current inventory (the GPU fell off the bus, a static
    /// MIG device was destroyed).
    Gone,
}

/// Devices seen since the plugin started, by name.
#[derive(Debug, Clone)]
pub struct HealthTracker {
    node: String,
    driver: String,
    share_replicas: u32,
    last: Option<Inventory>,
    devices: BTreeMap<String, Presence>,
}

impl HealthTracker {
    /// A tracker for the devices `driver` advertises in pool `node`.
    pub fn new(node: impl Into<String>, driver: impl Into<String>, share_replicas: u32) -> Self {
        HealthTracker {
            node: node.into(),
            driver: driver.into(),
            share_replicas,
            last: None,
            devices: BTreeMap::new(),
        }
    }

    /// Take `inventory` as the current one. Only a changed inventory is re-rendered.
    pub fn observe(&mut self, inventory: &Inventory) {
        if self.last.as_ref() == Some(inventory) {
            return;
        }
        let Some(current) = self.advertisable(inventory) else {
            // Keep the previous view: a render failure says nothing about the devices.
            return;
        };
        for (name, presence) in &mut self.devices {
            if !current.contains(name) {
                *presence = Presence::Gone;
            }
        }
        for name in current {
            self.devices.insert(name, Presence::Present);
        }
        if self.devices.len() > MAX_TRACKED_DEVICES {
            // Forget gone devices first (they then read as Unknown, which is true enough).
            let excess = self.devices.len() - MAX_TRACKED_DEVICES;
            let forget: Vec<String> = self
                .devices
                .iter()
                .filter(|(_, p)| **p == Presence::Gone)
                .map(|(n, _)| n.clone())
                .take(excess)
                .collect();
            for name in forget {
                self.devices.remove(&name);
            }
        }
        self.last = Some(inventory.clone());
    }

    /// Every device known, in name order.
    pub fn devices(&self) -> impl Iterator<Item = (&str, Presence)> {
        self.devices.iter().map(|(n, p)| (n.as_str(), *p))
    }

    /// The pool the devices are in.
    pub fn pool(&self) -> &str {
        &self.node
    }

    /// Every device name any feature level may publish for `inventory`: the publisher
    /// picks the level at run time from the API server, so health covers all of them. A
    /// name that is not published is never looked up by the kubelet, which only asks
    /// about devices it was allocated.
    fn advertisable(&self, inventory: &Inventory) -> Option<BTreeSet<String>> {
        let mut names = BTreeSet::new();
        for level in FeatureLevel::ALL {
            let options = SliceOptions {
                node_name: self.node.clone(),
                driver_name: self.driver.clone(),
                level,
                share_replicas: self.share_replicas,
                generation: 0,
            };
            match render(inventory, &options) {
                Ok(slices) => names.extend(
                    slices
                        .iter()
                        .flat_map(|s| s.spec.devices.iter().flatten())
                        .map(|d| d.name.clone()),
                ),
                Err(error) => {
                    warn!(%error, level = level.name(), "cannot list the advertised devices");
                    return None;
                }
            }
        }
        Some(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::FakeProfile;

    fn present(t: &HealthTracker) -> Vec<String> {
        named(t, Presence::Present)
    }

    fn gone(t: &HealthTracker) -> Vec<String> {
        named(t, Presence::Gone)
    }

    fn named(t: &HealthTracker, want: Presence) -> Vec<String> {
        t.devices()
            .filter(|(_, p)| *p == want)
            .map(|(n, _)| n.to_owned())
            .collect()
    }

    #[test]
    fn every_level_s_devices_are_present_and_a_lost_gpu_s_go_away() {
        let mut inventory = FakeProfile::L4x4.inventory("n");
        let mut tracker = HealthTracker::new("n", "gpu.tessera.dev", 2);
        tracker.observe(&inventory);
        let all = present(&tracker);
        for name in ["gpu-0", "gpu-3", "gpu-0-share-0", "gpu-0-share-1"] {
            assert!(all.iter().any(|n| n == name), "{name} missing from {all:?}");
        }
        assert!(gone(&tracker).is_empty());

        inventory.gpus.retain(|g| g.index != 3);
        tracker.observe(&inventory);
        let lost = gone(&tracker);
        assert!(lost.iter().any(|n| n == "gpu-3"), "{lost:?}");
        assert!(lost.iter().all(|n| n.starts_with("gpu-3")), "{lost:?}");
        assert!(present(&tracker).iter().any(|n| n == "gpu-0"));

        // Back on the bus: present again.
        tracker.observe(&FakeProfile::L4x4.inventory("n"));
        assert!(gone(&tracker).is_empty());
        assert_eq!(present(&tracker), all);
    }

    #[test]
    fn an_unchanged_inventory_changes_nothing() {
        let inventory = FakeProfile::H100x8MigStatic.inventory("n");
        let mut tracker = HealthTracker::new("n", "gpu.tessera.dev", 0);
        tracker.observe(&inventory);
        let before: Vec<_> = tracker.devices().map(|(n, p)| (n.to_owned(), p)).collect();
        assert!(
            before.iter().any(|(n, _)| n.contains("-mig-")),
            "{before:?}"
        );
        tracker.observe(&inventory);
        let after: Vec<_> = tracker.devices().map(|(n, p)| (n.to_owned(), p)).collect();
        assert_eq!(before, after);
        assert_eq!(tracker.pool(), "n");
    }
}
