//! One test per rule: start from valid slices, break one thing, expect one clear violation.

use k8s_openapi::api::resource::v1::{
    CapacityRequestPolicy, CapacityRequestPolicyRange, Counter, CounterSet,
    DeviceCounterConsumption, DeviceTaint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::*;
use crate::discovery::FakeProfile;
use crate::publish::{FeatureLevel, SliceOptions, render};

/// Mixed profile at consumable, cut kind-major: a counters slice (index 0) and one devices
/// slice (index 1).
fn valid() -> Vec<ResourceSlice> {
    let opts = SliceOptions::new("node-1", FeatureLevel::Consumable);
    let slices = crate::publish::slices::render_with_layout(
        &FakeProfile::Mixed.inventory("node-1"),
        &opts,
        crate::model::device_order::Layout::KindMajor,
    )
    .unwrap();
    assert_eq!(slices.len(), 2);
    validate(&slices).unwrap();
    slices
}

fn devices(slices: &mut [ResourceSlice]) -> &mut Vec<Device> {
    slices[1].spec.devices.as_mut().unwrap()
}

fn device<'a>(slices: &'a mut [ResourceSlice], name: &str) -> &'a mut Device {
    devices(slices).iter_mut().find(|d| d.name == name).unwrap()
}

/// The violations' text, checked to mention `needle`.
fn expect(slices: &[ResourceSlice], needle: &str) -> ValidationError {
    let err = validate(slices).expect_err(needle);
    let text = err.to_string();
    assert!(text.contains(needle), "expected {needle:?} in:\n{text}");
    err
}

fn q(s: &str) -> Quantity {
    Quantity(s.to_owned())
}

#[test]
fn too_many_devices_with_counters() {
    let mut s = valid();
    let template = device(&mut s, "gpu-3-mig-1g10gb-6").clone();
    let list = devices(&mut s);
    for i in list.len()..65 {
        let mut d = template.clone();
        d.name = format!("extra-{i}");
        list.push(d);
    }
    let err = expect(
        &s,
        "has 65 devices, at most 64 allowed (devices use counters",
    );
    assert_eq!(err.violations[0].path, "spec.devices");
}

#[test]
fn too_many_devices_without_counters() {
    let opts = SliceOptions::new("node-1", FeatureLevel::Ga);
    let mut s = render(&FakeProfile::H100x8.inventory("node-1"), &opts).unwrap();
    let template = s[0].spec.devices.as_ref().unwrap()[0].clone();
    let list = s[0].spec.devices.as_mut().unwrap();
    for i in 0..128 - 8 {
        let mut d = template.clone();
        d.name = format!("extra-{i}");
        list.push(d);
    }
    validate(&s).unwrap();
    let mut d = template;
    d.name = "one-too-many".into();
    s[0].spec.devices.as_mut().unwrap().push(d);
    expect(&s, "has 129 devices, at most 128 allowed");
}

#[test]
fn taints_lower_the_device_limit_and_are_bounded() {
    let opts = SliceOptions::new("node-1", FeatureLevel::Ga);
    let mut s = render(&FakeProfile::H100x8.inventory("node-1"), &opts).unwrap();
    let taint = DeviceTaint {
        key: "gpu.tessera.dev/xid".into(),
        effect: "NoSchedule".into(),
        ..DeviceTaint::default()
    };
    let list = s[0].spec.devices.as_mut().unwrap();
    list[0].taints = Some(vec![taint; 17]);
    let template = list[1].clone();
    for i in 0..60 {
        let mut d = template.clone();
        d.name = format!("extra-{i}");
        list.push(d);
    }
    let err = expect(&s, "has 68 devices, at most 64 allowed");
    assert!(
        err.to_string().contains("taints: has 17, at most 16"),
        "{err}"
    );
}

#[test]
fn counters_and_devices_in_one_slice() {
    let mut s = valid();
    s[1].spec.shared_counters = s[0].spec.shared_counters.take();
    s.remove(0);
    s[0].spec.pool.resource_slice_count = 1;
    expect(&s, "only one of sharedCounters or devices is allowed");
}

#[test]
fn too_many_counter_sets_and_counters() {
    let mut s = valid();
    let sets = s[0].spec.shared_counters.as_mut().unwrap();
    for i in 10..16 {
        sets.push(CounterSet {
            name: format!("gpu-{i}-counters"),
            counters: [("memory".to_owned(), Counter { value: q("1") })].into(),
        });
    }
    sets[0].counters = (0..33)
        .map(|i| (format!("c{i}"), Counter { value: q("1") }))
        .collect();
    let err = expect(&s, "has 9 counter sets, at most 8 allowed");
    assert!(err.to_string().contains("has 33, 1 to 32 allowed"), "{err}");
}

#[test]
fn counter_and_set_names_are_dns_labels() {
    let mut s = valid();
    let sets = s[0].spec.shared_counters.as_mut().unwrap();
    sets[0].name = "GPU_0".into();
    sets[1]
        .counters
        .insert("memorySlice0".into(), Counter { value: q("1") });
    let err = expect(&s, "sharedCounters[0].name: must be a DNS label");
    assert!(err.to_string().contains("counters[memorySlice0]"), "{err}");
}

#[test]
fn consumptions_are_bounded_and_must_exist_and_fit() {
    let mut s = valid();
    let d = device(&mut s, "gpu-3-mig-1g10gb-6");
    let mut c = d.consumes_counters.as_ref().unwrap()[0].clone();
    d.consumes_counters.as_mut().unwrap().push(c.clone());
    c.counter_set = "gpu-9-counters".into();
    d.consumes_counters.as_mut().unwrap().push(c);
    let err = expect(&s, "consumesCounters: has 3, at most 2 allowed");
    let text = err.to_string();
    assert!(
        text.contains("duplicate counter set \"gpu-3-counters\""),
        "{text}"
    );
    assert!(
        text.contains("counter set \"gpu-9-counters\" is not defined in the pool"),
        "{text}"
    );

    let mut s = valid();
    let d = device(&mut s, "gpu-3-mig-2g20gb-4");
    let c = &mut d.consumes_counters.as_mut().unwrap()[0];
    c.counters
        .insert("compute-slices".into(), Counter { value: q("8") });
    c.counters.insert("nvdec".into(), Counter { value: q("1") });
    let err = expect(&s, "draws 8 but the set holds 7 units");
    assert!(
        err.to_string().contains("counter \"nvdec\" is not in set"),
        "{err}"
    );
}

#[test]
fn attributes_and_capacities_are_bounded_per_device() {
    let mut s = valid();
    let d = device(&mut s, "gpu-0");
    let attributes = d.attributes.as_mut().unwrap();
    for i in 0..25 {
        attributes.insert(
            format!("extra{i}"),
            DeviceAttribute {
                int: Some(i),
                ..Default::default()
            },
        );
    }
    expect(&s, "has 36 attributes and capacities, at most 32 allowed");
}

#[test]
fn list_attribute_values_are_bounded() {
    let mut s = valid();
    let d = device(&mut s, "gpu-0");
    d.attributes.as_mut().unwrap().insert(
        "coreIDs".into(),
        DeviceAttribute {
            ints: Some((0..40).collect()),
            ..Default::default()
        },
    );
    expect(&s, "attribute values, at most 48 allowed");
}

#[test]
fn attribute_values_keys_and_versions_are_checked() {
    let mut s = valid();
    let d = device(&mut s, "gpu-0");
    let a = d.attributes.as_mut().unwrap();
    a.insert(
        "model".into(),
        DeviceAttribute {
            string: Some("x".repeat(65)),
            ..Default::default()
        },
    );
    a.insert(
        "driverVersion".into(),
        DeviceAttribute {
            version: Some("570.124.06".into()),
            ..Default::default()
        },
    );
    a.insert(
        "both".into(),
        DeviceAttribute {
            int: Some(1),
            bool: Some(true),
            ..Default::default()
        },
    );
    a.insert(
        "bad-key".into(),
        DeviceAttribute {
            int: Some(1),
            ..Default::default()
        },
    );
    a.insert(
        "a/b/c".into(),
        DeviceAttribute {
            int: Some(1),
            ..Default::default()
        },
    );
    a.insert(
        "empty".into(),
        DeviceAttribute {
            strings: Some(vec![]),
            ..Default::default()
        },
    );
    let err = expect(
        &s,
        "attributes[model]: string of 65 characters, at most 64 allowed",
    );
    let text = err.to_string();
    for needle in [
        "version \"570.124.06\" is not semver",
        "attributes[both]: exactly one value must be set, 2 are",
        "identifier \"bad-key\" is not a C identifier",
        "must not contain more than one slash",
        "a list value must not be empty",
    ] {
        assert!(text.contains(needle), "{needle} in\n{text}");
    }
}

#[test]
fn request_policies_need_multiple_allocations() {
    let mut s = valid();
    let shared_memory = device(&mut s, "gpu-0-shared").capacity.as_ref().unwrap()["memory"].clone();
    device(&mut s, "gpu-0")
        .capacity
        .as_mut()
        .unwrap()
        .insert("memory".into(), shared_memory);
    expect(
        &s,
        "capacity[memory].requestPolicy: allowMultipleAllocations must be true",
    );
}

#[test]
fn request_policies_are_consistent_with_the_capacity() {
    let policy = |default: Option<&str>, min: &str, max: Option<&str>, step: Option<&str>| {
        CapacityRequestPolicy {
            default: default.map(q),
            valid_range: Some(CapacityRequestPolicyRange {
                min: q(min),
                max: max.map(q),
                step: step.map(q),
            }),
            valid_values: None,
        }
    };
    let cases = [
        (
            policy(None, "1Gi", None, None),
            "default: required when validRange is set",
        ),
        (
            policy(Some("1Gi"), "100Gi", None, None),
            "min: is larger than the capacity",
        ),
        (
            policy(Some("1Gi"), "2Gi", None, None),
            "default: is less than validRange.min",
        ),
        (
            policy(Some("1Gi"), "1Gi", Some("90Gi"), None),
            "max: is larger than the capacity",
        ),
        (
            policy(Some("1500Mi"), "1Gi", Some("79Gi"), Some("1Gi")),
            "default: is not min plus a multiple of step",
        ),
        (
            policy(Some("1Gi"), "1Gi", Some("1500Mi"), Some("1Gi")),
            "max: is not min plus a multiple of step",
        ),
        (
            policy(Some("1Gi"), "1Gi", None, Some("0")),
            "step: must be greater than zero",
        ),
        (
            policy(Some("1Gi"), "1Gi", None, Some("80Gi")),
            "one step above min is larger than the capacity",
        ),
        (
            policy(Some("5Gi"), "1Gi", Some("4Gi"), None),
            "default: is more than validRange.max",
        ),
    ];
    for (p, needle) in cases {
        let mut s = valid();
        let cap = device(&mut s, "gpu-0-shared").capacity.as_mut().unwrap();
        cap.get_mut("memory").unwrap().request_policy = Some(p);
        expect(&s, needle);
    }
    let mut s = valid();
    let cap = device(&mut s, "gpu-0-shared").capacity.as_mut().unwrap();
    cap.get_mut("memory").unwrap().request_policy = Some(CapacityRequestPolicy {
        default: Some(q("3Gi")),
        valid_values: Some(vec![q("1Gi"), q("2Gi"), q("2Gi"), q("90Gi")]),
        valid_range: None,
    });
    let err = expect(&s, "validValues: must be distinct and ascending");
    let text = err.to_string();
    assert!(
        text.contains("larger than the capacity") && text.contains("must be one of validValues"),
        "{text}"
    );
}

#[test]
fn names_and_node_selection() {
    let mut s = valid();
    device(&mut s, "gpu-0").name = "GPU_0".into();
    device(&mut s, "gpu-1").name = "gpu-0-shared".into();
    s[1].spec.all_nodes = Some(true);
    s[1].spec.driver = "Tessera".into();
    let err = expect(&s, "\"GPU_0\" must be a DNS label");
    let text = err.to_string();
    for needle in [
        "duplicate device \"gpu-0-shared\"",
        "exactly one of nodeName, nodeSelector, allNodes, perDeviceNodeSelection is required, 2 are set",
        "spec.driver: \"Tessera\" must be a DNS subdomain",
    ] {
        assert!(text.contains(needle), "{needle} in\n{text}");
    }
    let mut s = valid();
    s[0].spec.node_name = None;
    expect(&s, "is required, 0 are set");
    let mut s = valid();
    device(&mut s, "gpu-0").node_name = Some("node-1".into());
    expect(&s, "need perDeviceNodeSelection");
}

#[test]
fn the_pool_must_be_consistent_across_slices() {
    let mut s = valid();
    s[1].spec.pool.generation = 2;
    expect(&s, "spec.pool.generation: differs from slice");
    let mut s = valid();
    s[1].spec.pool.resource_slice_count = 3;
    s[0].spec.pool.resource_slice_count = 3;
    expect(&s, "resourceSliceCount: is 3, but the pool has 2 slices");
    let mut s = valid();
    let extra = s[1].clone();
    s.push(extra);
    for slice in &mut s {
        slice.spec.pool.resource_slice_count = 3;
    }
    let err = expect(&s, "two slices share this name");
    assert!(err.to_string().contains("is also in slice"), "{err}");
    let mut s = valid();
    s[0].spec.pool.resource_slice_count = 0;
    s[0].spec.pool.generation = -1;
    s[0].spec.pool.name = "node_1".into();
    let err = expect(&s, "resourceSliceCount: must be greater than zero");
    assert!(
        err.to_string()
            .contains("spec.pool.generation: must be zero or more"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("must be DNS subdomains separated by '/'"),
        "{err}"
    );
}

#[test]
fn counter_sets_are_unique_in_the_pool_and_slices_are_named() {
    let mut s = valid();
    let sets = s[0].spec.shared_counters.clone();
    let mut second = s[0].clone();
    second.metadata.name = Some("node-1-extra-counters".into());
    second.spec.shared_counters = sets;
    s.push(second);
    for slice in &mut s {
        slice.spec.pool.resource_slice_count = 3;
    }
    expect(&s, "is defined twice in the pool");
    let mut s = valid();
    s[0].metadata.name = None;
    let err = expect(&s, "slice #0: metadata.name: is required");
    assert_eq!(err.violations[0].slice, "#0");
}

#[test]
fn long_reports_are_cut() {
    let mut s = valid();
    for d in devices(&mut s) {
        d.name = "X".into();
    }
    let err = validate(&s).unwrap_err();
    assert_eq!(err.violations.len(), MAX_LISTED);
    assert!(err.omitted > 0);
    assert!(err.to_string().contains("more"), "{err}");
}

#[test]
fn a_wrong_consumption_shape_is_caught() {
    let mut s = valid();
    device(&mut s, "gpu-0").consumes_counters = Some(vec![DeviceCounterConsumption {
        counter_set: "gpu-0-counters".into(),
        counters: Default::default(),
    }]);
    expect(&s, "consumesCounters[0].counters: has 0, 1 to 32 allowed");
}
