use super::*;
use crate::report::Sample;

fn run(policy: &str, seed: u64, used: &[u64]) -> RunRecord {
    // 2 GPUs; arrival climbs 100 milli (5 %) per pod.
    RunRecord {
        policy: policy.to_owned(),
        seed,
        capacity_milli: 2000,
        pods: used.len() as u64,
        failed_pods: 0,
        samples: used
            .iter()
            .enumerate()
            .map(|(i, &used_milli)| Sample {
                arrived_milli: (i as u64 + 1) * 100,
                used_milli,
                frag_milli: used_milli as f64 / 7.0,
            })
            .collect(),
    }
}

fn records() -> Vec<RunRecord> {
    vec![
        run("tessera", 43, &[100, 200, 290, 333]),
        run("fgd", 42, &[100, 150, 250, 300]),
        run("tessera", 42, &[100, 200, 300, 400]),
    ]
}

#[test]
fn curves_csv_is_ordered_by_policy_seed_and_bin_with_four_decimals() {
    let text = String::from_utf8(curves_csv(&records()).unwrap()).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("policy,seed,arrived_pct,alloc_pct,unalloc_pct,frag_pct")
    );
    // First sample: 100 of 2000 milli is 5 %, allocation 5 %, frag 100/7/2/10 %.
    assert_eq!(lines.next(), Some("tessera,42,4,5.0000,95.0000,0.7143"));
    let keys: Vec<(String, u64, u32)> = text
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[0].to_owned(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
            )
        })
        .collect();
    let policies: Vec<&str> = keys.iter().map(|k| k.0.as_str()).collect();
    // Each tessera run covers bins 4..=6, 9..=11, 14..=16 and 19..=21: 12 rows.
    assert_eq!(policies.iter().position(|&p| p == "fgd"), Some(2 * 12));
    let tessera: Vec<(u64, u32)> = keys
        .iter()
        .filter(|k| k.0 == "tessera")
        .map(|k| (k.1, k.2))
        .collect();
    let mut sorted = tessera.clone();
    sorted.sort();
    assert_eq!(tessera, sorted);
}

#[test]
fn identical_input_gives_byte_identical_files() {
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    let a = write_all(&records(), first.path(), 20).unwrap();
    let b = write_all(&records(), second.path(), 20).unwrap();
    for (pa, pb) in a.paths().iter().zip(b.paths()) {
        assert_eq!(
            fs::read(pa).unwrap(),
            fs::read(pb).unwrap(),
            "{}",
            pa.display()
        );
    }
}

#[test]
fn writes_every_file_into_a_new_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("nested").join("report");
    let written = write_all(&records(), &out, 20).unwrap();
    let names: Vec<String> = written
        .paths()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec![
            "summary.md",
            "summary.json",
            "curves.csv",
            "curves_median.csv",
            "unallocated.svg"
        ]
    );
    for path in written.paths() {
        assert!(path.starts_with(&out));
        assert!(fs::metadata(path).unwrap().len() > 0, "{}", path.display());
    }
    let summary = fs::read_to_string(&written.summary_md).unwrap();
    assert!(summary.contains("| tessera |") && summary.contains("| fgd |"));
}

#[test]
fn median_csv_has_spread_columns_per_policy_and_bin() {
    let text = String::from_utf8(curves_median_csv(&policy_curves(&records())).unwrap()).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(
            "policy,arrived_pct,runs,unalloc_median,unalloc_p25,unalloc_p75,unalloc_min,unalloc_max,frag_median"
        )
    );
    // At 20 % (fourth pod): tessera allocated 333/2000 → 16.65 % and 400/2000 → 20 %.
    let row = text.lines().find(|l| l.starts_with("tessera,20,")).unwrap();
    assert_eq!(
        row,
        "tessera,20,2,81.6750,80.8375,82.5125,80.0000,83.3500,2.6179"
    );
}

#[test]
fn svg_has_a_line_and_a_legend_entry_per_policy() {
    let dir = tempfile::tempdir().unwrap();
    let written = write_all(&records(), dir.path(), 100).unwrap();
    let svg = fs::read_to_string(&written.unallocated_svg).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
    assert!(svg.contains("<text"));
    // plotters puts each text on its own line between the tags. These runs end at 20 %
    // arrival: nothing to read at 100 %, but the marker is drawn there.
    assert!(
        svg.contains("\ntessera n/a\n</text>"),
        "legend entry for tessera"
    );
    assert!(svg.contains("\nfgd n/a\n</text>"), "legend entry for fgd");
    assert!(
        svg.contains("\n--at 100 %\n</text>"),
        "marker at the read-out bin"
    );
    assert!(svg.contains("The whole curve"), "the full-range panel");
    // Read at 10 %, the legend gives each value and lists the fewest idle GPUs first:
    // tessera 90.00 % (200 of 2,000 milli used), fgd 92.50 %.
    let at_10 = write_all(&records(), dir.path(), 10).unwrap();
    let svg_10 = fs::read_to_string(&at_10.unallocated_svg).unwrap();
    let tessera = svg_10
        .find("\ntessera 90.00 %\n</text>")
        .expect("tessera's value");
    let fgd = svg_10.find("\nfgd 92.50 %\n</text>").expect("fgd's value");
    assert!(tessera < fgd, "fewest unallocated first");
    assert!(svg.contains("Unallocated GPU (%)"));
    assert!(svg.contains("Arrived workload (% of cluster GPU capacity)"));
    // One colour per policy, used by its line and its legend mark.
    for colour in ["#E6194B", "#3CB44B"] {
        assert!(svg.matches(colour).count() >= 2, "{colour}");
    }
}

#[test]
fn out_dir_that_is_a_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    fs::write(&file, "x").unwrap();
    let err = write_all(&records(), &file, 100).unwrap_err();
    assert!(
        matches!(&err, ReportError::CreateDir { path, .. } if path == &file),
        "{err:?}"
    );
    assert!(err.to_string().contains("not-a-dir"), "{err}");
}
