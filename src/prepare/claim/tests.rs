use serde_json::json;

use super::*;
use crate::prepare::ClaimBuilder;
use crate::prepare::config::{Sharing, TimeSliceInterval};

const DRIVER: &str = "gpu.tessera.dev";
const POOL: &str = "node-a";

fn want() -> ClaimRef {
    ClaimRef::new("default", "c1", "uid-1")
}

fn gpu_config(sharing: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "gpu.tessera.dev/v1alpha1", "kind": "GpuConfig", "sharing": sharing})
}

#[test]
fn only_this_drivers_results_are_taken_with_their_fields() {
    let claim = ClaimBuilder::new("default", "c1", "uid-1")
        .device("nic", "net.example.com", "node-a", "eth0")
        .share(
            "gpu/shared",
            DRIVER,
            POOL,
            "gpu-0-shared",
            "share-1",
            &[("memory", "10Gi")],
        )
        .build();
    let devices = allocated_devices(&claim, &want(), DRIVER, POOL).unwrap();
    assert_eq!(devices.len(), 1);
    let d = &devices[0];
    assert_eq!(d.device, "gpu-0-shared");
    assert_eq!(d.base_request(), "gpu");
    assert_eq!(d.share_id.as_deref(), Some("share-1"));
    assert_eq!(d.consumed_capacity["memory"], "10Gi");
    assert!(!d.admin_access);
}

#[test]
fn claim_entries_override_class_entries_and_foreign_entries_are_ignored() {
    let claim = ClaimBuilder::new("default", "c1", "uid-1")
        .device("a", DRIVER, POOL, "gpu-0")
        .device("b", DRIVER, POOL, "gpu-1")
        // Listed claim-first on purpose: the order in the list must not matter.
        .config(
            "FromClaim",
            DRIVER,
            &["a"],
            gpu_config(json!({"strategy": "MPS"})),
        )
        .config(
            "FromClass",
            DRIVER,
            &[],
            gpu_config(json!({"strategy": "TimeSlicing", "interval": "Long"})),
        )
        .config(
            "FromClaim",
            "other.example.com",
            &[],
            json!({"anything": true}),
        )
        .build();
    let devices = allocated_devices(&claim, &want(), DRIVER, POOL).unwrap();
    assert_eq!(
        devices[0].config.sharing,
        Some(Sharing::Mps {
            active_thread_percentage: None,
            pinned_memory_limit_bytes: None
        })
    );
    assert_eq!(
        devices[1].config.sharing,
        Some(Sharing::TimeSlicing {
            interval: TimeSliceInterval::Long
        })
    );
}

#[test]
fn config_for_a_subrequest_matches_by_base_name() {
    let claim = ClaimBuilder::new("default", "c1", "uid-1")
        .device("gpu/mig", DRIVER, POOL, "gpu-0")
        .config(
            "FromClaim",
            DRIVER,
            &["gpu"],
            gpu_config(json!({"strategy": "TimeSlicing"})),
        )
        .build();
    let devices = allocated_devices(&claim, &want(), DRIVER, POOL).unwrap();
    assert!(devices[0].config.sharing.is_some());
}

#[test]
fn each_bad_claim_gets_its_own_error() {
    let replaced = ClaimBuilder::new("default", "c1", "uid-2")
        .device("a", DRIVER, POOL, "gpu-0")
        .build();
    assert!(matches!(
        allocated_devices(&replaced, &want(), DRIVER, POOL),
        Err(PrepareError::UidMismatch { found, .. }) if found == "uid-2"
    ));

    let unallocated = ClaimBuilder::new("default", "c1", "uid-1")
        .unallocated()
        .build();
    assert!(matches!(
        allocated_devices(&unallocated, &want(), DRIVER, POOL),
        Err(PrepareError::NotAllocated { .. })
    ));

    let foreign = ClaimBuilder::new("default", "c1", "uid-1")
        .device("a", "other.example.com", POOL, "x")
        .build();
    let err = allocated_devices(&foreign, &want(), DRIVER, POOL).unwrap_err();
    assert!(err.to_string().contains("other.example.com"), "{err}");

    let other_pool = ClaimBuilder::new("default", "c1", "uid-1")
        .device("a", DRIVER, "node-b", "gpu-0")
        .build();
    assert!(matches!(
        allocated_devices(&other_pool, &want(), DRIVER, POOL),
        Err(PrepareError::ForeignPool { .. })
    ));

    let bad_config = ClaimBuilder::new("default", "c1", "uid-1")
        .device("a", DRIVER, POOL, "gpu-0")
        .config(
            "FromClaim",
            DRIVER,
            &["a"],
            gpu_config(json!({"strategy": "Magic"})),
        )
        .build();
    assert!(matches!(
        allocated_devices(&bad_config, &want(), DRIVER, POOL),
        Err(PrepareError::InvalidConfig { request, .. }) if request == "a"
    ));

    let bad_share = ClaimBuilder::new("default", "c1", "uid-1")
        .share("a", DRIVER, POOL, "gpu-0-shared", "../x", &[])
        .build();
    assert!(matches!(
        allocated_devices(&bad_share, &want(), DRIVER, POOL),
        Err(PrepareError::InvalidName(e)) if e.what == "share ID"
    ));
    // A device or request name that would change a CDI device name's shape.
    let bad_device = ClaimBuilder::new("default", "c1", "uid-1")
        .device("a", DRIVER, POOL, "gpu-0/../x")
        .build();
    assert!(matches!(
        allocated_devices(&bad_device, &want(), DRIVER, POOL),
        Err(PrepareError::InvalidName(e)) if e.what == "device"
    ));
    let bad_request = ClaimBuilder::new("default", "c1", "uid-1")
        .device("a=b", DRIVER, POOL, "gpu-0")
        .build();
    assert!(matches!(
        allocated_devices(&bad_request, &want(), DRIVER, POOL),
        Err(PrepareError::InvalidName(e)) if e.what == "request"
    ));

    let mut too_many = ClaimBuilder::new("default", "c1", "uid-1");
    for i in 0..33 {
        too_many = too_many.device("a", DRIVER, POOL, &format!("gpu-{i}"));
    }
    assert!(matches!(
        allocated_devices(&too_many.build(), &want(), DRIVER, POOL),
        Err(PrepareError::TooMany { count: 33, .. })
    ));
}

#[test]
fn an_invalid_entry_for_another_request_does_not_fail_this_one() {
    let claim = ClaimBuilder::new("default", "c1", "uid-1")
        .device("a", DRIVER, POOL, "gpu-0")
        .config("FromClaim", DRIVER, &["b"], json!({"kind": "nonsense"}))
        .build();
    assert!(allocated_devices(&claim, &want(), DRIVER, POOL).is_ok());
}

#[test]
fn claim_refs_follow_the_api_name_rules() {
    assert!(want().validate().is_ok());
    for (bad, what) in [
        (ClaimRef::new("", "c", "u"), "namespace"),
        (
            ClaimRef::new("ns1/resourceclaims/claim-a#", "c", "u"),
            "namespace",
        ),
        (ClaimRef::new("Default", "c", "u"), "namespace"),
        (ClaimRef::new("ns", "claim-a?watch=1", "u"), "claim name"),
        (ClaimRef::new("ns", "c".repeat(254), "u"), "claim name"),
        (ClaimRef::new("ns", "..", "u"), "claim name"),
        (ClaimRef::new("ns", "c", "../../etc"), "claim uid"),
    ] {
        match bad.validate() {
            Err(PrepareError::InvalidName(e)) => assert_eq!(e.what, what, "{bad:?}"),
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    ClaimRef::new("ns", "c.d-e", "5f0c2a8e-1b2c-4d3e-8f90-a1b2c3d4e5f6")
        .validate()
        .unwrap();
}
