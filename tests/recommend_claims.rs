//! The ResourceClaimTemplates `tessera recommend` prints are Kubernetes objects the API server
//! and tessera's DeviceClasses accept: each one (MIG, MPS share, whole GPU) decodes into
//! `k8s-openapi`'s `ResourceClaimTemplate` without losing a field (the check
//! `tests/deploy_files.rs` runs on `deploy/examples/`), names a DeviceClass the chart creates,
//! and carries the capacity and CEL shape the examples use.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/kube_types.rs"]
mod kube_types;

use serde_json::Value;
use tessera::market::PriceCatalog;
use tessera::rightsize::{Allocation, IdleWindow, Kinds, Owners, Rules, Usage, Window, recommend};

const GIB: u64 = 1 << 30;

/// A whole GPU of `model` held all day, at `peak_gib` and `p95` % compute.
fn whole(pod: &str, model: &str, gib: u64, peak_gib: u64, p95: f64) -> Allocation {
    Allocation {
        namespace: "ml".to_owned(),
        pod: pod.to_owned(),
        claim: format!("{pod}-gpu"),
        device: "gpu-0".to_owned(),
        device_type: "gpu".to_owned(),
        gpu_model: model.to_owned(),
        gpu_memory_bytes: Some(gib * GIB),
        memory_bytes: Some(gib * GIB),
        compute_percent: Some(100.0),
        held_seconds: 86_400.0,
        usage: Usage {
            p95_memory_bytes: (peak_gib * GIB) as f64,
            peak_memory_bytes: (peak_gib * GIB) as f64,
            p95_compute_percent: Some(p95),
            peak_compute_percent: Some(p95),
        },
        idle: IdleWindow::default(),
        ..Allocation::default()
    }
}

#[test]
fn printed_claim_templates_are_valid_objects_of_the_charts_classes() {
    let mut two = whole("train-0", "NVIDIA A100-SXM4-80GB", 80, 30, 40.0);
    let mut second = two.clone();
    second.claim = "train-0-gpu-2".to_owned();
    second.device = "gpu-1".to_owned();
    two.claim = "train-0-gpu-1".to_owned();
    let allocations = [
        whole(
            "serve-6c8b9d4f7b-qwx9z",
            "NVIDIA H100 80GB HBM3",
            80,
            7,
            10.0,
        ),
        whole("caption-x8k2p", "NVIDIA L4", 24, 5, 12.3),
        two,
        second,
    ];
    let rules = Rules {
        headroom: 0.2,
        kinds: Kinds::parse("mig,shared").unwrap(),
        idle_threshold_percent: 1.0,
        idle_for_seconds: 3600.0,
    };
    let report = recommend(
        &allocations,
        &Owners::default(),
        &PriceCatalog::builtin().unwrap(),
        &rules,
        Window {
            end_unix: 1_800_000_000.0,
            end: "2027-01-15T08:00:00Z".to_owned(),
            seconds: 86_400.0,
        },
        "gpu.tessera.dev",
    );
    let classes = [
        "gpu.tessera.dev",
        "mig.gpu.tessera.dev",
        "shared.gpu.tessera.dev",
    ];
    let mut seen = Vec::new();
    for w in &report.workloads {
        let yaml = w.claim_template.as_deref().unwrap_or_else(|| {
            panic!(
                "{} has no template: {:?}",
                w.workload.name, w.recommendation
            )
        });
        let object: Value = serde_saphyr::from_str(yaml).unwrap();
        assert_eq!(kube_types::check(&object), Ok(true), "{yaml}");
        let request = &object["spec"]["spec"]["devices"]["requests"][0];
        let class = request["exactly"]["deviceClassName"].as_str().unwrap();
        assert!(classes.contains(&class), "{class}");
        let expression = request["exactly"]["selectors"][0]["cel"]["expression"]
            .as_str()
            .unwrap();
        assert!(
            expression.contains(&format!(".model == '{}'", w.gpu_model)),
            "{expression}"
        );
        seen.push((w.workload.name.clone(), class.to_owned(), request.clone()));
    }
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    let names: Vec<&str> = seen.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(names, ["caption", "serve", "train"]);
    // L4 has no MIG: an MPS share of 6 GiB and 13 %.
    assert_eq!(seen[0].1, "shared.gpu.tessera.dev");
    assert_eq!(
        seen[0].2["exactly"]["capacity"]["requests"]["memory"],
        "6Gi"
    );
    assert_eq!(
        seen[0].2["exactly"]["capacity"]["requests"]["compute"],
        "13"
    );
    // H100, 8.4 GiB and 10 %: 1g.10gb.
    assert_eq!(seen[1].1, "mig.gpu.tessera.dev");
    // A100 80GB, two GPUs per pod at 36 GiB and 40 %: two 3g.40gb.
    assert_eq!(seen[2].1, "mig.gpu.tessera.dev");
    assert_eq!(seen[2].2["exactly"]["count"], 2);
    assert!(
        seen[2].2["exactly"]["selectors"][0]["cel"]["expression"]
            .as_str()
            .unwrap()
            .contains("profile == '3g.40gb'")
    );
}
