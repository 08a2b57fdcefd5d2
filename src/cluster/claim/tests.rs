use k8s_openapi::api::resource::v1::{DeviceConstraint, ResourceClaimConsumerReference};

use super::*;
use crate::cluster::slice::amount;
use crate::cluster::testing::objects::{
    Given, Want, allocate, claim, claim_first_available, reserve,
};

const DRIVER: &str = "gpu.tessera.dev";
const UID: &str = "0f3c2a9e-55b1-4c1e-9d7a-2b8e4f6a1c3d";

fn whole() -> Want<'static> {
    Want {
        class: "gpu.tessera.dev",
        selector: None,
        capacity: &[],
    }
}

fn read(c: &ResourceClaim) -> ClaimView {
    read_claim(c, DRIVER, &mut Interners::default()).unwrap()
}

#[test]
fn identity_and_an_unallocated_spec() {
    let view = read(&claim("team-a", "train-gpu", UID, whole()));
    assert_eq!(view.key.as_str(), "team-a/train-gpu");
    assert_eq!(view.uid.to_string(), UID);
    assert!(!view.is_allocated());
    assert!(view.devices().is_empty());
    assert!(view.reserved_for.is_empty());
    let [request] = &*view.spec.requests else {
        panic!("{:?}", view.spec)
    };
    assert_eq!(&*request.name, "gpu");
    assert!(!request.first_available);
    let [alt] = &*request.alternatives else {
        panic!("{request:?}")
    };
    assert_eq!(&*alt.device_class, "gpu.tessera.dev");
    assert_eq!(alt.mode, AllocationMode::ExactCount(1));
    assert!(alt.selectors.is_empty() && alt.capacity.is_empty() && !alt.unreadable);
}

#[test]
fn first_available_alternatives_with_selectors_and_capacity_requests() {
    let selector = "device.attributes['gpu.tessera.dev'].profile == '1g.10gb'";
    let c = claim_first_available(
        "ns",
        "c",
        UID,
        &[
            (
                "mig",
                Want {
                    class: "mig.gpu.tessera.dev",
                    selector: Some(selector),
                    capacity: &[],
                },
            ),
            (
                "shared",
                Want {
                    class: "shared.gpu.tessera.dev",
                    selector: None,
                    capacity: &[("gpu.tessera.dev/memory", "10Gi"), ("compute", "25")],
                },
            ),
            ("whole", whole()),
        ],
    );
    let view = read(&c);
    let request = &view.spec.requests[0];
    assert!(request.first_available);
    let names: Vec<_> = request
        .alternatives
        .iter()
        .map(|a| a.name.as_deref().unwrap())
        .collect();
    assert_eq!(names, ["mig", "shared", "whole"]);
    assert_eq!(&*request.alternatives[0].selectors[0], selector);
    let shared = &request.alternatives[1];
    assert_eq!(amount(&shared.capacity, "memory"), Some(10 << 30));
    assert_eq!(amount(&shared.capacity, "compute"), Some(25));
}

#[test]
fn unreadable_parts_are_flagged_not_guessed() {
    let mut c = claim(
        "ns",
        "c",
        UID,
        Want {
            class: "shared.gpu.tessera.dev",
            selector: None,
            capacity: &[("memory", "a lot")],
        },
    );
    let view = read(&c);
    assert!(view.spec.requests[0].alternatives[0].unreadable);

    let exact = c.spec.devices.as_mut().unwrap().requests.as_mut().unwrap()[0]
        .exactly
        .as_mut()
        .unwrap();
    exact.capacity = None;
    exact.allocation_mode = Some("Some".into());
    assert!(read(&c).spec.requests[0].alternatives[0].unreadable);

    let exact = c.spec.devices.as_mut().unwrap().requests.as_mut().unwrap()[0]
        .exactly
        .as_mut()
        .unwrap();
    exact.allocation_mode = Some("All".into());
    let alt = read(&c).spec.requests[0].alternatives[0].clone();
    assert_eq!(alt.mode, AllocationMode::All);
    assert!(!alt.unreadable);
    let exact = c.spec.devices.as_mut().unwrap().requests.as_mut().unwrap()[0]
        .exactly
        .as_mut()
        .unwrap();
    exact.allocation_mode = None;
    exact.count = Some(3);
    assert_eq!(
        read(&c).spec.requests[0].alternatives[0].mode,
        AllocationMode::ExactCount(3)
    );
}

#[test]
fn constraints_are_kept() {
    let mut c = claim("ns", "c", UID, whole());
    c.spec.devices.as_mut().unwrap().constraints = Some(vec![
        DeviceConstraint {
            requests: Some(vec!["gpu".into()]),
            match_attribute: Some("gpu.tessera.dev/model".into()),
            distinct_attribute: None,
        },
        DeviceConstraint {
            requests: None,
            match_attribute: None,
            distinct_attribute: Some("gpu.tessera.dev/uuid".into()),
        },
    ]);
    let view = read(&c);
    assert_eq!(view.spec.constraints.len(), 2);
    assert_eq!(
        view.spec.constraints[0].attribute,
        ConstraintAttribute::Match(Arc::from("gpu.tessera.dev/model"))
    );
    assert_eq!(&*view.spec.constraints[0].requests[0], "gpu");
    assert_eq!(
        view.spec.constraints[1].attribute,
        ConstraintAttribute::Distinct(Arc::from("gpu.tessera.dev/uuid"))
    );
}

#[test]
fn allocation_results_shares_and_node() {
    let mut c = claim("ns", "c", UID, whole());
    let consumed = [("memory", "1536Mi"), ("gpu.tessera.dev/compute", "25")];
    allocate(
        &mut c,
        "node-a",
        &[
            Given {
                driver: DRIVER,
                pool: "node-a",
                device: "gpu-0-shared",
                request: "gpu/shared",
                share: Some((UID, &consumed)),
            },
            Given {
                driver: "nic.example.com",
                pool: "node-a",
                device: "eth0",
                request: "nic",
                share: None,
            },
        ],
    );
    let view = read(&c);
    let allocation = view.allocation.as_ref().unwrap();
    assert_eq!(allocation.node.as_deref(), Some("node-a"));
    let [gpu, nic] = &*allocation.devices else {
        panic!("{allocation:?}")
    };
    assert_eq!(
        (&*gpu.driver, &*gpu.pool, &*gpu.device),
        (DRIVER, "node-a", "gpu-0-shared")
    );
    assert_eq!(gpu.subrequest(), Some("shared"));
    assert_eq!(
        gpu.share_id.as_ref().map(ToString::to_string).as_deref(),
        Some(UID)
    );
    assert_eq!(amount(&gpu.consumed, "memory"), Some(1536 << 20));
    assert_eq!(amount(&gpu.consumed, "compute"), Some(25));
    assert!(!gpu.admin_access);
    assert_eq!(&*nic.driver, "nic.example.com");
    assert_eq!(nic.subrequest(), None);
}

#[test]
fn only_pods_in_reserved_for_are_kept() {
    let mut c = claim("ns", "c", UID, whole());
    reserve(&mut c, "pod-b", "uid-b");
    reserve(&mut c, "pod-a", "uid-a");
    c.status
        .as_mut()
        .unwrap()
        .reserved_for
        .as_mut()
        .unwrap()
        .push(ResourceClaimConsumerReference {
            api_group: Some("example.com".into()),
            resource: "jobs".into(),
            name: "job".into(),
            uid: "uid-j".into(),
        });
    let view = read(&c);
    let names: Vec<&str> = view.reserved_for.iter().map(|p| &*p.name).collect();
    assert_eq!(names, ["pod-a", "pod-b"]);
}

#[test]
fn claims_from_one_template_share_their_spec() {
    let mut interners = Interners::default();
    let a = read_claim(&claim("ns", "a", UID, whole()), DRIVER, &mut interners).unwrap();
    let b = read_claim(&claim("ns", "b", UID, whole()), DRIVER, &mut interners).unwrap();
    assert!(Arc::ptr_eq(&a.spec, &b.spec));
}

#[test]
fn nameless_claims_are_refused() {
    let mut c = claim("ns", "c", UID, whole());
    c.metadata.name = None;
    assert!(read_claim(&c, DRIVER, &mut Interners::default()).is_none());
}

#[test]
fn over_long_selectors_are_flagged() {
    let long = "x".repeat(MAX_SELECTOR_LEN + 1);
    let c = claim(
        "ns",
        "c",
        UID,
        Want {
            class: "gpu.tessera.dev",
            selector: Some(&long),
            capacity: &[],
        },
    );
    let alt = &read(&c).spec.requests[0].alternatives[0];
    assert!(alt.unreadable);
    assert!(alt.selectors.is_empty());
}
