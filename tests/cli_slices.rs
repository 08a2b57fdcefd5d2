//! `tessera slices` as an admin runs it: the built binary printing a fake node's slices.

// Test helpers sit outside `#[test]` functions, where clippy's allow-unwrap-in-tests does not
// reach; a failing unwrap here is a failing test, which is what we want.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

/// Exit code of bad flags, bad values and bad files.
const EXIT_USAGE: i32 = 2;

/// `tessera slices` with `args`, with the environment cleared of every variable a flag reads.
fn slices(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.arg("slices").args(args);
    for var in [
        "RUST_LOG",
        "LOG_FORMAT",
        "NODE_NAME",
        "TESSERA_FAKE_GPUS",
        "TESSERA_FAKE_INVENTORY",
        "TESSERA_MIG_STRATEGY",
        "TESSERA_DRIVER_NAME",
        "TESSERA_SHARE_REPLICAS",
    ] {
        cmd.env_remove(var);
    }
    cmd.output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// Asserts a usage failure with one stderr line holding every needle.
fn fails_with(output: &Output, needles: &[&str]) {
    assert_eq!(output.status.code(), Some(EXIT_USAGE), "{}", stderr(output));
    let err = stderr(output);
    assert_eq!(err.lines().count(), 1, "{err}");
    for needle in needles {
        assert!(err.contains(needle), "{needle:?} not in {err}");
    }
    assert!(output.stdout.is_empty());
}

#[test]
fn yaml_output_is_the_golden_rendering() {
    // The same bytes the library's golden test pins down: what admins see is what is
    // published.
    let golden = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/publish/testdata/h100x8-mig-static.ga.yaml");
    let out = slices(&[
        "--node-name",
        "gpu-node-1",
        "--fake-gpus",
        "h100x8-mig-static",
        "--features",
        "ga",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), std::fs::read_to_string(golden).unwrap());
}

#[test]
fn json_output_is_a_list_kubectl_can_apply() {
    let out = slices(&[
        "--node-name",
        "n7",
        "--fake-gpus",
        "h100x8-mig-dynamic",
        "--output",
        "json",
        "--driver-name",
        "gpu.example.com",
        "--generation",
        "4",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let list: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(list["kind"], "List");
    let items = list["items"].as_array().unwrap();
    // One counters slice; 216 devices: the 16 whole and shared GPUs, then one slice per
    // GPU's 25 MIG placements.
    assert_eq!(items.len(), 10);
    for item in items {
        assert_eq!(item["apiVersion"], "resource.k8s.io/v1");
        assert_eq!(item["spec"]["driver"], "gpu.example.com");
        assert_eq!(item["spec"]["nodeName"], "n7");
        assert_eq!(item["spec"]["pool"]["generation"], 4);
    }
    assert_eq!(items[1]["spec"]["devices"][0]["name"], "gpu-0-shared");
    let first_placement = &items[2]["spec"]["devices"][0];
    assert_eq!(first_placement["name"], "gpu-0-mig-1g10gb-6");
}

#[test]
fn replicas_and_levels_change_what_is_advertised() {
    let out = slices(&[
        "--node-name",
        "n1",
        "--fake-gpus",
        "a100-80x4",
        "--features",
        "ga",
        "--share-replicas",
        "2",
        "-o",
        "json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let list: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let names: Vec<&str> = list["items"][0]["spec"]["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 8);
    assert_eq!(
        &names[..3],
        ["gpu-0-share-0", "gpu-0-share-1", "gpu-1-share-0"]
    );
}

#[test]
fn an_inventory_file_is_read() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(
        br#"
driverVersion: "580.65.06"
gpus:
  - index: 0
    uuid: GPU-00000000-0000-4000-8000-000000000001
    pciBusId: "0000:01:00.0"
    productName: NVIDIA A30
    memoryBytes: 25769803776
    architecture: Ampere
    cudaComputeCapability: "8.0"
    mig: {mode: dynamic}
"#,
    )
    .unwrap();
    let path = file.path().to_str().unwrap();
    let out = slices(&[
        "--node-name",
        "edge-1",
        "--fake-inventory",
        path,
        "--features",
        "partitionable",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    // A30 geometry: 1g.6gb placements 0-3 (the top one first) and 4 compute slices.
    assert!(text.contains("name: gpu-0-mig-1g6gb-3"), "{text}");
    assert!(
        text.contains("compute-slices:\n        value: \"4\""),
        "{text}"
    );
    assert!(text.contains("version: \"580.65.6\""), "{text}");
}

#[test]
fn bad_input_is_one_clear_line() {
    fails_with(
        &slices(&["--node-name", "n1", "--fake-gpus", "h100x9"]),
        &["invalid value 'h100x9'", "--fake-gpus"],
    );
    fails_with(
        &slices(&[
            "--node-name",
            "n1",
            "--fake-gpus",
            "h100x8",
            "--fake-inventory",
            "x.yaml",
        ]),
        &["cannot be used with"],
    );
    fails_with(
        &slices(&[
            "--node-name",
            "n1",
            "--fake-gpus",
            "h100x8",
            "--share-replicas",
            "65",
        ]),
        &["--share-replicas", "65"],
    );
    fails_with(
        &slices(&[
            "--node-name",
            "n1",
            "--fake-inventory",
            "/nonexistent/gpus.yaml",
        ]),
        &["cannot read inventory file /nonexistent/gpus.yaml"],
    );
    fails_with(
        &slices(&["--node-name", "Bad_Node", "--fake-gpus", "h100x8"]),
        &["node name \"Bad_Node\" is not a valid Kubernetes node name"],
    );
    fails_with(
        &slices(&[
            "--node-name",
            "n1",
            "--fake-gpus",
            "h100x8",
            "--driver-name",
            "GPU",
        ]),
        &["driver name \"GPU\""],
    );
    // main.rs prints clap's first line only, which does not name the missing flag.
    fails_with(&slices(&["--fake-gpus", "h100x8"]), &["required arguments"]);
}

#[test]
fn without_nvml_real_gpus_are_refused_with_a_hint() {
    let out = slices(&["--node-name", "n1"]);
    if cfg!(feature = "nvml") {
        // Built with NVML: on a machine without a driver, initialisation fails clearly.
        assert!(!out.status.success());
        assert!(stderr(&out).contains("NVML"), "{}", stderr(&out));
    } else {
        fails_with(&out, &["built without NVML support", "--fake-gpus"]);
    }
}
