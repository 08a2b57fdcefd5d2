//! One test per allocator rule, named after it, plus a property test.

mod builders;
mod properties;

use builders::*;

use super::*;

#[test]
fn pool_and_slice_order_sorted_by_name_on_1_36_incubating() {
    // Slice "b" is published first but "a" sorts first: 1.36+ incubating takes a's device.
    let node = node(
        vec![
            slice("b", vec![gpu("gpu-b", "80Gi")]).count(2),
            slice("a", vec![gpu("gpu-a", "80Gi")]).count(2),
        ],
        Features::all(),
    );
    let order = default_order(Release::V1_36, Features::all());
    assert_eq!(order, Some(SliceOrder::ByName));
    let got = run(
        &node,
        &[claim("c", vec![exactly("gpu", "gpu-class")])],
        &order.unwrap_or(SliceOrder::ByName),
    );
    assert_eq!(devices(&node, &got), vec!["gpu-a"]);
}

#[test]
fn pool_and_slice_order_arbitrary_on_1_35_and_stable() {
    let features = Features::defaults(Release::V1_35);
    assert_eq!(default_order(Release::V1_35, features), None);
    let stable = Features {
        consumable_capacity: false,
        binding_and_status: false,
        ..Features::all()
    };
    assert_eq!(default_order(Release::V1_36, stable), None);
    let node = node(
        vec![
            slice("a", vec![gpu("gpu-a", "80Gi")]).count(2),
            slice("b", vec![gpu("gpu-b", "80Gi")]).count(2),
        ],
        features,
    );
    let claims = [claim("c", vec![exactly("gpu", "gpu-class")])];
    assert_eq!(
        devices(&node, &run(&node, &claims, &SliceOrder::Given(vec![1, 0]))),
        vec!["gpu-b"]
    );
    assert_eq!(
        devices(&node, &run(&node, &claims, &SliceOrder::Given(vec![0, 1]))),
        vec!["gpu-a"]
    );
    let dist = orders::distribution(
        &node,
        &AllocatedState::empty(&node),
        &prepare(&node, &claims),
        1,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(dist.orders, 2);
    assert_eq!(dist.outcomes.len(), 2, "each slice's first fit once");
}

#[test]
fn first_fit_in_published_device_order() {
    // The 40Gi GPU would fit tighter; the allocator does not score and takes the first.
    let node = node(
        vec![slice("s", vec![gpu("gpu-0", "80Gi"), gpu("gpu-1", "40Gi")])],
        Features::all(),
    );
    let got = run(
        &node,
        &[claim("c", vec![exactly("gpu", "gpu-class")])],
        &SliceOrder::ByName,
    );
    assert_eq!(devices(&node, &got), vec!["gpu-0"]);
}

#[test]
fn exhaustive_dfs_takes_the_first_full_solution() {
    // Request "any" would take gpu-0 first, leaving "big" nothing; the search backtracks.
    let node = node(
        vec![slice("s", vec![gpu("gpu-0", "80Gi"), gpu("gpu-1", "40Gi")])],
        Features::all(),
    );
    let big = exactly("big", "gpu-class")
        .selector("device.capacity['gpu.test'].memory.compareTo(quantity('80Gi')) >= 0");
    let got = run(
        &node,
        &[claim("c", vec![exactly("any", "gpu-class"), big])],
        &SliceOrder::ByName,
    );
    assert_eq!(devices(&node, &got), vec!["gpu-1", "gpu-0"]);
}

#[test]
fn class_and_request_cel_selectors_filter_devices() {
    let node = node(
        vec![slice(
            "s",
            vec![
                mig("gpu-0-mig-1g10gb-0", "10Gi"),
                mig("gpu-0-mig-3g40gb-4", "40Gi"),
                gpu("gpu-1", "80Gi"),
            ],
        )],
        Features::all(),
    );
    let want = exactly("m", "mig-class")
        .selector("device.capacity['gpu.test'].memory.compareTo(quantity('16Gi')) >= 0");
    let got = run(&node, &[claim("c", vec![want])], &SliceOrder::ByName);
    assert_eq!(devices(&node, &got), vec!["gpu-0-mig-3g40gb-4"]);
}

#[test]
fn selector_not_understood_outcome_instead_of_a_guess() {
    let node = node(
        vec![slice("s", vec![gpu("gpu-0", "80Gi")])],
        Features::all(),
    );
    let claims = [claim(
        "c",
        vec![
            exactly("g", "gpu-class")
                .selector("device.attributes['gpu.test'].model.matches('H1.*')"),
        ],
    )];
    let err = PreparedClaims::new(&claims, &classes(), node.features()).err();
    assert!(
        matches!(err, Some(AllocatorError::SelectorNotUnderstood { .. })),
        "{err:?}"
    );
}

#[test]
fn selector_runtime_error_aborts_the_node() {
    // `profile` is missing on the whole GPU: upstream aborts allocation on the node.
    let node = node(
        vec![slice("s", vec![gpu("gpu-0", "80Gi")])],
        Features::all(),
    );
    let claims = [claim(
        "c",
        vec![exactly("g", "gpu-class").selector("device.attributes['gpu.test'].profile == 'x'")],
    )];
    let got = allocate(
        &node,
        &AllocatedState::empty(&node),
        &prepare(&node, &claims),
        &SliceOrder::ByName,
    );
    assert!(
        matches!(got, Err(AllocatorError::SelectorRuntime { .. })),
        "{got:?}"
    );
}

#[test]
fn shared_counters_exclude_overlapping_devices() {
    // One GPU: whole (8 slices) and two 4-slice halves; after one half, the whole no longer fits.
    let node = node(partitioned_gpu(), Features::all());
    let state = AllocatedState::new(&node, &[allocated("gpu-0-half-0", false)])
        .unwrap_or_else(|e| panic!("{e}"));
    let any = [claim("c", vec![exactly("g", "any-class")])];
    let got = allocate(&node, &state, &prepare(&node, &any), &SliceOrder::ByName)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(devices(&node, &got), vec!["gpu-0-half-1"]);
    let two = [claim(
        "c",
        vec![exactly("a", "any-class"), exactly("b", "any-class")],
    )];
    let got = allocate(&node, &state, &prepare(&node, &two), &SliceOrder::ByName)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got, Outcome::Unsatisfiable);
}

#[test]
fn consumable_capacity_request_policy_default() {
    // A share that names no memory consumes the default (79Gi): a second one cannot fit.
    let node = node(
        vec![slice(
            "s",
            vec![shared("gpu-0-shared"), shared("gpu-1-shared")],
        )],
        Features::all(),
    );
    let claims = [
        claim("c1", vec![exactly("s", "shared-class")]),
        claim("c2", vec![exactly("s", "shared-class")]),
    ];
    let got = run(&node, &claims, &SliceOrder::ByName);
    assert_eq!(devices(&node, &got), vec!["gpu-0-shared", "gpu-1-shared"]);
    let Outcome::Allocated(results) = got else {
        panic!("allocated")
    };
    assert_eq!(
        results[0].devices[0]
            .consumed_capacity
            .get("gpu.test/memory"),
        Some(&q("79Gi"))
    );
}

#[test]
fn consumable_capacity_valid_range_min_and_step_rounding() {
    // After 78Gi of shares on gpu-0, 1500Mi is charged 2Gi and lands on gpu-1.
    let node = node(
        vec![slice(
            "s",
            vec![shared("gpu-0-shared"), shared("gpu-1-shared")],
        )],
        Features::all(),
    );
    let mut earlier = allocated("gpu-0-shared", true);
    earlier
        .consumed_capacity
        .insert("gpu.test/memory".into(), q("78Gi"));
    let state = AllocatedState::new(&node, &[earlier]).unwrap_or_else(|e| panic!("{e}"));
    let claims = [claim(
        "c",
        vec![exactly("s", "shared-class").capacity("memory", "1500Mi")],
    )];
    let got = allocate(&node, &state, &prepare(&node, &claims), &SliceOrder::ByName)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(devices(&node, &got), vec!["gpu-1-shared"]);
    let Outcome::Allocated(results) = got else {
        panic!("allocated")
    };
    assert_eq!(
        results[0].devices[0]
            .consumed_capacity
            .get("gpu.test/memory"),
        Some(&q("2Gi"))
    );
    // 1Gi still fits beside the 78Gi (79Gi ≤ 80Gi).
    let small = [claim(
        "c",
        vec![exactly("s", "shared-class").capacity("memory", "1Gi")],
    )];
    let got = allocate(&node, &state, &prepare(&node, &small), &SliceOrder::ByName)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(devices(&node, &got), vec!["gpu-0-shared"]);
}

#[test]
fn consumable_capacity_valid_values_rounding() {
    let mut dev = shared("gpu-0-shared");
    dev.capacity.insert(
        "gpu.test/compute".into(),
        Capacity {
            value: q("100"),
            policy: Some(RequestPolicy {
                default: Some(q("100")),
                valid_values: vec![q("25"), q("50"), q("100")],
                valid_range: None,
            }),
        },
    );
    let node = node(vec![slice("s", vec![dev])], Features::all());
    let claims = [claim(
        "c",
        vec![
            exactly("s", "shared-class")
                .capacity("compute", "30")
                .capacity("memory", "1Gi"),
        ],
    )];
    let Outcome::Allocated(results) = run(&node, &claims, &SliceOrder::ByName) else {
        panic!("allocated")
    };
    assert_eq!(
        results[0].devices[0]
            .consumed_capacity
            .get("gpu.test/compute"),
        Some(&q("50"))
    );
}

#[test]
fn allow_multiple_allocations_fresh_share_and_counters_drawn_once() {
    // The shared device draws the whole GPU's counters once; two shares fit, a MIG half does not.
    let mut slices = partitioned_gpu();
    let mut share = shared("gpu-0-shared");
    share.consumes_counters = vec![consume(&[("slices", "8")])];
    slices[1].devices.push(share);
    let node = node(slices, Features::all());
    let two_shares = [
        claim(
            "a",
            vec![exactly("s", "shared-class").capacity("memory", "10Gi")],
        ),
        claim(
            "b",
            vec![exactly("s", "shared-class").capacity("memory", "10Gi")],
        ),
    ];
    let Outcome::Allocated(results) = run(&node, &two_shares, &SliceOrder::ByName) else {
        panic!("allocated")
    };
    assert!(results.iter().all(|c| c.devices[0].share));
    assert_eq!(
        devices(&node, &Outcome::Allocated(results)),
        vec!["gpu-0-shared", "gpu-0-shared"]
    );
    let share_then_half = [
        claim(
            "a",
            vec![exactly("s", "shared-class").capacity("memory", "10Gi")],
        ),
        claim(
            "b",
            vec![
                exactly("h", "any-class").selector("device.attributes['gpu.test'].type == 'half'"),
            ],
        ),
    ];
    assert_eq!(
        run(&node, &share_then_half, &SliceOrder::ByName),
        Outcome::Unsatisfiable
    );
}

#[test]
fn first_available_with_whole_pod_backtracking_across_claims() {
    // Claim 1 prefers the MIG, claim 2 can only use the MIG: claim 1 falls back to whole.
    let node = node(
        vec![slice(
            "s",
            vec![mig("gpu-0-mig-1g10gb-0", "10Gi"), gpu("gpu-1", "80Gi")],
        )],
        Features::all(),
    );
    let flexible = first_available(
        "gpu",
        vec![exactly("mig", "mig-class"), exactly("whole", "gpu-class")],
    );
    let claims = [
        claim("c1", vec![flexible]),
        claim("c2", vec![exactly("m", "mig-class")]),
    ];
    let Outcome::Allocated(results) = run(&node, &claims, &SliceOrder::ByName) else {
        panic!("allocated")
    };
    assert_eq!(results[0].devices[0].request, "gpu/whole");
    assert_eq!(
        devices(&node, &Outcome::Allocated(results)),
        vec!["gpu-1", "gpu-0-mig-1g10gb-0"]
    );
}

#[test]
fn allocation_mode_all_and_exact_count() {
    let node = node(
        vec![slice(
            "s",
            vec![
                gpu("gpu-0", "80Gi"),
                gpu("gpu-1", "80Gi"),
                gpu("gpu-2", "80Gi"),
            ],
        )],
        Features::all(),
    );
    let all = [claim(
        "c",
        vec![exactly("g", "gpu-class").mode(AllocationMode::All)],
    )];
    assert_eq!(
        devices(&node, &run(&node, &all, &SliceOrder::ByName)),
        vec!["gpu-0", "gpu-1", "gpu-2"]
    );
    let two = [claim(
        "c",
        vec![exactly("g", "gpu-class").mode(AllocationMode::ExactCount(2))],
    )];
    assert_eq!(
        devices(&node, &run(&node, &two, &SliceOrder::ByName)),
        vec!["gpu-0", "gpu-1"]
    );
    let four = [claim(
        "c",
        vec![exactly("g", "gpu-class").mode(AllocationMode::ExactCount(4))],
    )];
    assert_eq!(
        run(&node, &four, &SliceOrder::ByName),
        Outcome::Unsatisfiable
    );
    // "All" with one device busy cannot be met.
    let state =
        AllocatedState::new(&node, &[allocated("gpu-1", false)]).unwrap_or_else(|e| panic!("{e}"));
    let got = allocate(&node, &state, &prepare(&node, &all), &SliceOrder::ByName)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got, Outcome::Unsatisfiable);
}

#[test]
fn device_taints_and_tolerations() {
    let mut sick = gpu("gpu-0", "80Gi");
    sick.taints.push(Taint {
        key: "gpu.test/xid".into(),
        value: "79".into(),
        effect: TaintEffect::NoSchedule,
    });
    let mut noted = gpu("gpu-1", "80Gi");
    noted.taints.push(Taint {
        key: "gpu.test/unmonitored".into(),
        value: String::new(),
        effect: TaintEffect::None,
    });
    let node = node(vec![slice("s", vec![sick, noted])], Features::all());
    let plain = [claim("c", vec![exactly("g", "gpu-class")])];
    assert_eq!(
        devices(&node, &run(&node, &plain, &SliceOrder::ByName)),
        vec!["gpu-1"]
    );
    let tolerant = [claim(
        "c",
        vec![exactly("g", "gpu-class").tolerate(Toleration {
            key: "gpu.test/xid".into(),
            operator: TolerationOperator::Exists,
            ..Toleration::default()
        })],
    )];
    assert_eq!(
        devices(&node, &run(&node, &tolerant, &SliceOrder::ByName)),
        vec!["gpu-0"]
    );
    // Without DRADeviceTaints (1.35 default) taints are not looked at.
    let off = Features {
        device_taints: false,
        ..Features::all()
    };
    let node_off = builders::node(node.slices().to_vec(), off);
    assert_eq!(
        devices(&node_off, &run(&node_off, &plain, &SliceOrder::ByName)),
        vec!["gpu-0"]
    );
}

#[test]
fn already_allocated_claims_consume_devices_counters_and_capacity() {
    let node = node(partitioned_gpu(), Features::all());
    let whole_taken =
        AllocatedState::new(&node, &[allocated("gpu-0", false)]).unwrap_or_else(|e| panic!("{e}"));
    let any = [claim("c", vec![exactly("g", "any-class")])];
    let got = allocate(
        &node,
        &whole_taken,
        &prepare(&node, &any),
        &SliceOrder::ByName,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        got,
        Outcome::Unsatisfiable,
        "the whole GPU holds every counter"
    );
    let elsewhere = AllocatedState::new(
        &node,
        &[AllocatedDevice {
            pool: "other-node".into(),
            ..allocated("gpu-0", false)
        }],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(elsewhere.unknown_devices, 1);
}

#[test]
fn incomplete_and_invalid_pools_are_skipped() {
    // resourceSliceCount 2 but one slice: nothing from that pool; "All" refuses outright.
    let node = node(
        vec![slice("s", vec![gpu("gpu-0", "80Gi")]).count(2)],
        Features::all(),
    );
    let one = [claim("c", vec![exactly("g", "gpu-class")])];
    assert_eq!(
        run(&node, &one, &SliceOrder::ByName),
        Outcome::Unsatisfiable
    );
    let all = [claim(
        "c",
        vec![exactly("g", "gpu-class").mode(AllocationMode::All)],
    )];
    let got = allocate(
        &node,
        &AllocatedState::empty(&node),
        &prepare(&node, &all),
        &SliceOrder::ByName,
    );
    assert!(
        matches!(got, Err(AllocatorError::AllWithBadPool { .. })),
        "{got:?}"
    );
    let dup = node_of(
        vec![slice("s", vec![gpu("gpu-0", "80Gi"), gpu("gpu-0", "40Gi")])],
        Features::all(),
    );
    assert!(matches!(dup.pools()[0].status, PoolStatus::Invalid(_)));
    assert_eq!(run(&dup, &one, &SliceOrder::ByName), Outcome::Unsatisfiable);
}

#[test]
fn disabled_features_refuse_claims_and_devices() {
    let f135 = Features::defaults(Release::V1_35);
    let node = node(partitioned_gpu(), f135);
    // Without DRAPartitionableDevices the counters slice is ignored: the pool is incomplete.
    assert_eq!(node.pools()[0].status, PoolStatus::Incomplete);
    let share = [claim(
        "c",
        vec![exactly("s", "shared-class").capacity("memory", "1Gi")],
    )];
    let err = PreparedClaims::new(&share, &classes(), f135).err();
    assert!(
        matches!(
            err,
            Some(AllocatorError::FeatureDisabled {
                gate: "DRAConsumableCapacity",
                ..
            })
        ),
        "{err:?}"
    );
    let no_list = Features {
        prioritized_list: false,
        ..f135
    };
    let fa = [claim(
        "c",
        vec![first_available("g", vec![exactly("a", "gpu-class")])],
    )];
    let err = PreparedClaims::new(&fa, &classes(), no_list).err();
    assert!(
        matches!(
            err,
            Some(AllocatorError::FeatureDisabled {
                gate: "DRAPrioritizedList",
                ..
            })
        ),
        "{err:?}"
    );
    let unknown = [claim("c", vec![exactly("g", "nope")])];
    assert!(matches!(
        PreparedClaims::new(&unknown, &classes(), f135),
        Err(AllocatorError::UnknownClass { .. })
    ));
}
