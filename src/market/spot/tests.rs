use super::*;

#[test]
fn builtin_table_loads_every_trimmed_row() {
    let advisor = SpotAdvisor::builtin().unwrap();
    assert_eq!(advisor.len(), 540);
    assert!(!advisor.is_empty());
}

#[test]
fn lookups_match_the_spot_advisor_json() {
    let advisor = SpotAdvisor::builtin().unwrap();
    // (region, type, r, s) read from aws-spot-advisor-data.json, spot_advisor.<region>.Linux.
    let expected = [
        ("us-east-1", "p4d.24xlarge", 2, 67.0),
        ("us-east-1", "g5.xlarge", 4, 59.0),
        ("us-east-1", "p5.48xlarge", 4, 52.0),
        ("us-east-1", "p5en.48xlarge", 0, 64.0),
        ("us-east-1", "g4dn.xlarge", 3, 64.0),
        ("us-east-1", "g6e.xlarge", 1, 58.0),
        ("eu-west-1", "g5.xlarge", 2, 56.0),
        ("us-west-2", "p4d.24xlarge", 4, 53.0),
        ("us-west-2", "p5.48xlarge", 1, 46.0),
        ("ap-northeast-1", "g6.xlarge", 4, 56.0),
        ("af-south-1", "g4dn.12xlarge", 0, 87.0),
        ("eu-central-1", "g6e.2xlarge", 4, 59.0),
        // The feed's one negative saving among GPU types: spot above on-demand.
        ("ca-central-1", "p5.48xlarge", 0, -62.0),
    ];
    for (region, instance_type, r, s) in expected {
        let (band, savings) = advisor.band(region, instance_type).unwrap();
        assert_eq!(band.index(), r, "{region} {instance_type}");
        assert_eq!(savings, s, "{region} {instance_type}");
    }
}

#[test]
fn unlisted_types_regions_and_non_gpu_types_are_absent() {
    let advisor = SpotAdvisor::builtin().unwrap();
    // Not in the feed at all.
    assert_eq!(advisor.band("us-east-1", "p5.4xlarge"), None);
    assert_eq!(advisor.band("us-east-1", "g6f.large"), None);
    // In the feed, but trimmed away: not a GPU family.
    assert_eq!(advisor.band("us-east-1", "m5.large"), None);
    // Region with no GPU entries, and a made-up one.
    assert_eq!(advisor.band("ca-west-1", "g5.xlarge"), None);
    assert_eq!(advisor.band("mars-1", "g5.xlarge"), None);
}

fn table(body: &str) -> Result<SpotAdvisor, MarketError> {
    let text = format!("region,instance_type,band,savings_pct\n{body}");
    SpotAdvisor::from_csv_reader(text.as_bytes(), "spot.csv")
}

#[test]
fn bands_may_be_indices_or_labels() {
    let advisor = table("r1,t1,3,10\nr1,t2,>20%,20\n").unwrap();
    assert_eq!(
        advisor.band("r1", "t1"),
        Some((InterruptionBand::From15To20, 10.0))
    );
    assert_eq!(
        advisor.band("r1", "t2"),
        Some((InterruptionBand::Over20, 20.0))
    );
}

#[test]
fn malformed_rows_are_reported_with_line_and_column() {
    let cases = [
        (
            "r,t,5,10\n",
            "spot.csv:2:3: \"5\" is not a Spot Advisor band",
        ),
        (
            "r,t,-1,10\n",
            "spot.csv:2:3: \"-1\" is not a Spot Advisor band",
        ),
        (
            "r,t,1,NaN\n",
            "spot.csv:2:4: `savings_pct` = \"NaN\" is not finite",
        ),
        (
            "r,t,1,x\n",
            "spot.csv:2:4: `savings_pct` = \"x\" is not a number",
        ),
        (
            "r,t,1,150\n",
            "spot.csv:2:4: `savings_pct` = \"150\" is outside -100..=100",
        ),
        ("r,t,1,\n", "spot.csv:2:4: `savings_pct` is empty"),
        (
            "r,t,1\n",
            "spot.csv:2:4: row ends before column `savings_pct`",
        ),
        (
            "r,t,1,2\nr,t,2,3\n",
            "spot.csv:3:1: region \"r\", instance type \"t\" already on line 2",
        ),
    ];
    for (body, want) in cases {
        let got = table(body).unwrap_err().to_string();
        assert!(got.starts_with(want), "{body:?}\n got: {got}\nwant: {want}");
    }
    let err = SpotAdvisor::from_csv_reader(&b"region,band\n"[..], "s.csv").unwrap_err();
    assert_eq!(
        err.to_string(),
        "s.csv:1: header has no column `instance_type`"
    );
}
