use super::*;
use crate::model::mig::Placement;

fn gpu(index: u32) -> Gpu {
    Gpu {
        index,
        uuid: format!("GPU-{index:08x}-0000-4000-8000-000000000000"),
        pci_bus_id: format!("0000:{:02x}:00.0", 0x10 + index),
        product_name: "NVIDIA H100 80GB HBM3".into(),
        memory_bytes: 81559 * 1024 * 1024,
        architecture: "Hopper".into(),
        cuda_compute_capability: "9.0".into(),
        mig: MigState::Disabled,
    }
}

fn inventory(gpus: Vec<Gpu>) -> Inventory {
    Inventory {
        driver_version: "570.124.06".into(),
        cuda_driver_version: Some("12.8".into()),
        gpus,
    }
}

fn mig(uuid: &str, profile: &str, start: u8, size: u8) -> MigDevice {
    MigDevice {
        uuid: uuid.into(),
        profile: profile.into(),
        placement: Placement::new(start, size),
        memory_bytes: 9984 * 1024 * 1024,
    }
}

#[test]
fn a_plain_node_passes() {
    inventory((0..8).map(gpu).collect()).validate().unwrap();
    inventory(vec![]).validate().unwrap();
}

#[test]
fn duplicate_indexes_and_uuids_are_refused() {
    let err = inventory(vec![gpu(1), gpu(1)]).validate().unwrap_err();
    assert_eq!(err, InventoryError::DuplicateIndex { index: 1 });
    let mut b = gpu(2);
    b.uuid = gpu(1).uuid;
    let err = inventory(vec![gpu(1), b]).validate().unwrap_err();
    assert!(matches!(err, InventoryError::DuplicateUuid { .. }), "{err}");
}

#[test]
fn too_many_gpus_are_refused() {
    let gpus = (0..=MAX_INVENTORY_GPUS as u32).map(gpu).collect();
    let err = inventory(gpus).validate().unwrap_err();
    assert!(err.to_string().contains("at most 64"), "{err}");
}

#[test]
fn text_fields_are_bounded_and_named() {
    let mut g = gpu(0);
    g.product_name = "x".repeat(65);
    let err = inventory(vec![g]).validate().unwrap_err();
    assert_eq!(
        err.to_string(),
        "productName of GPU 0 must be 1 to 64 characters, got 65"
    );
    let mut inv = inventory(vec![gpu(0)]);
    inv.driver_version.clear();
    assert!(
        inv.validate()
            .unwrap_err()
            .to_string()
            .contains("driverVersion")
    );
}

#[test]
fn pci_bus_ids_must_be_normalised() {
    for bad in [
        "00000000:3B:00.0",
        "0000:3B:00.0",
        "0000:3b:00",
        "0000:3b:00.8",
        "",
    ] {
        let mut g = gpu(0);
        g.pci_bus_id = bad.into();
        let err = inventory(vec![g]).validate().unwrap_err();
        assert!(matches!(err, InventoryError::BadPciBusId { .. }), "{bad}");
    }
    assert!(is_pci_bus_id("0000:3b:00.0"));
}

#[test]
fn dynamic_mig_needs_a_catalog_product() {
    let mut g = gpu(0);
    g.product_name = "NVIDIA L4".into();
    g.mig = MigState::Dynamic;
    let err = inventory(vec![g]).validate().unwrap_err();
    assert!(
        err.to_string().contains("not in tessera's catalog"),
        "{err}"
    );
    let mut h = gpu(0);
    h.mig = MigState::Dynamic;
    inventory(vec![h]).validate().unwrap();
}

#[test]
fn static_layouts_follow_the_catalog() {
    let mut g = gpu(0);
    g.mig = MigState::Static {
        devices: vec![
            mig("MIG-a", "3g.40gb", 4, 4),
            mig("MIG-b", "2g.20gb", 2, 2),
            mig("MIG-c", "1g.10gb", 0, 1),
        ],
    };
    inventory(vec![g.clone()]).validate().unwrap();

    // 1g.10gb may not start at 7 on an H100.
    g.mig = MigState::Static {
        devices: vec![mig("MIG-a", "1g.10gb", 7, 1)],
    };
    let err = inventory(vec![g.clone()]).validate().unwrap_err();
    assert!(matches!(err, InventoryError::Layout { .. }), "{err}");

    // A profile of another product.
    g.mig = MigState::Static {
        devices: vec![mig("MIG-a", "1g.5gb", 0, 1)],
    };
    let err = inventory(vec![g]).validate().unwrap_err();
    assert!(err.to_string().contains("1g.5gb"), "{err}");
}

#[test]
fn static_layouts_on_unknown_products_are_still_bounded() {
    let mut g = gpu(0);
    g.product_name = "NVIDIA GH200 96GB".into();
    g.mig = MigState::Static {
        devices: vec![mig("MIG-a", "1g.12gb", 0, 1), mig("MIG-b", "1g.12gb", 1, 1)],
    };
    inventory(vec![g.clone()]).validate().unwrap();
    g.mig = MigState::Static {
        devices: vec![mig("MIG-a", "2g.24gb", 0, 2), mig("MIG-b", "1g.12gb", 1, 1)],
    };
    let err = inventory(vec![g.clone()]).validate().unwrap_err();
    assert!(err.to_string().contains("overlapping"), "{err}");
    g.mig = MigState::Static {
        devices: vec![mig("MIG-a", "1g.12gb", 8, 1)],
    };
    let err = inventory(vec![g.clone()]).validate().unwrap_err();
    assert!(err.to_string().contains("outside"), "{err}");
    g.mig = MigState::Static {
        devices: vec![mig("MIG-a", "1g 12gb", 0, 1)],
    };
    let err = inventory(vec![g]).validate().unwrap_err();
    assert!(matches!(err, InventoryError::BadProfile { .. }), "{err}");
}
