use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::resource::v1::{ResourceClaim, ResourceSlice};

use super::*;
use crate::cluster::DEFAULT_DRIVER;
use crate::cluster::claim::read_claim;
use crate::cluster::intern::Interners;
use crate::cluster::node::read_node;
use crate::cluster::pod::read_pod;
use crate::cluster::slice::{DeviceKind, read_slice};
use crate::cluster::testing::objects::{
    Given, GpuFacts, SlicePlace, Want, allocate, annotate_node, claim, consume, counter_set,
    counter_slice, device_slice, mig_device, node, pod, set_allocatable, shared_gpu, taint_node,
    whole_gpu,
};
use crate::market::labels::{INSTANCE_TYPE, KARPENTER_CAPACITY_TYPE, REGION};

const NODE: &str = "node-a";

fn config() -> CacheConfig {
    CacheConfig::builtin(DEFAULT_DRIVER).unwrap()
}

fn h100(index: u32) -> GpuFacts<'static> {
    GpuFacts {
        index,
        uuid: if index == 0 { "GPU-0000" } else { "GPU-1111" },
        model: "NVIDIA H100 80GB HBM3",
        memory: "80Gi",
    }
}

fn p5(capacity: &str) -> Node {
    node(
        NODE,
        &[
            (INSTANCE_TYPE, "p5.48xlarge"),
            (REGION, "us-east-1"),
            (KARPENTER_CAPACITY_TYPE, capacity),
        ],
    )
}

fn place(generation: i64) -> SlicePlace<'static> {
    SlicePlace {
        driver: DEFAULT_DRIVER,
        node: NODE,
        pool: NODE,
        generation,
        slice_count: 2,
    }
}

/// GPU 0: whole + shared, GPU 1: two 1g MIG placements; all drawing on per-GPU counters.
fn gpu_slices(generation: i64) -> Vec<ResourceSlice> {
    let all = [
        ("gpu", "1"),
        ("memory-slice-0", "1"),
        ("memory-slice-1", "1"),
    ];
    let mut whole = whole_gpu(h100(0));
    consume(&mut whole, "gpu-0-counters", &all);
    let mut shared = shared_gpu(h100(0));
    consume(&mut shared, "gpu-0-counters", &all);
    let mut mig0 = mig_device(h100(1), "1g.10gb", 0, 1, 1, "10Gi");
    consume(&mut mig0, "gpu-1-counters", &[("memory-slice-0", "1")]);
    let mut mig1 = mig_device(h100(1), "1g.10gb", 1, 1, 1, "10Gi");
    consume(&mut mig1, "gpu-1-counters", &[("memory-slice-1", "1")]);
    let counters = counter_slice(
        "node-a-counters",
        place(generation),
        vec![
            counter_set("gpu-0-counters", &all),
            counter_set(
                "gpu-1-counters",
                &[("memory-slice-0", "1"), ("memory-slice-1", "1")],
            ),
        ],
    );
    let devices = device_slice(
        "node-a-devices",
        place(generation),
        vec![mig0, mig1, shared, whole],
    );
    vec![counters, devices]
}

fn share(claim_name: &str, device: &str, memory: &'static str, admin: bool) -> ResourceClaim {
    let want = Want {
        class: "shared.gpu.tessera.dev",
        selector: None,
        capacity: &[],
    };
    let mut c = claim("team-a", claim_name, "uid", want);
    let consumed: &[(&str, &str)] = if memory.is_empty() {
        &[]
    } else {
        &[("memory", memory), ("compute", "10")]
    };
    allocate(
        &mut c,
        NODE,
        &[Given {
            driver: DEFAULT_DRIVER,
            pool: NODE,
            device,
            request: "gpu",
            share: (!memory.is_empty()).then_some(("share", consumed)),
        }],
    );
    if admin {
        c.status
            .as_mut()
            .unwrap()
            .allocation
            .as_mut()
            .unwrap()
            .devices
            .as_mut()
            .unwrap()
            .results
            .as_mut()
            .unwrap()[0]
            .admin_access = Some(true);
    }
    c
}

struct Parts {
    node: Node,
    slices: Vec<ResourceSlice>,
    claims: Vec<ResourceClaim>,
    pods: Vec<k8s_openapi::api::core::v1::Pod>,
}

fn build(parts: &Parts) -> NodeView {
    let config = config();
    let mut interners = Interners::default();
    let facts = read_node(&parts.node, &mut interners).unwrap();
    let slices: Vec<Arc<Slice>> = parts
        .slices
        .iter()
        .filter_map(|s| read_slice(s, DEFAULT_DRIVER, &mut interners))
        .map(Arc::new)
        .collect();
    let claims: Vec<Arc<ClaimView>> = parts
        .claims
        .iter()
        .filter_map(|c| read_claim(c, DEFAULT_DRIVER, &mut interners))
        .map(Arc::new)
        .collect();
    let pods: Vec<Arc<PodView>> = parts
        .pods
        .iter()
        .filter_map(|p| read_pod(p, &mut interners))
        .map(Arc::new)
        .collect();
    assemble(&config, &facts, &slices, &claims, &pods)
}

fn bare(node: Node) -> NodeView {
    build(&Parts {
        node,
        slices: Vec::new(),
        claims: Vec::new(),
        pods: Vec::new(),
    })
}

// === market ===

#[test]
fn on_demand_price_per_gpu_comes_from_the_catalog() {
    let view = build(&Parts {
        node: p5("on-demand"),
        slices: gpu_slices(1),
        claims: Vec::new(),
        pods: Vec::new(),
    });
    assert_eq!(view.instance_type.as_deref(), Some("p5.48xlarge"));
    assert_eq!(view.region.as_deref(), Some("us-east-1"));
    assert_eq!(view.market.capacity, CapacityType::OnDemand);
    assert!(!view.is_spot());
    assert_eq!(view.market.source, PriceSource::CatalogOnDemand);
    // p5.48xlarge in us-east-1: 55.04 $/h for 8 GPUs.
    let per_gpu = view.price_per_gpu_hour().unwrap();
    assert!((per_gpu - 55.04 / 8.0).abs() < 1e-9, "{per_gpu}");
    assert_eq!(view.market.hourly_interruption_probability, 0.0);
    assert_eq!(view.price_error, None);
}

#[test]
fn spot_nodes_are_cheaper_and_carry_interruption_risk() {
    let on_demand = bare(p5("on-demand"));
    let spot = bare(p5("spot"));
    assert!(spot.is_spot());
    assert!(spot.price_per_gpu_hour().unwrap() < on_demand.price_per_gpu_hour().unwrap());
    let p = spot.market.hourly_interruption_probability;
    assert!(p > 0.0 && p < 1.0, "{p}");
}

#[test]
fn the_price_annotation_overrides_the_catalog() {
    let mut n = p5("on-demand");
    annotate_node(&mut n, "tessera.dev/hourly-price", "16");
    let view = bare(n);
    assert_eq!(view.market.source, PriceSource::Annotation);
    assert_eq!(view.price_per_gpu_hour(), Some(2.0));
}

#[test]
fn an_invalid_price_annotation_is_reported_and_the_catalog_used() {
    let mut n = p5("on-demand");
    annotate_node(&mut n, "tessera.dev/hourly-price", "-3");
    let view = bare(n);
    let error = view.price_error.as_deref().unwrap();
    assert!(
        error.contains("tessera.dev/hourly-price") && error.contains("negative"),
        "{error}"
    );
    assert_eq!(view.market.source, PriceSource::CatalogOnDemand);
}

#[test]
fn unknown_instance_types_are_priced_by_their_gpu_count() {
    let mut n = node(NODE, &[(INSTANCE_TYPE, "custom.metal")]);
    set_allocatable(&mut n, "nvidia.com/gpu", "4");
    let view = bare(n);
    assert_eq!(view.market.source, PriceSource::Fallback);
    assert_eq!(view.market.gpus, 4.0);
    assert!((view.market.hourly_price_usd - 4.0 * FALLBACK_USD_PER_GPU_HOUR).abs() < 1e-9);
    // With our devices the count comes from them: 2 GPUs in `gpu_slices`.
    let view = build(&Parts {
        node: node(NODE, &[(INSTANCE_TYPE, "custom.metal")]),
        slices: gpu_slices(1),
        claims: Vec::new(),
        pods: Vec::new(),
    });
    assert_eq!(view.market.gpus, 2.0);
}

#[test]
fn interruption_notice_and_deletion_mean_going_away() {
    let mut n = p5("spot");
    taint_node(&mut n, "karpenter.sh/disrupted", None);
    let view = bare(n);
    assert_eq!(
        view.interruption_notice,
        Some("Karpenter is disrupting the node")
    );
    assert!(view.is_going_away());
    let mut n = p5("on-demand");
    n.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        Default::default(),
    ));
    let view = bare(n);
    assert!(view.deleting && view.is_going_away());
    assert!(!bare(p5("on-demand")).is_going_away());
}

// === devices ===

#[test]
fn devices_are_grouped_by_gpu_in_published_order() {
    let view = build(&Parts {
        node: p5("on-demand"),
        slices: gpu_slices(1),
        claims: Vec::new(),
        pods: Vec::new(),
    });
    assert_eq!(view.device_count(), 4);
    assert_eq!(view.gpu_count(), 2);
    let names = |g: &GpuDevices| -> Vec<String> {
        g.devices
            .iter()
            .map(|r| view.device(*r).unwrap().name.to_string())
            .collect()
    };
    assert_eq!(view.gpus[0].index, 1);
    assert_eq!(
        names(&view.gpus[0]),
        ["gpu-1-mig-1g10gb-0", "gpu-1-mig-1g10gb-1"]
    );
    assert_eq!(names(&view.gpus[1]), ["gpu-0-shared", "gpu-0"]);
    let r = view.find_device(NODE, "gpu-0-shared").unwrap();
    assert_eq!(view.device(r).unwrap().kind, DeviceKind::Shared);
    assert_eq!(view.pool(r).map(|p| &**p), Some(NODE));
    assert!(view.find_device("other-pool", "gpu-0-shared").is_none());
}

#[test]
fn only_the_newest_generation_of_a_pool_counts() {
    let mut slices = gpu_slices(1);
    let mut newer = device_slice("node-a-devices-v2", place(2), vec![whole_gpu(h100(7))]);
    newer.spec.pool.resource_slice_count = 1;
    slices.push(newer);
    let view = build(&Parts {
        node: p5("on-demand"),
        slices,
        claims: Vec::new(),
        pods: Vec::new(),
    });
    assert_eq!(view.slices.len(), 1);
    assert_eq!(view.device_count(), 1);
    assert_eq!(view.gpus[0].index, 7);
    assert!(
        view.counters.is_empty(),
        "the old counters slice is gone too"
    );
}

// === allocations ===

#[test]
fn shares_of_a_shared_device_consume_capacity_and_counters_once() {
    let view = build(&Parts {
        node: p5("on-demand"),
        slices: gpu_slices(1),
        claims: vec![
            share("a", "gpu-0-shared", "10Gi", false),
            share("b", "gpu-0-shared", "20Gi", false),
            share("watch", "gpu-0-shared", "", true),
        ],
        pods: Vec::new(),
    });
    let r = view.find_device(NODE, "gpu-0-shared").unwrap();
    assert_eq!(view.allocations_of(r).len(), 3);
    assert!(view.is_allocated(r));
    assert_eq!(view.consumed(r, "memory"), 30 << 30);
    assert_eq!(view.consumed(r, "compute"), 20);
    assert_eq!(view.free_capacity(r, "memory"), 50 << 30);
    assert_eq!(view.free_capacity(r, "compute"), 80);
    let usage = view.counter_usage(NODE, "gpu-0-counters").unwrap();
    for c in usage.counters.iter() {
        assert_eq!((c.total, c.used, c.free()), (1, 1, 0), "{}", c.name);
    }
    let whole = view.find_device(NODE, "gpu-0").unwrap();
    assert!(!view.is_allocated(whole));
    assert_eq!(view.free_capacity(whole, "memory"), 80 << 30);
}

#[test]
fn an_exclusive_device_has_no_free_capacity_once_allocated() {
    let view = build(&Parts {
        node: p5("on-demand"),
        slices: gpu_slices(1),
        claims: vec![share("m", "gpu-1-mig-1g10gb-1", "", false)],
        pods: Vec::new(),
    });
    let r = view.find_device(NODE, "gpu-1-mig-1g10gb-1").unwrap();
    assert!(view.is_allocated(r));
    assert_eq!(view.free_capacity(r, "memory"), 0);
    let usage = view.counter_usage(NODE, "gpu-1-counters").unwrap();
    let used: Vec<(&str, u64)> = usage.counters.iter().map(|c| (&*c.name, c.used)).collect();
    assert_eq!(used, [("memory-slice-0", 0), ("memory-slice-1", 1)]);
    let a = &view.allocations[0];
    assert_eq!(a.claim.key.as_str(), "team-a/m");
    assert_eq!(a.result().map(|r| &*r.device), Some("gpu-1-mig-1g10gb-1"));
}

#[test]
fn results_of_other_drivers_pools_or_unknown_devices_are_not_this_nodes() {
    let mut other_driver = share("x", "gpu-0", "", false);
    other_driver
        .status
        .as_mut()
        .unwrap()
        .allocation
        .as_mut()
        .unwrap()
        .devices
        .as_mut()
        .unwrap()
        .results
        .as_mut()
        .unwrap()[0]
        .driver = "gpu.nvidia.com".into();
    let mut other_pool = share("y", "gpu-0", "", false);
    other_pool
        .status
        .as_mut()
        .unwrap()
        .allocation
        .as_mut()
        .unwrap()
        .devices
        .as_mut()
        .unwrap()
        .results
        .as_mut()
        .unwrap()[0]
        .pool = "node-b".into();
    let unknown = share("z", "gpu-9", "", false);
    let view = build(&Parts {
        node: p5("on-demand"),
        slices: gpu_slices(1),
        claims: vec![other_driver, other_pool, unknown],
        pods: Vec::new(),
    });
    assert!(view.allocations.is_empty());
}

#[test]
fn classic_gpus_requested_by_the_nodes_pods() {
    let mut n = p5("on-demand");
    set_allocatable(&mut n, "nvidia.com/gpu", "8");
    let view = build(&Parts {
        node: n,
        slices: Vec::new(),
        claims: Vec::new(),
        pods: vec![
            pod("ns", "a", "u1", Some(NODE), &[], 2),
            pod("ns", "b", "u2", Some(NODE), &[], 3),
            pod("ns", "dra-only", "u3", Some(NODE), &[("gpu", Some("c"))], 0),
        ],
    });
    assert_eq!(view.classic.allocatable, 8);
    assert_eq!(view.classic.requested, 5);
    assert_eq!(view.classic.free(), 3);
    let names: Vec<&str> = view.classic.pods.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(names, ["ns/a", "ns/b"]);
}

// === partition states ===

use crate::model::mig::GpuProduct;
use crate::model::partition::{GpuPartitioning, PartitionDemand, PartitionGpu};
use crate::scoring::partition::fit;

fn state(view: &NodeView, gpu_index: u32) -> &PartitionGpu {
    let gpu = view.gpus.iter().find(|g| g.index == gpu_index).unwrap();
    &view.partitions[gpu.partition.unwrap()]
}

fn with_claims(claims: Vec<ResourceClaim>) -> NodeView {
    build(&Parts {
        node: p5("on-demand"),
        slices: gpu_slices(1),
        claims,
        pods: Vec::new(),
    })
}

#[test]
fn idle_gpus_are_shared_or_dynamic_mig() {
    let view = with_claims(Vec::new());
    assert_eq!(view.partitions.len(), 2);
    let gpu0 = state(&view, 0);
    assert_eq!(
        (gpu0.model.as_str(), gpu0.memory_mib),
        ("NVIDIA H100 80GB HBM3", 80 * 1024)
    );
    assert_eq!(
        gpu0.state,
        GpuPartitioning::Shared {
            used_memory_mib: 0,
            used_compute_pct: 0
        }
    );
    match &state(&view, 1).state {
        GpuPartitioning::DynamicMig {
            layout,
            whole_taken,
        } => {
            assert_eq!(layout.product(), GpuProduct::H100_80GB);
            assert!(layout.instances().is_empty() && !whole_taken);
        }
        other => panic!("{other:?}"),
    }
    assert!(!view.in_use());
}

#[test]
fn allocations_show_in_the_partition_states() {
    let view = with_claims(vec![
        share("a", "gpu-0-shared", "10Gi", false),
        share("b", "gpu-0-shared", "1536Mi", false),
        share("m", "gpu-1-mig-1g10gb-1", "", false),
    ]);
    assert!(view.in_use());
    assert_eq!(
        state(&view, 0).state,
        GpuPartitioning::Shared {
            used_memory_mib: 10 * 1024 + 1536,
            used_compute_pct: 20
        }
    );
    let GpuPartitioning::DynamicMig {
        layout,
        whole_taken: false,
    } = &state(&view, 1).state
    else {
        panic!("{:?}", state(&view, 1))
    };
    let placed: Vec<(&str, u8)> = layout
        .instances()
        .iter()
        .map(|i| (i.profile.name, i.placement.start))
        .collect();
    assert_eq!(placed, [("1g.10gb", 1)]);

    let whole = with_claims(vec![share("w", "gpu-0", "", false)]);
    assert_eq!(
        state(&whole, 0).state,
        GpuPartitioning::Whole { taken: true }
    );
}

#[test]
fn static_mig_time_sliced_and_whole_only_gpus() {
    let a100 = GpuFacts {
        index: 0,
        uuid: "GPU-a100",
        model: "NVIDIA A100-SXM4-40GB",
        memory: "40Gi",
    };
    let static_migs = vec![
        mig_device(a100, "3g.20gb", 4, 4, 3, "20Gi"),
        mig_device(a100, "2g.10gb", 0, 2, 2, "10Gi"),
    ];
    let l40s = |index| GpuFacts {
        index,
        uuid: "GPU-l40s",
        model: "NVIDIA L40S",
        memory: "48Gi",
    };
    let replicas = (0..4)
        .map(|k| crate::cluster::testing::objects::share_device(l40s(1), k, "12Gi"))
        .collect::<Vec<_>>();
    let mut devices = static_migs;
    devices.extend(replicas);
    devices.push(whole_gpu(l40s(2)));
    let view = build(&Parts {
        node: p5("on-demand"),
        slices: vec![device_slice("s", place(1), devices)],
        claims: vec![
            share("m", "gpu-0-mig-2g10gb-0", "", false),
            share("r1", "gpu-1-share-0", "", false),
            share("r2", "gpu-1-share-3", "", false),
            share("w", "gpu-2", "", false),
        ],
        pods: Vec::new(),
    });
    let GpuPartitioning::StaticMig { layout } = &state(&view, 0).state else {
        panic!("{:?}", state(&view, 0))
    };
    let instances: Vec<(&str, bool)> = layout
        .instances()
        .map(|(i, taken)| (i.profile.name, taken))
        .collect();
    assert_eq!(instances, [("3g.20gb", false), ("2g.10gb", true)]);
    let full = crate::model::mig::profile(GpuProduct::A100_40GB, "7g.40gb").unwrap();
    assert_eq!(
        state(&view, 0).memory_mib,
        full.capacity_mib(),
        "the 7g instance's memory"
    );
    assert_eq!(
        state(&view, 1).state,
        GpuPartitioning::Shared {
            used_memory_mib: 24 * 1024,
            used_compute_pct: 50
        }
    );
    assert_eq!(state(&view, 1).memory_mib, 48 * 1024);
    assert_eq!(
        state(&view, 2).state,
        GpuPartitioning::Whole { taken: true }
    );
}

#[test]
fn the_partition_states_feed_the_fit_directly() {
    let view = with_claims(vec![share("m", "gpu-1-mig-1g10gb-1", "", false)]);
    // A 1g-sized demand goes to the MIG GPU, which is already cut up.
    let placed = fit(&PartitionDemand::new(1, 9_000, 100), &view.partitions).unwrap();
    let gpu = view.gpu_of_partition(placed.assignments[0].gpu).unwrap();
    assert_eq!(gpu.index, 1);
}

#[test]
fn a_gpu_with_a_shared_device_and_replicas_adds_both_uses() {
    // The consumable-level shape of a MIG-off GPU: whole, shared and 4 replicas.
    let l4 = GpuFacts {
        index: 0,
        uuid: "GPU-l4",
        model: "NVIDIA L4",
        memory: "24Gi",
    };
    let mut devices = vec![whole_gpu(l4), shared_gpu(l4)];
    devices.extend((0..4).map(|k| crate::cluster::testing::objects::share_device(l4, k, "6Gi")));
    let view = build(&Parts {
        node: p5("on-demand"),
        slices: vec![device_slice("s", place(1), devices)],
        claims: vec![
            share("a", "gpu-0-shared", "4Gi", false),
            share("r", "gpu-0-share-2", "", false),
        ],
        pods: Vec::new(),
    });
    assert_eq!(view.partitions.len(), 1);
    assert_eq!(view.partitions[0].memory_mib, 24 * 1024);
    assert_eq!(
        view.partitions[0].state,
        GpuPartitioning::Shared {
            used_memory_mib: 10 * 1024,
            used_compute_pct: 35
        }
    );
}
