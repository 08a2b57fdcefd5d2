use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Pod, PodStatus};
use k8s_openapi::api::resource::v1::{ResourceClaim, ResourceSlice};
use proptest::prelude::*;

use super::*;
use crate::cluster::DEFAULT_DRIVER;
use crate::cluster::testing::objects::{
    Given, GpuFacts, SlicePlace, Want, allocate, annotate_node, claim, consume, counter_set,
    counter_slice, device_slice, mig_device, node, pod, request_resources, reserve,
    set_allocatable, share_device, shared_gpu, taint_node, whole_gpu,
};
use crate::cluster::view::UNTRACKED;
use crate::market::labels::{
    HOURLY_PRICE_ANNOTATION, INSTANCE_TYPE, KARPENTER_CAPACITY_TYPE, REGION,
};

fn applied(o: impl Into<ClusterObject>) -> ClusterEvent {
    ClusterEvent::Applied(o.into())
}

fn deleted(o: impl Into<ClusterObject>) -> ClusterEvent {
    ClusterEvent::Deleted(o.into())
}

fn config() -> CacheConfig {
    CacheConfig::builtin(DEFAULT_DRIVER).unwrap()
}

// === a small universe of objects, each kind with a few names and many versions ===

const NODES: [&str; 3] = ["n0", "n1", "n2"];
const POOLS: [&str; 3] = ["p0", "p1", "n0"];
const DEVICES: [&str; 5] = [
    "gpu-0",
    "gpu-0-shared",
    "gpu-1-mig-1g10gb-0",
    "gpu-1-share-0",
    "missing",
];

fn gpu(index: u32) -> GpuFacts<'static> {
    GpuFacts {
        index,
        uuid: if index == 0 { "GPU-aaaa" } else { "GPU-bbbb" },
        model: "NVIDIA H100 80GB HBM3",
        memory: "80Gi",
    }
}

fn test_node(idx: usize, v: u8) -> Node {
    let spot = v & 4 != 0;
    let mut n = node(
        NODES[idx],
        &[
            (
                INSTANCE_TYPE,
                ["p5.48xlarge", "g6.48xlarge", "unknown.type"][usize::from(v % 3)],
            ),
            (REGION, "us-east-1"),
            (
                KARPENTER_CAPACITY_TYPE,
                if spot { "spot" } else { "on-demand" },
            ),
        ],
    );
    if v & 8 != 0 {
        taint_node(&mut n, "aws-node-termination-handler/spot-itn", Some("i-1"));
    }
    set_allocatable(&mut n, "nvidia.com/gpu", &((v >> 4) % 3).to_string());
    // Every bit of `v` is taken: CPU and memory vary with a scramble of it (absent, readable,
    // unreadable).
    match v.wrapping_mul(37) % 5 {
        0 => {}
        1 => set_allocatable(&mut n, "cpu", "8"),
        2 => set_allocatable(&mut n, "cpu", "95690m"),
        3 => set_allocatable(&mut n, "cpu", "lots"),
        _ => set_allocatable(&mut n, "cpu", "2500m"),
    }
    match v.wrapping_mul(53) % 4 {
        0 => {}
        1 => set_allocatable(&mut n, "memory", "64Gi"),
        2 => set_allocatable(&mut n, "memory", "2000Ki"),
        _ => set_allocatable(&mut n, "memory", "-1"),
    }
    match (v >> 6) % 3 {
        1 => annotate_node(&mut n, HOURLY_PRICE_ANNOTATION, "12.5"),
        2 => annotate_node(&mut n, HOURLY_PRICE_ANNOTATION, "cheap"),
        _ => {}
    }
    n
}

fn test_slice(idx: usize, v: u8) -> ResourceSlice {
    let name = format!("s{idx}");
    let driver = if v % 7 == 6 {
        "other.example.com"
    } else {
        DEFAULT_DRIVER
    };
    let node = ["n0", "n1", "n2", ""][usize::from((v >> 1) % 4)];
    let place = SlicePlace {
        driver,
        node,
        pool: POOLS[usize::from((v >> 3) % 3)],
        generation: 1 + i64::from((v >> 5) % 2),
        slice_count: 2,
    };
    let mut slice = if v & 1 == 1 {
        counter_slice(
            &name,
            place,
            vec![counter_set(
                "gpu-0-counters",
                &[
                    ("gpu", "1"),
                    ("memory-slice-0", "1"),
                    ("memory-slice-1", "1"),
                ],
            )],
        )
    } else {
        let mut whole = whole_gpu(gpu(0));
        consume(&mut whole, "gpu-0-counters", &[("gpu", "1")]);
        let mut shared = shared_gpu(gpu(0));
        consume(&mut shared, "gpu-0-counters", &[("gpu", "1")]);
        let mut mig = mig_device(gpu(1), "1g.10gb", 0, 1, 1, "10Gi");
        consume(&mut mig, "gpu-0-counters", &[("memory-slice-0", "1")]);
        let share = share_device(gpu(1), 0, "20Gi");
        let all = [whole, shared, mig, share];
        let keep = (v >> 6) % 4;
        let devices = all
            .into_iter()
            .enumerate()
            .filter(|(i, _)| keep == 0 || *i != usize::from(keep))
            .map(|(_, d)| d)
            .collect();
        device_slice(&name, place, devices)
    };
    if node.is_empty() {
        slice.spec.node_name = None;
    }
    slice
}

fn test_claim(idx: usize, v: u8) -> ResourceClaim {
    let want = Want {
        class: "gpu.tessera.dev",
        selector: None,
        capacity: &[],
    };
    let mut c = claim("a", &format!("c{idx}"), &format!("uid-c{idx}"), want);
    if v & 1 == 1 {
        return c;
    }
    let device = DEVICES[usize::from((v >> 1) % 5)];
    let driver = if v & 0x80 != 0 {
        "other.example.com"
    } else {
        DEFAULT_DRIVER
    };
    let consumed = [("memory", "1Gi"), ("compute", "10")];
    let first = Given {
        driver,
        pool: POOLS[usize::from((v >> 4) % 3)],
        device,
        request: "gpu",
        share: (device == "gpu-0-shared").then_some(("share-1", &consumed[..])),
    };
    let second = Given {
        driver: DEFAULT_DRIVER,
        pool: "p0",
        device: "gpu-1-share-0",
        request: "gpu",
        share: None,
    };
    if (v >> 6) & 1 == 1 {
        allocate(&mut c, "n0", &[first, second]);
    } else {
        allocate(&mut c, "n0", &[first]);
    }
    reserve(&mut c, &format!("p{idx}"), &format!("uid-p{idx}"));
    c
}

fn test_pod(idx: usize, v: u8) -> Pod {
    let node = [None, Some("n0"), Some("n1"), Some("n2")][usize::from(v % 4)];
    let gpus = u32::from((v >> 2) % 3);
    let claim_name = format!("c{idx}");
    let claims: Vec<(&str, Option<&str>)> = if v & 16 != 0 {
        vec![("gpu", Some(claim_name.as_str()))]
    } else {
        Vec::new()
    };
    let mut p = pod(
        "a",
        &format!("p{idx}"),
        &format!("uid-p{idx}"),
        node,
        &claims,
        gpus,
    );
    if v & 0x60 == 0x60 {
        p.status.get_or_insert_with(PodStatus::default).phase = Some("Succeeded".into());
    }
    // CPU and memory requests, some larger than a node's allocatable (free saturates at 0).
    if v & 0x80 != 0 {
        let cpu = ["500m", "4", "1500m", "100"][usize::from(v.wrapping_mul(37) % 4)];
        let memory = ["1Gi", "1536Ki", "200Gi"][usize::from(v.wrapping_mul(53) % 3)];
        request_resources(&mut p, &[("cpu", cpu), ("memory", memory)]);
    }
    p
}

fn object(kind: Kind, idx: usize, v: u8) -> ClusterObject {
    match kind {
        Kind::Node => test_node(idx % NODES.len(), v).into(),
        Kind::ResourceSlice => test_slice(idx, v).into(),
        Kind::ResourceClaim => test_claim(idx, v).into(),
        Kind::Pod => test_pod(idx, v).into(),
    }
}

/// What a test does to the store.
#[derive(Debug, Clone)]
enum Op {
    Apply(Kind, usize, u8),
    Delete(Kind, usize, u8),
    /// A relist that lists exactly these objects.
    Resync(Kind, Vec<(usize, u8)>),
    Snapshot,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Node),
        Just(Kind::ResourceSlice),
        Just(Kind::ResourceClaim),
        Just(Kind::Pod)
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (kind(), 0usize..5, any::<u8>()).prop_map(|(k, i, v)| Op::Apply(k, i, v)),
        3 => (kind(), 0usize..5, any::<u8>()).prop_map(|(k, i, v)| Op::Delete(k, i, v)),
        1 => (kind(), proptest::collection::vec((0usize..5, any::<u8>()), 0..5))
            .prop_map(|(k, listed)| Op::Resync(k, listed)),
        1 => Just(Op::Snapshot),
    ]
}

/// The final object set, by kind and key (what a fresh list would return).
#[derive(Default)]
struct World {
    objects: BTreeMap<(Kind, String), ClusterObject>,
}

impl World {
    fn apply(&mut self, o: ClusterObject) {
        self.objects.insert((o.kind(), o.key().to_string()), o);
    }

    fn delete(&mut self, o: &ClusterObject) {
        self.objects.remove(&(o.kind(), o.key().to_string()));
    }

    fn resync(&mut self, kind: Kind, listed: &[ClusterObject]) {
        self.objects.retain(|(k, _), _| *k != kind);
        for o in listed {
            self.apply(o.clone());
        }
    }
}

fn run(store: &mut Store, world: &mut World, op: &Op) {
    match op {
        Op::Apply(k, i, v) => {
            let o = object(*k, *i, *v);
            world.apply(o.clone());
            store.apply(ClusterEvent::Applied(o));
        }
        Op::Delete(k, i, v) => {
            let o = object(*k, *i, *v);
            world.delete(&o);
            store.apply(ClusterEvent::Deleted(o));
        }
        Op::Resync(k, listed) => {
            let listed: Vec<ClusterObject> =
                listed.iter().map(|(i, v)| object(*k, *i, *v)).collect();
            world.resync(*k, &listed);
            store.apply(ClusterEvent::ResyncStarted(*k));
            for o in listed {
                store.apply(ClusterEvent::Applied(o));
            }
            store.apply(ClusterEvent::ResyncDone(*k));
        }
        Op::Snapshot => {
            store.snapshot();
        }
    }
}

type Views = (
    BTreeMap<String, NodeView>,
    BTreeMap<String, ClaimView>,
    BTreeMap<String, PodView>,
);

fn contents(snapshot: &Snapshot) -> Views {
    (
        snapshot
            .nodes()
            .map(|v| (v.name.to_string(), (**v).clone()))
            .collect(),
        snapshot
            .claims()
            .map(|c| (c.key.to_string(), (**c).clone()))
            .collect(),
        snapshot
            .pods()
            .map(|p| (p.key.to_string(), (**p).clone()))
            .collect(),
    )
}

/// The views built from scratch from `world`, by scanning every object for every node: no
/// index, no incremental state.
fn rebuild(config: &CacheConfig, world: &World) -> Views {
    let mut interners = Interners::default();
    let driver = &config.driver;
    let mut nodes = Vec::new();
    let mut slices = Vec::new();
    let mut claims = Vec::new();
    let mut pods = Vec::new();
    for o in world.objects.values() {
        match o {
            ClusterObject::Node(n) => nodes.extend(read_node(n, &mut interners)),
            ClusterObject::ResourceSlice(s) => {
                slices.extend(read_slice(s, driver, &mut interners).map(Arc::new))
            }
            ClusterObject::ResourceClaim(c) => {
                claims.extend(read_claim(c, driver, &mut interners).map(Arc::new))
            }
            ClusterObject::Pod(p) => pods.extend(read_pod(p, &mut interners).map(Arc::new)),
        }
    }
    let views = nodes
        .iter()
        .map(|facts| {
            let own_slices = slices.iter().filter(|s| s.node == facts.name);
            let own_pods = pods.iter().filter(|p| p.node.as_ref() == Some(&facts.name));
            let view = assemble(config, facts, own_slices, claims.iter(), own_pods);
            (facts.name.to_string(), view)
        })
        .collect();
    (
        views,
        claims
            .iter()
            .map(|c| (c.key.to_string(), (**c).clone()))
            .collect(),
        pods.iter()
            .map(|p| (p.key.to_string(), (**p).clone()))
            .collect(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The acceptance test of issue 5: any sequence of watch events (creates, updates, deletes
    /// of known and unknown objects, relists, in any order) leaves the store with the views
    /// a from-scratch build of the final objects gives.
    #[test]
    fn incremental_views_equal_views_rebuilt_from_scratch(ops in proptest::collection::vec(op(), 0..60)) {
        let config = config();
        let mut store = Store::new(config.clone());
        let mut world = World::default();
        for op in &ops {
            run(&mut store, &mut world, op);
        }
        let snapshot = store.snapshot();
        let (nodes, claims, pods) = contents(&snapshot);
        let (want_nodes, want_claims, want_pods) = rebuild(&config, &world);
        prop_assert_eq!(&claims, &want_claims);
        prop_assert_eq!(&pods, &want_pods);
        prop_assert_eq!(nodes.keys().collect::<Vec<_>>(), want_nodes.keys().collect::<Vec<_>>());
        for (name, view) in &want_nodes {
            prop_assert_eq!(&nodes[name], view, "node {}", name);
            // CPU and memory: the bound kept pods' requests, straight from the pod map.
            let bound = want_pods.values().filter(|p| p.node.as_deref() == Some(name.as_str()));
            let (cpu, memory) = bound.fold((0u64, 0u64), |(c, m), p| {
                (c + p.cpu_request_milli, m + p.memory_request_mib)
            });
            let r = &nodes[name].resources;
            prop_assert_eq!((r.cpu_requested_milli, r.memory_requested_mib), (cpu, memory));
            let milli = &nodes[name].milli;
            prop_assert_eq!((milli.cpu_capacity, milli.cpu_free), r.cpu());
            prop_assert_eq!((milli.memory_capacity, milli.memory_free), r.memory());
        }
        let stats = snapshot.stats();
        prop_assert_eq!(stats.nodes, want_nodes.len());
        prop_assert_eq!(stats.devices, want_nodes.values().map(NodeView::device_count).sum::<usize>());
        prop_assert_eq!(stats.allocations, want_nodes.values().map(|v| v.allocations.len()).sum::<usize>());
        prop_assert_eq!(stats.claims, want_claims.len());
        prop_assert_eq!(stats.pods, want_pods.len());
    }
}

// === targeted cases ===

#[test]
fn a_claim_and_pod_arriving_before_their_node_and_slice_are_not_lost() {
    let mut store = Store::new(config());
    store.apply(applied(test_claim(0, 0b0000_0010))); // gpu-0-shared in p0
    store.apply(applied(test_pod(0, 0b0000_0101))); // on n0, 1 classic GPU
    assert!(
        store.snapshot().node("n0").is_none(),
        "no Node yet, no view"
    );
    store.apply(applied(test_slice(0, 0b0000_0000))); // n0, pool p0
    store.apply(applied(test_node(0, 0b0001_0000))); // n0, 1 allocatable
    let snapshot = store.snapshot();
    let view = snapshot.node("n0").unwrap();
    assert_eq!(view.allocations.len(), 1);
    let a = &view.allocations[0];
    assert_eq!(&*view.device(a.device).unwrap().name, "gpu-0-shared");
    assert_eq!(a.claim.key.as_str(), "a/c0");
    assert_eq!(&*a.claim.reserved_for[0].name, "p0");
    assert_eq!(view.consumed(a.device, "memory"), 1 << 30);
    assert_eq!(view.classic.requested, 1);
    assert_eq!(view.classic.pods[0].key.as_str(), "a/p0");
}

#[test]
fn deleting_unknown_objects_changes_nothing() {
    let mut store = Store::new(config());
    store.apply(applied(test_node(0, 0)));
    let before = store.snapshot();
    for kind in Kind::ALL {
        store.apply(ClusterEvent::Deleted(object(kind, 4, 0)));
    }
    let after = store.snapshot();
    assert_eq!(before.version(), after.version());
    assert_eq!(contents(&before), contents(&after));
}

#[test]
fn reapplying_an_unchanged_object_does_not_bump_the_version() {
    let mut store = Store::new(config());
    for kind in Kind::ALL {
        store.apply(ClusterEvent::Applied(object(kind, 0, 0)));
    }
    let v1 = store.snapshot().version();
    for kind in Kind::ALL {
        store.apply(ClusterEvent::Applied(object(kind, 0, 0)));
    }
    assert_eq!(store.snapshot().version(), v1);
    store.apply(ClusterEvent::Applied(object(Kind::Node, 0, 1)));
    assert!(store.snapshot().version() > v1);
}

#[test]
fn a_relist_removes_what_it_did_not_list() {
    let mut store = Store::new(config());
    store.apply(applied(test_node(0, 0)));
    store.apply(applied(test_node(1, 0)));
    store.apply(applied(test_claim(0, 1)));
    store.apply(applied(test_claim(1, 1)));
    store.apply(ClusterEvent::ResyncStarted(Kind::Node));
    store.apply(applied(test_node(1, 0)));
    store.apply(ClusterEvent::ResyncDone(Kind::Node));
    let snapshot = store.snapshot();
    assert!(snapshot.node("n0").is_none());
    assert!(snapshot.node("n1").is_some());
    assert_eq!(snapshot.stats().claims, 2, "other kinds untouched");
}

#[test]
fn a_snapshot_keeps_its_version_while_the_store_moves_on() {
    let mut store = Store::new(config());
    store.apply(applied(test_node(0, 0)));
    store.apply(applied(test_slice(0, 0)));
    store.apply(applied(test_claim(0, 0)));
    let old = store.snapshot();
    let old_view = Arc::clone(old.node("n0").unwrap());
    store.apply(deleted(test_claim(0, 0)));
    store.apply(applied(test_node(0, 8)));
    let new = store.snapshot();
    assert_eq!(old.node("n0").unwrap().allocations.len(), 1);
    assert!(Arc::ptr_eq(old.node("n0").unwrap(), &old_view));
    assert!(old.claim("a", "c0").is_some());
    assert_eq!(new.node("n0").unwrap().allocations.len(), 0);
    assert!(new.node("n0").unwrap().interruption_notice.is_some());
    assert!(new.claim("a", "c0").is_none());
}

#[test]
fn only_touched_nodes_are_rebuilt() {
    let mut store = Store::new(config());
    for i in 0..3 {
        store.apply(applied(test_node(i, 0)));
    }
    let before = store.snapshot();
    store.apply(applied(test_node(1, 4)));
    let after = store.snapshot();
    assert!(Arc::ptr_eq(
        before.node("n0").unwrap(),
        after.node("n0").unwrap()
    ));
    assert!(Arc::ptr_eq(
        before.node("n2").unwrap(),
        after.node("n2").unwrap()
    ));
    assert!(!Arc::ptr_eq(
        before.node("n1").unwrap(),
        after.node("n1").unwrap()
    ));
}

#[test]
fn pods_and_claims_are_found_by_namespace_and_name() {
    let mut store = Store::new(config());
    store.apply(applied(test_claim(3, 1)));
    store.apply(applied(test_pod(3, 0b0001_0001)));
    let snapshot = store.snapshot();
    let claim = snapshot.claim("a", "c3").unwrap();
    assert!(!claim.is_allocated());
    let pod = snapshot.pod("a", "p3").unwrap();
    assert_eq!(pod.claim_names().collect::<Vec<_>>(), ["c3"]);
    assert!(snapshot.claim("b", "c3").is_none());
    assert!(snapshot.pod("a", "p4").is_none());
}

#[test]
fn a_finished_pod_leaves_the_cache() {
    let mut store = Store::new(config());
    store.apply(applied(test_node(0, 0b0010_0000)));
    store.apply(applied(test_pod(0, 0b0000_0101)));
    assert_eq!(store.snapshot().node("n0").unwrap().classic.requested, 1);
    store.apply(applied(test_pod(0, 0b0110_0101)));
    let snapshot = store.snapshot();
    assert!(snapshot.pod("a", "p0").is_none());
    assert_eq!(snapshot.node("n0").unwrap().classic.requested, 0);
}

#[test]
fn bound_pods_use_up_the_nodes_cpu_and_memory_as_they_come_and_go() {
    let mut store = Store::new(config());
    let mut n = node("n0", &[]);
    set_allocatable(&mut n, "cpu", "8");
    set_allocatable(&mut n, "memory", "64Gi");
    store.apply(applied(n));
    let free = |store: &mut Store| {
        let snapshot = store.snapshot();
        let v = snapshot.node("n0").unwrap();
        (v.milli.cpu_capacity, v.milli.cpu_free, v.milli.memory_free)
    };
    assert_eq!(free(&mut store), (8000, 8000, 65_536));

    // A pending pod holds nothing; once bound it does, whether it uses claims or classic GPUs.
    let mut claims_pod = pod("a", "p0", "u0", None, &[("gpu", Some("c0"))], 0);
    request_resources(&mut claims_pod, &[("cpu", "6"), ("memory", "16Gi")]);
    store.apply(applied(claims_pod.clone()));
    assert_eq!(free(&mut store), (8000, 8000, 65_536));
    claims_pod.spec.as_mut().unwrap().node_name = Some("n0".into());
    store.apply(applied(claims_pod.clone()));
    assert_eq!(free(&mut store), (8000, 2000, 49_152));
    let mut classic = pod("a", "p1", "u1", Some("n0"), &[], 1);
    request_resources(&mut classic, &[("cpu", "3"), ("memory", "64Gi")]);
    store.apply(applied(classic.clone()));
    assert_eq!(
        free(&mut store),
        (8000, 0, 0),
        "over-committed saturates at 0"
    );
    {
        let snapshot = store.snapshot();
        let v = snapshot.node("n0").unwrap();
        assert_eq!(v.resources.cpu_requested_milli, 9000);
        assert_eq!(v.classic.requested, 1);
        assert_eq!(
            v.classic.pods.len(),
            1,
            "only the classic pod is a classic pod"
        );
    }

    // Leaving: finished, deleted.
    claims_pod
        .status
        .get_or_insert_with(PodStatus::default)
        .phase = Some("Succeeded".into());
    store.apply(applied(claims_pod));
    assert_eq!(free(&mut store), (8000, 5000, 0));
    store.apply(deleted(classic));
    assert_eq!(free(&mut store), (8000, 8000, 65_536));
}

#[test]
fn a_node_without_readable_allocatable_leaves_cpu_untracked() {
    let mut store = Store::new(config());
    let mut n = node("n0", &[]);
    set_allocatable(&mut n, "cpu", "many");
    store.apply(applied(n));
    let mut p = pod("a", "p0", "u0", Some("n0"), &[], 1);
    request_resources(&mut p, &[("cpu", "6"), ("memory", "16Gi")]);
    store.apply(applied(p));
    let snapshot = store.snapshot();
    let v = snapshot.node("n0").unwrap();
    assert_eq!(
        (v.milli.cpu_capacity, v.milli.cpu_free),
        (UNTRACKED, UNTRACKED)
    );
    assert_eq!(
        (v.milli.memory_capacity, v.milli.memory_free),
        (UNTRACKED, UNTRACKED)
    );
    assert_eq!(v.resources.cpu_requested_milli, 6000);
}
