//! Properties over random inventories: every render validates, and the counter model allows
//! exactly the MIG layouts the catalog allows.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::super::counters;
use super::*;
use crate::model::mig::{GpuProduct, MigLayout, Placement, profiles};
use crate::model::{Gpu, Inventory, MigDevice};
use crate::publish::validate::is_dns_label;

/// Products with catalog geometry, plus `None` for a GPU outside the catalog.
fn product() -> impl Strategy<Value = Option<GpuProduct>> {
    prop_oneof![
        Just(None),
        proptest::sample::select(GpuProduct::ALL.to_vec()).prop_map(Some),
    ]
}

fn product_name(p: Option<GpuProduct>) -> &'static str {
    match p {
        None => "NVIDIA L40S",
        Some(GpuProduct::A100_40GB) => "NVIDIA A100-SXM4-40GB",
        Some(GpuProduct::A100_80GB) => "NVIDIA A100-SXM4-80GB",
        Some(GpuProduct::H100_80GB) => "NVIDIA H100 80GB HBM3",
        Some(GpuProduct::H100_94GB) => "NVIDIA H100 NVL",
        Some(GpuProduct::H200_141GB) => "NVIDIA H200",
        Some(GpuProduct::A30_24GB) => "NVIDIA A30",
        Some(GpuProduct::B200) => "NVIDIA B200",
    }
}

/// 0 = off, 1 = static (layout from `picks`), 2 = dynamic.
fn gpu(index: u32, product: Option<GpuProduct>, mode: u8, picks: &[(usize, usize)]) -> Gpu {
    let mig = match (mode, product) {
        (2, Some(_)) => MigState::Dynamic,
        (1, Some(p)) => {
            let mut layout = MigLayout::new(p);
            let rows = profiles(p);
            let mut devices = Vec::new();
            for (k, &(r, pl)) in picks.iter().enumerate() {
                let row = &rows[r % rows.len()];
                let placement = row.placements[pl % row.placements.len()];
                if layout.place(row, placement).is_ok() {
                    devices.push(MigDevice {
                        uuid: format!("MIG-{index}-{k}"),
                        profile: row.name.to_owned(),
                        placement,
                        memory_bytes: row.capacity_mib() << 20,
                    });
                }
            }
            MigState::Static { devices }
        }
        _ => MigState::Disabled,
    };
    Gpu {
        index,
        uuid: format!("GPU-{index}"),
        pci_bus_id: format!("0000:{:02x}:00.0", index),
        product_name: product_name(product).to_owned(),
        memory_bytes: 24 << 30,
        architecture: "Hopper".into(),
        cuda_compute_capability: "9.0".into(),
        mig,
    }
}

fn inventory() -> impl Strategy<Value = Inventory> {
    let one = (
        product(),
        0u8..3,
        proptest::collection::vec((0usize..8, 0usize..8), 0..10),
    );
    proptest::collection::vec(one, 0..=20).prop_map(|gpus| Inventory {
        driver_version: "570.124.06".into(),
        cuda_driver_version: Some("12.8".into()),
        gpus: gpus
            .iter()
            .zip(0u32..)
            .map(|((p, mode, picks), i)| gpu(i, *p, *mode, picks))
            .collect(),
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_random_inventory_renders_valid_slices(
        inv in inventory(),
        level in proptest::sample::select(FeatureLevel::ALL.to_vec()),
        replicas in 0u32..=8,
        generation in 0i64..1000,
    ) {
        prop_assert!(inv.validate().is_ok());
        let opts = SliceOptions { share_replicas: replicas, generation, ..SliceOptions::new(NODE, level) };
        let slices = render(&inv, &opts).unwrap();
        if let Err(e) = validate(&slices) {
            return Err(TestCaseError::fail(e.to_string()));
        }
        for d in all_devices(&slices) {
            prop_assert!(is_dns_label(&d.name));
            prop_assert!(d.name.parse::<crate::model::DeviceName>().is_ok(), "{}", d.name);
        }
    }

    /// Drawing counters for a random sequence of placements accepts exactly what
    /// `MigLayout::place` accepts: the counters are the catalog's rules, no more, no less.
    #[test]
    fn counters_allow_exactly_the_catalog_layouts(
        product in proptest::sample::select(GpuProduct::ALL.to_vec()),
        picks in proptest::collection::vec((0usize..8, 0usize..8), 1..20),
    ) {
        let set = counters::mig_set(0, product);
        let mut left: BTreeMap<String, u64> = set
            .counters
            .iter()
            .map(|(k, v)| (k.clone(), v.value.0.parse().unwrap()))
            .collect();
        let mut layout = MigLayout::new(product);
        let rows = profiles(product);
        for (r, p) in picks {
            let row = &rows[r % rows.len()];
            let placement: Placement = row.placements[p % row.placements.len()];
            let draw = counters::consume_placement(0, row, placement);
            let fits = draw.counters.iter().all(|(k, v)| {
                left.get(k).copied().unwrap_or(0) >= v.value.0.parse::<u64>().unwrap()
            });
            prop_assert_eq!(fits, layout.can_place(row, placement), "{} at {:?}", row.name, placement);
            if fits {
                layout.place(row, placement).unwrap();
                for (k, v) in &draw.counters {
                    *left.get_mut(k).unwrap() -= v.value.0.parse::<u64>().unwrap();
                }
            }
        }
    }
}
