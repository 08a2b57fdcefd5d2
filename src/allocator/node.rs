//! One node's devices as the allocator gathers them: pools, their validity, counters, and the
//! order devices are visited in.
//!
//! Follows `GatherPools`/`buildPool` in
//! `staging/src/k8s.io/dynamic-resource-allocation/structured/internal/incubating/pools_incubating.go`
//! (kubernetes-1.36.0) and the stable/1.35 copies: only the highest generation of a pool
//! counts; a pool with fewer slices than `resourceSliceCount` is incomplete; duplicate device
//! names or counters that name a missing set make a pool invalid. Both kinds are skipped
//! (and make `All` requests fail). Without `DRAPartitionableDevices`, slices that publish
//! counters are ignored, so a pool that needs them is incomplete.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::error::AllocatorError;
use super::features::{Features, SliceOrder};
use super::input::{Slice, limits};
use super::quantity::Quantity;

/// Why a pool cannot be allocated from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolStatus {
    /// Usable.
    Valid,
    /// Fewer slices than `resourceSliceCount` at the newest generation.
    Incomplete,
    /// Inconsistent (the reason).
    Invalid(String),
}

/// A pool of the node.
#[derive(Debug, Clone)]
pub struct Pool {
    /// Driver.
    pub driver: String,
    /// Pool name.
    pub name: String,
    /// Validity.
    pub status: PoolStatus,
    /// Indices of the pool's device slices (newest generation) into [`NodeDevices::slices`].
    pub device_slices: Vec<usize>,
    /// Whether a device of the pool has binding conditions (such pools go last on 1.36+).
    pub has_binding_conditions: bool,
}

/// One device, flattened.
#[derive(Debug, Clone)]
pub(super) struct DeviceEntry {
    pub slice: usize,
    pub index: usize,
    pub pool: usize,
    /// (global counter index, amount) this device consumes.
    pub counters: Vec<(usize, Quantity)>,
    /// Whether the device consumes counters at all (refused when the feature is off).
    pub consumes_counters: bool,
}

/// A node's slices, checked and indexed once; cheap to allocate against many times.
#[derive(Debug, Clone)]
pub struct NodeDevices {
    features: Features,
    slices: Vec<Slice>,
    pools: Vec<Pool>,
    pub(super) devices: Vec<DeviceEntry>,
    /// Totals of every counter (global index).
    pub(super) counter_totals: Vec<Quantity>,
    /// The pool of every counter (global index).
    pub(super) counter_pool: Vec<usize>,
    by_id: HashMap<(String, String, String), usize>,
    /// Device index ranges per slice (slice index → first device index, count).
    slice_devices: Vec<(usize, usize)>,
}

impl NodeDevices {
    /// Gathers `slices` (all slices that target the node) under `features`.
    pub fn new(slices: Vec<Slice>, features: Features) -> Result<NodeDevices, AllocatorError> {
        if slices.len() > limits::SLICES_PER_NODE {
            return Err(AllocatorError::Invalid(format!(
                "{} slices for one node, more than the {} accepted",
                slices.len(),
                limits::SLICES_PER_NODE
            )));
        }
        for slice in &slices {
            if slice.devices.len() > limits::DEVICES_PER_SLICE {
                return Err(AllocatorError::Invalid(format!(
                    "slice {} has {} devices, more than {}",
                    slice.name,
                    slice.devices.len(),
                    limits::DEVICES_PER_SLICE
                )));
            }
        }
        // Newest generation per pool, among the slices this feature level reads.
        let mut newest: BTreeMap<(String, String), i64> = BTreeMap::new();
        for slice in slices.iter().filter(|s| readable(s, features)) {
            let key = (slice.driver.clone(), slice.pool.clone());
            let entry = newest.entry(key).or_insert(slice.generation);
            *entry = (*entry).max(slice.generation);
        }
        let mut pools = Vec::new();
        let mut counter_totals = Vec::new();
        let mut counter_pool = Vec::new();
        let mut devices = Vec::new();
        let mut by_id = HashMap::new();
        let mut slice_devices = vec![(0, 0); slices.len()];
        for ((driver, pool_name), generation) in newest {
            let members: Vec<usize> = (0..slices.len())
                .filter(|&i| {
                    let s = &slices[i];
                    readable(s, features)
                        && s.driver == driver
                        && s.pool == pool_name
                        && s.generation == generation
                })
                .collect();
            let expected = members
                .first()
                .map_or(0, |&i| slices[i].resource_slice_count);
            let pool_index = pools.len();
            let mut pool = Pool {
                driver: driver.clone(),
                name: pool_name.clone(),
                status: PoolStatus::Valid,
                device_slices: Vec::new(),
                has_binding_conditions: false,
            };
            if i64::try_from(members.len()).ok() != Some(expected) {
                pool.status = PoolStatus::Incomplete;
                pools.push(pool);
                continue;
            }
            // Counter sets of the pool: name → (counter name → global index).
            let mut sets: HashMap<&str, HashMap<&str, usize>> = HashMap::new();
            let mut problem = None;
            for &i in &members {
                for set in &slices[i].shared_counters {
                    if sets.contains_key(set.name.as_str()) {
                        problem = Some(format!("counter set {} published twice", set.name));
                    }
                    let mut counters = HashMap::new();
                    for (name, total) in &set.counters {
                        counters.insert(name.as_str(), counter_totals.len());
                        counter_totals.push(*total);
                        counter_pool.push(pool_index);
                    }
                    sets.insert(set.name.as_str(), counters);
                }
            }
            let mut names = HashSet::new();
            let first_device = devices.len();
            for &i in &members {
                let slice = &slices[i];
                if slice.devices.is_empty() {
                    continue;
                }
                pool.device_slices.push(i);
                slice_devices[i] = (devices.len(), slice.devices.len());
                for (index, device) in slice.devices.iter().enumerate() {
                    if !names.insert(device.name.as_str()) {
                        problem = Some(format!("device name {} is not unique", device.name));
                    }
                    pool.has_binding_conditions |= device.has_binding_conditions;
                    let mut counters = Vec::new();
                    // Without the feature upstream neither validates nor uses counters; the
                    // device is simply never allocated (`allocateDevice`).
                    let consumption_checked = if features.partitionable_devices {
                        device.consumes_counters.as_slice()
                    } else {
                        &[]
                    };
                    for consumption in consumption_checked {
                        let Some(set) = sets.get(consumption.counter_set.as_str()) else {
                            problem = Some(format!(
                                "device {} consumes counters of unknown set {}",
                                device.name, consumption.counter_set
                            ));
                            continue;
                        };
                        for (name, amount) in &consumption.counters {
                            match set.get(name.as_str()) {
                                Some(&global) => counters.push((global, *amount)),
                                None => {
                                    problem = Some(format!(
                                        "device {} consumes unknown counter {name} of set {}",
                                        device.name, consumption.counter_set
                                    ))
                                }
                            }
                        }
                    }
                    by_id.insert(
                        (driver.clone(), pool_name.clone(), device.name.clone()),
                        devices.len(),
                    );
                    devices.push(DeviceEntry {
                        slice: i,
                        index,
                        pool: pool_index,
                        counters,
                        consumes_counters: !device.consumes_counters.is_empty(),
                    });
                }
            }
            if let Some(reason) = problem {
                // Keep the entries (indices stay stable) but never visit them.
                pool.status = PoolStatus::Invalid(reason);
                for entry in &mut devices[first_device..] {
                    entry.counters.clear();
                }
            }
            pools.push(pool);
        }
        Ok(NodeDevices {
            features,
            slices,
            pools,
            devices,
            counter_totals,
            counter_pool,
            by_id,
            slice_devices,
        })
    }

    /// The feature level the node was gathered under.
    pub fn features(&self) -> Features {
        self.features
    }

    /// The slices as given.
    pub fn slices(&self) -> &[Slice] {
        &self.slices
    }

    /// The pools (sorted by driver and pool name).
    pub fn pools(&self) -> &[Pool] {
        &self.pools
    }

    /// Number of devices (allocatable or not).
    pub fn device_count(&self) -> usize {
        self.devices.len()
    }

    /// The device with index `device` (as in results).
    pub fn device(&self, device: usize) -> Option<&super::input::Device> {
        let entry = self.devices.get(device)?;
        self.slices.get(entry.slice)?.devices.get(entry.index)
    }

    /// `(driver, pool, device name)` of a device index.
    pub fn device_id(&self, device: usize) -> Option<(&str, &str, &str)> {
        let entry = self.devices.get(device)?;
        let slice = self.slices.get(entry.slice)?;
        Some((
            &slice.driver,
            &slice.pool,
            &slice.devices.get(entry.index)?.name,
        ))
    }

    /// Index of the device `driver/pool/name`.
    pub fn find(&self, driver: &str, pool: &str, name: &str) -> Option<usize> {
        self.by_id
            .get(&(driver.to_owned(), pool.to_owned(), name.to_owned()))
            .copied()
    }

    /// Indices of the slices that hold devices the allocator may visit (valid pools): what
    /// a [`SliceOrder::Given`] permutes. Counter-only slices and slices of unusable pools
    /// do not change the outcome and are left out.
    pub fn device_slice_indices(&self) -> Vec<usize> {
        self.pools
            .iter()
            .filter(|p| p.status == PoolStatus::Valid)
            .flat_map(|p| p.device_slices.iter().copied())
            .collect()
    }

    /// The device indices in the order the allocator visits them.
    pub(super) fn visit_order(&self, order: &SliceOrder) -> Result<Vec<usize>, AllocatorError> {
        let mut pool_order: Vec<usize> = Vec::new();
        let mut slices_of: Vec<Vec<usize>> = vec![Vec::new(); self.pools.len()];
        match order {
            SliceOrder::ByName => {
                // Pools are already sorted by (driver, name); those with binding
                // conditions go last.
                pool_order.extend(
                    (0..self.pools.len()).filter(|&p| !self.pools[p].has_binding_conditions),
                );
                pool_order.extend(
                    (0..self.pools.len()).filter(|&p| self.pools[p].has_binding_conditions),
                );
                for (p, pool) in self.pools.iter().enumerate() {
                    let mut s = pool.device_slices.clone();
                    s.sort_by(|a, b| self.slices[*a].name.cmp(&self.slices[*b].name));
                    slices_of[p] = s;
                }
            }
            SliceOrder::Given(permutation) => {
                let wanted = self.device_slice_indices();
                let mut seen = vec![false; self.slices.len()];
                for &slice in permutation {
                    let Some(flag) = seen.get_mut(slice) else {
                        return Err(AllocatorError::Invalid(format!(
                            "slice order names slice {slice}, the node has {}",
                            self.slices.len()
                        )));
                    };
                    if std::mem::replace(flag, true) {
                        return Err(AllocatorError::Invalid(format!(
                            "slice order names slice {slice} twice"
                        )));
                    }
                }
                if wanted.iter().any(|&s| !seen[s]) {
                    return Err(AllocatorError::Invalid(
                        "slice order leaves out a device slice".into(),
                    ));
                }
                for &slice in permutation {
                    let Some(p) = self
                        .pools
                        .iter()
                        .position(|pool| pool.device_slices.contains(&slice))
                    else {
                        continue;
                    };
                    if slices_of[p].is_empty() {
                        pool_order.push(p);
                    }
                    slices_of[p].push(slice);
                }
            }
        }
        let mut visit = Vec::with_capacity(self.devices.len());
        for p in pool_order {
            if self.pools[p].status != PoolStatus::Valid {
                continue;
            }
            for &slice in &slices_of[p] {
                let (first, count) = self.slice_devices[slice];
                visit.extend(first..first + count);
            }
        }
        Ok(visit)
    }
}

/// Whether the allocator reads this slice at all under `features`.
fn readable(slice: &Slice, features: Features) -> bool {
    features.partitionable_devices || slice.shared_counters.is_empty()
}
