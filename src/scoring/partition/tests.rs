use super::*;
use crate::model::mig::{GpuProduct, MigLayout, Placement, profile};

const H100: GpuProduct = GpuProduct::H100_80GB;

fn h100() -> PartitionGpu {
    PartitionGpu::dynamic_mig("NVIDIA H100 80GB HBM3", 81_559, H100)
}

fn a100() -> PartitionGpu {
    PartitionGpu::dynamic_mig("NVIDIA A100-SXM4-40GB", 40_960, GpuProduct::A100_40GB)
}

/// The (GPU, profile, start) of each assignment of a MIG fit.
fn migs(fit: &PartitionFit) -> Vec<(usize, &'static str, u8)> {
    fit.assignments
        .iter()
        .map(|a| match a.partition {
            Partition::Mig { profile, placement } => (a.gpu, profile.name, placement.start),
            other => panic!("not MIG: {other:?}"),
        })
        .collect()
}

/// Fits and applies; returns what was chosen.
fn place(demand: &PartitionDemand, gpus: &mut [PartitionGpu]) -> PartitionFit {
    let fit = fit(demand, gpus).unwrap();
    apply(&fit, gpus).unwrap();
    fit
}

fn compute(milli: u16) -> PartitionDemand {
    PartitionDemand::new(1, 0, milli)
}

#[test]
fn smallest_adequate_profile_by_compute_and_by_memory() {
    let gpus = [h100()];
    let name = |d: PartitionDemand| migs(&fit(&d, &gpus).unwrap())[0].1;
    assert_eq!(name(compute(100)), "1g.10gb");
    assert_eq!(
        name(compute(143)),
        "2g.20gb",
        "more than 1/7 needs 2 slices"
    );
    assert_eq!(name(compute(300)), "3g.40gb");
    assert_eq!(name(compute(500)), "4g.40gb");
    assert_eq!(name(compute(600)), "7g.80gb", "no 5g or 6g profile");
    assert_eq!(name(PartitionDemand::new(1, 15_000, 100)), "1g.20gb");
    assert_eq!(name(PartitionDemand::new(1, 30_000, 100)), "3g.40gb");
    assert!(fit(&PartitionDemand::new(1, 90_000, 100), &gpus).is_none());
}

#[test]
fn a_small_instance_goes_where_the_largest_profiles_stay_possible() {
    let mut gpus = [h100()];
    assert_eq!(migs(&place(&compute(100), &mut gpus)), [(0, "1g.10gb", 6)]);
    let PartitionGpu {
        state: GpuPartitioning::DynamicMig { layout, .. },
        ..
    } = &gpus[0]
    else {
        panic!()
    };
    let four = profile(H100, "4g.40gb").unwrap();
    assert_eq!(layout.available_for(four), vec![Placement::new(0, 4)]);

    let mut gpus = [h100()];
    assert_eq!(migs(&place(&compute(300), &mut gpus)), [(0, "3g.40gb", 4)]);
    assert_eq!(
        migs(&place(&compute(500), &mut gpus)),
        [(0, "4g.40gb", 0)],
        "3g at 4 leaves the 4g its place"
    );
    assert!(fit(&compute(100), &gpus).is_none(), "the GPU is full");

    let mut gpus = [h100()];
    assert_eq!(migs(&place(&compute(200), &mut gpus)), [(0, "2g.20gb", 4)]);
}

#[test]
fn a_gpu_already_cut_up_is_used_before_an_untouched_one() {
    let mut gpus = [h100(), h100(), h100()];
    assert_eq!(migs(&place(&compute(300), &mut gpus)), [(0, "3g.40gb", 4)]);
    // Another small instance: GPU 0 loses less (no 7g left to lose) than GPUs 1 or 2.
    assert_eq!(migs(&place(&compute(100), &mut gpus))[0].0, 0);
    assert_eq!(migs(&place(&compute(100), &mut gpus))[0].0, 0);
    // Whole demands take the untouched GPUs.
    let whole = PartitionDemand {
        preference: vec![PartitionKind::Whole],
        ..PartitionDemand::new(2, 0, 1000)
    };
    let fit = fit(&whole, &gpus).unwrap();
    let chosen: Vec<usize> = fit.assignments.iter().map(|a| a.gpu).collect();
    assert_eq!(chosen, [1, 2]);
    assert!(fit.assignments.iter().all(|a| a.fraction == 1.0));
}

#[test]
fn preference_order_and_mig_permission_pick_the_kind() {
    let gpus = [
        PartitionGpu::whole("NVIDIA H100 80GB HBM3", 81_559),
        PartitionGpu::shared("NVIDIA H100 80GB HBM3", 81_559),
        h100(),
    ];
    let kinds = |d: &PartitionDemand| -> Vec<PartitionKind> {
        fit(d, &gpus)
            .unwrap()
            .assignments
            .iter()
            .map(|a| a.partition.kind())
            .collect()
    };
    let d = PartitionDemand::new(1, 10_000, 250);
    assert_eq!(kinds(&d), [PartitionKind::Mig]);
    let no_mig = PartitionDemand {
        allow_mig: false,
        ..d.clone()
    };
    assert_eq!(kinds(&no_mig), [PartitionKind::Shared]);
    let whole_first = PartitionDemand {
        preference: vec![PartitionKind::Whole, PartitionKind::Mig],
        ..d.clone()
    };
    let fit_whole = fit(&whole_first, &gpus).unwrap();
    assert_eq!(fit_whole.assignments[0].gpu, 0, "the non-MIG GPU first");
    assert_eq!(fit_whole.assignments[0].partition, Partition::Whole);
    // Three GPUs on three kinds: MIG first, then share, then whole.
    let three = PartitionDemand::new(3, 10_000, 250);
    assert_eq!(
        kinds(&three),
        [
            PartitionKind::Mig,
            PartitionKind::Shared,
            PartitionKind::Whole
        ]
    );
    assert!(fit(&PartitionDemand::new(4, 0, 100), &gpus).is_none());
}

#[test]
fn fractions_and_leftovers() {
    let gpus = [h100(), PartitionGpu::shared("NVIDIA L4", 20_000)];
    let f = fit(&compute(300), &gpus).unwrap();
    let a = f.assignments[0];
    assert!((a.fraction - 3.0 / 7.0).abs() < 1e-12);
    assert!((a.left.free_fraction - 4.0 / 7.0).abs() < 1e-12);
    assert_eq!(
        a.left.free_memory_mib, 40_448,
        "a 4g.40gb is still possible"
    );
    // After 3g at 4: 4g@0, 3g@0, 2g@{0,2}, 1g.20gb@{0,2}, 1g.10gb@{0..3}, 1g.10gb+me@{0..3}.
    assert_eq!(a.left.mig_placements, 1 + 1 + 2 + 2 + 4 + 4);

    let share = PartitionDemand {
        allow_mig: false,
        ..PartitionDemand::new(1, 5_000, 100)
    };
    let f = fit(&share, &gpus).unwrap();
    let a = f.assignments[0];
    assert_eq!(
        a.partition,
        Partition::Shared {
            memory_mib: 5_000,
            compute_pct: 10
        }
    );
    assert_eq!(a.fraction, 0.25, "memory share 5/20 beats compute 10 %");
    assert_eq!(a.left.free_memory_mib, 15_000);
    assert_eq!(f.gpu_fraction(), 0.25);
}

#[test]
fn static_instances_smallest_free_first_and_no_whole() {
    let mut layout = MigLayout::new(H100);
    for (name, start, size) in [
        ("3g.40gb", 4, 4),
        ("2g.20gb", 0, 2),
        ("1g.10gb", 2, 1),
        ("1g.10gb", 3, 1),
    ] {
        layout
            .place(profile(H100, name).unwrap(), Placement::new(start, size))
            .unwrap();
    }
    let mut gpus = [PartitionGpu::static_mig("H100", 81_559, layout)];
    assert_eq!(migs(&place(&compute(100), &mut gpus)), [(0, "1g.10gb", 2)]);
    assert_eq!(migs(&place(&compute(100), &mut gpus)), [(0, "1g.10gb", 3)]);
    assert_eq!(
        migs(&place(&compute(100), &mut gpus)),
        [(0, "2g.20gb", 0)],
        "the next adequate instance when the 1g ones are taken"
    );
    assert!(fit(&compute(500), &gpus).is_none(), "no 4g instance exists");
    let whole = PartitionDemand::new(1, 0, 1000);
    assert!(fit(&whole, &gpus).is_none());
}

#[test]
fn model_filter_and_memory_restrict_the_gpus() {
    let gpus = [a100(), h100()];
    let on_h100 = PartitionDemand {
        models: ModelFilter::OneOf(vec!["H100-80GB".into()]),
        ..compute(100)
    };
    assert_eq!(migs(&fit(&on_h100, &gpus).unwrap())[0].0, 1);
    let any = compute(100);
    assert_eq!(
        migs(&fit(&any, &gpus).unwrap()),
        [(0, "1g.5gb", 6)],
        "equal fractions and losses: the lower index"
    );
    let big = PartitionDemand::new(1, 9_000, 100);
    assert_eq!(
        migs(&fit(&big, &gpus).unwrap()),
        [(1, "1g.10gb", 6)],
        "9 GB is an eighth of the H100 (1g.10gb) but a quarter of the A100 (its 1g.10gb)"
    );
    let none = PartitionDemand {
        models: ModelFilter::OneOf(vec!["T4".into()]),
        ..compute(100)
    };
    assert!(fit(&none, &gpus).is_none());
}

#[test]
fn invalid_demands_never_fit() {
    let gpus = [h100()];
    assert!(fit(&PartitionDemand::new(0, 0, 100), &gpus).is_none());
    assert!(fit(&PartitionDemand::new(1, 0, 1001), &gpus).is_none());
}

#[test]
fn release_restores_the_state() {
    let mut gpus = [h100(), h100(), PartitionGpu::shared("L4", 20_000)];
    let before = gpus.clone();
    let a = place(&compute(300), &mut gpus);
    let b = place(&PartitionDemand::new(2, 1000, 200), &mut gpus);
    let mid = gpus.clone();
    let c = place(&compute(100), &mut gpus);
    release(&c, &mut gpus).unwrap();
    assert_eq!(gpus, mid);
    release(&b, &mut gpus).unwrap();
    release(&a, &mut gpus).unwrap();
    assert_eq!(gpus, before);
}

#[test]
fn placement_loss_ranks_largest_profiles_first() {
    let layout = MigLayout::new(H100);
    let one = profile(H100, "1g.10gb").unwrap();
    let at = |start| placement_loss(&layout, one, Placement::new(start, 1)).unwrap();
    // Order: 7g, 4g, 3g, 2g, 1g.20gb, 1g.10gb.
    assert_eq!(at(0)[..6], [1, 1, 1, 1, 1, 1]);
    assert_eq!(at(6)[..6], [1, 0, 1, 0, 1, 1]);
    assert!(at(6) < at(0));
    assert!(placement_loss(&layout, one, Placement::new(7, 1)).is_none());
}
