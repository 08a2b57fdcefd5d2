//! Inventory → ResourceSlices: the pure core of publishing.
//!
//! [`render`] turns one node's [`Inventory`] into the slices of its pool (pool name = node
//! name), following the device model in `docs/device-model.md`: whole GPUs, static MIG
//! devices, dynamic MIG placements on shared counters, `shared` devices with consumable
//! capacity and legacy share replicas, depending on the [`FeatureLevel`]. With counters the
//! 1.35+ split shape is used: counter sets in counters-only slices (at most 8 sets each),
//! devices in device slices of at most 64 devices. Devices are ordered by allocator
//! preference (see `model::device_order`).
//!
//! Nothing here does I/O; [`validate`](super::validate::validate) checks the result against
//! every documented API limit, and the publisher applies it.

use std::collections::BTreeMap;

use k8s_openapi::api::resource::v1::{
    CounterSet, Device, ResourcePool, ResourceSlice, ResourceSliceSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use thiserror::Error;

use super::FeatureLevel;
use crate::model::device_order::{Layout, cut};
use crate::model::{Inventory, MigState};

mod counters;
mod devices;
mod format;
mod naming;
mod quantity;

pub use crate::model::device_order::Kind;
pub use format::{FormatError, to_json, to_yaml};
pub use naming::MAX_SLICE_NAME_LEN;

/// The driver name when none is configured.
pub const DEFAULT_DRIVER_NAME: &str = "gpu.tessera.dev";
/// Most legacy share replicas per GPU.
pub const MAX_SHARE_REPLICAS: u32 = 64;
/// Label on every slice tessera publishes.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Its value.
pub const MANAGED_BY: &str = "tessera";
/// Annotation holding a hash of the pool's content without its generation; the publisher
/// compares it to decide whether the generation must move.
pub const CONTENT_HASH_ANNOTATION: &str = "tessera.dev/content-hash";
/// Devices per slice without counters (`ResourceSliceMaxDevices`).
pub const MAX_DEVICES_PER_SLICE: usize = 128;
/// Devices per slice when any consumes counters (`ResourceSliceMaxDevicesWithAdvancedFeatures`).
pub const MAX_DEVICES_PER_SLICE_WITH_COUNTERS: usize = 64;
/// Counter sets per slice (`ResourceSliceMaxCounterSets`).
pub const MAX_COUNTER_SETS_PER_SLICE: usize = 8;

/// How to render one node's slices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SliceOptions {
    /// The node: `spec.nodeName` and the pool name.
    pub node_name: String,
    /// `spec.driver`, also the domain of the unqualified attribute names.
    pub driver_name: String,
    /// Which DRA features the slices use.
    pub level: FeatureLevel,
    /// Legacy time-sliced replicas per MIG-off GPU (0: none).
    pub share_replicas: u32,
    /// `spec.pool.generation`.
    pub generation: i64,
}

impl SliceOptions {
    /// Options with the default driver name, no replicas and generation 0.
    pub fn new(node_name: impl Into<String>, level: FeatureLevel) -> Self {
        SliceOptions {
            node_name: node_name.into(),
            driver_name: DEFAULT_DRIVER_NAME.to_owned(),
            level,
            share_replicas: 0,
            generation: 0,
        }
    }
}

/// Why the options cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RenderError {
    /// The node name is not a DNS subdomain of at most 253 characters.
    #[error(
        "node name {0:?} is not a valid Kubernetes node name (a DNS subdomain of at most 253 characters)"
    )]
    NodeName(String),
    /// The driver name is not a DNS subdomain of at most 63 characters.
    #[error(
        "driver name {0:?} must be a lower-case DNS subdomain of at most 63 characters, such as gpu.tessera.dev"
    )]
    DriverName(String),
    /// More replicas than [`MAX_SHARE_REPLICAS`].
    #[error("--share-replicas {0} is more than the {MAX_SHARE_REPLICAS} supported")]
    ShareReplicas(u32),
    /// A negative pool generation.
    #[error("pool generation {0} is negative")]
    Generation(i64),
}

/// The slices of this node's pool, counters-only slices first, devices in preference order,
/// cut as [`Layout::PUBLISHED`] (each dynamic-MIG GPU's placements in a slice of their own,
/// measured in `docs/simulation.md`, "Publishing layout").
/// An inventory without GPUs gives no slices.
pub fn render(
    inventory: &Inventory,
    options: &SliceOptions,
) -> Result<Vec<ResourceSlice>, RenderError> {
    render_with_layout(inventory, options, Layout::PUBLISHED)
}

/// [`render`], cutting the devices into slices as `layout` says (`model::device_order`):
/// kind-major, or each dynamic-MIG GPU's devices in a slice of their own.
pub fn render_with_layout(
    inventory: &Inventory,
    options: &SliceOptions,
    layout: Layout,
) -> Result<Vec<ResourceSlice>, RenderError> {
    check_options(options)?;
    let mut gpus: Vec<_> = inventory.gpus.iter().collect();
    gpus.sort_by_key(|g| g.index);
    let mut counter_sets: Vec<CounterSet> = Vec::new();
    let mut planned = Vec::new();
    for gpu in gpus {
        let plan = devices::plan(inventory, gpu, options);
        // The same test `devices::plan` makes before publishing every placement.
        let dynamic = matches!(gpu.mig, MigState::Dynamic)
            && gpu.mig_product().is_some()
            && options.level.counters();
        counter_sets.extend(plan.counter_set);
        planned.extend(
            plan.devices
                .into_iter()
                .map(|p| (dynamic.then_some(gpu.index), p)),
        );
    }
    planned.sort_by(|(_, a), (_, b)| {
        a.order
            .cmp(&b.order)
            .then_with(|| a.device.name.cmp(&b.device.name))
    });
    let with_counters = planned
        .iter()
        .any(|(_, p)| p.device.consumes_counters.is_some());
    let per_slice = if with_counters {
        MAX_DEVICES_PER_SLICE_WITH_COUNTERS
    } else {
        MAX_DEVICES_PER_SLICE
    };
    let chunks: Vec<Vec<Device>> = cut(&planned, layout, per_slice, |(gpu, p)| {
        gpu.filter(|_| p.order.kind() == Kind::Mig)
    })
    .into_iter()
    .map(|indices| {
        indices
            .into_iter()
            .filter_map(|i| planned.get(i).map(|(_, p)| p.device.clone()))
            .collect()
    })
    .collect();

    let mut specs: Vec<(String, ResourceSliceSpec)> = Vec::new();
    for (k, sets) in counter_sets.chunks(MAX_COUNTER_SETS_PER_SLICE).enumerate() {
        let mut spec = base_spec(options);
        spec.shared_counters = Some(sets.to_vec());
        specs.push((slice_name(options, "counters", k), spec));
    }
    for (k, chunk) in chunks.into_iter().enumerate() {
        let mut spec = base_spec(options);
        spec.devices = Some(chunk);
        specs.push((slice_name(options, "devices", k), spec));
    }
    let count = i64::try_from(specs.len()).unwrap_or(i64::MAX);
    for (_, spec) in &mut specs {
        spec.pool.resource_slice_count = count;
    }
    let hash = content_hash(&specs);
    Ok(specs
        .into_iter()
        .map(|(name, mut spec)| {
            spec.pool.generation = options.generation;
            ResourceSlice {
                metadata: ObjectMeta {
                    name: Some(name),
                    labels: Some(BTreeMap::from([(
                        MANAGED_BY_LABEL.to_owned(),
                        MANAGED_BY.to_owned(),
                    )])),
                    annotations: Some(BTreeMap::from([(
                        CONTENT_HASH_ANNOTATION.to_owned(),
                        hash.clone(),
                    )])),
                    ..ObjectMeta::default()
                },
                spec,
            }
        })
        .collect())
}

/// How many devices of each `type` (`gpu`, `mig`, `shared`, `share`) the slices hold; every
/// type appears, with 0 when absent, so a gauge per type can be reset.
pub fn device_counts(slices: &[ResourceSlice]) -> BTreeMap<&'static str, u64> {
    let kinds = [Kind::Whole, Kind::Mig, Kind::Shared, Kind::Share];
    let mut counts: BTreeMap<&'static str, u64> =
        kinds.iter().map(|k| (k.type_name(), 0)).collect();
    let devices = slices.iter().flat_map(|s| s.spec.devices.iter().flatten());
    for device in devices {
        let kind = device
            .attributes
            .as_ref()
            .and_then(|a| a.get("type"))
            .and_then(|a| a.string.as_deref());
        if let Some(kind) = kinds.iter().find(|k| Some(k.type_name()) == kind) {
            *counts.entry(kind.type_name()).or_default() += 1;
        }
    }
    counts
}

fn base_spec(options: &SliceOptions) -> ResourceSliceSpec {
    ResourceSliceSpec {
        driver: options.driver_name.clone(),
        node_name: Some(options.node_name.clone()),
        pool: ResourcePool {
            name: options.node_name.clone(),
            generation: 0,
            resource_slice_count: 0,
        },
        ..ResourceSliceSpec::default()
    }
}

fn slice_name(options: &SliceOptions, part: &str, index: usize) -> String {
    naming::slice_name(&options.node_name, &options.driver_name, part, index)
}

/// FNV-1a over the JSON of every (name, spec) with generation 0: the same inventory and
/// options always give the same hash, and any change to a device, counter or slice changes it.
fn content_hash(specs: &[(String, ResourceSliceSpec)]) -> String {
    // Serializing plain data into a Vec cannot fail; an empty buffer would only make the
    // publisher bump the generation once more than needed.
    let bytes = serde_json::to_vec(specs).unwrap_or_default();
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
}

fn check_options(options: &SliceOptions) -> Result<(), RenderError> {
    if !super::validate::is_dns_subdomain(&options.node_name, MAX_SLICE_NAME_LEN) {
        return Err(RenderError::NodeName(
            options.node_name.chars().take(MAX_SLICE_NAME_LEN).collect(),
        ));
    }
    if !super::validate::is_dns_subdomain(&options.driver_name, 63) {
        return Err(RenderError::DriverName(
            options.driver_name.chars().take(64).collect(),
        ));
    }
    if options.share_replicas > MAX_SHARE_REPLICAS {
        return Err(RenderError::ShareReplicas(options.share_replicas));
    }
    if options.generation < 0 {
        return Err(RenderError::Generation(options.generation));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
