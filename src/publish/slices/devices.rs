//! The devices one GPU is advertised as, with their attributes, capacities and counter
//! consumption. Which devices depends on the GPU's MIG state and the feature level:
//!
//! | GPU | `ga` | `partitionable` | `consumable` |
//! |---|---|---|---|
//! | MIG off | whole, or N shares if `--share-replicas N` | same | whole + shared + N shares, on a `memory` counter |
//! | static MIG | its MIG devices | same | same |
//! | dynamic MIG | whole | whole + every placement, on MIG counters | + shared |
//!
//! Without counters the scheduler cannot keep overlapping devices apart, so at `ga` a GPU is
//! offered either whole or as replicas, never both, and a dynamic-MIG GPU only whole.

use std::collections::BTreeMap;

use k8s_openapi::api::resource::v1::{
    CapacityRequestPolicy, CapacityRequestPolicyRange, CounterSet, Device, DeviceAttribute,
    DeviceCapacity, DeviceCounterConsumption,
};

use super::{FeatureLevel, SliceOptions, counters, quantity};
use crate::model::device_order::{Kind, OrderKey};
use crate::model::mig::{GpuProduct, profile, profiles};
use crate::model::{DeviceName, Gpu, Inventory, MigDevice, MigState};

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

/// Standard attribute every DRA driver may publish for cross-driver alignment.
const PCI_BUS_ID: &str = "resource.kubernetes.io/pciBusID";

/// One device ready to be placed in a slice.
#[derive(Debug, Clone)]
pub struct Planned {
    /// Where it sorts.
    pub order: OrderKey,
    /// The device as published.
    pub device: Device,
}

/// Everything one GPU contributes to the pool.
#[derive(Debug, Clone, Default)]
pub struct GpuPlan {
    /// Its counter set, when its devices overlap.
    pub counter_set: Option<CounterSet>,
    /// Its devices, unordered.
    pub devices: Vec<Planned>,
}

/// The devices and counter set of `gpu`.
pub fn plan(inventory: &Inventory, gpu: &Gpu, options: &SliceOptions) -> GpuPlan {
    let replicas = options.share_replicas;
    let build = Builder { inventory, gpu };
    match &gpu.mig {
        MigState::Disabled if options.level.consumable() => {
            let consume = |bytes| Some(counters::consume_memory(gpu.index, bytes));
            let mut devices = vec![
                build.whole(gpu.memory_bytes, consume(gpu.memory_bytes)),
                build.shared(gpu.memory_bytes, consume(gpu.memory_bytes)),
            ];
            devices.extend(build.shares(replicas, consume));
            GpuPlan {
                counter_set: Some(counters::memory_set(gpu.index, gpu.memory_bytes)),
                devices,
            }
        }
        MigState::Disabled if replicas > 0 => GpuPlan {
            counter_set: None,
            devices: build.shares(replicas, |_| None),
        },
        MigState::Disabled => GpuPlan {
            counter_set: None,
            devices: vec![build.whole(gpu.memory_bytes, None)],
        },
        MigState::Static { devices } => GpuPlan {
            counter_set: None,
            devices: devices.iter().map(|d| build.static_mig(d)).collect(),
        },
        MigState::Dynamic => match gpu.mig_product() {
            Some(product) if options.level.counters() => build.dynamic(product, options.level),
            // Without counters (or a known geometry) the GPU can only be handed out whole;
            // prepare gives it as the full-size instance.
            product => GpuPlan {
                counter_set: None,
                devices: vec![build.whole(full_instance_bytes(gpu, product), None)],
            },
        },
    }
}

/// The memory a workload sees on a dynamic-MIG GPU handed out whole: that of the full-size
/// instance (7g…), a little less than the GPU's total.
fn full_instance_bytes(gpu: &Gpu, product: Option<GpuProduct>) -> u64 {
    product
        .and_then(|p| profiles(p).iter().map(|p| p.capacity_mib()).max())
        .map_or(gpu.memory_bytes, |mib| mib * MIB)
}

struct Builder<'a> {
    inventory: &'a Inventory,
    gpu: &'a Gpu,
}

impl Builder<'_> {
    fn whole(&self, memory_bytes: u64, consumes: Option<DeviceCounterConsumption>) -> Planned {
        let mut attributes = self.attributes(Kind::Whole);
        attributes.insert("uuid".into(), string(&self.gpu.uuid));
        Planned {
            order: OrderKey::whole(self.gpu.index),
            device: Device {
                name: DeviceName::Whole {
                    gpu: self.gpu.index,
                }
                .to_string(),
                attributes: Some(attributes),
                capacity: Some(BTreeMap::from([("memory".into(), fixed(memory_bytes))])),
                consumes_counters: consumes.map(|c| vec![c]),
                ..Device::default()
            },
        }
    }

    fn shared(&self, memory_bytes: u64, consumes: Option<DeviceCounterConsumption>) -> Planned {
        let mut attributes = self.attributes(Kind::Shared);
        attributes.insert("uuid".into(), string(&self.gpu.uuid));
        attributes.insert("parentUUID".into(), string(&self.gpu.uuid));
        Planned {
            order: OrderKey::shared(self.gpu.index),
            device: Device {
                name: DeviceName::Shared {
                    gpu: self.gpu.index,
                }
                .to_string(),
                attributes: Some(attributes),
                capacity: Some(BTreeMap::from([
                    ("memory".into(), consumable_memory(memory_bytes)),
                    ("compute".into(), consumable_compute()),
                ])),
                consumes_counters: consumes.map(|c| vec![c]),
                allow_multiple_allocations: Some(true),
                ..Device::default()
            },
        }
    }

    fn shares(
        &self,
        replicas: u32,
        consumes: impl Fn(u64) -> Option<DeviceCounterConsumption>,
    ) -> Vec<Planned> {
        let each = self.gpu.memory_bytes / u64::from(replicas.max(1));
        (0..replicas)
            .map(|replica| {
                let mut attributes = self.attributes(Kind::Share);
                attributes.insert("uuid".into(), string(&self.gpu.uuid));
                attributes.insert("parentUUID".into(), string(&self.gpu.uuid));
                Planned {
                    order: OrderKey::share(self.gpu.index, replica, each),
                    device: Device {
                        name: DeviceName::Share {
                            gpu: self.gpu.index,
                            replica,
                        }
                        .to_string(),
                        attributes: Some(attributes),
                        capacity: Some(BTreeMap::from([("memory".into(), fixed(each))])),
                        consumes_counters: consumes(each).map(|c| vec![c]),
                        ..Device::default()
                    },
                }
            })
            .collect()
    }

    fn static_mig(&self, mig: &MigDevice) -> Planned {
        let product = self.gpu.mig_product();
        let row = product.and_then(|p| profile(p, &mig.profile));
        let compute = row
            .map(|p| p.compute_slices)
            .or_else(|| compute_slices_from_name(&mig.profile));
        let mut attributes = self.mig_attributes(&mig.profile);
        attributes.insert("uuid".into(), string(&mig.uuid));
        let mut capacity = BTreeMap::from([
            ("memory".into(), fixed(mig.memory_bytes)),
            (
                "memorySlices".into(),
                fixed_count(u64::from(mig.placement.size)),
            ),
        ]);
        if let Some(compute) = compute {
            capacity.insert("computeSlices".into(), fixed_count(u64::from(compute)));
        }
        Planned {
            order: OrderKey::mig(
                self.gpu.index,
                product,
                row,
                mig.placement,
                compute.unwrap_or(0),
                mig.memory_bytes,
            ),
            device: Device {
                name: DeviceName::mig(self.gpu.index, &mig.profile, mig.placement.start)
                    .to_string(),
                attributes: Some(attributes),
                capacity: Some(capacity),
                ..Device::default()
            },
        }
    }

    fn dynamic(&self, product: GpuProduct, level: FeatureLevel) -> GpuPlan {
        let gpu = self.gpu.index;
        let full = full_instance_bytes(self.gpu, Some(product));
        let mut whole = self.whole(full, Some(counters::consume_all_mig(gpu, product)));
        whole.order = OrderKey::whole_cuttable(gpu);
        let mut devices = vec![whole];
        for row in profiles(product) {
            let memory = row.capacity_mib() * MIB;
            for &placement in row.placements {
                let mut attributes = self.mig_attributes(row.name);
                // Not created yet, so no MIG UUID: prepare makes the instance.
                attributes.remove("uuid");
                devices.push(Planned {
                    order: OrderKey::mig(
                        gpu,
                        Some(product),
                        Some(row),
                        placement,
                        row.compute_slices,
                        memory,
                    ),
                    device: Device {
                        name: DeviceName::mig(gpu, row.name, placement.start).to_string(),
                        attributes: Some(attributes),
                        capacity: Some(BTreeMap::from([
                            ("memory".into(), fixed(memory)),
                            (
                                "computeSlices".into(),
                                fixed_count(u64::from(row.compute_slices)),
                            ),
                            (
                                "memorySlices".into(),
                                fixed_count(u64::from(placement.size)),
                            ),
                        ])),
                        consumes_counters: Some(vec![counters::consume_placement(
                            gpu, row, placement,
                        )]),
                        ..Device::default()
                    },
                });
            }
        }
        if level.consumable() {
            devices.push(self.shared(full, Some(counters::consume_all_mig(gpu, product))));
        }
        GpuPlan {
            counter_set: Some(counters::mig_set(gpu, product)),
            devices,
        }
    }

    fn mig_attributes(&self, profile_name: &str) -> BTreeMap<String, DeviceAttribute> {
        let mut attributes = self.attributes(Kind::Mig);
        attributes.insert("parentUUID".into(), string(&self.gpu.uuid));
        attributes.insert("profile".into(), string(profile_name));
        attributes
    }

    /// The attributes every device of this GPU carries. Unqualified names are in the
    /// driver's own domain (`gpu.tessera.dev/…` in CEL).
    fn attributes(&self, kind: Kind) -> BTreeMap<String, DeviceAttribute> {
        let gpu = self.gpu;
        let mut a = BTreeMap::from([
            ("type".to_owned(), string(kind.type_name())),
            ("index".to_owned(), int(i64::from(gpu.index))),
            ("model".to_owned(), string(&gpu.product_name)),
            ("architecture".to_owned(), string(&gpu.architecture)),
            (
                "migCapable".to_owned(),
                boolean(gpu.mig_product().is_some()),
            ),
            (PCI_BUS_ID.to_owned(), string(&gpu.pci_bus_id)),
        ]);
        let versions = [
            ("cudaComputeCapability", Some(&gpu.cuda_compute_capability)),
            ("driverVersion", Some(&self.inventory.driver_version)),
            (
                "cudaDriverVersion",
                self.inventory.cuda_driver_version.as_ref(),
            ),
        ];
        for (key, value) in versions {
            // A version NVML spells in a way semver cannot express is left out rather than
            // published as something the API server refuses.
            if let Some(v) = value.and_then(|v| quantity::semver(v)) {
                a.insert(key.to_owned(), version(v));
            }
        }
        a
    }
}

/// `3g.40gb` → 3, for MIG profiles of products outside the catalog.
fn compute_slices_from_name(profile: &str) -> Option<u8> {
    let (g, _) = profile.split_once('g')?;
    g.parse().ok().filter(|n| *n > 0)
}

fn fixed(bytes: u64) -> DeviceCapacity {
    DeviceCapacity {
        value: quantity::bytes(bytes),
        request_policy: None,
    }
}

fn fixed_count(n: u64) -> DeviceCapacity {
    DeviceCapacity {
        value: quantity::count(n),
        request_policy: None,
    }
}

/// `memory` of a shared device: claims ask in whole GiB (rounded up by the scheduler) and
/// get all of it when they do not ask, so an unsized claim never overcommits memory.
fn consumable_memory(memory_bytes: u64) -> DeviceCapacity {
    // The API wants min + step <= value; GPUs under 2 GiB step in MiB instead.
    let unit = if memory_bytes >= 2 * GIB { GIB } else { MIB };
    let policy = (memory_bytes >= 2 * unit).then(|| {
        let max = memory_bytes / unit * unit;
        CapacityRequestPolicy {
            default: Some(quantity::bytes(max)),
            valid_range: Some(CapacityRequestPolicyRange {
                min: quantity::bytes(unit),
                max: Some(quantity::bytes(max)),
                step: Some(quantity::bytes(unit)),
            }),
            valid_values: None,
        }
    });
    DeviceCapacity {
        value: quantity::bytes(memory_bytes),
        request_policy: policy,
    }
}

/// `compute` of a shared device, in percent of the SMs: a claim that does not ask reserves
/// none (it time-slices with whatever is free); one that asks reserves that share, enforced
/// through MPS.
fn consumable_compute() -> DeviceCapacity {
    DeviceCapacity {
        value: quantity::count(100),
        request_policy: Some(CapacityRequestPolicy {
            default: Some(quantity::count(0)),
            valid_range: Some(CapacityRequestPolicyRange {
                min: quantity::count(0),
                max: Some(quantity::count(100)),
                step: Some(quantity::count(1)),
            }),
            valid_values: None,
        }),
    }
}

fn string(s: &str) -> DeviceAttribute {
    DeviceAttribute {
        string: Some(s.to_owned()),
        ..DeviceAttribute::default()
    }
}

fn version(v: String) -> DeviceAttribute {
    DeviceAttribute {
        version: Some(v),
        ..DeviceAttribute::default()
    }
}

fn int(i: i64) -> DeviceAttribute {
    DeviceAttribute {
        int: Some(i),
        ..DeviceAttribute::default()
    }
}

fn boolean(b: bool) -> DeviceAttribute {
    DeviceAttribute {
        bool: Some(b),
        ..DeviceAttribute::default()
    }
}
