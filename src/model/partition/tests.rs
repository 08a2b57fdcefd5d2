use super::*;
use crate::model::mig::{MigLayout, Placement, profile};

fn h100_layout(instances: &[(&str, u8, u8)]) -> MigLayout {
    let product = GpuProduct::H100_80GB;
    let mut layout = MigLayout::new(product);
    for (name, start, size) in instances {
        layout
            .place(
                profile(product, name).unwrap(),
                Placement::new(*start, *size),
            )
            .unwrap();
    }
    layout
}

fn mig(name: &str, start: u8, size: u8) -> Partition {
    Partition::Mig {
        profile: profile(GpuProduct::H100_80GB, name).unwrap(),
        placement: Placement::new(start, size),
    }
}

fn one(gpu: usize, partition: Partition) -> PartitionFit {
    PartitionFit {
        assignments: vec![Assignment {
            gpu,
            partition,
            fraction: 0.0,
            left: Leftover {
                free_fraction: 0.0,
                free_memory_mib: 0,
                mig_placements: 0,
            },
        }],
    }
}

#[test]
fn demand_bounds_are_checked() {
    assert!(PartitionDemand::new(1, 0, 1000).validate().is_ok());
    for bad in [
        PartitionDemand::new(0, 0, 100),
        PartitionDemand::new(17, 0, 100),
        PartitionDemand::new(1, 0, 1001),
        PartitionDemand {
            preference: vec![],
            ..PartitionDemand::new(1, 0, 100)
        },
        PartitionDemand {
            preference: vec![PartitionKind::Mig, PartitionKind::Mig],
            ..PartitionDemand::new(1, 0, 100)
        },
        PartitionDemand {
            models: ModelFilter::OneOf(vec!["x".repeat(MAX_MODEL_NAME_LEN + 1)]),
            ..PartitionDemand::new(1, 0, 100)
        },
        PartitionDemand {
            models: ModelFilter::OneOf(vec!["T4".to_owned(); MAX_MODEL_NAMES + 1]),
            ..PartitionDemand::new(1, 0, 100)
        },
    ] {
        assert!(
            matches!(bad.validate(), Err(PartitionError::InvalidDemand { .. })),
            "{bad:?}"
        );
    }
}

#[test]
fn compute_percent_rounds_up_to_at_least_one() {
    assert_eq!(
        PartitionDemand::new(1, 0, 0).compute_pct(),
        1,
        "never nothing"
    );
    assert_eq!(PartitionDemand::new(1, 0, 1).compute_pct(), 1);
    assert_eq!(PartitionDemand::new(1, 0, 250).compute_pct(), 25);
    assert_eq!(PartitionDemand::new(1, 0, 251).compute_pct(), 26);
    assert_eq!(PartitionDemand::new(1, 0, 1000).compute_pct(), 100);
}

#[test]
fn model_filter_matches_exact_names_and_catalog_short_names() {
    let any = ModelFilter::Any;
    assert!(any.allows("T4"));
    let f = ModelFilter::OneOf(vec!["nvidia h100 80gb hbm3".into(), "A100-40GB".into()]);
    assert!(f.allows("NVIDIA H100 80GB HBM3"), "case is ignored");
    assert!(
        f.allows("NVIDIA A100-SXM4-40GB"),
        "short name maps to product"
    );
    assert!(!f.allows("NVIDIA A100-SXM4-80GB"));
    assert!(!f.allows("NVIDIA H100 NVL"));
    assert!(!ModelFilter::OneOf(vec![]).allows("T4"));
}

#[test]
fn used_fraction_and_idle_per_state() {
    let mut whole = PartitionGpu::whole("T4", 15_360);
    assert!(whole.is_idle());
    assert_eq!(whole.used_fraction(), 0.0);
    whole.state = GpuPartitioning::Whole { taken: true };
    assert_eq!(whole.used_fraction(), 1.0);
    assert!(!whole.is_idle());

    let dynamic = PartitionGpu {
        state: GpuPartitioning::DynamicMig {
            layout: h100_layout(&[("3g.40gb", 4, 4), ("1g.10gb", 0, 1)]),
            whole_taken: false,
        },
        ..PartitionGpu::dynamic_mig("H100", 81_559, GpuProduct::H100_80GB)
    };
    assert!((dynamic.used_fraction() - 4.0 / 7.0).abs() < 1e-12);

    let mut shared = PartitionGpu::shared("L4", 20_000);
    shared.state = GpuPartitioning::Shared {
        used_memory_mib: 15_000,
        used_compute_pct: 30,
    };
    assert!(
        (shared.used_fraction() - 0.75).abs() < 1e-12,
        "memory dominates"
    );
}

#[test]
fn static_instances_are_taken_once_and_released_once() {
    let mut gpus = vec![PartitionGpu::static_mig(
        "H100",
        81_559,
        h100_layout(&[("3g.40gb", 4, 4), ("2g.20gb", 0, 2)]),
    )];
    let fit = one(0, mig("2g.20gb", 0, 2));
    apply(&fit, &mut gpus).unwrap();
    assert!((gpus[0].used_fraction() - 2.0 / 7.0).abs() < 1e-12);
    assert_eq!(apply(&fit, &mut gpus), Err(PartitionError::AlreadyTaken));
    release(&fit, &mut gpus).unwrap();
    assert!(gpus[0].is_idle());
    assert_eq!(release(&fit, &mut gpus), Err(PartitionError::NotTaken));
    assert_eq!(
        apply(&one(0, mig("1g.10gb", 2, 1)), &mut gpus),
        Err(PartitionError::NoSuchInstance),
        "a static GPU gets no new instance"
    );
    assert!(matches!(
        apply(&one(0, Partition::Whole), &mut gpus),
        Err(PartitionError::WrongKind { .. })
    ));
}

#[test]
fn dynamic_gpu_goes_whole_only_while_empty_and_then_takes_no_instance() {
    let mut gpus = vec![PartitionGpu::dynamic_mig(
        "H100",
        81_559,
        GpuProduct::H100_80GB,
    )];
    let before = gpus.clone();
    let whole = one(0, Partition::Whole);
    apply(&whole, &mut gpus).unwrap();
    assert_eq!(
        apply(&one(0, mig("1g.10gb", 0, 1)), &mut gpus),
        Err(PartitionError::AlreadyTaken)
    );
    release(&whole, &mut gpus).unwrap();
    assert_eq!(gpus, before);
    apply(&one(0, mig("1g.10gb", 6, 1)), &mut gpus).unwrap();
    assert_eq!(apply(&whole, &mut gpus), Err(PartitionError::AlreadyTaken));
    assert!(matches!(
        apply(&one(0, mig("1g.10gb", 6, 1)), &mut gpus),
        Err(PartitionError::Mig(_))
    ));
}

#[test]
fn shares_are_bounded_by_capacity() {
    let mut gpus = vec![PartitionGpu::shared("L4", 20_000)];
    let share = |memory_mib, compute_pct| {
        one(
            0,
            Partition::Shared {
                memory_mib,
                compute_pct,
            },
        )
    };
    apply(&share(12_000, 60), &mut gpus).unwrap();
    assert_eq!(
        apply(&share(9_000, 10), &mut gpus),
        Err(PartitionError::ShareExceeded)
    );
    assert_eq!(
        apply(&share(1_000, 41), &mut gpus),
        Err(PartitionError::ShareExceeded)
    );
    apply(&share(8_000, 40), &mut gpus).unwrap();
    assert_eq!(gpus[0].used_fraction(), 1.0);
    release(&share(12_000, 60), &mut gpus).unwrap();
    assert_eq!(
        release(&share(12_000, 60), &mut gpus),
        Err(PartitionError::NotTaken)
    );
}

#[test]
fn a_fit_is_applied_all_or_nothing() {
    let mut gpus = vec![
        PartitionGpu::whole("T4", 15_360),
        PartitionGpu {
            state: GpuPartitioning::Whole { taken: true },
            ..PartitionGpu::whole("T4", 15_360)
        },
    ];
    let before = gpus.clone();
    let mut fit = one(0, Partition::Whole);
    fit.assignments.push(Assignment {
        gpu: 1,
        ..fit.assignments[0]
    });
    assert_eq!(apply(&fit, &mut gpus), Err(PartitionError::AlreadyTaken));
    assert_eq!(gpus, before, "GPU 0 was not taken");
    fit.assignments[1].gpu = 0;
    assert_eq!(
        apply(&fit, &mut gpus),
        Err(PartitionError::DuplicateGpu { gpu: 0 })
    );
    fit.assignments[1].gpu = 7;
    assert!(matches!(
        apply(&fit, &mut gpus),
        Err(PartitionError::NoSuchGpu { gpu: 7, gpus: 2 })
    ));
    assert_eq!(gpus, before);
}

#[test]
fn states_round_trip_through_json_and_bad_static_layouts_are_refused() {
    let mut gpus = vec![PartitionGpu::static_mig(
        "H100",
        81_559,
        h100_layout(&[("3g.40gb", 4, 4)]),
    )];
    apply(&one(0, mig("3g.40gb", 4, 4)), &mut gpus).unwrap();
    let json = serde_json::to_string(&gpus).unwrap();
    let back: Vec<PartitionGpu> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, gpus);
    let bad = json.replace("\"taken\":[true]", "\"taken\":[true,false]");
    assert_ne!(bad, json);
    assert!(serde_json::from_str::<Vec<PartitionGpu>>(&bad).is_err());
}
