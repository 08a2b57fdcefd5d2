use std::collections::{BTreeMap, HashSet};
use std::io::{self, Read};

use proptest::prelude::*;

use super::*;

const POD_HEADER: &str = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time";
const NODE_HEADER: &str = "sn,cpu_milli,memory_mib,gpu,model";

fn pods(text: &str) -> Result<Vec<TracePod>, TraceError> {
    read_pods_from(text.as_bytes(), "pods.csv")
}

fn nodes(text: &str) -> Result<Vec<TraceNode>, TraceError> {
    read_nodes_from(text.as_bytes(), "nodes.csv")
}

/// A full-format (eleven-column) pod list: the header, then `rows`.
fn pod_rows(rows: &[&str]) -> String {
    format!("{POD_HEADER}\n{}\n", rows.join("\n"))
}

/// A node list: the header, then `rows`.
fn node_rows(rows: &[&str]) -> String {
    format!("{NODE_HEADER}\n{}\n", rows.join("\n"))
}

/// Asserts an `InvalidField` error at `line` and `column` whose message names both.
fn assert_invalid(err: &TraceError, line: u64, column: &str) {
    match err {
        TraceError::InvalidField {
            line: got_line,
            column: got_column,
            ..
        } => {
            assert_eq!((*got_line, got_column.as_str()), (line, column), "{err}");
        }
        other => panic!("expected InvalidField, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(&format!("line {line}, column {column}:")),
        "{message}"
    );
}

fn pod_err(row: &str) -> TraceError {
    pods(&pod_rows(&["p0,1000,1024,1,1000,,LS,Running,0,10,0", row])).unwrap_err()
}

fn node_err(row: &str) -> TraceError {
    nodes(&node_rows(&["n0,1000,1024,2,T4", row])).unwrap_err()
}

#[test]
fn reads_pod_with_all_columns() {
    let got = pods(&pod_rows(&[
        "openb-pod-0001,6000,12288,1,460,V100M16|V100M32,BE,Running,427061,12902960,427061",
    ]))
    .unwrap();
    assert_eq!(
        got,
        vec![TracePod {
            name: "openb-pod-0001".to_owned(),
            cpu_milli: 6000,
            memory_mib: 12288,
            num_gpu: 1,
            gpu_milli: 460,
            gpu_spec: vec!["V100M16".to_owned(), "V100M32".to_owned()],
            qos: Some(Qos::Be),
            creation_time: Some(427_061),
            deletion_time: Some(12_902_960),
        }]
    );
}

#[test]
fn reads_five_column_multigpu_pod_list() {
    let text =
        "name,cpu_milli,memory_mib,num_gpu,gpu_milli\np0,8000,30000,8,1000\np1,4000,1000,0,0\n";
    let got = pods(text).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!((got[0].num_gpu, got[0].gpu_milli), (8, 1000));
    assert!(got[0].gpu_spec.is_empty());
    assert_eq!(got[0].qos, None);
    assert_eq!((got[0].creation_time, got[0].deletion_time), (None, None));
}

#[test]
fn splits_gpu_spec_and_ignores_empty_items() {
    let got = pods(&pod_rows(&[
        "p0,1000,1024,1,1000,|T4||G2 |,LS,Running,0,1,0",
        "p1,1000,1024,1,1000,,LS,Running,0,1,0",
        "p2,1000,1024,1,1000,A10,LS,Running,0,1,0",
    ]))
    .unwrap();
    assert_eq!(got[0].gpu_spec, vec!["T4".to_owned(), "G2".to_owned()]);
    assert!(got[1].gpu_spec.is_empty());
    assert_eq!(got[2].gpu_spec, vec!["A10".to_owned()]);
}

#[test]
fn reads_cpu_only_pod_and_empty_optional_fields() {
    let got = pods(&pod_rows(&["p0,2000,4096,0,0,,,Pending,,,"])).unwrap();
    assert_eq!((got[0].num_gpu, got[0].gpu_milli), (0, 0));
    assert_eq!(got[0].qos, None);
    assert_eq!((got[0].creation_time, got[0].deletion_time), (None, None));
}

#[test]
fn reads_every_qos_class() {
    let got = pods(&pod_rows(&[
        "p0,1,1,0,0,,LS,Running,0,1,0",
        "p1,1,1,0,0,,BE,Running,0,1,0",
        "p2,1,1,0,0,,Burstable,Running,0,1,0",
        "p3,1,1,0,0,,Guaranteed,Running,0,1,0",
    ]))
    .unwrap();
    let classes: Vec<_> = got.iter().map(|pod| pod.qos).collect();
    let expected = [Qos::Ls, Qos::Be, Qos::Burstable, Qos::Guaranteed];
    assert_eq!(classes, expected.map(Some));
    for qos in expected {
        assert_eq!(Qos::from_code(qos.code()), Some(qos));
    }
}

#[test]
fn reads_gpu_and_cpu_only_nodes() {
    let got = nodes(&node_rows(&["n0,96000,393216,8,G2", "n1,32000,262144,0,"])).unwrap();
    assert_eq!(
        got,
        vec![
            TraceNode {
                name: "n0".to_owned(),
                cpu_milli: 96_000,
                memory_mib: 393_216,
                gpus: 8,
                model: Some("G2".to_owned()),
                instance_type: None,
                capacity: None,
                hourly_price: None,
            },
            TraceNode {
                name: "n1".to_owned(),
                cpu_milli: 32_000,
                memory_mib: 262_144,
                gpus: 0,
                model: None,
                instance_type: None,
                capacity: None,
                hourly_price: None,
            },
        ]
    );
}

#[test]
fn finds_columns_by_name_in_any_order() {
    let got = nodes("model,gpu,extra,sn,memory_mib,cpu_milli\nT4,2,x,n0,1024,1000\n").unwrap();
    assert_eq!(got[0].name, "n0");
    assert_eq!(
        (got[0].cpu_milli, got[0].memory_mib, got[0].gpus),
        (1000, 1024, 2)
    );
    assert_eq!(got[0].model.as_deref(), Some("T4"));
}

#[test]
fn strips_byte_order_mark() {
    let got = nodes(&format!("\u{feff}{}", node_rows(&["n0,1000,1024,1,T4"]))).unwrap();
    assert_eq!(got[0].name, "n0");
}

#[test]
fn reads_files_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let node_path = dir.path().join("nodes.csv");
    let pod_path = dir.path().join("pods.csv");
    std::fs::write(&node_path, node_rows(&["n0,1000,1024,1,T4"])).unwrap();
    std::fs::write(&pod_path, pod_rows(&["p0,1,1,0,0,,LS,Running,0,1,0"])).unwrap();
    assert_eq!(read_nodes(&node_path).unwrap().len(), 1);
    assert_eq!(read_pods(&pod_path).unwrap().len(), 1);
}

#[test]
fn missing_file_is_io_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.csv");
    let err = read_pods(&path).unwrap_err();
    assert!(matches!(err, TraceError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("absent.csv"), "{err}");
}

#[test]
fn failing_reader_is_read_error() {
    struct Broken;
    impl Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::other("disk on fire"))
        }
    }
    let err = read_nodes_from(Broken, "broken").unwrap_err();
    assert!(matches!(err, TraceError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains("broken"), "{err}");
    let cause = std::error::Error::source(&err).map(ToString::to_string);
    assert_eq!(
        cause.as_deref(),
        Some("disk on fire"),
        "the reader's error is the source"
    );
}

#[test]
fn unparsable_number_reads_like_the_house_example() {
    let text = pod_rows(&["p0,1000,1024,1,12x,,LS,Running,0,1,0"]);
    let err = read_pods_from(text.as_bytes(), "openb_pod_list_default.csv").unwrap_err();
    assert_invalid(&err, 2, "gpu_milli");
    assert_eq!(
        err.to_string(),
        r#"openb_pod_list_default.csv line 2, column gpu_milli: "12x" is not a whole number"#
    );
}

#[test]
fn rejects_bad_numbers() {
    let err = pod_err("p1,-5,1024,0,0,,LS,Running,0,1,0");
    assert_invalid(&err, 3, "cpu_milli");
    assert!(err.to_string().contains("is negative"), "{err}");

    let err = pod_err("p1,1,99999999999999999999999,0,0,,LS,Running,0,1,0");
    assert_invalid(&err, 3, "memory_mib");
    assert!(err.to_string().contains("too large"), "{err}");

    assert_invalid(&pod_err("p1,1,1,,0,,LS,Running,0,1,0"), 3, "num_gpu");
    assert_invalid(
        &pod_err("p1,1,1,0,0,,LS,Running,1.5,1,0"),
        3,
        "creation_time",
    );
    assert_invalid(
        &pod_err("p1,1,1,0,0,,LS,Running,0,-1,0"),
        3,
        "deletion_time",
    );
    assert_invalid(
        &pod_err("p1,1,1,0,0,,LS,Running,0,1,soon"),
        3,
        "scheduled_time",
    );
    assert_invalid(&node_err("n1,1000,lots,2,T4"), 3, "memory_mib");
}

#[test]
fn rejects_missing_required_columns() {
    let err = pods("name,cpu_milli,memory_mib,num_gpu\np0,1,1,0\n").unwrap_err();
    assert!(
        matches!(
            err,
            TraceError::MissingColumn {
                column: "gpu_milli",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("gpu_milli"), "{err}");

    let err = nodes("sn,cpu_milli,memory_mib,gpu\nn0,1,1,0\n").unwrap_err();
    assert!(
        matches!(
            err,
            TraceError::MissingColumn {
                column: "model",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn rejects_gpu_share_above_one_gpu() {
    let err = pod_err("p1,1,1,1,1001,,LS,Running,0,1,0");
    assert_invalid(&err, 3, "gpu_milli");
    assert!(err.to_string().contains("\"1001\""), "{err}");
}

#[test]
fn rejects_sharing_pod_asking_for_several_gpus() {
    assert_invalid(&pod_err("p1,1,1,2,500,,LS,Running,0,1,0"), 3, "num_gpu");
}

#[test]
fn rejects_gpu_count_and_share_that_disagree() {
    assert_invalid(&pod_err("p1,1,1,2,0,,LS,Running,0,1,0"), 3, "gpu_milli");
    assert_invalid(&pod_err("p1,1,1,0,500,,LS,Running,0,1,0"), 3, "num_gpu");
}

#[test]
fn rejects_more_gpus_than_a_node_can_have() {
    assert_eq!(MAX_GPUS_PER_NODE, 16);
    assert!(pods(&pod_rows(&["p0,1,1,16,1000,,LS,Running,0,1,0"])).is_ok());
    assert_invalid(&pod_err("p1,1,1,17,1000,,LS,Running,0,1,0"), 3, "num_gpu");
    assert!(nodes(&node_rows(&["n0,1,1,16,G2"])).is_ok());
    assert_invalid(&node_err("n1,1,1,17,G2"), 3, "gpu");
}

#[test]
fn rejects_node_model_that_disagrees_with_gpu_count() {
    assert_invalid(&node_err("n1,1,1,2,"), 3, "model");
    assert_invalid(&node_err("n1,1,1,0,T4"), 3, "model");
}

#[test]
fn rejects_empty_names() {
    assert_invalid(&node_err(",1,1,0,"), 3, "sn");
    assert_invalid(&pod_err(",1,1,0,0,,LS,Running,0,1,0"), 3, "name");
}

#[test]
fn rejects_duplicate_names() {
    let err = pod_err("p0,1,1,0,0,,LS,Running,0,1,0");
    match &err {
        TraceError::Duplicate {
            line,
            first_line,
            column,
            value,
            ..
        } => assert_eq!(
            (*line, *first_line, *column, value.as_str()),
            (3, 2, "name", "p0")
        ),
        other => panic!("expected Duplicate, got {other:?}"),
    }
    assert!(err.to_string().contains("line 3, column name:"), "{err}");

    let err = node_err("n0,1,1,0,");
    assert!(
        matches!(
            err,
            TraceError::Duplicate {
                line: 3,
                first_line: 2,
                column: "sn",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn rejects_unknown_qos() {
    let err = pod_err("p1,1,1,0,0,,ls,Running,0,1,0");
    assert_invalid(&err, 3, "qos");
    assert!(err.to_string().contains("\"ls\""), "{err}");
}

#[test]
fn rejects_input_without_rows() {
    for text in ["", "\n", POD_HEADER, &format!("{POD_HEADER}\n")] {
        let err = pods(text).unwrap_err();
        assert!(matches!(err, TraceError::Empty { .. }), "{text:?}: {err:?}");
        assert!(err.to_string().contains("no rows"), "{err}");
    }
    let err = nodes(NODE_HEADER).unwrap_err();
    assert!(matches!(err, TraceError::Empty { .. }), "{err:?}");
    let err = nodes(",,\n1,2,3\n").unwrap_err();
    assert!(matches!(err, TraceError::MissingColumn { .. }), "{err:?}");
}

#[test]
fn rejects_oversized_input() {
    let err = read_pods_from(io::repeat(b'a').take(MAX_FILE_BYTES + 1), "huge").unwrap_err();
    assert!(matches!(err, TraceError::TooLarge { .. }), "{err:?}");
    assert!(err.to_string().starts_with("huge:"), "{err}");
    // Exactly at the limit is read (and then fails for other reasons, not size).
    let err = read_pods_from(io::repeat(b'a').take(MAX_FILE_BYTES), "full").unwrap_err();
    assert!(!matches!(err, TraceError::TooLarge { .. }), "{err:?}");
}

#[test]
fn rejects_too_many_rows() {
    let mut text = String::from("sn,cpu_milli,memory_mib,gpu,model\n");
    for i in 0..=MAX_ROWS {
        text.push_str(&format!("{i},1,1,0,\n"));
    }
    let err = nodes(&text).unwrap_err();
    match &err {
        TraceError::TooManyRows { line, limit, .. } => {
            assert_eq!((*line, *limit), (MAX_ROWS + 2, MAX_ROWS));
        }
        other => panic!("expected TooManyRows, got {other:?}"),
    }
}

#[test]
fn rejects_overlong_fields() {
    let long = "x".repeat(MAX_FIELD_BYTES + 1);
    let err = node_err(&format!("n1,1,1,1,{long}"));
    match &err {
        TraceError::FieldTooLong {
            line,
            column,
            bytes,
            ..
        } => assert_eq!(
            (*line, column.as_str(), *bytes),
            (3, "model", MAX_FIELD_BYTES + 1)
        ),
        other => panic!("expected FieldTooLong, got {other:?}"),
    }
    assert!(err.to_string().contains("line 3, column model:"), "{err}");

    let err = nodes(&format!("{NODE_HEADER},{long}\nn0,1,1,0,,x\n")).unwrap_err();
    assert!(
        matches!(err, TraceError::FieldTooLong { line: 1, .. }),
        "{err:?}"
    );
    // A field exactly at the limit is fine.
    let name = "n".repeat(MAX_FIELD_BYTES);
    assert!(nodes(&node_rows(&[&format!("{name},1,1,0,")])).is_ok());
}

#[test]
fn rejects_repeated_header_column() {
    let err = nodes("sn,cpu_milli,memory_mib,gpu,model,gpu\nn0,1,1,0,,1\n").unwrap_err();
    assert!(matches!(err, TraceError::DuplicateColumn { .. }), "{err:?}");
    assert!(err.to_string().contains("column gpu"), "{err}");
}

#[test]
fn malformed_csv_names_the_line() {
    let err = nodes(&node_rows(&["n0,1,1,0,", "n1,1,1"])).unwrap_err();
    match &err {
        TraceError::Csv { line, .. } => assert_eq!(*line, 3),
        other => panic!("expected Csv, got {other:?}"),
    }
    assert!(err.to_string().starts_with("nodes.csv line 3:"), "{err}");

    let mut bytes = node_rows(&["n0,1,1,0,"]).into_bytes();
    bytes.extend_from_slice(b"n\xff1,1,1,0,\n");
    let err = read_nodes_from(bytes.as_slice(), "nodes.csv").unwrap_err();
    assert!(matches!(err, TraceError::Csv { line: 3, .. }), "{err:?}");
}

#[test]
fn bundled_nodes_match_the_reference_counts() {
    let got = bundled_nodes().unwrap();
    assert_eq!(got.len(), 1213);
    assert_eq!(
        got.iter().map(|node| u64::from(node.gpus)).sum::<u64>(),
        6212
    );
    assert_eq!(
        got.iter().map(|node| node.cpu_milli).sum::<u64>(),
        107_018_000
    );
    assert_eq!(
        got.iter().map(|node| node.memory_mib).sum::<u64>(),
        503_828_480
    );
    let mut per_size = BTreeMap::new();
    for node in &got {
        *per_size.entry(node.gpus).or_insert(0) += 1;
    }
    assert_eq!(
        per_size,
        BTreeMap::from([(1, 24), (2, 518), (4, 54), (8, 617)])
    );
}

#[test]
fn bundled_pods_match_the_reference_counts() {
    let got = bundled_pods().unwrap();
    assert_eq!(got.len(), 8152);
    let mut per_count = BTreeMap::new();
    for pod in &got {
        *per_count.entry(pod.num_gpu).or_insert(0) += 1;
    }
    assert_eq!(
        per_count,
        BTreeMap::from([(0, 1088), (1, 6989), (2, 16), (4, 15), (8, 44)])
    );
    let sharing = got
        .iter()
        .filter(|pod| pod.gpu_milli > 0 && pod.gpu_milli < 1000);
    assert_eq!(sharing.count(), 3078);
    let ls = got.iter().filter(|pod| pod.qos == Some(Qos::Ls)).count();
    assert_eq!(ls, 4647);
    assert!(got.iter().all(|pod| pod.creation_time.is_some()));
}

#[test]
fn bundled_gpushare100_pods_share_every_gpu() {
    let got = bundled_gpushare100_pods().unwrap();
    assert_eq!(got.len(), 8152);
    let gpu_pods: Vec<_> = got.iter().filter(|pod| pod.num_gpu > 0).collect();
    assert_eq!(gpu_pods.len(), 7064);
    assert!(
        gpu_pods
            .iter()
            .all(|pod| pod.num_gpu == 1 && pod.gpu_milli < 1000)
    );
}

#[test]
fn bundled_errors_name_the_bundled_source() {
    let err = read_pods_from(&b""[..], "bundled:openb_pod_list_default.csv").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("bundled:openb_pod_list_default.csv")
    );
}

/// The rules every successful read guarantees.
fn check_pod_invariants(pods: &[TracePod]) {
    assert!(!pods.is_empty());
    let mut names = HashSet::new();
    for pod in pods {
        assert!(!pod.name.is_empty() && names.insert(&pod.name), "{pod:?}");
        assert!(pod.num_gpu <= MAX_GPUS_PER_NODE, "{pod:?}");
        assert!(pod.gpu_milli <= 1000, "{pod:?}");
        assert_eq!(pod.num_gpu == 0, pod.gpu_milli == 0, "{pod:?}");
        if pod.gpu_milli < 1000 && pod.gpu_milli > 0 {
            assert_eq!(pod.num_gpu, 1, "{pod:?}");
        }
        assert!(
            pod.gpu_spec.iter().all(|model| !model.is_empty()),
            "{pod:?}"
        );
    }
}

fn check_node_invariants(nodes: &[TraceNode]) {
    assert!(!nodes.is_empty());
    let mut names = HashSet::new();
    for node in nodes {
        assert!(
            !node.name.is_empty() && names.insert(&node.name),
            "{node:?}"
        );
        assert!(node.gpus <= MAX_GPUS_PER_NODE, "{node:?}");
        assert_eq!(node.model.is_some(), node.gpus > 0, "{node:?}");
        assert!(
            node.model.as_ref().is_none_or(|model| !model.is_empty()),
            "{node:?}"
        );
    }
}

const COLUMNS: &[&str] = &[
    "sn",
    "name",
    "cpu_milli",
    "memory_mib",
    "gpu",
    "model",
    "num_gpu",
    "gpu_milli",
    "gpu_spec",
    "qos",
    "creation_time",
    "deletion_time",
    "scheduled_time",
    "pod_phase",
];

/// Valid and invalid values for one column, valid ones fifteen times as likely.
fn field(column: &str) -> BoxedStrategy<&'static str> {
    let (valid, invalid): (&'static [&'static str], &'static [&'static str]) = match column {
        "sn" | "name" => (&["a", "b", "c", "d", "e", "f", "g", "h"], &[""]),
        "gpu_spec" => (&["", "T4", "|A||B|", " "], &["x\"y"]),
        "qos" => (
            &["LS", "BE", "Burstable", "Guaranteed", ""],
            &["ls", "Best"],
        ),
        "pod_phase" => (&["Running", ""], &["\"q,\""]),
        "cpu_milli" | "memory_mib" => (&["0", "1", "4096", "+7"], &["", "-1", "1.5", "x"]),
        _ => (
            &["0", "1", "4096", ""],
            &["-1", "x", "18446744073709551616"],
        ),
    };
    prop_oneof![
        15 => prop::sample::select(valid),
        1 => prop::sample::select(invalid),
    ]
    .boxed()
}

/// A pair of values drawn together because the rules tie them: `(num_gpu, gpu_milli)` for
/// pods and `(gpu, model)` for nodes.
fn pair(
    valid: &'static [(&'static str, &'static str)],
    invalid: &'static [(&'static str, &'static str)],
) -> BoxedStrategy<(&'static str, &'static str)> {
    prop_oneof![
        15 => prop::sample::select(valid),
        1 => prop::sample::select(invalid),
    ]
    .boxed()
}

/// One row for `header`, fields joined by commas.
fn row(header: Vec<&'static str>) -> impl Strategy<Value = String> {
    let pod_gpus = pair(
        &[
            ("0", "0"),
            ("1", "50"),
            ("1", "999"),
            ("1", "1000"),
            ("2", "1000"),
            ("16", "1000"),
        ],
        &[
            ("17", "1000"),
            ("2", "500"),
            ("0", "500"),
            ("1", "0"),
            ("1", "1001"),
            ("-1", "0"),
        ],
    );
    let node_gpus = pair(
        &[("0", ""), ("1", "T4"), ("8", "G2"), ("16", "G2")],
        &[("17", "G2"), ("2", ""), ("0", "T4"), ("x", "T4")],
    );
    let fields: Vec<_> = header.iter().map(|column| field(column)).collect();
    (pod_gpus, node_gpus, fields).prop_map(move |((num_gpu, gpu_milli), (gpu, model), fields)| {
        let values: Vec<&str> = header
            .iter()
            .zip(fields)
            .map(|(column, value)| match *column {
                "num_gpu" => num_gpu,
                "gpu_milli" => gpu_milli,
                "gpu" => gpu,
                "model" => model,
                _ => value,
            })
            .collect();
        values.join(",")
    })
}

/// CSV text for a pod or node list: the required columns plus a random subset of the others,
/// in random order (now and then with one required column dropped), with rows mostly valid
/// but with every rule's failure mixed in.
fn csv_like() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        prop::sample::subsequence(COLUMNS, 0..=COLUMNS.len()),
        0..16usize,
    )
        .prop_map(|(is_pods, extra, drop)| {
            let required: &[&'static str] = if is_pods { POD_COLUMNS } else { NODE_COLUMNS };
            let mut header = required.to_vec();
            if drop < 2 {
                header.remove(drop);
            }
            header.extend(
                extra
                    .into_iter()
                    .filter(|column| !required.contains(column)),
            );
            header
        })
        .prop_shuffle()
        .prop_flat_map(|header| {
            let rows = prop::collection::vec(row(header.clone()), 0..4);
            (Just(header), rows)
        })
        .prop_map(|(header, rows)| {
            let mut text = header.join(",");
            for row in rows {
                text.push('\n');
                text.push_str(&row);
            }
            text
        })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(got) = read_pods_from(bytes.as_slice(), "fuzz") {
            check_pod_invariants(&got);
        }
        if let Ok(got) = read_nodes_from(bytes.as_slice(), "fuzz") {
            check_node_invariants(&got);
        }
    }

    #[test]
    fn csv_like_text_never_panics(text in csv_like()) {
        if let Ok(got) = pods(&text) {
            check_pod_invariants(&got);
        }
        if let Ok(got) = nodes(&text) {
            check_node_invariants(&got);
        }
    }
}

#[test]
fn optional_market_columns_are_read_and_checked() {
    let text = "sn,cpu_milli,memory_mib,gpu,model,instance_type,capacity_type,hourly_price\n\
                n0,96000,393216,8,G2,p4d.24xlarge,spot,12.5\n\
                n1,32000,131072,2,T4,,,\n";
    let got = nodes(text).unwrap();
    assert_eq!(got[0].instance_type.as_deref(), Some("p4d.24xlarge"));
    assert_eq!(got[0].capacity, Some(crate::market::CapacityType::Spot));
    assert_eq!(got[0].hourly_price, Some(12.5));
    assert_eq!(
        (
            got[1].instance_type.as_deref(),
            got[1].capacity,
            got[1].hourly_price
        ),
        (None, None, None),
        "empty cells mean unknown"
    );
    for (row, column) in [
        ("n0,96000,393216,8,G2,,preemptible,", "capacity_type"),
        ("n0,96000,393216,8,G2,,,-1", "hourly_price"),
        ("n0,96000,393216,8,G2,,,NaN", "hourly_price"),
        ("n0,96000,393216,8,G2,,,$3", "hourly_price"),
    ] {
        let text = format!(
            "sn,cpu_milli,memory_mib,gpu,model,instance_type,capacity_type,hourly_price\n{row}\n"
        );
        assert_invalid(&nodes(&text).unwrap_err(), 2, column);
    }
}
