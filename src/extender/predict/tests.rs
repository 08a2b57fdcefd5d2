//! The extender's prediction against the allocator model, on what the plugin really
//! publishes (`publish::slices::render` of the bundled fake profiles).

use std::sync::Arc;

use super::*;
use crate::cluster::testing::objects::{
    Given, Want, allocate, annotate_node, claim, node, pod, reserve,
};
use crate::cluster::{CacheConfig, ClusterObject, Store};
use crate::discovery::FakeProfile;
use crate::extender::cluster_view::CacheView;
use crate::extender::demand::{DeviceClasses, PodDemand};
use crate::extender::evaluate::{Scoring, default_typical_pods};
use crate::extender::view::{ClusterView, Detail, Evaluation, PredictionNote};
use crate::model::device_order::Layout;
use crate::publish::FeatureLevel;
use crate::publish::slices::{SliceOptions, render_with_layout};
use crate::scoring::{Tolerance, Weights};

const DRIVER: &str = "gpu.tessera.dev";
const NODE: &str = "node-a";

/// A store with `NODE` publishing what the plugin publishes for `profile`.
fn store_with(profile: FakeProfile) -> Store {
    store_laid_out(profile, Layout::PUBLISHED)
}

/// A store with `NODE` publishing `profile` cut as `layout`.
fn store_laid_out(profile: FakeProfile, layout: Layout) -> Store {
    let mut store = Store::new(CacheConfig::builtin(DRIVER).unwrap());
    let mut n = node(NODE, &[("karpenter.sh/capacity-type", "on-demand")]);
    annotate_node(&mut n, "tessera.dev/hourly-price", "55.04");
    store.applied(&ClusterObject::from(n));
    let inventory = profile.inventory(NODE);
    let slices = render_with_layout(
        &inventory,
        &SliceOptions::new(NODE, FeatureLevel::Consumable),
        layout,
    )
    .unwrap();
    for s in slices {
        store.applied(&ClusterObject::from(s));
    }
    store
}

/// A pending pod `name` with one claim of `want`.
fn pending(store: &mut Store, name: &str, want: Want<'_>) {
    store.applied(&ClusterObject::from(claim(
        "ml",
        name,
        &format!("uid-{name}"),
        want,
    )));
    store.applied(&ClusterObject::from(pod(
        "ml",
        name,
        &format!("pod-{name}"),
        None,
        &[("gpu", Some(name))],
        0,
    )));
}

/// A running pod `name` holding `device` (a share when `consumed` is given).
fn running(
    store: &mut Store,
    name: &str,
    want: Want<'_>,
    device: &str,
    consumed: Option<&[(&str, &str)]>,
) {
    let mut c = claim("ml", name, &format!("uid-{name}"), want);
    allocate(
        &mut c,
        NODE,
        &[Given {
            driver: DRIVER,
            pool: NODE,
            device,
            request: "gpu",
            share: consumed.map(|c| ("0b5e9b50-8f50-4d70-9d46-000000000001", c)),
        }],
    );
    reserve(&mut c, name, &format!("pod-{name}"));
    store.applied(&ClusterObject::from(c));
    store.applied(&ClusterObject::from(pod(
        "ml",
        name,
        &format!("pod-{name}"),
        Some(NODE),
        &[("gpu", Some(name))],
        0,
    )));
}

fn view(store: &mut Store) -> CacheView {
    CacheView::new(store.snapshot(), Arc::new(DeviceClasses::new(DRIVER)))
}

fn demand(v: &CacheView, name: &str) -> PodDemand {
    let p = v.pod("ml", name).unwrap();
    crate::extender::pod::pod_demand(&p, |id| v.claim(id))
}

fn evaluate(v: &CacheView, scoring: &Scoring, demand: &PodDemand) -> Evaluation {
    let node = v.node(NODE).unwrap();
    scoring
        .evaluate_node(
            node,
            v.node_market(node).unwrap(),
            &v.node_condition(node),
            demand,
            Tolerance::Checkpointed,
            Detail::Explain,
        )
        .unwrap()
}

fn scoring(release: Release) -> Scoring {
    Scoring::new(Weights::default(), default_typical_pods().unwrap())
        .with_predictor(Predictor::new(release, DRIVER))
}

fn names(e: &Evaluation) -> Vec<(String, f64)> {
    e.partitions
        .iter()
        .map(|p| (p.partition.clone(), (p.probability * 1e6).round() / 1e6))
        .collect()
}

const MIG_16GI: Want<'static> = Want {
    class: "mig.gpu.tessera.dev",
    selector: Some("device.capacity['gpu.tessera.dev'].memory.compareTo(quantity('16Gi')) >= 0"),
    capacity: &[],
};

/// Acceptance: on a deterministic layout (1.36, slices by name) the extender prices exactly
/// the device the allocator model gives, and says the prediction is exact.
#[test]
fn the_priced_device_is_the_allocators_first_fit_in_name_order() {
    let mut store = store_with(FakeProfile::H100x8MigDynamic);
    pending(&mut store, "p", MIG_16GI);
    let v = view(&mut store);
    let d = demand(&v, "p");
    let predictor = Predictor::new(Release::V1_36, DRIVER);
    let node = v.node(NODE).unwrap();
    let model = predictor.predict(node, &d.model_claims).unwrap();
    assert_eq!(model.certainty, Certainty::Exact);
    assert_eq!(model.outcomes.len(), 1);
    let device = node.device(model.outcomes[0].devices[0].device).unwrap();
    assert_eq!(&*device.name, "gpu-0-mig-1g20gb-6");

    let e = evaluate(&v, &scoring(Release::V1_36), &d);
    assert_eq!(names(&e), [("gpu-0-mig-1g20gb-6".to_owned(), 1.0)]);
    assert_eq!(e.prediction, Some(PredictionNote::Exact));
}

/// On 1.35 the slices come in any order. The measurement with the real allocator
/// over every order of `h100x8-mig-dynamic` as it was published (kind-major: all `1g`
/// placements in one slice, the `7g` ones in another) found `gpu-0-mig-1g20gb-6`,
/// `gpu-4-mig-1g20gb-6` and `gpu-0-mig-7g80gb-0`, a third each; the extender prices their
/// mean.
#[test]
fn arbitrary_slice_order_is_priced_as_the_mean_over_the_orders_outcomes() {
    let mut store = store_laid_out(FakeProfile::H100x8MigDynamic, Layout::KindMajor);
    pending(&mut store, "p", MIG_16GI);
    let v = view(&mut store);
    let d = demand(&v, "p");
    let e = evaluate(&v, &scoring(Release::V1_35), &d);
    let third = (1e6_f64 / 3.0).round() / 1e6;
    let mut got = names(&e);
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        [
            ("gpu-0-mig-1g20gb-6".to_owned(), third),
            ("gpu-0-mig-7g80gb-0".to_owned(), third),
            ("gpu-4-mig-1g20gb-6".to_owned(), third),
        ]
    );
    assert!(matches!(
        e.prediction,
        Some(PredictionNote::Expected {
            orders: 24,
            sampled: false,
            outcomes: 3
        })
    ));
    // The mean sits above the exact 1g.20gb's price: a third of the time a whole GPU's 7g.
    let exact = evaluate(&v, &scoring(Release::V1_36), &d);
    assert!(
        e.hourly_cost_usd > exact.hourly_cost_usd,
        "{} vs {}",
        e.hourly_cost_usd,
        exact.hourly_cost_usd
    );
}

/// With each GPU's placements in a slice of their own (what the plugin publishes now),
/// whichever slice 1.35 tries first offers a `1g.20gb`: never a larger profile.
#[test]
fn per_gpu_slices_give_the_smallest_adequate_profile_in_every_order() {
    let mut store = store_with(FakeProfile::H100x8MigDynamic);
    pending(&mut store, "p", MIG_16GI);
    let v = view(&mut store);
    let d = demand(&v, "p");
    let e = evaluate(&v, &scoring(Release::V1_35), &d);
    let got = names(&e);
    assert_eq!(got.len(), 8, "{got:?}");
    for (g, (name, p)) in got.iter().enumerate() {
        assert_eq!(name, &format!("gpu-{g}-mig-1g20gb-6"));
        // Exact, not sampled: one search per slice counts all 9! orders of the 9 device
        // slices (allocator::orders, one-device claims).
        assert!((p - 0.125).abs() < 1e-9, "{got:?}");
    }
    assert!(
        matches!(
            e.prediction,
            Some(PredictionNote::Expected {
                orders: 362_880,
                sampled: false,
                outcomes: 8
            })
        ),
        "{:?}",
        e.prediction
    );
    let exact = evaluate(&v, &scoring(Release::V1_36), &d);
    assert!((e.hourly_cost_usd - exact.hourly_cost_usd).abs() < 1e-9);
}

const SHARED_ANY: Want<'static> = Want {
    class: "shared.gpu.tessera.dev",
    selector: None,
    capacity: &[],
};

/// A shared claim naming no memory consumes the published `requestPolicy.default` (79Gi
/// of an 80 GB H100): one fills `gpu-0-shared`, the next goes to `gpu-1-shared`, counted
/// the same by the prediction and by the extender's own fit.
#[test]
fn a_shared_claim_naming_no_memory_is_charged_the_published_default() {
    let mut store = store_with(FakeProfile::H100x8);
    running(
        &mut store,
        "first",
        SHARED_ANY,
        "gpu-0-shared",
        Some(&[("memory", "79Gi")]),
    );
    pending(&mut store, "p", SHARED_ANY);
    let v = view(&mut store);
    let d = demand(&v, "p");
    let predicted = evaluate(&v, &scoring(Release::V1_36), &d);
    assert_eq!(predicted.partitions.len(), 1);
    assert!(
        predicted.partitions[0]
            .partition
            .starts_with("gpu-1-shared (80896 MiB"),
        "{:?}",
        predicted.partitions
    );
    // tessera's own fit charges the same memory (it reserves at least 1 % compute where the
    // scheduler charges the published default, 0).
    let own = Scoring::new(Weights::default(), default_typical_pods().unwrap());
    let fit = evaluate(&v, &own, &d);
    assert!(
        fit.partitions[0]
            .partition
            .starts_with("gpu-1-shared (80896 MiB"),
        "{:?}",
        fit.partitions
    );
}

/// Requests are rounded up in the policy's 1Gi steps: after 78Gi of shares on
/// `gpu-0-shared`, 1500Mi is charged 2Gi, which no longer fits there: `gpu-1-shared`.
#[test]
fn a_request_is_rounded_up_to_whole_gib_and_moves_to_the_next_gpu() {
    let mut store = store_with(FakeProfile::H100x8);
    running(
        &mut store,
        "first",
        SHARED_ANY,
        "gpu-0-shared",
        Some(&[("memory", "78Gi")]),
    );
    pending(
        &mut store,
        "p",
        Want {
            class: "shared.gpu.tessera.dev",
            selector: None,
            capacity: &[("memory", "1500Mi")],
        },
    );
    let v = view(&mut store);
    let d = demand(&v, "p");
    for scoring in [
        scoring(Release::V1_36),
        Scoring::new(Weights::default(), default_typical_pods().unwrap()),
    ] {
        let e = evaluate(&v, &scoring, &d);
        assert!(
            e.partitions[0]
                .partition
                .starts_with("gpu-1-shared (2048 MiB"),
            "{:?}",
            e.partitions
        );
    }
}

/// Where the model cannot see every request (a classic `nvidia.com/gpu` ask here), the
/// extender prices its own fit and says why.
#[test]
fn requests_the_model_cannot_see_fall_back_to_tesseras_fit() {
    let mut store = store_with(FakeProfile::H100x8);
    let mut p = pod("ml", "classic", "pod-classic", None, &[], 1);
    crate::cluster::testing::objects::request_resources(&mut p, &[("cpu", "1")]);
    store.applied(&ClusterObject::from(p));
    let v = view(&mut store);
    let d = demand(&v, "classic");
    assert!(d.model_missing);
    let e = evaluate(&v, &scoring(Release::V1_36), &d);
    assert!(
        matches!(e.prediction, Some(PredictionNote::OwnFit { .. })),
        "{:?}",
        e.prediction
    );
}
