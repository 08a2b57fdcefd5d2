use super::*;

const HEADER: &str = "cloud,region,instance_type,gpu_model,gpus,gpu_mem_mib_each,od_usd_hr,\
                      od_usd_per_gpu_hr,spot_usd_hr_est,spot_usd_per_gpu_hr_est,\
                      spot_interruption_band,spot_savings_pct,price_source,spot_source";

fn catalog(rows: &[&str]) -> Result<PriceCatalog, MarketError> {
    let text = format!("{HEADER}\n{}\n", rows.join("\n"));
    PriceCatalog::from_csv_reader(text.as_bytes(), "override.csv")
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn builtin_catalog_keeps_every_gpu_row() {
    let catalog = PriceCatalog::builtin().unwrap();
    assert_eq!(catalog.len(), 61);
    let count = |cloud: &str| catalog.iter().filter(|r| r.cloud == cloud).count();
    assert_eq!((count("aws"), count("gcp"), count("azure")), (32, 11, 18));
    for row in catalog.iter() {
        assert!(row.gpus > 0.0 && row.od_usd_hr >= 0.0 && row.od_usd_per_gpu_hr >= 0.0);
        assert!(!row.price_source.is_empty(), "{}", row.instance_type);
    }
}

#[test]
fn builtin_prices_match_placement_benchmark_5_1() {
    let catalog = PriceCatalog::builtin().unwrap();
    // (type, GPUs, on-demand $/h, $/GPU-h, band, savings %), from placement-benchmark.md §5.1.
    let expected = [
        (
            "p4d.24xlarge",
            8.0,
            21.957642,
            2.7447,
            Some(InterruptionBand::From10To15),
            Some(67.0),
        ),
        (
            "g5.xlarge",
            1.0,
            1.006,
            1.006,
            Some(InterruptionBand::Over20),
            Some(59.0),
        ),
        (
            "p5.48xlarge",
            8.0,
            55.04,
            6.88,
            Some(InterruptionBand::Over20),
            Some(52.0),
        ),
        (
            "p5en.48xlarge",
            8.0,
            63.296,
            7.912,
            Some(InterruptionBand::Under5),
            Some(64.0),
        ),
        (
            "g4dn.xlarge",
            1.0,
            0.526,
            0.526,
            Some(InterruptionBand::From15To20),
            Some(64.0),
        ),
        ("p5.4xlarge", 1.0, 6.88, 6.88, None, None),
        ("g6f.large", 0.125, 0.202, 1.616, None, None),
    ];
    for (instance_type, gpus, od, per_gpu, band, savings) in expected {
        let row = catalog.lookup(instance_type, Some("us-east-1")).unwrap();
        assert_eq!(row.cloud, "aws");
        assert_eq!(row.region, "us-east-1");
        assert!(close(row.gpus, gpus), "{instance_type}");
        assert!(close(row.od_usd_hr, od), "{instance_type}");
        assert!(close(row.od_usd_per_gpu_hr, per_gpu), "{instance_type}");
        assert_eq!(row.interruption_band, band, "{instance_type}");
        assert_eq!(row.spot_savings_pct, savings, "{instance_type}");
    }
    let p4d = catalog.lookup("p4d.24xlarge", None).unwrap();
    assert_eq!(p4d.gpu_model, "a100");
    assert_eq!(p4d.gpu_mem_mib_each, Some(40960));
    assert_eq!(p4d.spot_usd_hr, Some(7.246));
    assert_eq!(p4d.spot_usd_per_gpu_hr, Some(0.9058));
}

#[test]
fn region_falls_back_to_any_row_of_the_type() {
    let catalog = PriceCatalog::builtin().unwrap();
    let row = catalog.lookup("g5.xlarge", Some("eu-west-1")).unwrap();
    assert_eq!(row.region, "us-east-1");
    assert_eq!(
        catalog.lookup("g5.xlarge", None).unwrap().region,
        "us-east-1"
    );
    // GCP rows have no usable region, so they are only ever found by the fallback.
    let a2 = catalog
        .lookup("a2-highgpu-1g", Some("us-central1"))
        .unwrap();
    assert!(close(a2.od_usd_hr, 3.673385));
    assert!(catalog.lookup("m5.large", Some("us-east-1")).is_none());
    assert!(catalog.lookup("", None).is_none());
}

#[test]
fn exact_region_is_preferred_over_file_order() {
    let catalog = catalog(&[
        "aws,us-east-1,g5.xlarge,a10g,1,22888,1.006,1.006,,,,,src,",
        "aws,eu-west-1,g5.xlarge,a10g,1,22888,1.123,1.123,,,,,src,",
    ])
    .unwrap();
    assert!(close(
        catalog
            .lookup("g5.xlarge", Some("eu-west-1"))
            .unwrap()
            .od_usd_hr,
        1.123
    ));
    assert!(close(
        catalog
            .lookup("g5.xlarge", Some("us-east-1"))
            .unwrap()
            .od_usd_hr,
        1.006
    ));
    assert!(close(
        catalog
            .lookup("g5.xlarge", Some("ap-south-1"))
            .unwrap()
            .od_usd_hr,
        1.006
    ));
}

#[test]
fn override_replaces_the_row_with_the_same_region_and_type() {
    let builtin = PriceCatalog::builtin().unwrap();
    let overrides =
        catalog(&["aws,us-east-1,g5.xlarge,a10g,1,22888,0.9,,0.3,,<5%,67,my contract,my quote"])
            .unwrap();
    let merged = builtin.clone().merged_with(overrides);
    assert_eq!(merged.len(), builtin.len());
    let row = merged.lookup("g5.xlarge", Some("us-east-1")).unwrap();
    assert!(close(row.od_usd_hr, 0.9));
    assert!(close(row.od_usd_per_gpu_hr, 0.9));
    assert_eq!(row.spot_usd_hr, Some(0.3));
    assert_eq!(row.interruption_band, Some(InterruptionBand::Under5));
    assert_eq!(row.price_source, "my contract");
    // Other rows are untouched.
    assert_eq!(
        merged.lookup("p4d.24xlarge", None),
        builtin.lookup("p4d.24xlarge", None)
    );
}

#[test]
fn override_adds_new_rows_and_wins_the_region_fallback() {
    let builtin = PriceCatalog::builtin().unwrap();
    let overrides = catalog(&[
        "aws,eu-west-1,g5.xlarge,a10g,1,22888,1.2,1.2,,,,,eu list,",
        "onprem,dc1,dgx-a100,a100,8,81920,,1.5,,,,,amortised,",
    ])
    .unwrap();
    let merged = builtin.clone().merged_with(overrides);
    assert_eq!(merged.len(), builtin.len() + 2);
    assert!(close(
        merged
            .lookup("g5.xlarge", Some("eu-west-1"))
            .unwrap()
            .od_usd_hr,
        1.2
    ));
    assert!(close(
        merged
            .lookup("g5.xlarge", Some("us-east-1"))
            .unwrap()
            .od_usd_hr,
        1.006
    ));
    assert!(close(
        merged
            .lookup("g5.xlarge", Some("eu-north-1"))
            .unwrap()
            .od_usd_hr,
        1.2
    ));
    let dgx = merged.lookup("dgx-a100", None).unwrap();
    assert!(
        close(dgx.od_usd_hr, 12.0),
        "whole price derived from per-GPU price"
    );
}

#[test]
fn extra_columns_and_quoted_fields_are_accepted() {
    let text = "notes,instance_type,cloud,region,gpu_model,gpus,gpu_mem_mib_each,od_usd_hr,\
                od_usd_per_gpu_hr,spot_usd_hr_est,spot_usd_per_gpu_hr_est,\
                spot_interruption_band,spot_savings_pct,price_source,spot_source,vcpu\n\
                \"a, b\",g6.xlarge,aws,us-east-1,l4,1,22888,0.8048,0.8048,,,,,\"x (1, 2)\",,4\n";
    let catalog = PriceCatalog::from_csv_reader(text.as_bytes(), "full.csv").unwrap();
    let row = catalog.lookup("g6.xlarge", None).unwrap();
    assert_eq!(row.price_source, "x (1, 2)");
    assert!(close(row.od_usd_hr, 0.8048));
}

/// The error of a one-row override file, rendered.
fn error_of(row: &str) -> String {
    catalog(&[row]).unwrap_err().to_string()
}

#[test]
fn bad_numbers_are_reported_with_line_and_column() {
    let cases = [
        (
            "aws,r,t,m,1,,abc,,,,,,s,",
            "override.csv:2:7: `od_usd_hr` = \"abc\" is not a number",
        ),
        (
            "aws,r,t,m,1,,-1,,,,,,s,",
            "override.csv:2:7: `od_usd_hr` = \"-1\" is negative",
        ),
        (
            "aws,r,t,m,1,,NaN,,,,,,s,",
            "override.csv:2:7: `od_usd_hr` = \"NaN\" is not finite",
        ),
        (
            "aws,r,t,m,1,,inf,,,,,,s,",
            "override.csv:2:7: `od_usd_hr` = \"inf\" is not finite",
        ),
        (
            "aws,r,t,m,0,,1,,,,,,s,",
            "override.csv:2:5: `gpus` = \"0\" must be greater than 0",
        ),
        (
            "aws,r,t,m,-2,,1,,,,,,s,",
            "override.csv:2:5: `gpus` = \"-2\" is negative",
        ),
        (
            "aws,r,t,m,1,,1,,-0.5,,,,s,",
            "override.csv:2:9: `spot_usd_hr_est` = \"-0.5\" is negative",
        ),
        (
            "aws,r,t,m,1,,1,,,NaN,,,s,",
            "override.csv:2:10: `spot_usd_per_gpu_hr_est` = \"NaN\"",
        ),
        (
            "aws,r,t,m,1,,1,,,,,101,s,",
            "override.csv:2:12: `spot_savings_pct` = \"101\" is outside",
        ),
        (
            "aws,r,t,m,1,,1,,,,,-101,s,",
            "override.csv:2:12: `spot_savings_pct` = \"-101\" is outside",
        ),
        (
            "aws,r,t,m,1,1.5,1,,,,,,s,",
            "override.csv:2:6: `gpu_mem_mib_each` = \"1.5\" is not a whole",
        ),
        (
            "aws,r,t,m,1,-8,1,,,,,,s,",
            "override.csv:2:6: `gpu_mem_mib_each` = \"-8\" is not a whole",
        ),
    ];
    for (row, want) in cases {
        let got = error_of(row);
        assert!(got.starts_with(want), "{row}\n got: {got}\nwant: {want}");
    }
}

#[test]
fn missing_and_empty_values_are_reported_with_line_and_column() {
    let ok = "aws,r,t,m,1,,1,,,,,,s,";
    let short = "aws,r,t,m,1,,1";
    let got = catalog(&[ok, short]).unwrap_err().to_string();
    assert_eq!(
        got,
        "override.csv:3:8: row ends before column `od_usd_per_gpu_hr`"
    );
    let long = "aws,r,t,m,1,,1,,,,,,s,,extra";
    assert_eq!(
        error_of(long),
        "override.csv:2:15: row has 15 fields but the header has 14"
    );
    assert_eq!(
        error_of("aws,r,t,m,1,,,,,,,,s,"),
        "override.csv:2:7: `od_usd_hr` is empty"
    );
    assert_eq!(
        error_of("aws,r,t,m,,,1,,,,,,s,"),
        "override.csv:2:5: `gpus` is empty"
    );
    assert_eq!(
        error_of("aws,,t,m,1,,1,,,,,,s,"),
        "override.csv:2:2: `region` is empty"
    );
    assert_eq!(
        error_of("aws,r,,m,1,,1,,,,,,s,"),
        "override.csv:2:3: `instance_type` is empty"
    );
}

#[test]
fn missing_header_column_is_an_error() {
    let text = "cloud,region,instance_type,gpus,od_usd_hr\naws,r,t,1,1\n";
    let err = PriceCatalog::from_csv_reader(text.as_bytes(), "o.csv").unwrap_err();
    assert_eq!(err.to_string(), "o.csv:1: header has no column `gpu_model`");
    let err = PriceCatalog::from_csv_reader(&b""[..], "empty.csv").unwrap_err();
    assert_eq!(
        err,
        MarketError::MissingColumn {
            file: "empty.csv".into(),
            column: "cloud"
        }
    );
}

#[test]
fn inconsistent_duplicate_and_unknown_band_rows_are_errors() {
    let got = error_of("aws,r,t,m,4,,4,2,,,,,s,");
    assert!(
        got.starts_with("override.csv:2:8: `od_usd_per_gpu_hr` = 2 but"),
        "{got}"
    );
    // Rounding to 4 decimals, as in the catalog, is accepted.
    assert!(catalog(&["aws,r,t,m,4,,1.4083,0.3521,,,,,s,"]).is_ok());
    let got = error_of("aws,r,t,m,1,,1,,,,6%,,s,");
    assert!(
        got.starts_with("override.csv:2:11: \"6%\" is not a Spot Advisor band"),
        "{got}"
    );
    let dup = catalog(&["aws,r,t,m,1,,1,,,,,,s,", "aws,r,t,m,1,,2,,,,,,s,"]).unwrap_err();
    assert_eq!(
        dup.to_string(),
        "override.csv:3:1: region \"r\", instance type \"t\" already on line 2"
    );
}

#[test]
fn absurd_gpu_counts_and_prices_are_rejected_before_they_can_overflow() {
    let got = error_of("aws,r,t,m,1e-300,,1e300,,,,,,s,");
    assert!(
        got.starts_with("override.csv:2:5: `gpus` = \"1e-300\" is below 0.01 GPUs"),
        "{got}"
    );
    let got = error_of("aws,r,t,m,1e300,,,1e300,,,,,s,");
    assert!(
        got.starts_with("override.csv:2:5: `gpus` = \"1e300\" is above 4096 GPUs"),
        "{got}"
    );
    let got = error_of("aws,r,t,m,8,,1e300,,,,,,s,");
    assert!(
        got.starts_with("override.csv:2:7: `od_usd_hr` = \"1e300\" is above 1,000,000"),
        "{got}"
    );
}

#[test]
fn fallback_price_is_opencost_default() {
    assert!(close(FALLBACK_USD_PER_GPU_HOUR, 0.95));
}

#[test]
fn override_example_in_cost_model_doc_loads_and_applies() {
    let doc = include_str!("../../../docs/cost-model.md");
    let start = doc.find("```\ncloud,region,").unwrap() + "```\n".len();
    let len = doc[start..].find("```").unwrap();
    let example = &doc[start..start + len];
    let overrides = PriceCatalog::from_csv_reader(example.as_bytes(), "cost-model.md").unwrap();
    assert_eq!(overrides.len(), 2);
    let merged = PriceCatalog::builtin().unwrap().merged_with(overrides);
    let p4d = merged.lookup("p4d.24xlarge", Some("us-east-1")).unwrap();
    assert!(close(p4d.od_usd_hr, 15.0));
    assert!(close(p4d.od_usd_per_gpu_hr, 15.0 / 8.0));
    assert!(close(
        merged.lookup("dgx-a100", None).unwrap().od_usd_hr,
        12.0
    ));
}
