use std::sync::Arc;

use super::*;
use crate::cluster::testing::objects::{
    Given, GpuFacts, SlicePlace, Want, allocate, annotate_node, claim, claim_first_available,
    device_slice, node, pod, request_resources, reserve, set_allocatable, whole_gpu,
};
use crate::cluster::{CacheConfig, ClusterObject, Store};
use crate::extender::claim::ClaimRequests;
use crate::extender::demand::{Count, DeviceKind};
use crate::extender::evaluate::default_typical_pods;
use crate::scoring::Weights;

const DRIVER: &str = "gpu.tessera.dev";
const H100: &str = "NVIDIA H100 80GB HBM3";

/// Node `name` with two whole H100s, priced `price` $/h.
fn gpu_node(store: &mut Store, name: &str, price: &str) {
    gpu_node_with(store, name, price, 2, None);
}

/// Node `name` with `gpus` whole H100s, priced `price` $/h, with `cpu` allocatable.
fn gpu_node_with(store: &mut Store, name: &str, price: &str, gpus: u32, cpu: Option<&str>) {
    let mut n = node(name, &[("karpenter.sh/capacity-type", "on-demand")]);
    annotate_node(&mut n, "tessera.dev/hourly-price", price);
    if let Some(cpu) = cpu {
        set_allocatable(&mut n, "cpu", cpu);
        set_allocatable(&mut n, "memory", "1000Gi");
    }
    store.applied(&ClusterObject::from(n));
    let devices = (0..gpus)
        .map(|i| {
            whole_gpu(GpuFacts {
                index: i,
                uuid: &format!("GPU-{name}-{i}"),
                model: H100,
                memory: "80Gi",
            })
        })
        .collect();
    let place = SlicePlace {
        driver: DRIVER,
        node: name,
        pool: name,
        generation: 1,
        slice_count: 1,
    };
    store.applied(&ClusterObject::from(device_slice(
        &format!("{name}-gpus"),
        place,
        devices,
    )));
}

fn whole() -> Want<'static> {
    Want {
        class: "gpu.tessera.dev",
        selector: None,
        capacity: &[],
    }
}

/// Claim `name` holding `device` on `node`, reserved by pod `name`.
fn running(store: &mut Store, name: &str, node_name: &str, device: &str) {
    running_with(store, name, node_name, device, None);
}

/// [`running`], the pod requesting `cpu`.
fn running_with(store: &mut Store, name: &str, node_name: &str, device: &str, cpu: Option<&str>) {
    let mut c = claim("ml", name, &format!("uid-{name}"), whole());
    allocate(
        &mut c,
        node_name,
        &[Given {
            driver: DRIVER,
            pool: node_name,
            device,
            request: "gpu",
            share: None,
        }],
    );
    reserve(&mut c, name, &format!("pod-{name}"));
    store.applied(&ClusterObject::from(c));
    let mut p = pod(
        "ml",
        name,
        &format!("pod-{name}"),
        Some(node_name),
        &[("gpu", Some(name))],
        0,
    );
    if let Some(cpu) = cpu {
        request_resources(&mut p, &[("cpu", cpu), ("memory", "64Gi")]);
    }
    store.applied(&ClusterObject::from(p));
}

fn cluster() -> Store {
    let mut store = Store::new(CacheConfig::builtin(DRIVER).unwrap());
    gpu_node(&mut store, "a", "8");
    gpu_node(&mut store, "b", "12");
    running(&mut store, "busy", "a", "gpu-0");
    let chain = [
        (
            "mig",
            Want {
                class: "mig.gpu.tessera.dev",
                selector: Some("device.attributes['gpu.tessera.dev'].profile == '1g.10gb'"),
                capacity: &[],
            },
        ),
        (
            "shared",
            Want {
                class: "shared.gpu.tessera.dev",
                selector: None,
                capacity: &[("memory", "10Gi"), ("compute", "25")],
            },
        ),
        ("whole", whole()),
    ];
    store.applied(&ClusterObject::from(claim_first_available(
        "ml",
        "pending-gpu",
        "uid-p",
        &chain,
    )));
    store.applied(&ClusterObject::from(pod(
        "ml",
        "pending",
        "pod-p",
        None,
        &[("gpu", Some("pending-gpu"))],
        1,
    )));
    store
}

fn view(store: &mut Store) -> CacheView {
    CacheView::new(store.snapshot(), Arc::new(DeviceClasses::new(DRIVER)))
}

#[test]
fn cached_claims_become_gpu_requests_in_order() {
    let mut store = cluster();
    let v = view(&mut store);
    let ClaimRequests {
        requests,
        unreadable,
        allocated,
        model,
    } = v.claim("ml/pending-gpu").unwrap();
    let model = model.expect("every request is for tessera's classes");
    assert_eq!(model.requests.len(), 1);
    assert_eq!(model.requests[0].alternatives().len(), 3);
    assert!(unreadable.is_empty() && !allocated);
    let alts = &requests[0].alternatives;
    assert_eq!(requests[0].source, "ml/pending-gpu/gpu");
    let kinds: Vec<DeviceKind> = alts.iter().map(|a| a.kind).collect();
    assert_eq!(
        kinds,
        [DeviceKind::Mig, DeviceKind::Shared, DeviceKind::Whole]
    );
    assert_eq!(alts[0].mig_profile.as_deref(), Some("1g.10gb"));
    assert_eq!(alts[1].memory_bytes, Some(10 * 1024 * 1024 * 1024));
    assert_eq!(alts[1].compute_percent, Some(25.0));
    assert_eq!(alts[2].count, Count::Exact(1));
    assert!(v.claim("ml/busy").unwrap().allocated);
    assert!(v.claim("ml/absent").is_none());
    assert!(v.claim("no-slash").is_none());
}

#[test]
fn cached_pods_read_back_as_their_claims_and_classic_gpus() {
    let mut store = cluster();
    let v = view(&mut store);
    let p = v.pod("ml", "pending").unwrap();
    assert_eq!(p.metadata.namespace, "ml");
    let demand = crate::extender::pod::pod_demand(&p, |id| v.claim(id));
    assert!(demand.missing_claims.is_empty(), "{demand:?}");
    assert_eq!(
        demand.requests.len(),
        2,
        "the claim's request and one classic GPU"
    );
    assert_eq!(demand.requests[1].source, "nvidia.com/gpu");
    assert!(v.pod("ml", "nobody").is_none());
}

/// Issue: the extender saw every node's CPU as unlimited. Two nodes alike but for the CPU
/// their running pods hold: a pod needing more CPU per GPU than the typical pod strands the
/// tight node's remaining GPUs, so that node now scores worse; with CPU untracked (no
/// allocatable) the same nodes tie.
#[test]
fn a_node_short_of_cpu_scores_worse_than_one_with_cpu_to_spare() {
    let mut store = Store::new(CacheConfig::builtin(DRIVER).unwrap());
    for (name, cpu, held) in [
        ("tight", Some("96"), "80"),
        ("roomy", Some("96"), "4"),
        ("tight-untracked", None, "80"),
        ("roomy-untracked", None, "4"),
    ] {
        gpu_node_with(&mut store, name, "40", 4, cpu);
        running_with(
            &mut store,
            &format!("{name}-job"),
            name,
            "gpu-0",
            Some(held),
        );
    }
    store.applied(&ClusterObject::from(claim(
        "ml",
        "next-gpu",
        "uid-n",
        whole(),
    )));
    let mut next = pod(
        "ml",
        "next",
        "pod-next",
        None,
        &[("gpu", Some("next-gpu"))],
        0,
    );
    request_resources(&mut next, &[("cpu", "16"), ("memory", "64Gi")]);
    store.applied(&ClusterObject::from(next));

    let v = view(&mut store);
    let tight = v.node("tight").unwrap();
    assert_eq!(
        (tight.milli.cpu_capacity, tight.milli.cpu_free),
        (96_000, 16_000)
    );
    assert_eq!(v.node("roomy").unwrap().milli.cpu_free, 92_000);

    let p = v.pod("ml", "next").unwrap();
    let demand = crate::extender::pod::pod_demand(&p, |id| v.claim(id));
    assert_eq!(
        (demand.cpu_milli, demand.memory_mib),
        (16_000, 65_536),
        "read back"
    );
    let scoring = Scoring::new(Weights::default(), default_typical_pods().unwrap());
    let score = |name: &str| {
        let node = v.node(name).unwrap();
        let evaluation = scoring
            .evaluate_node(
                node,
                v.node_market(node).unwrap(),
                &v.node_condition(node),
                &demand,
                Tolerance::Checkpointed,
                Detail::Scores,
            )
            .unwrap();
        (evaluation.raw_score, evaluation.fragmentation)
    };
    let (tight, roomy) = (score("tight"), score("roomy"));
    assert!(tight.0 < roomy.0, "tight {tight:?} roomy {roomy:?}");
    assert!(tight.1 > roomy.1, "the difference is fragmentation");
    assert_eq!(
        score("tight-untracked"),
        score("roomy-untracked"),
        "untracked CPU ties"
    );
    assert_eq!(
        score("roomy-untracked"),
        roomy,
        "CPU to spare is as if untracked"
    );
    let ranked = crate::scoring::to_extender_range(&[tight.0, roomy.0]);
    assert!(ranked[0] < ranked[1], "{ranked:?}");
}

#[test]
fn allocations_are_attributed_to_claims_pods_and_devices() {
    let mut store = cluster();
    let v = view(&mut store);
    let a = v.node("a").unwrap();
    let shares = v.allocated_devices(a);
    assert_eq!(
        shares,
        [AllocatedShare {
            namespace: "ml".into(),
            pod: "busy".into(),
            claim: "busy".into(),
            device: "gpu-0".into(),
            kind: "gpu".into(),
            gpus: 1.0,
        }]
    );
    assert_eq!(v.idle_gpus(a), 1.0);
    assert_eq!(v.idle_gpus(v.node("b").unwrap()), 2.0);
    assert_eq!(v.node_names(), ["a", "b"]);
    assert_eq!(v.gpu_count(a), 2);
    let condition = v.node_condition(a);
    assert_eq!(condition.capacity, CapacityType::OnDemand);
    assert_eq!(v.node_market(a).unwrap().hourly_price_usd, 8.0);
}

#[test]
fn remembered_scores_follow_node_changes() {
    let mut store = cluster();
    let scoring = MemoScoring::new(Scoring::new(
        Weights::default(),
        default_typical_pods().unwrap(),
    ));
    let before = view(&mut store);
    let p = before.pod("ml", "pending").unwrap();
    let demand = crate::extender::pod::pod_demand(&p, |id| before.claim(id));
    let score = |v: &CacheView, name: &str| {
        let node = v.node(name).unwrap();
        scoring.evaluate(
            None,
            node,
            v.node_market(node).unwrap(),
            &v.node_condition(node),
            &demand,
            Tolerance::Checkpointed,
            Detail::Scores,
        )
    };
    let a1 = score(&before, "a");
    let b1 = score(&before, "b");
    assert_eq!(scoring.len(), 2);
    assert_eq!(score(&before, "a"), a1, "remembered");
    assert_eq!(scoring.len(), 2);

    // A pod lands on b: b's view is rebuilt, a's is shared with the new snapshot.
    running(&mut store, "second", "b", "gpu-1");
    let after = view(&mut store);
    assert!(Arc::ptr_eq(
        before.node("a").unwrap(),
        after.node("a").unwrap()
    ));
    assert!(!Arc::ptr_eq(
        before.node("b").unwrap(),
        after.node("b").unwrap()
    ));
    assert_eq!(score(&after, "a"), a1);
    assert_eq!(scoring.len(), 2, "a was not scored again");
    let b2 = score(&after, "b");
    assert_eq!(scoring.len(), 3, "b was");
    assert_ne!(b2, b1, "b now has a pod: it no longer costs its idle price");
    let unmemoized = Scoring::new(Weights::default(), default_typical_pods().unwrap());
    let node = after.node("b").unwrap();
    assert_eq!(
        b2,
        unmemoized.evaluate_node(
            node,
            after.node_market(node).unwrap(),
            &after.node_condition(node),
            &demand,
            Tolerance::Checkpointed,
            Detail::Scores,
        )
    );
}

#[test]
fn cost_attribution_follows_allocations_and_drops_vanished_series() {
    use prometheus_client::registry::Registry;

    use crate::extender::attribution::{Published, publish};
    use crate::extender::view::ViewSource;
    use crate::extender::{Decider, ExtenderMetrics};

    struct Fixed(std::sync::Mutex<Arc<CacheView>>);
    impl ViewSource for Fixed {
        type View = CacheView;
        fn snapshot(&self) -> Arc<CacheView> {
            Arc::clone(&self.0.lock().unwrap())
        }
    }

    let mut store = cluster();
    running(&mut store, "second", "b", "gpu-1");
    let config = CacheConfig::builtin(DRIVER).unwrap();
    let decider = Decider::new(
        Fixed(std::sync::Mutex::new(Arc::new(view(&mut store)))),
        MemoScoring::new(Scoring::new(
            Weights::default(),
            default_typical_pods().unwrap(),
        )),
        DeviceClasses::new(DRIVER),
        config.catalog,
        config.advisor,
    );
    let attribution = decider.attribute();
    // a: 8 $/h over 2 GPUs, one taken; b: 12 $/h over 2 GPUs, one taken.
    let mut costs: Vec<(String, f64)> = attribution
        .allocations
        .iter()
        .map(|(l, c)| {
            let id = format!(
                "{}/{}@{}:{} by {}",
                l.namespace, l.claim, l.node, l.device, l.pod
            );
            (id, *c)
        })
        .collect();
    costs.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        costs,
        [
            ("ml/busy@a:gpu-0 by busy".to_owned(), 4.0),
            ("ml/second@b:gpu-1 by second".to_owned(), 6.0),
        ]
    );
    assert_eq!(attribution.namespaces["ml"], 10.0);
    assert_eq!(attribution.idle_by_node["a"], 4.0);
    assert_eq!(attribution.idle_by_node["b"], 6.0);
    assert_eq!(attribution.dropped, 0);

    let mut registry = Registry::default();
    let metrics = ExtenderMetrics::register(&mut registry);
    let mut published = Published::default();
    publish(&metrics, attribution, &mut published);
    let text = crate::metrics::encode(&registry).unwrap();
    assert!(
        text.contains(r#"tessera_extender_allocation_cost_dollars_per_hour{namespace="ml",pod="busy",claim="busy",node="a",device="gpu-0",type="gpu"} 4.0"#),
        "{text}"
    );
    assert!(
        text.contains(r#"tessera_extender_idle_gpu_cost_dollars_per_hour{node="b"} 6.0"#),
        "{text}"
    );

    // The pod on a goes: its series goes with it.
    let mut freed = cluster();
    freed.deleted(&ClusterObject::from(claim(
        "ml",
        "busy",
        "uid-busy",
        whole(),
    )));
    *decider.source.0.lock().unwrap() = Arc::new(view(&mut freed));
    publish(&metrics, decider.attribute(), &mut published);
    let text = crate::metrics::encode(&registry).unwrap();
    assert!(!text.contains(r#"claim="busy""#), "{text}");
    assert!(
        text.contains(r#"tessera_extender_idle_gpu_cost_dollars_per_hour{node="a"} 8.0"#),
        "{text}"
    );
}
