//! Shared counters: one counter set per GPU that has overlapping devices, and what each
//! device draws from it.
//!
//! Two shapes:
//! - **MIG geometry** (dynamic MIG): one counter per memory slice (`memory-slice-0` …, value
//!   1), `compute-slices` (7, or 4 on A30) and `media-extensions` (1). A placement consumes
//!   its memory slices, its compute slices and, for `+me` profiles, the media extensions; the
//!   whole GPU and the `shared` device consume everything. The scheduler can then never hand
//!   out two placements that overlap, more compute than the GPU has, or two `+me`
//!   instances: exactly the rules of [`MigLayout`](crate::model::mig::MigLayout).
//! - **Memory** (MIG off, consumable level): one `memory` counter holding the GPU's bytes.
//!   The whole GPU and the `shared` device consume all of it, each legacy share its
//!   `1/N`; so whole, shared and shares exclude each other while shares coexist.
//!
//! Counter and set names are DNS labels, as the API requires.

use std::collections::BTreeMap;

use k8s_openapi::api::resource::v1::{Counter, CounterSet, DeviceCounterConsumption};

use super::quantity;
use crate::model::mig::{GpuProduct, MigProfile, Placement};

/// Counter name of the compute slices.
pub const COMPUTE_SLICES: &str = "compute-slices";
/// Counter name of the media extensions (OFA/JPEG set) taken by `+me` profiles.
pub const MEDIA_EXTENSIONS: &str = "media-extensions";
/// Counter name of a MIG-off GPU's memory.
pub const MEMORY: &str = "memory";

/// `gpu-<i>-counters`.
pub fn set_name(gpu: u32) -> String {
    format!("gpu-{gpu}-counters")
}

/// `memory-slice-<k>`.
pub fn memory_slice(k: u8) -> String {
    format!("memory-slice-{k}")
}

/// The MIG-geometry counter set of a GPU of `product`.
pub fn mig_set(gpu: u32, product: GpuProduct) -> CounterSet {
    CounterSet {
        name: set_name(gpu),
        counters: everything(product),
    }
}

/// The memory counter set of a MIG-off GPU.
pub fn memory_set(gpu: u32, memory_bytes: u64) -> CounterSet {
    CounterSet {
        name: set_name(gpu),
        counters: BTreeMap::from([(MEMORY.to_owned(), bytes(memory_bytes))]),
    }
}

/// What a placement of `profile` at `placement` draws.
pub fn consume_placement(
    gpu: u32,
    profile: &MigProfile,
    placement: Placement,
) -> DeviceCounterConsumption {
    let mut counters: BTreeMap<String, Counter> = (placement.start..)
        .take(usize::from(placement.size))
        .map(|k| (memory_slice(k), one()))
        .collect();
    counters.insert(
        COMPUTE_SLICES.to_owned(),
        count(u64::from(profile.compute_slices)),
    );
    if profile.media_extensions {
        counters.insert(MEDIA_EXTENSIONS.to_owned(), one());
    }
    DeviceCounterConsumption {
        counter_set: set_name(gpu),
        counters,
    }
}

/// Everything in a MIG-geometry set: what the whole GPU and the `shared` device draw.
pub fn consume_all_mig(gpu: u32, product: GpuProduct) -> DeviceCounterConsumption {
    DeviceCounterConsumption {
        counter_set: set_name(gpu),
        counters: everything(product),
    }
}

/// `memory_bytes` of a memory set.
pub fn consume_memory(gpu: u32, memory_bytes: u64) -> DeviceCounterConsumption {
    DeviceCounterConsumption {
        counter_set: set_name(gpu),
        counters: BTreeMap::from([(MEMORY.to_owned(), bytes(memory_bytes))]),
    }
}

fn everything(product: GpuProduct) -> BTreeMap<String, Counter> {
    let mut counters: BTreeMap<String, Counter> = (0..product.total_memory_slices())
        .map(|k| (memory_slice(k), one()))
        .collect();
    counters.insert(
        COMPUTE_SLICES.to_owned(),
        count(u64::from(product.total_compute_slices())),
    );
    counters.insert(MEDIA_EXTENSIONS.to_owned(), one());
    counters
}

fn one() -> Counter {
    count(1)
}

fn count(n: u64) -> Counter {
    Counter {
        value: quantity::count(n),
    }
}

fn bytes(n: u64) -> Counter {
    Counter {
        value: quantity::bytes(n),
    }
}
