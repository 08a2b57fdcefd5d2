use std::collections::BTreeMap;

use super::*;
use crate::prepare::config::DeviceConfig;
use crate::prepare::test_inventory::mixed;

fn allocated(device: &str, sharing: Option<Sharing>, consumed: &[(&str, &str)]) -> AllocatedDevice {
    AllocatedDevice {
        request: "gpu".to_owned(),
        pool: "node-a".to_owned(),
        device: device.to_owned(),
        share_id: None,
        admin_access: false,
        consumed_capacity: consumed
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
        config: DeviceConfig { sharing },
    }
}

#[test]
fn every_kind_resolves_on_the_gpu_in_the_right_mode() {
    let inv = mixed();
    assert_eq!(resolve("gpu-0", &inv, 4).unwrap().kind, DeviceKind::Whole);
    assert_eq!(
        resolve("gpu-0-shared", &inv, 4).unwrap().kind,
        DeviceKind::Shared
    );
    assert_eq!(
        resolve("gpu-0-share-3", &inv, 4).unwrap().kind,
        DeviceKind::Share { replica: 3 }
    );
    assert_eq!(
        resolve("gpu-1-mig-1g10gb-6", &inv, 4).unwrap().kind,
        DeviceKind::DynamicMig {
            profile: "1g.10gb".to_owned(),
            placement: Placement::new(6, 1)
        }
    );
    assert_eq!(
        resolve("gpu-1", &inv, 4).unwrap().kind,
        DeviceKind::DynamicMig {
            profile: "7g.80gb".to_owned(),
            placement: Placement::new(0, 8)
        },
        "a whole GPU in dynamic MIG mode is its full-size instance"
    );
    assert_eq!(
        resolve("gpu-1-shared", &inv, 4).unwrap().kind,
        DeviceKind::SharedMig {
            profile: "7g.80gb".to_owned(),
            placement: Placement::new(0, 8)
        },
        "shares of a dynamic-MIG GPU run on its full-size instance"
    );
    let stat = resolve("gpu-2-mig-3g40gb-0", &inv, 4).unwrap();
    assert!(matches!(stat.kind, DeviceKind::StaticMig { ref uuid, .. } if uuid == "MIG-static-3g"));
    assert_eq!(stat.gpu.uuid, inv.gpus[2].uuid);
}

#[test]
fn unknown_devices_say_why() {
    let inv = mixed();
    for (name, why) in [
        ("gpu-9", "no GPU 9"),
        ("nic-0", "not a tessera device"),
        ("gpu-0-share-4", "4 replicas"),
        ("gpu-0-mig-1g10gb-0", "MIG is disabled"),
        ("gpu-1-mig-1g10gb-7", "no MIG profile"),
        ("gpu-1-mig-5g50gb-0", "no MIG profile"),
        ("gpu-2", "static MIG"),
        ("gpu-2-mig-1g10gb-0", "no such MIG device"),
        (
            "gpu-1-share-0",
            "replicas are only made of GPUs with MIG off",
        ),
        ("gpu-2-shared", "static MIG"),
    ] {
        let err = resolve(name, &inv, 4).unwrap_err();
        assert!(
            matches!(err, PrepareError::UnknownDevice { .. }) && err.to_string().contains(why),
            "{name}: {err}"
        );
    }
}

#[test]
fn footprints_exclude_what_shares_hardware() {
    let whole = DeviceKind::Whole.footprint(None);
    let mig = |start, size| DeviceKind::DynamicMig {
        profile: String::new(),
        placement: Placement::new(start, size),
    };
    let shared_a = DeviceKind::Shared.footprint(Some("a"));
    let shared_b = DeviceKind::Shared.footprint(Some("b"));
    let rep0 = DeviceKind::Share { replica: 0 }.footprint(None);
    let rep1 = DeviceKind::Share { replica: 1 }.footprint(None);

    assert!(whole.conflicts_with(&whole));
    assert!(whole.conflicts_with(&rep0));
    assert!(
        mig(0, 2)
            .footprint(None)
            .conflicts_with(&mig(1, 1).footprint(None))
    );
    assert!(
        !mig(0, 2)
            .footprint(None)
            .conflicts_with(&mig(2, 2).footprint(None))
    );
    assert!(mig(0, 1).footprint(None).conflicts_with(&shared_a));
    assert!(!shared_a.conflicts_with(&shared_b));
    assert!(shared_a.conflicts_with(&shared_a));
    assert!(DeviceKind::Shared.footprint(None).conflicts_with(&shared_a));
    assert!(!rep0.conflicts_with(&rep1));
    assert!(rep0.conflicts_with(&rep0));
    assert!(!shared_a.conflicts_with(&rep0));
}

#[test]
fn shares_default_to_time_slicing_and_mps_enforces_consumed_capacity() {
    let plan = sharing_plan(&allocated("gpu-0-shared", None, &[]), &DeviceKind::Shared).unwrap();
    assert_eq!(
        plan,
        Some(SharingPlan {
            gpu: GpuSharing::TimeSlicing {
                interval: TimeSliceInterval::Default
            },
            mps: None
        })
    );
    assert_eq!(
        sharing_plan(&allocated("gpu-0", None, &[]), &DeviceKind::Whole).unwrap(),
        None
    );

    let mps = Sharing::Mps {
        active_thread_percentage: None,
        pinned_memory_limit_bytes: None,
    };
    let plan = sharing_plan(
        &allocated(
            "gpu-0-shared",
            Some(mps),
            &[("memory", "10Gi"), ("compute", "25")],
        ),
        &DeviceKind::Shared,
    )
    .unwrap()
    .unwrap();
    assert_eq!(plan.gpu, GpuSharing::Mps);
    assert_eq!(
        plan.mps,
        Some(MpsLimits {
            active_thread_percentage: Some(25),
            pinned_memory_limit_bytes: Some(10 << 30)
        })
    );

    let explicit = Sharing::Mps {
        active_thread_percentage: Some(60),
        pinned_memory_limit_bytes: Some(1 << 30),
    };
    let plan = sharing_plan(
        &allocated(
            "gpu-0-shared",
            Some(explicit),
            &[("memory", "10Gi"), ("compute", "25")],
        ),
        &DeviceKind::Shared,
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        plan.mps.unwrap().active_thread_percentage,
        Some(60),
        "config beats consumed capacity"
    );
}

#[test]
fn sharing_config_on_a_mig_device_is_refused() {
    let ts = Sharing::TimeSlicing {
        interval: TimeSliceInterval::Long,
    };
    let kind = DeviceKind::DynamicMig {
        profile: "1g.10gb".to_owned(),
        placement: Placement::new(0, 1),
    };
    assert!(matches!(
        sharing_plan(&allocated("gpu-1-mig-1g10gb-0", Some(ts), &[]), &kind),
        Err(PrepareError::UnsupportedConfig { .. })
    ));
}
