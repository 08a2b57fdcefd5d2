use proptest::prelude::*;

use super::*;

fn data() -> (PriceCatalog, SpotAdvisor) {
    (
        PriceCatalog::builtin().unwrap(),
        SpotAdvisor::builtin().unwrap(),
    )
}

fn node(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn resolve(node_labels: &[(&str, &str)], gpus_on_node: u32) -> NodeMarket {
    let (catalog, advisor) = data();
    node_market(
        &node(node_labels),
        &BTreeMap::new(),
        gpus_on_node,
        &catalog,
        &advisor,
    )
    .unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

const SPOT: (&str, &str) = (labels::KARPENTER_CAPACITY_TYPE, "spot");

#[test]
fn on_demand_node_is_priced_from_the_catalog_with_no_risk() {
    let m = resolve(
        &[
            (labels::INSTANCE_TYPE, "p4d.24xlarge"),
            (labels::REGION, "us-east-1"),
        ],
        8,
    );
    assert_eq!(m.capacity, CapacityType::OnDemand);
    assert_eq!(m.source, PriceSource::CatalogOnDemand);
    assert!(close(m.hourly_price_usd, 21.957642));
    assert!(close(m.gpus, 8.0));
    assert!(close(m.price_per_gpu_hour().unwrap(), 21.957642 / 8.0));
    assert_eq!((m.band, m.risk_source), (None, RiskSource::NotSpot));
    assert_eq!(m.hourly_interruption_probability, 0.0);
}

#[test]
fn reserved_node_pays_on_demand_with_no_risk() {
    let m = resolve(
        &[
            (labels::INSTANCE_TYPE, "p5.48xlarge"),
            (labels::REGION, "us-east-1"),
            (labels::KARPENTER_CAPACITY_TYPE, "reserved"),
        ],
        8,
    );
    assert_eq!(m.capacity, CapacityType::Reserved);
    assert!(close(m.hourly_price_usd, 55.04));
    assert_eq!(m.hourly_interruption_probability, 0.0);
}

#[test]
fn spot_node_in_the_catalog_region_uses_the_listed_spot_price_and_its_band() {
    let m = resolve(
        &[
            (labels::INSTANCE_TYPE, "g5.xlarge"),
            (labels::REGION, "us-east-1"),
            SPOT,
        ],
        1,
    );
    assert_eq!(m.capacity, CapacityType::Spot);
    assert_eq!(m.source, PriceSource::CatalogSpot);
    assert!(close(m.hourly_price_usd, 0.4125));
    assert_eq!(m.band, Some(InterruptionBand::Over20));
    assert_eq!(m.risk_source, RiskSource::SpotAdvisor);
    assert_eq!(
        m.hourly_interruption_probability,
        InterruptionBand::Over20.hourly_interruption_probability()
    );
}

#[test]
fn spot_node_in_another_region_uses_that_regions_savings_and_band() {
    // us-west-2 p4d.24xlarge: r = 4, s = 53 in the feed; on-demand from the us-east-1 row.
    let m = resolve(
        &[
            (labels::INSTANCE_TYPE, "p4d.24xlarge"),
            (labels::REGION, "us-west-2"),
            (labels::EKS_CAPACITY_TYPE, "SPOT"),
        ],
        8,
    );
    assert_eq!(m.source, PriceSource::SpotAdvisorEstimate);
    assert!(close(m.hourly_price_usd, 21.957642 * (1.0 - 0.53)));
    assert_eq!(m.band, Some(InterruptionBand::Over20));
}

#[test]
fn negative_savings_never_price_spot_above_on_demand() {
    // ca-central-1 p5.48xlarge has s = -62 in the feed.
    let m = resolve(
        &[
            (labels::INSTANCE_TYPE, "p5.48xlarge"),
            (labels::REGION, "ca-central-1"),
            SPOT,
        ],
        8,
    );
    assert_eq!(m.source, PriceSource::SpotAdvisorEstimate);
    assert!(close(m.hourly_price_usd, 55.04));
    assert_eq!(m.band, Some(InterruptionBand::Under5));
}

#[test]
fn spot_node_with_no_spot_data_pays_on_demand_with_the_default_band() {
    let m = resolve(
        &[
            (labels::INSTANCE_TYPE, "p5.4xlarge"),
            (labels::REGION, "us-east-1"),
            SPOT,
        ],
        1,
    );
    assert_eq!(m.source, PriceSource::CatalogOnDemandForSpot);
    assert!(close(m.hourly_price_usd, 6.88));
    assert_eq!(
        (m.band, m.risk_source),
        (Some(DEFAULT_SPOT_BAND), RiskSource::Default)
    );
}

#[test]
fn gke_spot_node_uses_the_listed_preemptible_price_and_the_default_band() {
    let m = resolve(
        &[
            (labels::INSTANCE_TYPE, "a2-highgpu-1g"),
            (labels::REGION, "us-central1"),
            (labels::GKE_SPOT, "true"),
        ],
        1,
    );
    assert_eq!(m.source, PriceSource::CatalogSpot);
    assert!(close(m.hourly_price_usd, 1.102016));
    assert_eq!(m.risk_source, RiskSource::Default);
    assert!(m.hourly_interruption_probability > 0.0);
}

#[test]
fn spot_node_without_region_uses_the_catalog_spot_price_and_default_band() {
    let m = resolve(&[(labels::INSTANCE_TYPE, "g4dn.xlarge"), SPOT], 1);
    assert_eq!(m.source, PriceSource::CatalogSpot);
    assert!(close(m.hourly_price_usd, 0.1894));
    assert_eq!(m.risk_source, RiskSource::Default);
}

#[test]
fn catalog_band_is_used_for_its_own_region_when_the_advisor_has_none() {
    let overrides = "cloud,region,instance_type,gpu_model,gpus,gpu_mem_mib_each,od_usd_hr,\
                     od_usd_per_gpu_hr,spot_usd_hr_est,spot_usd_per_gpu_hr_est,\
                     spot_interruption_band,spot_savings_pct,price_source,spot_source\n\
                     onprem,dc1,dgx-a100,a100,8,81920,16,,4,,<5%,75,amortised,broker\n";
    let (catalog, advisor) = data();
    let catalog =
        catalog.merged_with(PriceCatalog::from_csv_reader(overrides.as_bytes(), "o.csv").unwrap());
    let labels = node(&[
        (labels::INSTANCE_TYPE, "dgx-a100"),
        (labels::REGION, "dc1"),
        SPOT,
    ]);
    let m = node_market(&labels, &BTreeMap::new(), 8, &catalog, &advisor).unwrap();
    assert_eq!(
        (m.band, m.risk_source),
        (Some(InterruptionBand::Under5), RiskSource::Catalog)
    );
    assert!(close(m.hourly_price_usd, 4.0));
    // Another region: the band is not carried over.
    let labels = node(&[
        (labels::INSTANCE_TYPE, "dgx-a100"),
        (labels::REGION, "dc2"),
        SPOT,
    ]);
    let m = node_market(&labels, &BTreeMap::new(), 8, &catalog, &advisor).unwrap();
    assert_eq!(m.risk_source, RiskSource::Default);
}

#[test]
fn unknown_instance_type_falls_back_to_opencost_price_per_gpu() {
    let m = resolve(
        &[
            (labels::INSTANCE_TYPE, "x9.huge"),
            (labels::REGION, "us-east-1"),
        ],
        4,
    );
    assert_eq!(m.source, PriceSource::Fallback);
    assert!(close(m.hourly_price_usd, 0.95 * 4.0));
    assert!(close(m.price_per_gpu_hour().unwrap(), 0.95));
    let spot = resolve(&[SPOT], 2);
    assert_eq!(spot.source, PriceSource::Fallback);
    assert!(close(spot.hourly_price_usd, 1.9));
    assert_eq!(spot.risk_source, RiskSource::Default);
}

#[test]
fn node_without_gpus_has_no_price_per_gpu() {
    let m = resolve(&[], 0);
    assert_eq!(m.hourly_price_usd, 0.0);
    assert_eq!(m.price_per_gpu_hour(), None);
}

#[test]
fn fractional_catalog_rows_price_per_whole_gpu() {
    // g6f.large is 1/8 of an L4; the device plugin shows it as one device.
    let m = resolve(
        &[
            (labels::INSTANCE_TYPE, "g6f.large"),
            (labels::REGION, "us-east-1"),
        ],
        1,
    );
    assert!(close(m.gpus, 0.125));
    assert!(close(m.price_per_gpu_hour().unwrap(), 1.616));
}

#[test]
fn annotation_overrides_every_other_price() {
    let (catalog, advisor) = data();
    let annotations = node(&[(labels::HOURLY_PRICE_ANNOTATION, "10")]);
    let labels = node(&[(labels::INSTANCE_TYPE, "p4d.24xlarge"), SPOT]);
    let m = node_market(&labels, &annotations, 7, &catalog, &advisor).unwrap();
    assert_eq!(m.source, PriceSource::Annotation);
    assert!(close(m.hourly_price_usd, 10.0));
    assert!(close(m.gpus, 8.0), "GPU count still from the catalog");
    assert_eq!(m.capacity, CapacityType::Spot);
    let unknown = node(&[(labels::INSTANCE_TYPE, "x9.huge")]);
    let m = node_market(&unknown, &annotations, 2, &catalog, &advisor).unwrap();
    assert!(close(m.price_per_gpu_hour().unwrap(), 5.0));
}

#[test]
fn invalid_annotation_is_an_error_not_a_silent_fallback() {
    let (catalog, advisor) = data();
    let annotations = node(&[(labels::HOURLY_PRICE_ANNOTATION, "-3")]);
    let err = node_market(&BTreeMap::new(), &annotations, 1, &catalog, &advisor).unwrap_err();
    assert!(
        matches!(err, MarketError::InvalidAnnotation { .. }),
        "{err}"
    );
}

/// Label keys the resolver reads, plus noise.
fn label_key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(labels::INSTANCE_TYPE.to_owned()),
        Just(labels::REGION.to_owned()),
        Just(labels::KARPENTER_CAPACITY_TYPE.to_owned()),
        Just(labels::EKS_CAPACITY_TYPE.to_owned()),
        Just(labels::GKE_SPOT.to_owned()),
        Just(labels::GKE_PREEMPTIBLE.to_owned()),
        Just(labels::AKS_SCALESET_PRIORITY.to_owned()),
        "[a-z./-]{1,24}",
    ]
}

/// Label values that hit catalog rows, advisor regions and capacity values, plus noise.
fn label_value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "p4d.24xlarge",
            "g5.xlarge",
            "p5.48xlarge",
            "p5.4xlarge",
            "g6f.large",
            "a2-highgpu-1g",
            "Standard_NV6ads_A10_v5",
            "us-east-1",
            "us-west-2",
            "ca-central-1",
            "eastus",
            "spot",
            "SPOT",
            "on-demand",
            "reserved",
            "true",
        ])
        .prop_map(str::to_owned),
        "\\PC{0,16}",
    ]
}

/// Price annotation values: numbers of every kind, including NaN and infinities, and junk.
fn price_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<f64>().prop_map(|x| x.to_string()),
        (0.0..1000.0f64).prop_map(|x| format!("{x:.3}")),
        prop::sample::select(vec!["NaN", "inf", "-inf", "-0", "1e309", "", " 2 "])
            .prop_map(str::to_owned),
        "\\PC{0,12}",
    ]
}

proptest! {
    #[test]
    fn node_market_never_yields_negative_or_nan_numbers(
        node_labels in prop::collection::btree_map(label_key(), label_value(), 0..8),
        price in prop::option::of(price_value()),
        other_annotations in prop::collection::btree_map("[a-z./-]{1,16}", "\\PC{0,8}", 0..3),
        gpus_on_node in any::<u32>(),
    ) {
        let (catalog, advisor) = data();
        let mut annotations = other_annotations;
        if let Some(price) = &price {
            annotations.insert(labels::HOURLY_PRICE_ANNOTATION.to_owned(), price.clone());
        }
        match node_market(&node_labels, &annotations, gpus_on_node, &catalog, &advisor) {
            Ok(m) => {
                prop_assert!(m.hourly_price_usd.is_finite() && m.hourly_price_usd >= 0.0);
                prop_assert!(m.gpus.is_finite() && m.gpus >= 0.0);
                let p = m.hourly_interruption_probability;
                prop_assert!(p.is_finite() && (0.0..1.0).contains(&p));
                prop_assert_eq!(p > 0.0, m.capacity == CapacityType::Spot);
                if let Some(per_gpu) = m.price_per_gpu_hour() {
                    prop_assert!(per_gpu.is_finite() && per_gpu >= 0.0);
                }
            }
            Err(err) => {
                // The only possible error is a bad price annotation.
                prop_assert!(price.is_some());
                prop_assert!(matches!(err, MarketError::InvalidAnnotation { .. }), "{}", err);
            }
        }
    }
}
