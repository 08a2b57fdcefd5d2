use std::collections::BTreeMap;

use super::*;
use crate::discovery::FakeProfile;
use crate::model::MigState;
use crate::publish::validate;

mod golden;
mod props;

const NODE: &str = "gpu-node-1";

fn options(level: FeatureLevel) -> SliceOptions {
    SliceOptions {
        generation: 1,
        ..SliceOptions::new(NODE, level)
    }
}

fn render_profile(profile: FakeProfile, opts: &SliceOptions) -> Vec<ResourceSlice> {
    render(&profile.inventory(NODE), opts).unwrap()
}

fn all_devices(slices: &[ResourceSlice]) -> Vec<&Device> {
    slices
        .iter()
        .flat_map(|s| s.spec.devices.iter().flatten())
        .collect()
}

fn names(slices: &[ResourceSlice]) -> Vec<&str> {
    all_devices(slices)
        .into_iter()
        .map(|d| d.name.as_str())
        .collect()
}

fn attr<'a>(
    d: &'a Device,
    key: &str,
) -> Option<&'a k8s_openapi::api::resource::v1::DeviceAttribute> {
    d.attributes.as_ref().and_then(|a| a.get(key))
}

#[test]
fn every_profile_level_and_replica_count_passes_validation() {
    for profile in FakeProfile::ALL {
        for level in FeatureLevel::ALL {
            for replicas in [0, 3, MAX_SHARE_REPLICAS] {
                let opts = SliceOptions {
                    share_replicas: replicas,
                    ..options(level)
                };
                let slices = render_profile(profile, &opts);
                validate(&slices).unwrap_or_else(|e| panic!("{profile} {level} x{replicas}: {e}"));
            }
        }
    }
}

#[test]
fn ga_sends_only_fields_a_1_34_server_accepts() {
    for profile in FakeProfile::ALL {
        for replicas in [0, 4] {
            let opts = SliceOptions {
                share_replicas: replicas,
                ..options(FeatureLevel::Ga)
            };
            let json = serde_json::to_string(&render_profile(profile, &opts)).unwrap();
            for field in [
                "sharedCounters",
                "consumesCounters",
                "allowMultipleAllocations",
                "requestPolicy",
                "taints",
                "perDeviceNodeSelection",
                "bindsToNode",
                "ints",
                "strings",
            ] {
                assert!(!json.contains(field), "{profile} at ga sends {field}");
            }
        }
    }
}

#[test]
fn the_device_model_per_mig_state_and_level() {
    // (profile, level, replicas) → devices by type: gpu, mig, shared, share.
    let cases: &[(FakeProfile, FeatureLevel, u32, [u64; 4])] = &[
        (FakeProfile::H100x8, FeatureLevel::Ga, 0, [8, 0, 0, 0]),
        (FakeProfile::H100x8, FeatureLevel::Ga, 4, [0, 0, 0, 32]),
        (
            FakeProfile::H100x8,
            FeatureLevel::Partitionable,
            0,
            [8, 0, 0, 0],
        ),
        (
            FakeProfile::H100x8,
            FeatureLevel::Consumable,
            0,
            [8, 0, 8, 0],
        ),
        (
            FakeProfile::H100x8,
            FeatureLevel::Consumable,
            2,
            [8, 0, 8, 16],
        ),
        // 4 GPUs of 7 × 1g + 4 GPUs "balanced" (4 instances).
        (
            FakeProfile::H100x8MigStatic,
            FeatureLevel::Ga,
            4,
            [0, 44, 0, 0],
        ),
        (
            FakeProfile::H100x8MigStatic,
            FeatureLevel::Consumable,
            0,
            [0, 44, 0, 0],
        ),
        (
            FakeProfile::H100x8MigDynamic,
            FeatureLevel::Ga,
            0,
            [8, 0, 0, 0],
        ),
        // H100: 7 + 7 (+me) + 4 + 3 + 2 + 1 + 1 placements per GPU.
        (
            FakeProfile::H100x8MigDynamic,
            FeatureLevel::Partitionable,
            0,
            [8, 200, 0, 0],
        ),
        (
            FakeProfile::H100x8MigDynamic,
            FeatureLevel::Consumable,
            0,
            [8, 200, 8, 0],
        ),
        // 2 off, 1 static balanced, 1 dynamic.
        (FakeProfile::Mixed, FeatureLevel::Ga, 0, [3, 4, 0, 0]),
        (
            FakeProfile::Mixed,
            FeatureLevel::Partitionable,
            0,
            [3, 29, 0, 0],
        ),
        (
            FakeProfile::Mixed,
            FeatureLevel::Consumable,
            0,
            [3, 29, 3, 0],
        ),
        (FakeProfile::L4x4, FeatureLevel::Consumable, 0, [4, 0, 4, 0]),
    ];
    for &(profile, level, replicas, want) in cases {
        let opts = SliceOptions {
            share_replicas: replicas,
            ..options(level)
        };
        let counts = device_counts(&render_profile(profile, &opts));
        let got = [
            counts["gpu"],
            counts["mig"],
            counts["shared"],
            counts["share"],
        ];
        assert_eq!(got, want, "{profile} {level} x{replicas}");
    }
}

#[test]
fn counters_use_the_split_shape_and_devices_stay_under_64_per_slice() {
    let slices = render_profile(
        FakeProfile::H100x8MigDynamic,
        &options(FeatureLevel::Consumable),
    );
    let (counters, devices): (Vec<_>, Vec<_>) = slices
        .iter()
        .partition(|s| s.spec.shared_counters.is_some());
    assert_eq!(counters.len(), 1);
    assert!(counters[0].spec.devices.is_none());
    assert_eq!(counters[0].spec.shared_counters.as_ref().unwrap().len(), 8);
    assert_eq!(counters[0].spec.node_name.as_deref(), Some(NODE));
    // 8 × (1 whole + 25 placements + 1 shared) = 216 devices: the 16 whole and shared GPUs,
    // then one slice per GPU's placements.
    assert_eq!(devices.len(), 9);
    for s in &devices {
        assert!(s.spec.shared_counters.is_none());
        assert!(s.spec.devices.as_ref().unwrap().len() <= MAX_DEVICES_PER_SLICE_WITH_COUNTERS);
    }
    for s in &slices {
        assert_eq!(s.spec.pool.resource_slice_count, 10);
        assert_eq!(s.spec.pool.generation, 1);
        assert_eq!(s.spec.pool.name, NODE);
    }
    // Slices are emitted in name order, counters first.
    let slice_names: Vec<_> = slices
        .iter()
        .map(|s| s.metadata.name.clone().unwrap())
        .collect();
    let mut sorted = slice_names.clone();
    sorted.sort();
    assert_eq!(slice_names, sorted);
    assert!(slice_names[0].ends_with("-counters-000"), "{slice_names:?}");
}

#[test]
fn more_than_eight_counter_sets_take_more_counter_slices() {
    let mut inventory = FakeProfile::H100x8MigDynamic.inventory(NODE);
    let more: Vec<_> = inventory
        .gpus
        .iter()
        .map(|g| {
            let mut g = g.clone();
            g.index += 8;
            g.uuid.push_str("-b");
            g
        })
        .collect();
    inventory.gpus.extend(more);
    let slices = render(&inventory, &options(FeatureLevel::Partitionable)).unwrap();
    let counter_slices: Vec<_> = slices
        .iter()
        .filter_map(|s| s.spec.shared_counters.as_ref())
        .collect();
    assert_eq!(
        counter_slices.iter().map(|c| c.len()).collect::<Vec<_>>(),
        [8, 8]
    );
    validate(&slices).unwrap();
}

#[test]
fn devices_come_in_allocator_preference_order() {
    let slices = render_profile(
        FakeProfile::H100x8MigDynamic,
        &options(FeatureLevel::Consumable),
    );
    let n = names(&slices);
    // First slice: shared from GPU 0, then whole GPUs from the highest index down.
    assert_eq!(n[0], "gpu-0-shared");
    assert_eq!(n[8], "gpu-7");
    assert_eq!(n[15], "gpu-0");
    // Then each GPU's placements: smallest profile first, from its top memory slice down.
    assert_eq!(
        &n[16..19],
        [
            "gpu-0-mig-1g10gb-6",
            "gpu-0-mig-1g10gb-5",
            "gpu-0-mig-1g10gb-4"
        ]
    );
    let pos = |name: &str| n.iter().position(|x| *x == name).unwrap();
    // The +me twin after the plain profile; 7g last on its GPU; GPU 0 before GPU 1.
    assert!(pos("gpu-0-mig-1g10gb-0") < pos("gpu-0-mig-1g10gbme-6"));
    assert!(pos("gpu-0-mig-4g40gb-0") < pos("gpu-0-mig-7g80gb-0"));
    assert!(pos("gpu-0-mig-7g80gb-0") < pos("gpu-1-mig-1g10gb-6"));
    let placements: Vec<usize> = slices[2..]
        .iter()
        .map(|s| s.spec.devices.as_ref().unwrap().len())
        .collect();
    assert_eq!(placements, [25; 8], "one slice per GPU's placements");

    // The kind-major layout: one order across the node, cut every 64.
    let kind_major = render_with_layout(
        &FakeProfile::H100x8MigDynamic.inventory(NODE),
        &options(FeatureLevel::Consumable),
        Layout::KindMajor,
    )
    .unwrap();
    let k = names(&kind_major);
    assert_eq!(k[7], "gpu-1-mig-1g10gb-6");
    assert_eq!(k[k.len() - 16], "gpu-0-shared");
    assert_eq!(kind_major.len(), 5);
}

/// Issue 14: on `mixed` (GPUs 0, 1 MIG off, 2 static MIG, 3 dynamic MIG) the first
/// whole-GPU claim took GPU 3, the only dynamic-MIG GPU, because whole GPUs were published
/// highest index first. Whole GPUs that cannot be cut now come first, and GPU 3's
/// placements sit in a slice of their own after the static instances.
#[test]
fn mixed_nodes_hand_out_mig_off_gpus_whole_before_the_dynamic_mig_gpu() {
    let slices = render_profile(FakeProfile::Mixed, &options(FeatureLevel::Consumable));
    let n = names(&slices);
    let wholes: Vec<&str> = n
        .iter()
        .copied()
        .filter(|d| d.len() == 5 && d.starts_with("gpu-"))
        .collect();
    assert_eq!(wholes, ["gpu-1", "gpu-0", "gpu-3"]);
    let pos = |prefix: &str| n.iter().position(|x| x.starts_with(prefix)).unwrap();
    assert!(
        pos("gpu-2-mig-") < pos("gpu-3-mig-"),
        "static instances first: {n:?}"
    );
    let last = slices.last().unwrap().spec.devices.as_ref().unwrap();
    assert!(last.iter().all(|d| d.name.starts_with("gpu-3-mig-")));
    validate(&slices).unwrap();
}

#[test]
fn attributes_and_capacities_follow_the_design() {
    let slices = render_profile(FakeProfile::Mixed, &options(FeatureLevel::Consumable));
    let devices = all_devices(&slices);
    let find = |name: &str| *devices.iter().find(|d| d.name == name).unwrap();
    let inv = FakeProfile::Mixed.inventory(NODE);

    let whole = find("gpu-0");
    assert_eq!(attr(whole, "type").unwrap().string.as_deref(), Some("gpu"));
    assert_eq!(
        attr(whole, "uuid").unwrap().string.as_deref(),
        Some(inv.gpus[0].uuid.as_str())
    );
    assert_eq!(attr(whole, "index").unwrap().int, Some(0));
    assert_eq!(
        attr(whole, "driverVersion").unwrap().version.as_deref(),
        Some("570.124.6")
    );
    assert_eq!(
        attr(whole, "cudaComputeCapability")
            .unwrap()
            .version
            .as_deref(),
        Some("9.0.0")
    );
    assert_eq!(attr(whole, "migCapable").unwrap().bool, Some(true));
    assert_eq!(
        attr(whole, "resource.kubernetes.io/pciBusID")
            .unwrap()
            .string
            .as_deref(),
        Some("0000:17:00.0")
    );
    assert_eq!(
        whole.capacity.as_ref().unwrap()["memory"].value.0,
        "81559Mi"
    );

    let shared = find("gpu-1-shared");
    assert_eq!(shared.allow_multiple_allocations, Some(true));
    let cap = shared.capacity.as_ref().unwrap();
    let memory = cap["memory"].request_policy.as_ref().unwrap();
    assert_eq!(memory.default.as_ref().unwrap().0, "79Gi");
    let range = memory.valid_range.as_ref().unwrap();
    assert_eq!(
        (
            range.min.0.as_str(),
            range.step.as_ref().unwrap().0.as_str()
        ),
        ("1Gi", "1Gi")
    );
    assert_eq!(cap["compute"].value.0, "100");
    assert_eq!(
        attr(shared, "parentUUID").unwrap().string.as_deref(),
        Some(inv.gpus[1].uuid.as_str())
    );

    let static_mig = find("gpu-2-mig-3g40gb-4");
    let MigState::Static { devices: migs } = &inv.gpus[2].mig else {
        panic!()
    };
    let mig_uuid = &migs.iter().find(|m| m.profile == "3g.40gb").unwrap().uuid;
    assert_eq!(
        attr(static_mig, "uuid").unwrap().string.as_ref(),
        Some(mig_uuid)
    );
    assert_eq!(
        attr(static_mig, "profile").unwrap().string.as_deref(),
        Some("3g.40gb")
    );
    let cap = static_mig.capacity.as_ref().unwrap();
    assert_eq!(
        (
            cap["computeSlices"].value.0.as_str(),
            cap["memorySlices"].value.0.as_str()
        ),
        ("3", "4")
    );
    assert!(static_mig.consumes_counters.is_none());

    let dynamic = find("gpu-3-mig-2g20gb-4");
    assert!(attr(dynamic, "uuid").is_none(), "not created yet");
    let consumes = &dynamic.consumes_counters.as_ref().unwrap()[0];
    assert_eq!(consumes.counter_set, "gpu-3-counters");
    let drawn: BTreeMap<_, _> = consumes
        .counters
        .iter()
        .map(|(k, v)| (k.as_str(), v.value.0.as_str()))
        .collect();
    assert_eq!(
        drawn,
        BTreeMap::from([
            ("compute-slices", "2"),
            ("memory-slice-4", "1"),
            ("memory-slice-5", "1")
        ])
    );
    // On a dynamic GPU the whole device is the full-size instance: 7g.80gb's memory.
    assert_eq!(
        find("gpu-3").capacity.as_ref().unwrap()["memory"].value.0,
        "81152Mi"
    );
}

#[test]
fn replicas_split_memory_and_share_a_counter_with_whole_and_shared() {
    let opts = SliceOptions {
        share_replicas: 3,
        ..options(FeatureLevel::Consumable)
    };
    let slices = render_profile(FakeProfile::A100_40x8, &opts);
    let devices = all_devices(&slices);
    let share = devices.iter().find(|d| d.name == "gpu-0-share-2").unwrap();
    // 40 GiB / 3, in bytes.
    assert_eq!(
        share.capacity.as_ref().unwrap()["memory"].value.0,
        "14316557653"
    );
    let drawn = &share.consumes_counters.as_ref().unwrap()[0].counters["memory"];
    assert_eq!(drawn.value.0, "14316557653");
    let set = slices[0].spec.shared_counters.as_ref().unwrap();
    assert_eq!(set[0].counters["memory"].value.0, "40Gi");
}

#[test]
fn the_content_hash_ignores_the_generation_but_not_the_content() {
    let inv = FakeProfile::H100x8.inventory(NODE);
    let hash = |slices: &[ResourceSlice]| {
        slices[0].metadata.annotations.as_ref().unwrap()[CONTENT_HASH_ANNOTATION].clone()
    };
    let a = render(&inv, &options(FeatureLevel::Ga)).unwrap();
    let b = render(
        &inv,
        &SliceOptions {
            generation: 9,
            ..options(FeatureLevel::Ga)
        },
    )
    .unwrap();
    assert_eq!(hash(&a), hash(&b));
    assert!(
        a.iter()
            .all(|s| s.metadata.annotations.as_ref().unwrap()[CONTENT_HASH_ANNOTATION] == hash(&a))
    );
    let mut changed = inv.clone();
    changed.gpus.pop();
    assert_ne!(
        hash(&a),
        hash(&render(&changed, &options(FeatureLevel::Ga)).unwrap())
    );
    assert_ne!(
        hash(&a),
        hash(&render(&inv, &options(FeatureLevel::Consumable)).unwrap())
    );
}

#[test]
fn no_gpus_means_no_slices() {
    let inv = crate::model::Inventory {
        driver_version: "570.124.06".into(),
        cuda_driver_version: None,
        gpus: vec![],
    };
    assert!(
        render(&inv, &options(FeatureLevel::Consumable))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn bad_options_are_refused() {
    let inv = FakeProfile::H100x8.inventory(NODE);
    let base = options(FeatureLevel::Ga);
    let cases = [
        SliceOptions {
            node_name: "Node_1".into(),
            ..base.clone()
        },
        SliceOptions {
            node_name: String::new(),
            ..base.clone()
        },
        SliceOptions {
            driver_name: "GPU.example".into(),
            ..base.clone()
        },
        SliceOptions {
            driver_name: format!("{}.dev", "a".repeat(60)),
            ..base.clone()
        },
        SliceOptions {
            share_replicas: MAX_SHARE_REPLICAS + 1,
            ..base.clone()
        },
        SliceOptions {
            generation: -1,
            ..base.clone()
        },
    ];
    for opts in cases {
        assert!(render(&inv, &opts).is_err(), "{opts:?}");
    }
    let err = render(
        &inv,
        &SliceOptions {
            driver_name: "x_y".into(),
            ..base
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("gpu.tessera.dev"), "{err}");
}

#[test]
fn a_custom_driver_name_is_the_slice_driver() {
    let opts = SliceOptions {
        driver_name: "gpu.example.com".into(),
        ..options(FeatureLevel::Ga)
    };
    let slices = render_profile(FakeProfile::L4x4, &opts);
    assert!(slices.iter().all(|s| s.spec.driver == "gpu.example.com"));
    assert!(
        slices[0]
            .metadata
            .name
            .as_ref()
            .unwrap()
            .contains("gpu.example.com")
    );
    let d = all_devices(&slices)[0];
    assert_eq!(attr(d, "migCapable").unwrap().bool, Some(false));
    assert_eq!(
        attr(d, "architecture").unwrap().string.as_deref(),
        Some("Ada Lovelace")
    );
}

#[test]
fn the_largest_inventory_still_renders_valid_slices() {
    let template = FakeProfile::H100x8MigDynamic.inventory(NODE).gpus[0].clone();
    let mut inventory = FakeProfile::H100x8MigDynamic.inventory(NODE);
    inventory.gpus = (0..crate::model::inventory::MAX_INVENTORY_GPUS as u32)
        .map(|i| {
            let mut g = template.clone();
            g.index = i;
            g.uuid = format!("GPU-{i}");
            g
        })
        .collect();
    inventory.validate().unwrap();
    let opts = SliceOptions {
        share_replicas: MAX_SHARE_REPLICAS,
        ..options(FeatureLevel::Consumable)
    };
    let slices = render(&inventory, &opts).unwrap();
    validate(&slices).unwrap();
    let counter_slices = slices
        .iter()
        .filter(|s| s.spec.shared_counters.is_some())
        .count();
    assert_eq!(counter_slices, 8);
    // 64 GPUs' 128 whole and shared devices in 2 slices, then one slice per GPU's 25
    // placements.
    assert_eq!(slices.len() - counter_slices, 66);
}
