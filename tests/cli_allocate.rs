//! `tessera allocate` as an admin runs it: on `tessera slices` output of every bundled fake
//! profile, deterministic on 1.36, a distribution over slice orders on 1.35, and one clear
//! line with exit code 2 for bad input.

// Test helpers sit outside `#[test]` functions, where clippy's allow-unwrap-in-tests does not
// reach; a failing unwrap here is a failing test, which is what we want.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const EXIT_USAGE: i32 = 2;
const PROFILES: [&str; 7] = [
    "h100x8",
    "a100-40x8",
    "a100-80x4",
    "h100x8-mig-static",
    "h100x8-mig-dynamic",
    "mixed",
    "l4x4",
];

fn tessera(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.args(args);
    for var in [
        "RUST_LOG",
        "LOG_FORMAT",
        "NODE_NAME",
        "TESSERA_FAKE_GPUS",
        "TESSERA_DRIVER_NAME",
    ] {
        cmd.env_remove(var);
    }
    cmd.output().unwrap()
}

/// `tessera allocate --slices <slices> --claim <claim>` and then `extra`.
fn allocate(slices: &str, claim: &str, extra: &[&str]) -> Output {
    let mut args = vec!["allocate", "--slices", slices, "--claim", claim];
    args.extend_from_slice(extra);
    tessera(&args)
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/examples")
        .join(name)
        .display()
        .to_string()
}

/// `tessera slices` of `profile` for node `node-1`, written to a file in `dir`.
fn slices_file(dir: &Path, profile: &str) -> PathBuf {
    let out = tessera(&["slices", "--node-name", "node-1", "--fake-gpus", profile]);
    assert!(out.status.success(), "{}", stderr(&out));
    let path = dir.join(format!("{profile}.yaml"));
    std::fs::write(&path, &out.stdout).unwrap();
    path
}

fn fails_with(output: &Output, needles: &[&str]) {
    assert_eq!(output.status.code(), Some(EXIT_USAGE), "{}", stderr(output));
    let err = stderr(output);
    assert_eq!(err.lines().count(), 1, "{err}");
    for needle in needles {
        assert!(err.contains(needle), "{needle:?} not in {err}");
    }
    assert!(output.stdout.is_empty());
}

fn json(output: &Output) -> serde_json::Value {
    assert!(output.status.success(), "{}", stderr(output));
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn every_fake_profile_gets_a_device_for_the_cheapest_slice_example() {
    let dir = tempfile::tempdir().unwrap();
    for profile in PROFILES {
        let slices = slices_file(dir.path(), profile);
        let slices = slices.to_str().unwrap();
        for version in ["1.36", "1.35"] {
            let out = allocate(
                slices,
                &example("cheapest-slice.yaml"),
                &[
                    "--kube-version",
                    version,
                    "--feature-gates",
                    "DRAPartitionableDevices=true,DRAConsumableCapacity=true",
                    "--format",
                    "json",
                ],
            );
            let report = json(&out);
            let node = &report["nodes"][0];
            assert_eq!(node["node"], "node-1", "{profile} {version}");
            let outcomes = node["outcomes"].as_array().unwrap();
            assert!(!outcomes.is_empty(), "{profile} {version}: {report}");
            let total: u64 = outcomes.iter().map(|o| o["orders"].as_u64().unwrap()).sum();
            assert_eq!(
                total,
                node["orders"].as_u64().unwrap(),
                "{profile} {version}"
            );
            for outcome in outcomes {
                assert_eq!(
                    outcome["unsatisfiable"], false,
                    "{profile} {version}: {report}"
                );
                let device = &outcome["claims"][0]["devices"][0];
                assert!(
                    device["device"].as_str().unwrap().starts_with("gpu-"),
                    "{profile}"
                );
            }
            if version == "1.36" {
                assert_eq!(outcomes.len(), 1, "{profile}: name order is deterministic");
                assert_eq!(report["slicesSorted"], true);
            }
        }
    }
}

#[test]
fn dynamic_mig_on_1_35_spreads_over_slice_orders_and_1_36_is_smallest_first() {
    let dir = tempfile::tempdir().unwrap();
    let slices = slices_file(dir.path(), "h100x8-mig-dynamic");
    let slices = slices.to_str().unwrap();
    let claim = example("cheapest-slice.yaml");
    let gates = "DRAPartitionableDevices=true,DRAConsumableCapacity=true";
    let v135 = json(&allocate(
        slices,
        &claim,
        &[
            "--kube-version",
            "1.35",
            "--feature-gates",
            gates,
            "--format",
            "json",
        ],
    ));
    let node = &v135["nodes"][0];
    // The published layout: whole and shared GPUs in one slice, then each dynamic-MIG GPU's
    // placements in a slice of their own (docs/device-model.md): 9 device slices. A claim for
    // one device is counted exactly over all 9! orders (one search per slice): whichever GPU's
    // slice comes first, it offers a 1g.20gb, never a larger profile.
    assert_eq!(node["orders"], 362_880, "9 device slices: every order");
    assert_eq!(node["coverage"], "all orders");
    let mut devices: Vec<(String, u64)> = node["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["claims"][0]["devices"][0]["device"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                o["orders"].as_u64().unwrap(),
            )
        })
        .collect();
    devices.sort();
    let expected: Vec<(String, u64)> = (0..8)
        .map(|g| (format!("gpu-{g}-mig-1g20gb-6"), 362_880 / 8))
        .collect();
    assert_eq!(devices, expected);
    let v136 = allocate(slices, &claim, &[]);
    assert!(v136.status.success(), "{}", stderr(&v136));
    let text = stdout(&v136);
    assert!(
        text.contains("slices in name order: deterministic"),
        "{text}"
    );
    assert!(text.contains("gpu/mig -> gpu-0-mig-1g20gb-6"), "{text}");
    // The stable allocator on 1.36 does not sort.
    let stable = json(&allocate(
        slices,
        &claim,
        &["--allocator", "stable", "--format", "json"],
    ));
    assert_eq!(stable["allocator"], "stable");
    assert_eq!(stable["slicesSorted"], false);
}

#[test]
fn already_allocated_claims_and_classes_files_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let slices = slices_file(dir.path(), "h100x8");
    let allocated = dir.path().join("allocated.yaml");
    std::fs::write(
        &allocated,
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: resource.k8s.io/v1\n  kind: ResourceClaim\n  metadata: {name: a, namespace: default}\n  spec: {devices: {requests: [{name: gpu, exactly: {deviceClassName: gpu.tessera.dev}}]}}\n  status:\n    allocation:\n      devices:\n        results:\n        - {request: gpu, driver: gpu.tessera.dev, pool: node-1, device: gpu-7}\n",
    )
    .unwrap();
    let classes = dir.path().join("classes.yaml");
    std::fs::write(
        &classes,
        "apiVersion: resource.k8s.io/v1\nkind: DeviceClass\nmetadata: {name: gpu.tessera.dev}\nspec:\n  selectors:\n  - cel: {expression: \"device.driver == 'gpu.tessera.dev' && device.attributes['gpu.tessera.dev'].type == 'gpu'\"}\n",
    )
    .unwrap();
    let out = allocate(
        slices.to_str().unwrap(),
        &example("whole-gpu.yaml"),
        &[
            "--allocated",
            allocated.to_str().unwrap(),
            "--classes",
            classes.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // Whole GPUs are published highest index first; gpu-7 is taken.
    assert!(
        stdout(&out).contains("whole-gpu gpu -> gpu-6"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let slices = slices_file(dir.path(), "h100x8");
    let slices = slices.to_str().unwrap();
    let missing = dir.path().join("missing.yaml");
    fails_with(
        &allocate(missing.to_str().unwrap(), &example("whole-gpu.yaml"), &[]),
        &["missing.yaml"],
    );
    fails_with(
        &allocate(
            slices,
            &example("whole-gpu.yaml"),
            &["--kube-version", "1.30"],
        ),
        &["1.30", "not a supported release"],
    );
    let garbage = dir.path().join("garbage.yaml");
    std::fs::write(&garbage, "kind: [unclosed\n").unwrap();
    fails_with(
        &allocate(garbage.to_str().unwrap(), &example("whole-gpu.yaml"), &[]),
        &["not YAML"],
    );
    fails_with(
        &allocate(&example("whole-gpu.yaml"), &example("whole-gpu.yaml"), &[]),
        &["expected ResourceSlices", "ResourceClaimTemplate"],
    );
    let regex = dir.path().join("regex.yaml");
    std::fs::write(
        &regex,
        "apiVersion: resource.k8s.io/v1\nkind: ResourceClaim\nmetadata: {name: r, namespace: default}\nspec:\n  devices:\n    requests:\n    - name: gpu\n      exactly:\n        deviceClassName: gpu.tessera.dev\n        selectors:\n        - cel: {expression: \"device.attributes['gpu.tessera.dev'].model.matches('H1.*')\"}\n",
    )
    .unwrap();
    fails_with(
        &allocate(slices, regex.to_str().unwrap(), &[]),
        &["selector not understood", "matches"],
    );
    let unknown_class = dir.path().join("unknown.yaml");
    std::fs::write(
        &unknown_class,
        "apiVersion: resource.k8s.io/v1\nkind: ResourceClaim\nmetadata: {name: u}\nspec: {devices: {requests: [{name: gpu, exactly: {deviceClassName: nope}}]}}\n",
    )
    .unwrap();
    fails_with(
        &allocate(slices, unknown_class.to_str().unwrap(), &[]),
        &["device class \"nope\" not found"],
    );
    fails_with(
        &allocate(
            slices,
            &example("whole-gpu.yaml"),
            &["--feature-gates", "Bogus=true"],
        ),
        &["Bogus"],
    );
    fails_with(
        &allocate(
            slices,
            &example("whole-gpu.yaml"),
            &["--kube-version", "1.35", "--allocator", "stable"],
        ),
        &["--allocator applies to 1.36"],
    );
}

/// Beside the allocator's answer, `tessera allocate` prints what tessera's own fit would take:
/// on the `mixed` profile the published order hands out GPU 1 whole (MIG-off GPUs first,
/// highest index first) while tessera's own fit takes GPU 0.
#[test]
fn tesseras_own_fit_is_printed_beside_the_allocators_answer() {
    let dir = tempfile::tempdir().unwrap();
    let slices = slices_file(dir.path(), "mixed");
    let slices = slices.to_str().unwrap();
    let claim = example("whole-gpu.yaml");
    let report = json(&allocate(slices, &claim, &["--format", "json"]));
    let node = &report["nodes"][0];
    assert_eq!(
        node["outcomes"][0]["claims"][0]["devices"][0]["device"],
        "gpu-1"
    );
    assert_eq!(
        node["tesseraChoice"],
        serde_json::json!(["default/whole-gpu/gpu -> gpu-0"]),
        "{node}"
    );
    assert!(node["tesseraChoiceError"].is_null(), "{node}");
    let table = allocate(slices, &claim, &[]);
    assert!(
        stdout(&table).contains("tessera's own fit: default/whole-gpu/gpu -> gpu-0"),
        "{}",
        stdout(&table)
    );
}
