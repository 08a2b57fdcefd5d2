//! Inventories for unit tests: H100s with MIG off, dynamic MIG on GPU 1 and static MIG on
//! GPU 2, so every device kind can be resolved.

use crate::model::mig::Placement;
use crate::model::{Gpu, Inventory, MigDevice, MigState};

pub fn gpu(index: u32, mig: MigState) -> Gpu {
    Gpu {
        index,
        uuid: format!("GPU-00000000-0000-0000-0000-00000000000{index}"),
        pci_bus_id: format!("0000:{:02x}:00.0", 0x10 + index),
        product_name: "NVIDIA H100 80GB HBM3".to_owned(),
        memory_bytes: 80 << 30,
        architecture: "Hopper".to_owned(),
        cuda_compute_capability: "9.0".to_owned(),
        mig,
    }
}

/// GPU 0: MIG off. GPU 1: dynamic MIG. GPU 2: static MIG with a 3g.40gb at 0 and a 1g.10gb at 4.
pub fn mixed() -> Inventory {
    Inventory {
        driver_version: "580.65.06".to_owned(),
        cuda_driver_version: Some("13.0".to_owned()),
        gpus: vec![
            gpu(0, MigState::Disabled),
            gpu(1, MigState::Dynamic),
            gpu(
                2,
                MigState::Static {
                    devices: vec![
                        MigDevice {
                            uuid: "MIG-static-3g".to_owned(),
                            profile: "3g.40gb".to_owned(),
                            placement: Placement::new(0, 4),
                            memory_bytes: 40 << 30,
                        },
                        MigDevice {
                            uuid: "MIG-static-1g".to_owned(),
                            profile: "1g.10gb".to_owned(),
                            placement: Placement::new(4, 1),
                            memory_bytes: 10 << 30,
                        },
                    ],
                },
            ),
        ],
    }
}
