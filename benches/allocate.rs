//! The allocator model at `tessera allocate`'s core: one claim against one
//! `h100x8-mig-dynamic` node (4 device slices, 252 devices), in name order (1.36+) and over all
//! 24 slice orders (1.34/1.35), on an empty node and one with half its GPUs taken.
//!
//! Run with `cargo bench --bench allocate`; names read `allocate/<claim>/<order>/<node>`.

// Benchmark setup fails loudly on a broken profile; there is no caller to report to.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tessera::allocator::{
    AllocatedDevice, AllocatedState, AllocationMode, Claim, Classes, DeviceChoice, Features,
    NodeDevices, Quantity, Request, SliceOrder, allocate, orders,
};
use tessera::allocator_k8s;
use tessera::discovery::FakeProfile;
use tessera::publish::{FeatureLevel, SliceOptions, render};

const DRIVER: &str = "gpu.tessera.dev";

fn node() -> NodeDevices {
    let inventory = FakeProfile::H100x8MigDynamic.inventory("node-1");
    let rendered = render(
        &inventory,
        &SliceOptions::new("node-1", FeatureLevel::Consumable),
    )
    .unwrap();
    let mut notes = Vec::new();
    let slices = rendered
        .iter()
        .map(|s| {
            allocator_k8s::slice(s, Features::all(), &mut notes)
                .unwrap()
                .1
        })
        .collect();
    NodeDevices::new(slices, Features::all()).unwrap()
}

fn classes() -> Classes {
    let class = |name: String, kind: &str| tessera::allocator::DeviceClass {
        name,
        selectors: vec![format!(
            "device.driver == '{DRIVER}' && device.attributes['{DRIVER}'].type == '{kind}'"
        )],
    };
    Classes::new(&[
        class(DRIVER.into(), "gpu"),
        class(format!("mig.{DRIVER}"), "mig"),
        class(format!("shared.{DRIVER}"), "shared"),
    ])
}

/// `deploy/examples/cheapest-slice.yaml`: MIG ≥ 16Gi, else a 16Gi share, else a whole GPU.
fn cheapest_slice() -> Claim {
    let memory = "device.capacity['gpu.tessera.dev'].memory.compareTo(quantity('16Gi')) >= 0";
    let mut mig = DeviceChoice::one("mig", format!("mig.{DRIVER}"));
    mig.selectors.push(memory.into());
    let mut shared = DeviceChoice::one("shared", format!("shared.{DRIVER}"));
    shared
        .capacity_requests
        .insert("memory".into(), Quantity::parse("16Gi").unwrap());
    let mut whole = DeviceChoice::one("whole", DRIVER);
    whole.selectors.push(memory.into());
    Claim {
        name: "default/gpu-16gib".into(),
        requests: vec![Request::FirstAvailable {
            name: "gpu".into(),
            subrequests: vec![mig, shared, whole],
        }],
    }
}

fn two_whole() -> Claim {
    let mut whole = DeviceChoice::one("gpu", DRIVER);
    whole.mode = AllocationMode::ExactCount(2);
    Claim {
        name: "default/two".into(),
        requests: vec![Request::Exactly(whole)],
    }
}

/// GPUs 0-3 taken whole.
fn half_taken(node: &NodeDevices) -> AllocatedState {
    let taken: Vec<AllocatedDevice> = (0..4)
        .map(|g| AllocatedDevice {
            driver: DRIVER.into(),
            pool: "node-1".into(),
            device: format!("gpu-{g}"),
            shared: false,
            consumed_capacity: Default::default(),
            admin_access: false,
        })
        .collect();
    AllocatedState::new(node, &taken).unwrap()
}

fn bench(c: &mut Criterion) {
    let node = node();
    let classes = classes();
    let empty = AllocatedState::empty(&node);
    let half = half_taken(&node);
    let mut group = c.benchmark_group("allocate");
    group.measurement_time(Duration::from_secs(3));
    for (label, claim) in [
        ("cheapest-slice", cheapest_slice()),
        ("two-whole", two_whole()),
    ] {
        let prepared =
            tessera::allocator::PreparedClaims::new(&[claim], &classes, Features::all()).unwrap();
        for (state_label, state) in [("empty", &empty), ("half", &half)] {
            group.bench_function(format!("{label}/name-order/{state_label}"), |b| {
                b.iter(|| {
                    allocate(&node, state, &prepared, black_box(&SliceOrder::ByName)).unwrap()
                })
            });
            group.bench_function(format!("{label}/all-24-orders/{state_label}"), |b| {
                b.iter(|| orders::distribution(&node, state, &prepared, black_box(42)).unwrap())
            });
        }
    }
    group.bench_function("node-devices-new", |b| {
        let slices = node.slices().to_vec();
        b.iter(|| NodeDevices::new(black_box(slices.clone()), Features::all()).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
