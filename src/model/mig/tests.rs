use proptest::prelude::*;

use super::*;

/// Profile names and per-GPU instance counts as the MIG User Guide's "Supported MIG Profiles"
/// tables list them ("Number of Instances Available"), written out independently of the
/// catalog so a typo in either shows up.
fn guide_counts(product: GpuProduct) -> &'static [(&'static str, usize)] {
    match product {
        GpuProduct::A100_40GB => &[
            ("1g.5gb", 7),
            ("1g.5gb+me", 1),
            ("1g.10gb", 4),
            ("2g.10gb", 3),
            ("3g.20gb", 2),
            ("4g.20gb", 1),
            ("7g.40gb", 1),
        ],
        GpuProduct::A100_80GB => &[
            ("1g.10gb", 7),
            ("1g.10gb+me", 1),
            ("1g.20gb", 4),
            ("2g.20gb", 3),
            ("3g.40gb", 2),
            ("4g.40gb", 1),
            ("7g.80gb", 1),
        ],
        GpuProduct::H100_80GB => &[
            ("1g.10gb", 7),
            ("1g.10gb+me", 1),
            ("1g.20gb", 4),
            ("2g.20gb", 3),
            ("3g.40gb", 2),
            ("4g.40gb", 1),
            ("7g.80gb", 1),
        ],
        GpuProduct::H100_94GB => &[
            ("1g.12gb", 7),
            ("1g.12gb+me", 1),
            ("1g.24gb", 4),
            ("2g.24gb", 3),
            ("3g.47gb", 2),
            ("4g.47gb", 1),
            ("7g.94gb", 1),
        ],
        GpuProduct::H200_141GB => &[
            ("1g.18gb", 7),
            ("1g.18gb+me", 1),
            ("1g.35gb", 4),
            ("2g.35gb", 3),
            ("3g.71gb", 2),
            ("4g.71gb", 1),
            ("7g.141gb", 1),
        ],
        GpuProduct::A30_24GB => &[
            ("1g.6gb", 4),
            ("1g.6gb+me", 1),
            ("2g.12gb", 2),
            ("2g.12gb+me", 1),
            ("4g.24gb", 1),
        ],
        GpuProduct::B200 => &[
            ("1g.23gb", 7),
            ("1g.23gb+me", 1),
            ("1g.45gb", 4),
            ("2g.45gb", 3),
            ("3g.90gb", 2),
            ("4g.90gb", 1),
            ("7g.180gb", 1),
        ],
    }
}

fn p(product: GpuProduct, name: &str) -> &'static MigProfile {
    profile(product, name).unwrap()
}

/// Places instances of one profile greedily at the first available placement until none is left.
fn fill_with(product: GpuProduct, row: &MigProfile) -> usize {
    let mut layout = MigLayout::new(product);
    while let Some(first) = layout.available_for(row).first().copied() {
        layout.place(row, first).unwrap();
    }
    layout.instances().len()
}

const SEVEN_SLICE: [GpuProduct; 6] = [
    GpuProduct::A100_40GB,
    GpuProduct::A100_80GB,
    GpuProduct::H100_80GB,
    GpuProduct::H100_94GB,
    GpuProduct::H200_141GB,
    GpuProduct::B200,
];

#[test]
fn catalog_lists_exactly_the_guides_profiles_in_table_order() {
    for product in GpuProduct::ALL {
        let names: Vec<&str> = profiles(product).iter().map(|p| p.name).collect();
        let expected: Vec<&str> = guide_counts(product).iter().map(|(n, _)| *n).collect();
        assert_eq!(names, expected, "{product}");
    }
}

#[test]
fn greedy_filling_reaches_the_guides_instance_count_for_every_profile() {
    for product in GpuProduct::ALL {
        for (name, count) in guide_counts(product) {
            let row = p(product, name);
            assert_eq!(
                usize::from(row.max_count),
                *count,
                "{product} {name} max_count"
            );
            assert_eq!(
                fill_with(product, row),
                *count,
                "{product} {name} greedy fill"
            );
        }
    }
}

#[test]
fn every_placement_fits_the_gpu_and_spans_the_profiles_memory_slices() {
    for product in GpuProduct::ALL {
        for row in profiles(product) {
            assert!(!row.placements.is_empty(), "{product} {}", row.name);
            assert!(row.compute_slices <= product.total_compute_slices());
            let g: u8 = row.name[..1].parse().unwrap();
            assert_eq!(row.compute_slices, g, "{product} {}", row.name);
            assert_eq!(row.media_extensions, row.name.ends_with("+me"));
            for pl in row.placements {
                assert_eq!(pl.size, row.memory_slices, "{product} {}", row.name);
                assert!(pl.end() <= u16::from(product.total_memory_slices()));
            }
        }
    }
}

#[test]
fn overlapping_placement_is_refused_and_layout_unchanged() {
    let product = GpuProduct::H100_80GB;
    let mut layout = MigLayout::new(product);
    layout
        .place(p(product, "2g.20gb"), Placement::new(2, 2))
        .unwrap();
    let err = layout
        .place(p(product, "1g.10gb"), Placement::new(3, 1))
        .unwrap_err();
    assert!(matches!(
        err,
        MigError::Overlap {
            other: "2g.20gb",
            other_start: 2,
            ..
        }
    ));
    let err = layout
        .place(p(product, "3g.40gb"), Placement::new(0, 4))
        .unwrap_err();
    assert!(matches!(err, MigError::Overlap { .. }));
    assert_eq!(layout.instances().len(), 1);
}

#[test]
fn placement_not_listed_for_the_profile_is_refused() {
    let product = GpuProduct::H100_80GB;
    let mut layout = MigLayout::new(product);
    for (name, start, size) in [
        ("1g.20gb", 1, 2),
        ("2g.20gb", 6, 2),
        ("1g.10gb", 7, 1),
        ("3g.40gb", 2, 4),
        ("1g.10gb", 0, 2),
    ] {
        let err = layout
            .place(p(product, name), Placement::new(start, size))
            .unwrap_err();
        assert!(
            matches!(err, MigError::PlacementNotAllowed { .. }),
            "{name} {start}:{size}"
        );
    }
    assert!(layout.instances().is_empty());
}

#[test]
fn profile_of_another_product_is_refused() {
    let mut layout = MigLayout::new(GpuProduct::A100_40GB);
    let foreign = p(GpuProduct::A100_80GB, "1g.10gb");
    let err = layout.place(foreign, Placement::new(0, 1)).unwrap_err();
    assert!(matches!(err, MigError::UnknownProfile { .. }));
    assert!(layout.available_for(foreign).is_empty());
}

#[test]
fn four_g_plus_three_g_fits_but_four_g_plus_four_g_does_not() {
    for product in SEVEN_SLICE {
        let rows = profiles(product);
        let three = rows.iter().find(|r| r.compute_slices == 3).unwrap();
        let four = rows.iter().find(|r| r.compute_slices == 4).unwrap();
        let mut layout = MigLayout::new(product);
        layout.place(four, Placement::new(0, 4)).unwrap();
        assert_eq!(
            layout.available_for(three),
            vec![Placement::new(4, 4)],
            "{product}"
        );
        layout.place(three, Placement::new(4, 4)).unwrap();
        assert_eq!(layout.free_compute_slices(), 0);
        assert!(layout.available().is_empty(), "{product} is full");

        let mut layout = MigLayout::new(product);
        layout.place(four, Placement::new(0, 4)).unwrap();
        assert!(layout.available_for(four).is_empty(), "{product}");
        assert!(layout.place(four, Placement::new(0, 4)).is_err());
    }
}

#[test]
fn available_after_a_3g_at_0_excludes_overlapping_and_whole_gpu_placements() {
    let product = GpuProduct::H100_80GB;
    let mut layout = MigLayout::new(product);
    layout
        .place(p(product, "3g.40gb"), Placement::new(0, 4))
        .unwrap();
    let available = layout.available();
    let names: Vec<&str> = available.iter().map(|(r, _)| r.name).collect();
    assert!(!names.contains(&"7g.80gb"));
    assert!(!names.contains(&"4g.40gb"));
    assert!(
        available.iter().all(|(_, pl)| pl.start >= 4),
        "{available:?}"
    );
    let starts = |name: &str| -> Vec<u8> {
        layout
            .available_for(p(product, name))
            .iter()
            .map(|pl| pl.start)
            .collect()
    };
    assert_eq!(starts("1g.10gb"), vec![4, 5, 6]);
    assert_eq!(starts("1g.10gb+me"), vec![4, 5, 6]);
    assert_eq!(starts("1g.20gb"), vec![4, 6]);
    assert_eq!(starts("2g.20gb"), vec![4]);
    assert_eq!(starts("3g.40gb"), vec![4]);
}

#[test]
fn only_one_media_extension_instance_per_gpu() {
    let product = GpuProduct::A30_24GB;
    let mut layout = MigLayout::new(product);
    layout
        .place(p(product, "1g.6gb+me"), Placement::new(0, 1))
        .unwrap();
    let err = layout
        .place(p(product, "2g.12gb+me"), Placement::new(2, 2))
        .unwrap_err();
    assert!(matches!(
        err,
        MigError::MediaExtensionsTaken {
            holder: "1g.6gb+me",
            ..
        }
    ));
    layout
        .place(p(product, "2g.12gb"), Placement::new(2, 2))
        .unwrap();
}

#[test]
fn remove_frees_the_slices_and_refuses_unknown_instances() {
    let product = GpuProduct::B200;
    let mut layout = MigLayout::new(product);
    let seven = p(product, "7g.180gb");
    layout.place(seven, Placement::new(0, 8)).unwrap();
    assert!(layout.available().is_empty());
    let err = layout
        .remove(p(product, "1g.23gb"), Placement::new(0, 1))
        .unwrap_err();
    assert!(matches!(err, MigError::NotPlaced { .. }));
    layout.remove(seven, Placement::new(0, 8)).unwrap();
    assert_eq!(layout.available().len(), 7 + 7 + 4 + 3 + 2 + 1 + 1);
}

#[test]
fn product_names_from_nvml_are_recognised() {
    let cases = [
        ("NVIDIA A100-SXM4-40GB", Some(GpuProduct::A100_40GB)),
        ("A100-SXM4-40GB", Some(GpuProduct::A100_40GB)),
        ("NVIDIA A100-PCIE-40GB", Some(GpuProduct::A100_40GB)),
        ("NVIDIA A100-SXM4-80GB", Some(GpuProduct::A100_80GB)),
        ("NVIDIA A100 80GB PCIe", Some(GpuProduct::A100_80GB)),
        ("NVIDIA H100 80GB HBM3", Some(GpuProduct::H100_80GB)),
        ("NVIDIA H100 PCIe", Some(GpuProduct::H100_80GB)),
        ("NVIDIA H100 NVL", Some(GpuProduct::H100_94GB)),
        ("NVIDIA H200", Some(GpuProduct::H200_141GB)),
        ("NVIDIA H200 NVL", Some(GpuProduct::H200_141GB)),
        ("NVIDIA A30", Some(GpuProduct::A30_24GB)),
        ("NVIDIA B200", Some(GpuProduct::B200)),
        ("NVIDIA GB200", None),
        ("NVIDIA GH200 480GB", None),
        ("NVIDIA A100", None),
        ("NVIDIA L4", None),
        ("", None),
    ];
    for (name, want) in cases {
        assert_eq!(GpuProduct::from_product_name(name), want, "{name:?}");
    }
}

#[test]
fn slice_totals_per_product() {
    for product in SEVEN_SLICE {
        assert_eq!(
            (
                product.total_memory_slices(),
                product.total_compute_slices()
            ),
            (8, 7)
        );
    }
    let a30 = GpuProduct::A30_24GB;
    assert_eq!(
        (a30.total_memory_slices(), a30.total_compute_slices()),
        (4, 4)
    );
}

#[test]
fn smallest_adequate_prefers_fewest_memory_then_compute_slices_then_plain() {
    let h100 = GpuProduct::H100_80GB;
    let pick = |mib, frac| smallest_adequate(h100, mib, frac).map(|p| p.name);
    assert_eq!(pick(0, 0.0), Some("1g.10gb"));
    assert_eq!(pick(9984, 1.0 / 7.0), Some("1g.10gb"));
    assert_eq!(pick(9985, 0.1), Some("1g.20gb"));
    assert_eq!(pick(15_000, 2.0 / 7.0), Some("2g.20gb"));
    assert_eq!(pick(30_000, 0.1), Some("3g.40gb"));
    assert_eq!(pick(1000, 0.5), Some("4g.40gb"));
    assert_eq!(pick(50_000, 0.1), Some("7g.80gb"));
    assert_eq!(pick(81_153, 0.1), None);
    assert_eq!(pick(1000, f64::NAN), None);
    assert_eq!(pick(1000, 1.01), None);
}

#[test]
fn capacity_falls_back_to_the_nominal_size_only_without_a_reported_mib() {
    let b200 = GpuProduct::B200;
    assert_eq!(p(b200, "1g.23gb").capacity_mib(), 20992);
    // 90 GB nominal = 90e9 bytes = 85830 MiB (rounded down).
    assert_eq!(p(b200, "3g.90gb").capacity_mib(), 85830);
}

#[test]
fn layout_round_trips_through_json_with_profile_names() {
    let product = GpuProduct::H200_141GB;
    let mut layout = MigLayout::new(product);
    layout
        .place(p(product, "3g.71gb"), Placement::new(4, 4))
        .unwrap();
    layout
        .place(p(product, "1g.35gb"), Placement::new(0, 2))
        .unwrap();
    let json = serde_json::to_string(&layout).unwrap();
    assert!(
        json.contains("\"H200-141GB\"") && json.contains("\"3g.71gb\""),
        "{json}"
    );
    let back: MigLayout = serde_json::from_str(&json).unwrap();
    assert_eq!(back, layout);
}

#[test]
fn deserializing_an_impossible_layout_fails() {
    let overlapping = r#"{"product":"H100-80GB","instances":[
        {"profile":"3g.40gb","start":0,"size":4},{"profile":"1g.10gb","start":2,"size":1}]}"#;
    assert!(serde_json::from_str::<MigLayout>(overlapping).is_err());
    let unknown =
        r#"{"product":"H100-80GB","instances":[{"profile":"1g.5gb","start":0,"size":1}]}"#;
    assert!(serde_json::from_str::<MigLayout>(unknown).is_err());
}

#[derive(Debug, Clone)]
enum Op {
    Place { profile: usize, placement: usize },
    Remove { index: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0usize..16, 0usize..16).prop_map(|(profile, placement)| Op::Place { profile, placement }),
        1 => (0usize..16).prop_map(|index| Op::Remove { index }),
    ]
}

proptest! {
    #[test]
    fn random_place_remove_keeps_every_invariant(
        product in proptest::sample::select(GpuProduct::ALL.to_vec()),
        ops in proptest::collection::vec(op(), 0..64),
    ) {
        let rows = profiles(product);
        let mut layout = MigLayout::new(product);
        for op in ops {
            match op {
                Op::Place { profile, placement } => {
                    let row = &rows[profile % rows.len()];
                    let pl = row.placements[placement % row.placements.len()];
                    let predicted = layout.can_place(row, pl);
                    let before = layout.instances().len();
                    let placed = layout.place(row, pl).is_ok();
                    prop_assert_eq!(predicted, placed);
                    prop_assert_eq!(layout.instances().len(), before + usize::from(placed));
                }
                Op::Remove { index } => {
                    if let Some(inst) = layout.instances().get(index % 16).copied() {
                        layout.remove(inst.profile, inst.placement).unwrap();
                    }
                }
            }
            let instances = layout.instances();
            for (i, a) in instances.iter().enumerate() {
                for b in &instances[i + 1..] {
                    prop_assert!(!a.placement.overlaps(b.placement), "{:?} vs {:?}", a, b);
                }
                let same = instances.iter().filter(|x| x.profile.name == a.profile.name).count();
                prop_assert!(same <= usize::from(a.profile.max_count));
            }
            let compute: u32 = instances.iter().map(|i| u32::from(i.profile.compute_slices)).sum();
            prop_assert!(compute <= u32::from(product.total_compute_slices()));
            for (row, pl) in layout.available() {
                prop_assert!(instances.iter().all(|i| !i.placement.overlaps(pl)), "{} {:?}", row.name, pl);
            }
        }
    }
}

/// `nvidia-smi mig -lgipp` as seen on real hardware, keyed by profile ID: (ID, starts, size).
fn lgipp(product: GpuProduct) -> Option<&'static [(u32, &'static [u8], u8)]> {
    const SEVEN: &[(u32, &[u8], u8)] = &[
        (19, &[0, 1, 2, 3, 4, 5, 6], 1),
        (20, &[0, 1, 2, 3, 4, 5, 6], 1),
        (15, &[0, 2, 4, 6], 2),
        (14, &[0, 2, 4], 2),
        (9, &[0, 4], 4),
        (5, &[0], 4),
        (0, &[0], 8),
    ];
    match product {
        // The guide (A100-SXM4-40GB), an H100 80GB HBM3 and an H100 NVL transcript.
        GpuProduct::A100_40GB | GpuProduct::H100_80GB | GpuProduct::H100_94GB => Some(SEVEN),
        // An A30 transcript.
        GpuProduct::A30_24GB => Some(&[
            (14, &[0, 1, 2, 3], 1),
            (21, &[0, 1, 2, 3], 1),
            (5, &[0, 2], 2),
            (6, &[0, 2], 2),
            (0, &[0], 4),
        ]),
        // No -lgipp output was found for these (see the module docs of `profiles`).
        GpuProduct::A100_80GB | GpuProduct::H200_141GB | GpuProduct::B200 => None,
    }
}

#[test]
fn placements_match_every_lgipp_transcript() {
    let mut checked = 0;
    for product in GpuProduct::ALL {
        let Some(expected) = lgipp(product) else {
            continue;
        };
        assert_eq!(expected.len(), profiles(product).len(), "{product}");
        for (id, starts, size) in expected {
            let row = profiles(product)
                .iter()
                .find(|r| r.id == Some(*id))
                .unwrap_or_else(|| panic!("{product}: no profile ID {id}"));
            let got: Vec<(u8, u8)> = row.placements.iter().map(|p| (p.start, p.size)).collect();
            let want: Vec<(u8, u8)> = starts.iter().map(|s| (*s, *size)).collect();
            assert_eq!(got, want, "{product} profile ID {id} ({})", row.name);
        }
        checked += 1;
    }
    assert_eq!(checked, 4);
}

#[test]
fn reported_memory_and_ids_match_the_lgip_transcripts() {
    // (product, profile, ID, GiB as nvidia-smi prints it).
    let cases = [
        (GpuProduct::A100_40GB, "1g.5gb", 19, 4.75),
        (GpuProduct::A100_40GB, "7g.40gb", 0, 39.25),
        (GpuProduct::A100_80GB, "1g.10gb", 19, 9.50),
        (GpuProduct::A100_80GB, "1g.20gb", 15, 19.50),
        (GpuProduct::A100_80GB, "3g.40gb", 9, 39.25),
        (GpuProduct::A100_80GB, "7g.80gb", 0, 78.75),
        (GpuProduct::H100_80GB, "1g.10gb", 19, 9.75),
        (GpuProduct::H100_80GB, "7g.80gb", 0, 79.25),
        (GpuProduct::H100_94GB, "3g.47gb", 9, 46.38),
        (GpuProduct::H200_141GB, "1g.18gb", 19, 16.00),
        (GpuProduct::H200_141GB, "7g.141gb", 0, 139.75),
        (GpuProduct::A30_24GB, "1g.6gb", 14, 5.81),
        (GpuProduct::A30_24GB, "2g.12gb+me", 6, 11.69),
        (GpuProduct::A30_24GB, "4g.24gb", 0, 23.44),
        (GpuProduct::B200, "1g.23gb", 19, 20.50),
        (GpuProduct::B200, "2g.45gb", 14, 44.25),
    ];
    for (product, name, id, gib) in cases {
        let row = p(product, name);
        assert_eq!(row.id, Some(id), "{product} {name}");
        let mib = row.memory_mib.unwrap();
        let printed = format!("{:.2}", mib as f64 / 1024.0);
        assert_eq!(printed, format!("{gib:.2}"), "{product} {name}");
    }
}

#[test]
fn every_overlapping_pair_of_placements_is_refused_on_every_product() {
    for product in GpuProduct::ALL {
        let rows = profiles(product);
        let mut refused = 0;
        for a in rows {
            for pa in a.placements {
                for b in rows {
                    for pb in b.placements {
                        let mut layout = MigLayout::new(product);
                        layout.place(a, *pa).unwrap();
                        let result = layout.place(b, *pb);
                        if pa.overlaps(*pb) {
                            assert!(
                                matches!(result, Err(MigError::Overlap { .. })),
                                "{product}: {} {pa:?} then {} {pb:?}",
                                a.name,
                                b.name
                            );
                            assert_eq!(layout.instances().len(), 1);
                            refused += 1;
                        } else if a.compute_slices + b.compute_slices
                            <= product.total_compute_slices()
                            && !(a.media_extensions && b.media_extensions)
                        {
                            assert!(
                                result.is_ok(),
                                "{product}: {} {pa:?} and {} {pb:?} are disjoint: {result:?}",
                                a.name,
                                b.name
                            );
                        }
                    }
                }
            }
        }
        assert!(refused > 0, "{product}");
    }
}

#[test]
fn mig_parted_presets_are_valid_layouts_that_use_the_whole_gpu() {
    for product in GpuProduct::ALL {
        let smallest = all_smallest(product).unwrap();
        let compute = usize::from(product.total_compute_slices());
        assert_eq!(smallest.instances().len(), compute, "{product}");
        assert_eq!(smallest.free_compute_slices(), 0);
        assert!(smallest.available().is_empty(), "{product} all-1g is full");

        let balanced = all_balanced(product).unwrap();
        let mut names: Vec<u8> = balanced
            .instances()
            .iter()
            .map(|i| i.profile.compute_slices)
            .collect();
        names.sort_unstable();
        let want: &[u8] = if compute == 4 {
            &[1, 1, 2]
        } else {
            &[1, 1, 2, 3]
        };
        assert_eq!(names, want, "{product}");
        assert_eq!(balanced.free_compute_slices(), 0, "{product}");
        assert!(
            balanced.available().is_empty(),
            "{product} balanced is full"
        );
    }
    let h100 = all_balanced(GpuProduct::H100_80GB).unwrap();
    let names: Vec<&str> = h100.instances().iter().map(|i| i.profile.name).collect();
    assert_eq!(names, ["3g.40gb", "2g.20gb", "1g.10gb", "1g.10gb"]);
}
