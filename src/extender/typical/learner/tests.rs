use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::*;
use crate::cluster::testing::objects::{Want, claim, pod, request_resources};
use crate::cluster::testing::{SyntheticCluster, synthetic_cluster};
use crate::cluster::{CacheConfig, ClusterObject, Store};
use crate::extender::Decider;
use crate::extender::cluster_view::MemoScoring;
use crate::extender::decide::Explanation;
use crate::extender::evaluate::{Scoring, default_typical_pods};
use crate::extender::testing::{DRIVER, FixedView};
use crate::extender::typical::TypicalHandle;
use crate::model::ModelSet;
use crate::scoring::Weights;

fn cluster() -> SyntheticCluster {
    synthetic_cluster(10, 8, 160, 7).with_pending_pods(3)
}

fn config() -> CacheConfig {
    CacheConfig::builtin(DRIVER).unwrap()
}

fn window(half_life_pods: f64, max_shapes: usize) -> OnlineWindow {
    OnlineWindow {
        half_life_pods,
        max_shapes,
        prior_pods: half_life_pods,
    }
}

fn learner(window: OnlineWindow, max_seen: usize) -> TypicalLearner {
    TypicalLearner::new(
        &default_typical_pods().unwrap(),
        window,
        Weights::default().fragmentation,
        DeviceClasses::new(DRIVER),
        max_seen,
    )
    .unwrap()
}

/// The cluster's objects with every pod given a creation time: `created(i)` for the i-th pod
/// in list order.
fn objects_with_times(
    cluster: &SyntheticCluster,
    created: impl Fn(usize) -> i64,
) -> Vec<ClusterObject> {
    let mut i = 0;
    cluster
        .objects()
        .map(|o| match o {
            ClusterObject::Pod(mut p) => {
                let t = Timestamp::from_second(created(i)).unwrap();
                p.metadata.creation_timestamp = Some(Time(t));
                i += 1;
                ClusterObject::Pod(p)
            }
            other => other,
        })
        .collect()
}

fn store_of<'a>(objects: impl IntoIterator<Item = &'a ClusterObject>) -> Store {
    let mut store = Store::new(config());
    for o in objects {
        store.applied(o);
    }
    store
}

/// A pod bound to `node` asking one classic GPU and `cpu_milli` CPU.
fn classic_pod(name: &str, uid: &str, node: &str, cpu_milli: u64) -> ClusterObject {
    let mut p = pod("flood", name, uid, Some(node), &[], 1);
    request_resources(&mut p, &[("cpu", &format!("{cpu_milli}m"))]);
    ClusterObject::Pod(Box::new(p))
}

fn freq(t: &TypicalPods, shape: (u64, u16, u8)) -> f64 {
    t.iter()
        .filter(|p| (p.cpu_milli, p.gpu_milli, p.gpus) == shape)
        .map(|p| p.freq)
        .sum()
}

#[test]
fn learning_shifts_the_distribution_and_the_scores_follow_the_new_generation() {
    let snapshot = cluster().snapshot(config());
    let mut learner = learner(window(50.0, 1024), DEFAULT_MAX_SEEN_PODS);
    let prior = learner.prior_model();

    let report = learner.scan(&snapshot);
    let bound_gpu_pods = snapshot
        .pods()
        .filter(|p| p.node.is_some() && !p.claims.is_empty())
        .count() as u64;
    assert_eq!(
        report.observed + report.unshaped,
        bound_gpu_pods,
        "{report:?}"
    );
    assert!(report.observed >= 100, "{report:?}");
    // The three pending pods wait for a node.
    assert_eq!(report.waiting, 3, "{report:?}");
    assert!(learner.publish_due(Duration::ZERO, Refresh::default()));
    let learned = learner.model(&snapshot);
    assert_eq!(learned.generation(), 1);
    assert!(learned.stats().prior_share < 0.2, "{:?}", learned.stats());
    assert!(!learner.publish_due(Duration::from_secs(3600), Refresh::default()));

    // The cluster's most common shape gained weight; the prior's CPU-only shapes faded.
    let mut shapes: Vec<Demand> = Vec::new();
    for p in snapshot.pods().filter(|p| p.node.is_some()) {
        if let Verdict::Observe(d, _) = learner.verdict(&snapshot, p) {
            shapes.push(d);
        }
    }
    let mut counts: std::collections::BTreeMap<(u64, u16, u8), usize> = Default::default();
    for d in &shapes {
        assert_eq!(d.models, ModelSet::ANY);
        *counts
            .entry((d.cpu_milli, d.gpu_milli, d.gpus))
            .or_default() += 1;
    }
    let (common, _) = counts.iter().max_by_key(|(_, c)| **c).unwrap();
    assert!(
        freq(learned.typical(), *common) > freq(prior.typical(), *common),
        "{common:?}: prior {} learned {}",
        freq(prior.typical(), *common),
        freq(learned.typical(), *common)
    );
    // Most of the distribution moved: total variation distance between the two sets.
    let mut keys: Vec<(u64, u16, u8)> = prior
        .typical()
        .iter()
        .chain(learned.typical().iter())
        .map(|p| (p.cpu_milli, p.gpu_milli, p.gpus))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let distance: f64 = keys
        .iter()
        .map(|k| (freq(prior.typical(), *k) - freq(learned.typical(), *k)).abs())
        .sum::<f64>()
        / 2.0;
    assert!(distance > 0.5, "{distance}");
    let cpu_only = |t: &TypicalPods| {
        t.iter()
            .filter(|p| p.gpus == 0)
            .map(|p| p.freq)
            .sum::<f64>()
    };
    assert!(cpu_only(prior.typical()) > 0.05);
    assert!(cpu_only(learned.typical()) < cpu_only(prior.typical()) / 2.0);

    // The extender, first with the prior, then with the learned model: /explain names the
    // generation, the fragmentation terms move, and the memo never serves the older
    // generation's scores.
    let handle = TypicalHandle::new(prior);
    let weights = Weights::default();
    let decider = Decider::new(
        FixedView::new(snapshot.clone()),
        MemoScoring::new(Scoring::with_typical(weights, handle.clone())),
        DeviceClasses::new(DRIVER),
        config().catalog,
        config().advisor,
    );
    let pending = snapshot.pods().find(|p| p.node.is_none()).unwrap();
    let (ns, name) = (pending.key.namespace(), pending.key.name());
    let frag_of = |e: &Explanation| -> Vec<(String, f64)> {
        let mut v: Vec<(String, f64)> = e
            .nodes
            .iter()
            .filter_map(|n| Some((n.node.clone(), n.evaluation.as_ref()?.fragmentation)))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    let request =
        crate::extender::testing::reference_request(&snapshot, 10, serde_json::json!({})).unwrap();
    let pod_object: crate::extender::api::object::PodObject =
        serde_json::from_value(request["Pod"].clone()).unwrap();
    let nodes: Vec<crate::extender::api::RequestNode<'_>> = snapshot
        .nodes()
        .map(|n| crate::extender::api::RequestNode {
            name: std::borrow::Cow::Owned(n.name.to_string()),
            raw: None,
            object: None,
        })
        .collect();

    let before = decider.explain(ns, name, 100).unwrap();
    assert_eq!(before.typical.unwrap().generation, 0);
    let scores_before = decider.prioritize(&pod_object, &nodes).scores;

    handle.publish(learned.clone());
    let after = decider.explain(ns, name, 100).unwrap();
    let note = after.typical.unwrap();
    assert_eq!(
        (note.source, note.generation),
        (TypicalKind::Online, 1),
        "{note:?}"
    );
    assert_ne!(frag_of(&before), frag_of(&after));
    let scores_after = decider.prioritize(&pod_object, &nodes).scores;

    // A fresh, unmemoized scorer holding only the learned model agrees with the memoized
    // one after the swap: nothing stale was served.
    let fresh = Decider::new(
        FixedView::new(snapshot.clone()),
        Scoring::with_typical(weights, TypicalHandle::new(learned)),
        DeviceClasses::new(DRIVER),
        config().catalog,
        config().advisor,
    );
    assert_eq!(scores_after, fresh.prioritize(&pod_object, &nodes).scores);
    assert_ne!(
        scores_before, scores_after,
        "the learned pods move some node's score"
    );
}

#[test]
fn a_restart_rebuilds_the_same_model_from_the_same_pods_listed_in_any_order() {
    let cluster = cluster();
    // Creation order is unrelated to list order (a scrambled permutation).
    let objects = objects_with_times(&cluster, |i| 1_700_000_000 + ((i * 7919) % 1009) as i64);
    let forward = store_of(objects.iter()).snapshot();
    let backward = store_of(objects.iter().rev()).snapshot();

    let mut first = learner(window(40.0, 1024), DEFAULT_MAX_SEEN_PODS);
    let mut second = learner(window(40.0, 1024), DEFAULT_MAX_SEEN_PODS);
    let a = first.scan(&forward);
    let b = second.scan(&backward);
    assert_eq!(a, b);
    assert!(a.observed > 50);
    let (ma, mb) = (first.model(&forward), second.model(&backward));
    assert_eq!(ma.typical(), mb.typical());
    assert_eq!(ma.stats(), mb.stats());

    // Creation order matters to a decaying tally: replaying in list order instead gives
    // a different model, so the test above is not vacuous.
    let mut unordered = learner(window(40.0, 1024), DEFAULT_MAX_SEEN_PODS);
    let reversed_times =
        objects_with_times(&cluster, |i| 1_700_000_000 - ((i * 7919) % 1009) as i64);
    let reversed = store_of(reversed_times.iter()).snapshot();
    unordered.scan(&reversed);
    assert_ne!(unordered.model(&reversed).typical(), ma.typical());
}

#[test]
fn a_flood_of_unique_shapes_stays_within_max_shapes() {
    let cluster = synthetic_cluster(2, 8, 0, 3);
    let node = cluster.node_name(0);
    let mut objects: Vec<ClusterObject> = cluster.objects().collect();
    for i in 0..500u64 {
        objects.push(classic_pod(
            &format!("p{i:04}"),
            &format!("uid-{i:04}"),
            &node,
            1000 + i,
        ));
    }
    let mut learner = learner(window(100.0, 32), DEFAULT_MAX_SEEN_PODS);
    let snapshot = store_of(objects.iter()).snapshot();
    let report = learner.scan(&snapshot);
    assert_eq!(report.observed, 500);
    assert_eq!(learner.stats().shapes, 32);
    let model = learner.model(&snapshot);
    assert!(model.typical().len() <= 32);
    // The newest shapes are the heaviest: the last pod's shape is in the set.
    assert!(freq(model.typical(), (1499, 1000, 1)) > 0.0);
}

#[test]
fn the_seen_set_is_bounded_and_forgets_pods_that_left() {
    let cluster = synthetic_cluster(2, 8, 0, 3);
    let node = cluster.node_name(0);
    let base: Vec<ClusterObject> = cluster.objects().collect();
    let pods: Vec<ClusterObject> = (0..30u64)
        .map(|i| classic_pod(&format!("p{i:02}"), &format!("uid-{i:02}"), &node, 4000))
        .collect();
    let mut store = store_of(base.iter().chain(&pods));
    let mut learner = learner(window(100.0, 64), 10);

    let first = learner.scan(&store.snapshot());
    assert_eq!((first.observed, first.over_bound), (10, 20), "{first:?}");
    assert_eq!(learner.seen(), 10);
    // Left-out pods are not counted twice, nor are the remembered ones.
    let again = learner.scan(&store.snapshot());
    assert_eq!((again.observed, again.over_bound), (0, 20), "{again:?}");
    assert_eq!(learner.stats().observed_pods, 10);

    // Pods leaving the cache free their UIDs; waiting pods get their turn.
    for p in &pods[..10] {
        store.deleted(p);
    }
    let later = learner.scan(&store.snapshot());
    assert_eq!(later.forgotten, 10, "{later:?}");
    assert_eq!((later.observed, later.over_bound), (10, 10), "{later:?}");
    assert_eq!(learner.seen(), 10);
}

#[test]
fn a_pod_seen_twice_counts_once_and_a_pending_pod_counts_when_bound() {
    let cluster = synthetic_cluster(2, 8, 0, 3);
    let node = cluster.node_name(1);
    let base: Vec<ClusterObject> = cluster.objects().collect();
    let mut store = store_of(base.iter());
    let mut pending = pod("ns", "late", "uid-late", None, &[], 2);
    request_resources(&mut pending, &[("cpu", "8")]);
    store.applied(&ClusterObject::Pod(Box::new(pending.clone())));
    store.applied(&classic_pod("early", "uid-early", &node, 2000));
    let mut learner = learner(window(100.0, 64), 100);

    let first = learner.scan(&store.snapshot());
    assert_eq!((first.observed, first.waiting), (1, 1), "{first:?}");
    // Updated (re-applied) and scanned again: still one.
    store.applied(&classic_pod("early", "uid-early", &node, 2000));
    let second = learner.scan(&store.snapshot());
    assert_eq!((second.observed, second.waiting), (0, 1), "{second:?}");

    pending.spec.as_mut().unwrap().node_name = Some(node.clone());
    store.applied(&ClusterObject::Pod(Box::new(pending)));
    let third = learner.scan(&store.snapshot());
    assert_eq!((third.observed, third.waiting), (1, 0), "{third:?}");
    assert_eq!(learner.scan(&store.snapshot()).observed, 0);
    assert_eq!(learner.stats().observed_pods, 2);
    let model = learner.model(&store.snapshot());
    assert!(freq(model.typical(), (8000, 1000, 2)) > 0.0);
}

#[test]
fn models_are_due_after_the_refresh_pods_or_interval() {
    let cluster = synthetic_cluster(2, 8, 0, 3);
    let node = cluster.node_name(0);
    let mut store = store_of(cluster.objects().collect::<Vec<_>>().iter());
    let refresh = Refresh {
        pods: 5,
        interval: Duration::from_secs(30),
    };
    let mut learner = learner(window(100.0, 64), 100);
    assert!(!learner.publish_due(Duration::from_secs(3600), refresh));
    store.applied(&classic_pod("a", "uid-a", &node, 1000));
    learner.scan(&store.snapshot());
    // The first list after a start is published at once.
    assert!(learner.publish_due(Duration::ZERO, refresh));
    assert_eq!(learner.model(&store.snapshot()).generation(), 1);
    for i in 0..4 {
        store.applied(&classic_pod(
            &format!("b{i}"),
            &format!("uid-b{i}"),
            &node,
            1000,
        ));
    }
    learner.scan(&store.snapshot());
    assert!(!learner.publish_due(Duration::from_secs(29), refresh));
    assert!(learner.publish_due(Duration::from_secs(30), refresh));
    store.applied(&classic_pod("c", "uid-c", &node, 1000));
    learner.scan(&store.snapshot());
    assert!(learner.publish_due(Duration::ZERO, refresh));
    assert_eq!(learner.model(&store.snapshot()).generation(), 2);
}

#[test]
fn pinned_pods_keep_their_product_and_bring_model_pressure() {
    let cluster = synthetic_cluster(10, 8, 0, 3);
    let base: Vec<ClusterObject> = cluster.objects().collect();
    let empty = store_of(base.iter()).snapshot();
    let mut nodes: Vec<_> = empty.nodes().filter(|n| !n.partitions.is_empty()).collect();
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    let pinned_node = nodes[0].clone();
    let product = pinned_node.partitions[0].model.clone();
    let other = std::sync::Arc::clone(
        nodes
            .iter()
            .find(|n| n.partitions[0].model != product)
            .unwrap(),
    );
    let selector = format!(r#"device.attributes["{DRIVER}"].model == "{product}""#);

    let mut objects = base.clone();
    for i in 0..40 {
        let name = format!("pinned-{i:02}");
        objects.push(ClusterObject::ResourceClaim(Box::new(claim(
            "ml",
            &name,
            &format!("claim-uid-{i:02}"),
            Want {
                class: DRIVER,
                selector: Some(&selector),
                capacity: &[],
            },
        ))));
        let mut p = pod(
            "ml",
            &name,
            &format!("uid-p{i:02}"),
            Some(&pinned_node.name),
            &[("gpu", Some(&name))],
            0,
        );
        request_resources(&mut p, &[("cpu", "4")]);
        objects.push(ClusterObject::Pod(Box::new(p)));
        objects.push(classic_pod(
            &format!("free-{i:02}"),
            &format!("uid-f{i:02}"),
            &other.name,
            4000,
        ));
    }
    let snapshot = store_of(objects.iter()).snapshot();
    let mut learner = learner(window(20.0, 64), DEFAULT_MAX_SEEN_PODS);
    assert_eq!(learner.scan(&snapshot).observed, 80);
    let model = learner.model(&snapshot);
    let id = model.model_id(&product).unwrap();
    assert!(
        model
            .typical()
            .iter()
            .any(|t| t.models == ModelSet::only(id) && t.gpus == 1 && t.freq > 0.2),
        "{:?}",
        model.typical()
    );
    let pressure = model.scorer().pressure();
    assert!(pressure.of(Some(id)) > 0.0, "{pressure:?}");
    let other_id = model.model_id(&other.partitions[0].model);
    assert_eq!(pressure.of(other_id), 0.0);

    // The extender prices that pressure: the same typical pods without the cluster's
    // capacity (no pressure) make a whole GPU on the pinned product look cheaper.
    let flat = TypicalModel::with_models(
        TypicalKind::Online,
        2,
        model.typical().clone(),
        Weights::default().fragmentation,
        model.stats(),
        model.models().clone(),
        &[],
    );
    assert!(flat.scorer().pressure().is_zero());
    let scoring = Scoring::new(Weights::default(), default_typical_pods().unwrap());
    let demand = crate::extender::demand::PodDemand {
        requests: vec![crate::extender::demand::GpuRequest {
            source: "ml/x/gpu".to_owned(),
            alternatives: vec![crate::extender::demand::Alternative {
                subrequest: None,
                kind: crate::extender::demand::DeviceKind::Whole,
                count: crate::extender::demand::Count::Exact(1),
                memory_bytes: None,
                compute_percent: None,
                mig_profile: None,
                gpu_model: None,
            }],
        }],
        cpu_milli: 4000,
        ..Default::default()
    };
    let frag = |m: &TypicalModel| {
        scoring
            .evaluate_with(
                m,
                &pinned_node.node_gpus(),
                &pinned_node.market,
                false,
                &demand,
                crate::scoring::Tolerance::Checkpointed,
                crate::extender::view::Detail::Scores,
            )
            .unwrap()
            .fragmentation
    };
    assert!(
        frag(&model) > frag(&flat),
        "{} vs {}",
        frag(&model),
        frag(&flat)
    );
}
