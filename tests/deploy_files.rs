//! The plain manifests under `deploy/examples/` and `deploy/scheduler/`: they parse, use only
//! the chart's DeviceClasses and tessera's annotations with valid values, order `firstAvailable`
//! cheapest-first, keep within the API's documented limits, and wire the extender entry as
//! `deploy/scheduler/README.md` explains. (The server's own validation of the same files runs
//! in `e2e/chart.rs`.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/kube_types.rs"]
mod kube_types;

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;

const DRIVER: &str = "gpu.tessera.dev";
/// Values of `tessera.dev/interruption`.
const TOLERANCES: [&str; 3] = ["intolerant", "checkpointed", "tolerant"];
/// `firstAvailable` subrequests allowed per request.
const MAX_SUBREQUESTS: usize = 8;
/// Opaque parameters limit (resource.k8s.io/v1 `OpaqueParametersMaxLength`).
const MAX_OPAQUE_BYTES: usize = 10 * 1024;

fn dir(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// `(file name, objects)` for every YAML file in `rel`.
fn load(rel: &str) -> Vec<(String, Vec<Value>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir(rel)).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        out.push((name, docs.into_iter().filter(|d| !d.is_null()).collect()));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The class a subrequest or exact request names, with its rank in cheapest-first order.
fn class_rank(class: &str) -> usize {
    let classes = [
        format!("mig.{DRIVER}"),
        format!("shared.{DRIVER}"),
        format!("share.{DRIVER}"),
        DRIVER.to_owned(),
    ];
    classes
        .iter()
        .position(|c| c == class)
        .unwrap_or_else(|| panic!("{class} is not a DeviceClass the chart creates"))
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// The pod template (or pod spec) of a workload object, with its metadata.
fn pod_of(obj: &Value) -> Option<(&Value, &Value)> {
    match obj["kind"].as_str()? {
        "Pod" => Some((&obj["metadata"], &obj["spec"])),
        "Deployment" | "Job" | "StatefulSet" | "DaemonSet" => {
            let t = &obj["spec"]["template"];
            Some((&t["metadata"], &t["spec"]))
        }
        _ => None,
    }
}

#[test]
fn claim_templates_use_chart_classes_cheapest_first_within_limits() {
    let mut templates = 0;
    for (file, objects) in load("deploy/examples") {
        for obj in objects
            .iter()
            .filter(|o| o["kind"] == "ResourceClaimTemplate")
        {
            templates += 1;
            assert_eq!(obj["apiVersion"], "resource.k8s.io/v1", "{file}");
            let devices = &obj["spec"]["spec"]["devices"];
            let requests = devices["requests"].as_array().unwrap();
            let names: BTreeSet<&str> = requests
                .iter()
                .map(|r| r["name"].as_str().unwrap())
                .collect();
            for request in requests {
                let name = request["name"].as_str().unwrap();
                assert!(is_dns_label(name), "{file}: request name {name}");
                if let Some(subs) = request["firstAvailable"].as_array() {
                    assert!(
                        request["exactly"].is_null(),
                        "{file}: exactly and firstAvailable"
                    );
                    assert!(
                        subs.len() <= MAX_SUBREQUESTS,
                        "{file}: {} subrequests",
                        subs.len()
                    );
                    let ranks: Vec<usize> = subs
                        .iter()
                        .map(|s| {
                            assert!(is_dns_label(s["name"].as_str().unwrap()), "{file}");
                            class_rank(s["deviceClassName"].as_str().unwrap())
                        })
                        .collect();
                    // MIG before shares before whole GPUs: cheapest first, and MIG before
                    // shared avoids the 1.36 allocator's counter leak (resource-api.md).
                    assert!(
                        ranks.windows(2).all(|w| w[0] < w[1]),
                        "{file}: {name} not cheapest-first: {ranks:?}"
                    );
                } else {
                    class_rank(request["exactly"]["deviceClassName"].as_str().unwrap());
                }
            }
            for config in devices["config"].as_array().into_iter().flatten() {
                for r in config["requests"].as_array().unwrap() {
                    assert!(
                        names.contains(r.as_str().unwrap()),
                        "{file}: config names request {r}"
                    );
                }
                let opaque = &config["opaque"];
                assert_eq!(opaque["driver"], DRIVER, "{file}");
                let p = &opaque["parameters"];
                assert!(
                    p.to_string().len() <= MAX_OPAQUE_BYTES,
                    "{file}: parameters too large"
                );
                assert_eq!(p["apiVersion"], "gpu.tessera.dev/v1alpha1", "{file}");
                assert_eq!(p["kind"], "GpuConfig", "{file}");
                match p["sharing"]["strategy"].as_str() {
                    Some("MPS") => {
                        let pct = p["sharing"]["activeThreadPercentage"].as_u64().unwrap();
                        assert!(
                            (1..=100).contains(&pct),
                            "{file}: activeThreadPercentage {pct}"
                        );
                        assert!(p["sharing"]["pinnedMemoryLimit"].is_string(), "{file}");
                    }
                    Some("TimeSlicing") => {
                        let interval = p["sharing"]["interval"].as_str().unwrap();
                        assert!(
                            ["Default", "Short", "Medium", "Long"].contains(&interval),
                            "{file}"
                        );
                    }
                    other => panic!("{file}: unknown sharing strategy {other:?}"),
                }
            }
        }
    }
    assert!(
        templates >= 5,
        "only {templates} ResourceClaimTemplates in deploy/examples"
    );
}

#[test]
fn example_pods_name_existing_templates_and_valid_tessera_annotations() {
    let mut pods = 0;
    for (file, objects) in load("deploy/examples") {
        let templates: BTreeSet<&str> = objects
            .iter()
            .filter(|o| o["kind"] == "ResourceClaimTemplate")
            .map(|o| o["metadata"]["name"].as_str().unwrap())
            .collect();
        for (meta, spec) in objects.iter().filter_map(pod_of) {
            pods += 1;
            let annotations = &meta["annotations"];
            let tolerance = annotations["tessera.dev/interruption"].as_str();
            assert!(
                tolerance.is_some_and(|t| TOLERANCES.contains(&t)),
                "{file}: tessera.dev/interruption {tolerance:?}"
            );
            if let Some(cap) = annotations["tessera.dev/max-hourly-cost"].as_str() {
                let v: f64 = cap
                    .parse()
                    .unwrap_or_else(|_| panic!("{file}: max-hourly-cost {cap}"));
                assert!(v.is_finite() && v >= 0.0, "{file}: max-hourly-cost {cap}");
            }
            let claims: BTreeSet<&str> = spec["resourceClaims"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    let t = c["resourceClaimTemplateName"].as_str().unwrap();
                    assert!(
                        templates.contains(t),
                        "{file}: template {t} is not in the file"
                    );
                    c["name"].as_str().unwrap()
                })
                .collect();
            for c in spec["containers"].as_array().unwrap() {
                for used in c["resources"]["claims"].as_array().unwrap() {
                    assert!(
                        claims.contains(used["name"].as_str().unwrap()),
                        "{file}: claim {used}"
                    );
                }
            }
            assert_eq!(
                spec["schedulerName"], "tessera-scheduler",
                "{file}: the chart's scheduler"
            );
        }
    }
    assert!(pods >= 5, "only {pods} pods in deploy/examples");
}

#[test]
fn scheduler_configs_call_filter_and_prioritize_as_documented() {
    let mut entries = 0;
    for (file, objects) in load("deploy/scheduler") {
        for obj in &objects {
            if obj["kind"] == "KubeSchedulerConfiguration" {
                assert_eq!(
                    obj["apiVersion"], "kubescheduler.config.k8s.io/v1",
                    "{file}"
                );
                assert!(
                    !obj["profiles"].as_array().unwrap().is_empty(),
                    "{file}: profiles"
                );
            }
            for ext in obj["extenders"].as_array().into_iter().flatten() {
                entries += 1;
                let url = ext["urlPrefix"].as_str().unwrap();
                assert!(
                    url.starts_with("http://") || url.starts_with("https://"),
                    "{file}"
                );
                assert_eq!(
                    url.starts_with("https://"),
                    ext["enableHTTPS"] == true,
                    "{file}: scheme vs enableHTTPS"
                );
                assert_eq!(ext["filterVerb"], "filter", "{file}");
                assert_eq!(ext["prioritizeVerb"], "prioritize", "{file}");
                assert!(
                    ext["weight"].as_i64().is_some_and(|w| w > 0),
                    "{file}: weight"
                );
                assert_eq!(ext["nodeCacheCapable"], true, "{file}");
                assert!(
                    ext["httpTimeout"]
                        .as_str()
                        .is_some_and(|t| t.ends_with('s')),
                    "{file}"
                );
                assert!(ext["ignorable"].is_boolean(), "{file}");
                assert!(
                    ext["managedResources"].is_null(),
                    "{file}: DRA pods carry no extended resource"
                );
                assert!(
                    ext["bindVerb"].is_null() && ext["preemptVerb"].is_null(),
                    "{file}"
                );
            }
        }
    }
    assert_eq!(entries, 3, "second, default and HTTPS extender entries");
}

#[test]
fn grafana_dashboard_queries_only_documented_tessera_metrics() {
    let path = dir("deploy/grafana/tessera-dashboard.json");
    let dash: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let ops = std::fs::read_to_string(dir("docs/operations.md")).unwrap();
    let mut metrics = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for panel in dash["panels"].as_array().unwrap() {
        assert!(
            ids.insert(panel["id"].as_u64().unwrap()),
            "duplicate panel id {}",
            panel["id"]
        );
        if panel["type"] == "row" {
            continue;
        }
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "panel {} has no query", panel["title"]);
        for t in targets {
            let expr = t["expr"].as_str().unwrap();
            assert_eq!(
                expr.matches('(').count(),
                expr.matches(')').count(),
                "{expr}"
            );
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if word.starts_with("tessera_") {
                    // Histograms are documented by their base name.
                    let base = ["_bucket", "_count", "_sum"]
                        .iter()
                        .find_map(|s| word.strip_suffix(s))
                        .unwrap_or(word);
                    metrics.insert(base.to_owned());
                }
            }
        }
    }
    assert!(metrics.iter().any(|m| m.starts_with("tessera_extender_")));
    assert!(metrics.iter().any(|m| m.starts_with("tessera_plugin_")));
    for m in &metrics {
        assert!(
            ops.contains(m),
            "docs/operations.md does not document {m}, which the dashboard reads"
        );
    }
}

#[test]
fn examples_match_the_kubernetes_api_types() {
    let mut problems = Vec::new();
    for (file, objects) in load("deploy/examples") {
        for o in &objects {
            match kube_types::check(o) {
                Ok(true) => {}
                Ok(false) => problems.push(format!(
                    "{file}: no type check for {} {}",
                    o["apiVersion"], o["kind"]
                )),
                Err(e) => problems.push(format!(
                    "{file}: {} {}: {e}",
                    o["kind"], o["metadata"]["name"]
                )),
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Repository-relative files the crate compiles in with `include_str!`/`include_bytes!`
/// outside test code.
fn compiled_in_files() -> BTreeSet<String> {
    fn walk(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "rs")
                && p.file_name().is_some_and(|n| n != "tests.rs")
            {
                out.push(p);
            }
        }
    }
    let root = dir("");
    let mut sources = Vec::new();
    walk(&root.join("src"), &mut sources);
    let mut out = BTreeSet::new();
    for src in sources {
        let text = std::fs::read_to_string(&src).unwrap();
        for macro_name in ["include_str!(\"", "include_bytes!(\""] {
            for (i, _) in text.match_indices(macro_name) {
                let rest = &text[i + macro_name.len()..];
                let rel = &rest[..rest.find('"').unwrap()];
                let path = src.parent().unwrap().join(rel).canonicalize().unwrap();
                out.insert(
                    path.strip_prefix(root.canonicalize().unwrap())
                        .unwrap()
                        .display()
                        .to_string(),
                );
            }
        }
    }
    out
}

#[test]
fn image_build_context_keeps_every_compiled_in_file_and_builds_with_nvml() {
    let ignore = std::fs::read_to_string(dir(".dockerignore")).unwrap();
    let patterns: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_start_matches("**/").trim_end_matches('/'))
        .collect();
    let mut needed = compiled_in_files();
    assert!(
        needed.iter().any(|p| p.starts_with("data/pricing/")),
        "{needed:?}"
    );
    needed.extend(
        [
            "Cargo.toml",
            "Cargo.lock",
            "src/main.rs",
            "build.rs",
            "proto",
        ]
        .map(String::from),
    );
    // Docker applies the patterns in order and the last match wins; `!` re-includes.
    for file in &needed {
        let mut dropped_by = None;
        for pattern in &patterns {
            let (keep, pattern) = match pattern.strip_prefix('!') {
                Some(p) => (true, p),
                None => (false, *pattern),
            };
            if file == pattern || file.starts_with(&format!("{pattern}/")) {
                dropped_by = if keep { None } else { Some(pattern) };
            }
        }
        assert!(
            dropped_by.is_none(),
            ".dockerignore pattern {dropped_by:?} drops {file}, which the build needs"
        );
    }
    let dockerfile = std::fs::read_to_string(dir("Dockerfile")).unwrap();
    let builds: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.contains("cargo build") || l.contains("cargo chef cook"))
        .collect();
    assert_eq!(
        builds.len(),
        2,
        "a dependency (cook) step and a build step: {builds:?}"
    );
    assert!(
        builds
            .iter()
            .all(|l| l.contains("--features nvml") && l.contains("--release")),
        "{builds:?}"
    );
    let last_from = dockerfile
        .lines()
        .rfind(|l| l.starts_with("FROM "))
        .unwrap();
    assert!(
        last_from.contains("distroless/cc"),
        "runtime base must be glibc distroless: {last_from}"
    );
    let user = dockerfile
        .lines()
        .rfind(|l| l.starts_with("USER "))
        .unwrap();
    assert!(
        !user.contains(" 0") && !user.contains("root"),
        "default user must be non-root: {user}"
    );
    assert!(dockerfile.contains("ENTRYPOINT [\"/usr/local/bin/tessera\"]"));
}
