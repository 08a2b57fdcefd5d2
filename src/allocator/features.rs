//! Which allocator runs, with which features, and in which order it sees a node's slices.
//!
//! Upstream (`staging/src/k8s.io/dynamic-resource-allocation/structured/allocator.go`,
//! `NewAllocator`) picks the first of stable → incubating → experimental whose
//! `SupportedFeatures` cover what the scheduler enabled. Slice order then depends on that
//! choice and on the release (`structured/internal/*/pools_*.go`, `GatherPools`):
//! - kubernetes-1.34.x and 1.35.x, every implementation; and 1.36+ **stable**: slices are
//!   gathered through a Go map in the informer's order, so the order across slices is
//!   arbitrary (and pools too).
//! - kubernetes-1.36.0+ **incubating** and experimental (`buildPool`, `sortSlicesByName`;
//!   `GatherPools`, `sortPoolsByID`): a pool's slices are sorted by name, pools by (driver,
//!   pool name), pools with binding conditions last.
//!
//! Devices inside one slice are always tried in published order.

/// The Kubernetes minor release whose scheduler is modelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Release {
    /// 1.34.x.
    V1_34,
    /// 1.35.x.
    V1_35,
    /// 1.36.x and later (1.37 development behaves the same for everything modelled here).
    V1_36,
}

impl Release {
    /// Parses `1.34`, `v1.35.2`, `1.36` …; releases after 1.36 count as 1.36.
    pub fn parse(text: &str) -> Option<Release> {
        let text = text.trim().trim_start_matches('v');
        let mut parts = text.split('.');
        let major: u32 = parts.next()?.parse().ok()?;
        let minor: u32 = parts
            .next()?
            .trim_end_matches(|c: char| !c.is_ascii_digit())
            .parse()
            .ok()?;
        match (major, minor) {
            (1, 34) => Some(Release::V1_34),
            (1, 35) => Some(Release::V1_35),
            (1, m) if m >= 36 => Some(Release::V1_36),
            _ => None,
        }
    }

    /// `1.34`, `1.35` or `1.36+`.
    pub fn label(self) -> &'static str {
        match self {
            Release::V1_34 => "1.34",
            Release::V1_35 => "1.35",
            Release::V1_36 => "1.36+",
        }
    }
}

/// The three upstream allocator implementations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Implementation {
    /// `structured/internal/stable`.
    Stable,
    /// `structured/internal/incubating`.
    Incubating,
    /// `structured/internal/experimental`.
    Experimental,
}

impl Implementation {
    /// `stable`, `incubating`, `experimental`.
    pub fn label(self) -> &'static str {
        match self {
            Implementation::Stable => "stable",
            Implementation::Incubating => "incubating",
            Implementation::Experimental => "experimental",
        }
    }
}

/// The DRA features the scheduler runs with (`structured.Features`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Features {
    /// `DRAAdminAccess`.
    pub admin_access: bool,
    /// `DRAPrioritizedList` (`firstAvailable`).
    pub prioritized_list: bool,
    /// `DRAPartitionableDevices` (shared counters).
    pub partitionable_devices: bool,
    /// `DRADeviceTaints`.
    pub device_taints: bool,
    /// `DRAConsumableCapacity`.
    pub consumable_capacity: bool,
    /// `DRADeviceBindingConditions` together with `DRAResourceClaimDeviceStatus`.
    pub binding_and_status: bool,
}

impl Features {
    /// The default feature gates of a release (`pkg/features/kube_features.go` at each tag;
    /// `reference/resource-api.md` section 1).
    pub fn defaults(release: Release) -> Features {
        match release {
            // 1.34 and 1.35: AdminAccess and PrioritizedList beta (on); PartitionableDevices,
            // DeviceTaints, ConsumableCapacity, binding conditions alpha (off).
            Release::V1_34 | Release::V1_35 => Features {
                admin_access: true,
                prioritized_list: true,
                partitionable_devices: false,
                device_taints: false,
                consumable_capacity: false,
                binding_and_status: false,
            },
            // 1.36: all of them beta or GA, on by default.
            Release::V1_36 => Features {
                admin_access: true,
                prioritized_list: true,
                partitionable_devices: true,
                device_taints: true,
                consumable_capacity: true,
                binding_and_status: true,
            },
        }
    }

    /// Every feature on (what tessera's `consumable` publishing level needs).
    pub fn all() -> Features {
        Features::defaults(Release::V1_36)
    }

    /// Which implementation `NewAllocator` picks for these features on `release`.
    ///
    /// kubernetes-1.34/1.35: stable supports no optional feature; incubating supports
    /// AdminAccess, PrioritizedList, PartitionableDevices, DeviceTaints; experimental all.
    /// kubernetes-1.36: stable supports those four; incubating adds ConsumableCapacity and
    /// DeviceBindingAndStatus.
    pub fn implementation(self, release: Release) -> Implementation {
        let basic = !self.consumable_capacity && !self.binding_and_status;
        let none = basic
            && !self.admin_access
            && !self.prioritized_list
            && !self.partitionable_devices
            && !self.device_taints;
        match release {
            Release::V1_34 | Release::V1_35 if none => Implementation::Stable,
            Release::V1_34 | Release::V1_35 if basic => Implementation::Incubating,
            Release::V1_34 | Release::V1_35 => Implementation::Experimental,
            Release::V1_36 if basic => Implementation::Stable,
            Release::V1_36 => Implementation::Incubating,
        }
    }

    /// Whether the allocator visits a pool's slices (and the pools) in name order.
    pub fn sorts_slices(self, release: Release) -> bool {
        release >= Release::V1_36 && self.implementation(release) != Implementation::Stable
    }
}

/// The order in which the allocator sees the node's slices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SliceOrder {
    /// Pools by (driver, pool name), slices by name (1.36+ incubating).
    ByName,
    /// The given order of [`NodeDevices`](super::NodeDevices) slice indices (a permutation of
    /// all of them): what the informer happened to list on 1.34/1.35 or the stable
    /// allocator. Pools come in the order of their first slice.
    Given(Vec<usize>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_parse_accepts_versions_and_rejects_older() {
        assert_eq!(Release::parse("1.34"), Some(Release::V1_34));
        assert_eq!(Release::parse("v1.35.2"), Some(Release::V1_35));
        assert_eq!(Release::parse("1.37"), Some(Release::V1_36));
        assert_eq!(Release::parse("1.33"), None);
        assert_eq!(Release::parse("two"), None);
    }

    #[test]
    fn implementation_and_slice_order_per_release() {
        let v136 = Features::defaults(Release::V1_36);
        assert_eq!(
            v136.implementation(Release::V1_36),
            Implementation::Incubating
        );
        assert!(v136.sorts_slices(Release::V1_36));
        let stable = Features {
            consumable_capacity: false,
            binding_and_status: false,
            ..v136
        };
        assert_eq!(
            stable.implementation(Release::V1_36),
            Implementation::Stable
        );
        assert!(!stable.sorts_slices(Release::V1_36));
        let v135 = Features::defaults(Release::V1_35);
        assert_eq!(
            v135.implementation(Release::V1_35),
            Implementation::Incubating
        );
        assert!(!v135.sorts_slices(Release::V1_35));
        assert!(!Features::all().sorts_slices(Release::V1_34));
    }
}
