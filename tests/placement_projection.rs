//! The simulator's first fit (`sim::placement::first_fit`, `sim::mig::published`) is a
//! projection of the scheduler's allocator: run the allocator model (`tessera::allocator`)
//! on the slices the plugin publishes (`publish::slices::render`, read back through the
//! cluster cache as the extender reads them) and it gives the same devices, pod after pod.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tessera::allocator::{
    self, AllocationMode, Claim, Classes, DeviceChoice, Features, Outcome, PreparedClaims,
    Quantity, Release, Request, SliceOrder,
};
use tessera::cluster::testing::objects::node;
use tessera::cluster::view::allocator::ModelNode;
use tessera::cluster::{CacheConfig, ClusterObject, NodeView, Store};
use tessera::discovery::FakeProfile;
use tessera::extender::predict::chart_classes;
use tessera::model::device_order::Layout;
use tessera::model::partition::{
    Partition, PartitionDemand, PartitionFit, PartitionGpu, PartitionKind, apply,
};
use tessera::model::{Demand, DeviceName, GpuPick, ModelSet, NodeState};
use tessera::publish::FeatureLevel;
use tessera::publish::slices::{SliceOptions, render};
use tessera::sim::mig::published::Published;
use tessera::sim::placement::{Release as SliceRelease, first_fit};

const DRIVER: &str = "gpu.tessera.dev";
const NODE: &str = "node-a";

/// The node's cached view of what the plugin publishes for `profile` at `consumable`.
fn published(profile: FakeProfile) -> std::sync::Arc<NodeView> {
    let mut store = Store::new(CacheConfig::builtin(DRIVER).unwrap());
    store.applied(&ClusterObject::from(node(NODE, &[])));
    let slices = render(
        &profile.inventory(NODE),
        &SliceOptions::new(NODE, FeatureLevel::Consumable),
    )
    .unwrap();
    for s in slices {
        store.applied(&ClusterObject::from(s));
    }
    std::sync::Arc::clone(store.snapshot().node(NODE).unwrap())
}

fn choice(name: &str, class: &str, count: u32) -> DeviceChoice {
    DeviceChoice {
        mode: AllocationMode::ExactCount(count),
        ..DeviceChoice::one(name, class)
    }
}

/// The allocator's answer for `claim` on `model`, as device names.
fn allocate(
    model: &ModelNode,
    state: &allocator::AllocatedState,
    claim: Claim,
    order: &SliceOrder,
) -> (Vec<String>, Outcome) {
    let classes = Classes::new(&chart_classes(DRIVER));
    let prepared = PreparedClaims::new(&[claim], &classes, Features::all()).unwrap();
    let outcome = allocator::allocate(&model.devices, state, &prepared, order).unwrap();
    let names = match &outcome {
        Outcome::Allocated(claims) => claims
            .iter()
            .flat_map(|c| c.devices.iter())
            .map(|d| model.devices.device_id(d.device).unwrap().2.to_owned())
            .collect(),
        Outcome::Unsatisfiable => Vec::new(),
    };
    (names, outcome)
}

fn commit(model: &ModelNode, state: &mut allocator::AllocatedState, outcome: &Outcome) {
    if let Outcome::Allocated(claims) = outcome {
        state.commit(&model.devices, claims);
    }
}

/// openb terms: a sharing pod of `m` milli (a multiple of 100, so that compute percent and
/// memory in 7Gi tenths are exact and the projection's milli accounting is the allocator's
/// capacity accounting) asks the shared class for `m / 10` % compute and `7 × m / 100` GiB;
/// an `n`-GPU pod asks the whole-GPU class for `n`.
#[test]
fn openb_first_fit_is_the_allocators_on_published_shared_and_whole_gpus() {
    let view = published(FakeProfile::H100x8);
    let model = ModelNode::build(&view, DRIVER, Features::all()).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(14);
    for run in 0..20 {
        let mut state = model.state.clone();
        let mut sim = NodeState::new(None, 8, 192_000, 2_097_152).unwrap();
        for step in 0..40 {
            let whole = rng.random_bool(0.3);
            let (gpus, milli) = if whole {
                (rng.random_range(1..=3u8), 1000u16)
            } else {
                (1, 100 * rng.random_range(1..=9u16))
            };
            let demand = Demand {
                cpu_milli: 0,
                memory_mib: 0,
                gpus,
                gpu_milli: milli,
                models: ModelSet::ANY,
            };
            let mut request = if whole {
                choice("gpu", DRIVER, u32::from(gpus))
            } else {
                let mut c = choice("gpu", "shared.gpu.tessera.dev", 1);
                c.capacity_requests.insert(
                    format!("{DRIVER}/compute"),
                    Quantity::from_units(u64::from(milli / 10)),
                );
                c.capacity_requests.insert(
                    format!("{DRIVER}/memory"),
                    Quantity::from_units(u64::from(milli / 100) * 7 * (1 << 30)),
                );
                c
            };
            request.name = "gpu".into();
            let claim = Claim {
                name: format!("ml/p-{run}-{step}"),
                requests: vec![Request::Exactly(request)],
            };
            let (names, outcome) = allocate(&model, &state, claim, &SliceOrder::ByName);
            let projected = first_fit(&sim, &demand);
            let allocated: Option<GpuPick> = (!names.is_empty()).then(|| {
                names.iter().fold(GpuPick::NONE, |pick, n| {
                    let gpu = n.parse::<DeviceName>().unwrap().gpu();
                    pick.with(gpu as usize)
                })
            });
            assert_eq!(projected, allocated, "run {run} step {step}: {names:?}");
            if let Some(pick) = projected {
                sim.allocate(&demand, pick).unwrap();
                commit(&model, &mut state, &outcome);
            }
        }
    }
}

fn fit_names(fit: &PartitionFit) -> Vec<String> {
    fit.assignments
        .iter()
        .map(|a| {
            let gpu = a.gpu as u32;
            match a.partition {
                Partition::Whole => DeviceName::Whole { gpu }.to_string(),
                Partition::Mig { profile, placement } => {
                    DeviceName::mig(gpu, profile.name, placement.start).to_string()
                }
                Partition::Shared { .. } => DeviceName::Shared { gpu }.to_string(),
            }
        })
        .collect()
}

/// A MIG pod of `s` compute slices: `firstAvailable` [a MIG device with at least `s` compute
/// slices, a whole GPU], as the MIG experiment's pods ask.
fn mig_claim(name: &str, s: u8) -> (Claim, PartitionDemand) {
    let mut mig = choice("mig", "mig.gpu.tessera.dev", 1);
    mig.selectors = vec![format!(
        "device.capacity['{DRIVER}'].computeSlices.compareTo(quantity('{s}')) >= 0"
    )];
    let claim = Claim {
        name: name.into(),
        requests: vec![Request::FirstAvailable {
            name: "gpu".into(),
            subrequests: vec![mig, choice("whole", DRIVER, 1)],
        }],
    };
    let demand = PartitionDemand {
        preference: vec![PartitionKind::Mig, PartitionKind::Whole],
        ..PartitionDemand::new(1, 0, u16::from(s) * 1000 / 7)
    };
    (claim, demand)
}

/// MIG terms, 1.36 (name order) pod after pod, and 1.34/1.35 (any order): the outcomes the
/// simulator draws from are the distinct outcomes over the allocator's slice orders.
#[test]
fn mig_first_fit_is_the_allocators_on_published_dynamic_mig() {
    let view = published(FakeProfile::H100x8MigDynamic);
    let model = ModelNode::build(&view, DRIVER, Features::all()).unwrap();
    let spec = &view.partitions[0];
    let mut gpus: Vec<PartitionGpu> = vec![spec.clone(); 8];
    let order = Published::of(&gpus, Layout::PUBLISHED);
    let natural: Vec<usize> = (0..order.slice_count()).collect();
    let mut state = model.state.clone();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let sizes = [1u8, 1, 2, 3, 4, 4, 7];
    for step in 0..60 {
        let s = sizes[rng.random_range(0..sizes.len())];
        let (claim, demand) = mig_claim(&format!("ml/m-{step}"), s);

        // Any order: the same set of outcomes.
        let classes = Classes::new(&chart_classes(DRIVER));
        let prepared =
            PreparedClaims::new(std::slice::from_ref(&claim), &classes, Features::all()).unwrap();
        let d = allocator::orders::distribution(&model.devices, &state, &prepared, 3).unwrap();
        let model_outcomes: BTreeSet<Vec<String>> = d
            .outcomes
            .keys()
            .filter_map(|o| match o {
                Outcome::Allocated(c) => Some(
                    c.iter()
                        .flat_map(|c| c.devices.iter())
                        .map(|r| model.devices.device_id(r.device).unwrap().2.to_owned())
                        .collect(),
                ),
                Outcome::Unsatisfiable => None,
            })
            .collect();
        let projected: BTreeSet<Vec<String>> = order
            .outcomes(&demand, &gpus, SliceRelease::Arbitrary)
            .iter()
            .map(fit_names)
            .collect();
        assert_eq!(projected, model_outcomes, "step {step}, {s} slices");

        // Name order: the one outcome, then both take it.
        let (names, outcome) = allocate(&model, &state, claim, &SliceOrder::ByName);
        let fit = order.first_fit(&demand, &gpus, &natural);
        assert_eq!(
            fit.as_ref().map(fit_names).unwrap_or_default(),
            names,
            "step {step}, {s} slices"
        );
        match fit {
            Some(f) => {
                apply(&f, &mut gpus).unwrap();
                commit(&model, &mut state, &outcome);
            }
            None => assert!(matches!(outcome, Outcome::Unsatisfiable)),
        }
    }
}

#[test]
fn the_release_families_are_the_models() {
    // The simulator's `--kube-version` and the allocator model agree on which releases
    // search slices by name.
    for (text, sorted) in [
        ("1.34", false),
        ("1.35", false),
        ("1.36", true),
        ("1.37", true),
    ] {
        let release = Release::parse(text).unwrap();
        let by_name = allocator::default_order(release, Features::defaults(release)).is_some();
        assert_eq!(by_name, sorted, "{text}");
        let sim = SliceRelease::from_version(text).unwrap();
        assert_eq!(sim == SliceRelease::NameOrder, sorted, "{text}");
    }
}
