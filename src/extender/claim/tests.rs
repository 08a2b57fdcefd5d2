use super::*;

fn classes() -> DeviceClasses {
    DeviceClasses::new("gpu.tessera.dev")
}

fn claim(json: serde_json::Value) -> ResourceClaim {
    serde_json::from_value(json).unwrap()
}

#[test]
fn first_available_keeps_order_and_reads_profile_pins_and_capacity() {
    let c = claim(serde_json::json!({
        "metadata": {"name": "train", "namespace": "ml"},
        "spec": {"devices": {"requests": [{
            "name": "gpu",
            "firstAvailable": [
                {"name": "mig", "deviceClassName": "mig.gpu.tessera.dev",
                 "selectors": [{"cel": {"expression": "device.attributes[\"gpu.tessera.dev\"].profile == '1g.10gb'"}}]},
                {"name": "other", "deviceClassName": "gpu.example.com"},
                {"name": "share", "deviceClassName": "shared.gpu.tessera.dev",
                 "capacity": {"requests": {"memory": "10Gi", "gpu.tessera.dev/compute": "30"}}},
                {"name": "whole", "deviceClassName": "gpu.tessera.dev"}
            ]
        }]}}
    }));
    let got = claim_requests(&c, &classes());
    assert!(got.unreadable.is_empty(), "{:?}", got.unreadable);
    assert_eq!(got.requests.len(), 1);
    let request = &got.requests[0];
    assert_eq!(request.source, "ml/train/gpu");
    let kinds: Vec<_> = request.alternatives.iter().map(|a| a.kind).collect();
    assert_eq!(
        kinds,
        [DeviceKind::Mig, DeviceKind::Shared, DeviceKind::Whole],
        "foreign entry dropped, order kept"
    );
    assert_eq!(
        request.alternatives[0].mig_profile.as_deref(),
        Some("1g.10gb")
    );
    assert_eq!(
        request.alternatives[1].memory_bytes,
        Some(10 * 1024 * 1024 * 1024)
    );
    assert_eq!(request.alternatives[1].compute_percent, Some(30.0));
    assert_eq!(request.alternatives[2].count, Count::Exact(1));
    assert_eq!(request.alternatives[2].subrequest.as_deref(), Some("whole"));
}

#[test]
fn exact_requests_read_count_and_mode_and_skip_other_drivers() {
    let c = claim(serde_json::json!({
        "metadata": {"name": "c", "namespace": "ns"},
        "spec": {"devices": {"requests": [
            {"name": "two", "exactly": {"deviceClassName": "gpu.tessera.dev", "count": 2}},
            {"name": "all", "exactly": {"deviceClassName": "gpu.tessera.dev", "allocationMode": "All"}},
            {"name": "nic", "exactly": {"deviceClassName": "nic.example.com"}}
        ]}}
    }));
    let got = claim_requests(&c, &classes());
    assert_eq!(got.requests.len(), 2);
    assert_eq!(got.requests[0].alternatives[0].count, Count::Exact(2));
    assert_eq!(got.requests[1].alternatives[0].count, Count::All);
    assert!(!got.allocated);
}

#[test]
fn allocated_claims_ask_for_nothing_more() {
    let c = claim(serde_json::json!({
        "metadata": {"name": "c", "namespace": "ns"},
        "spec": {"devices": {"requests": [
            {"name": "g", "exactly": {"deviceClassName": "gpu.tessera.dev"}}
        ]}},
        "status": {"allocation": {"devices": {"results": [
            {"request": "g", "driver": "gpu.tessera.dev", "pool": "n1", "device": "gpu-0"}
        ]}}}
    }));
    let got = claim_requests(&c, &classes());
    assert!(got.allocated);
    assert!(got.requests.is_empty());
}

#[test]
fn unreadable_requests_are_reported_not_guessed() {
    let c = claim(serde_json::json!({
        "metadata": {"name": "c", "namespace": "ns"},
        "spec": {"devices": {"requests": [
            {"name": "zero", "exactly": {"deviceClassName": "gpu.tessera.dev", "count": 0}},
            {"name": "mode", "exactly": {"deviceClassName": "gpu.tessera.dev", "allocationMode": "Some"}},
            {"name": "mem", "exactly": {"deviceClassName": "shared.gpu.tessera.dev",
                "capacity": {"requests": {"memory": "ten"}}}},
            {"name": "neither"},
            {"name": "ok", "exactly": {"deviceClassName": "gpu.tessera.dev"}}
        ]}}
    }));
    let got = claim_requests(&c, &classes());
    assert_eq!(got.requests.len(), 1, "the readable request is kept");
    let reasons = got.unreadable.join("\n");
    for want in [
        "ns/c/zero: count 0",
        "ns/c/mode: unknown allocationMode",
        "ns/c/mem: capacity memory",
        "ns/c/neither: has neither",
    ] {
        assert!(reasons.contains(want), "{want} in {reasons}");
    }
}

#[test]
fn profile_pins_are_read_in_either_quote_style_only() {
    for (expr, want) in [
        (
            r#"device.attributes["gpu.tessera.dev"].profile == "2g.20gb""#,
            Some("2g.20gb"),
        ),
        (
            "device.attributes['gpu.tessera.dev'].profile=='1g.10gb+me'",
            Some("1g.10gb+me"),
        ),
        (
            r#"device.attributes["gpu.tessera.dev"].profile != "2g.20gb""#,
            None,
        ),
        (r#"device.attributes["gpu.tessera.dev"].model == "x""#, None),
        (r#"device.attributes["x"].profile == "unterminated"#, None),
    ] {
        assert_eq!(pinned_profile(expr).as_deref(), want, "{expr}");
    }
}

#[test]
fn model_pins_are_read_beside_profile_pins() {
    let alt = alternative_from(
        None,
        DeviceKind::Whole,
        Count::Exact(1),
        [],
        [
            r#"device.attributes["gpu.tessera.dev"].model == "NVIDIA L4""#,
            r#"device.attributes["gpu.tessera.dev"].profile == '1g.10gb'"#,
        ],
    )
    .unwrap();
    assert_eq!(alt.gpu_model.as_deref(), Some("NVIDIA L4"));
    assert_eq!(alt.mig_profile.as_deref(), Some("1g.10gb"));
    for (expr, want) in [
        (r#"device.attributes["d"].model == 'A100'"#, Some("A100")),
        (r#"device.attributes["d"].model != "A100""#, None),
        (r#"device.attributes["d"].model == """#, None),
        (r#"device.attributes["d"].modelName == "A100""#, None),
    ] {
        assert_eq!(pinned_model(expr).as_deref(), want, "{expr}");
    }
}
