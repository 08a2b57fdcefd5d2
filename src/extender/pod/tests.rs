use super::*;
use crate::extender::claim::claim_requests;
use crate::extender::demand::DeviceClasses;

fn pod(json: serde_json::Value) -> PodObject {
    serde_json::from_value(json).unwrap()
}

fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn tolerance_annotation_is_read_ignoring_case_and_unknown_values_mean_intolerant() {
    for (value, want, unknown) in [
        ("intolerant", Tolerance::Intolerant, None),
        (" Intolerant ", Tolerance::Intolerant, None),
        ("checkpointed", Tolerance::Checkpointed, None),
        ("TOLERANT", Tolerance::Tolerant, None),
        ("intolerent", Tolerance::Intolerant, Some("intolerent")),
    ] {
        let policy = PodPolicy::from_annotations(&annotations(&[(INTERRUPTION_ANNOTATION, value)]));
        assert_eq!(policy.tolerance, want, "{value}");
        assert_eq!(policy.unrecognized_tolerance.as_deref(), unknown, "{value}");
    }
    let none = PodPolicy::from_annotations(&BTreeMap::new());
    assert_eq!(none.tolerance, Tolerance::Checkpointed, "scoring's default");
    assert_eq!(none.unrecognized_tolerance, None);
    assert_eq!(none.max_hourly_cost, MaxHourlyCost::Unlimited);
}

#[test]
fn max_hourly_cost_must_be_a_non_negative_number() {
    let read = |v: &str| {
        PodPolicy::from_annotations(&annotations(&[(MAX_HOURLY_COST_ANNOTATION, v)]))
            .max_hourly_cost
    };
    assert_eq!(read("2.5"), MaxHourlyCost::Usd(2.5));
    assert_eq!(read(" 0 "), MaxHourlyCost::Usd(0.0));
    for bad in ["-1", "NaN", "inf", "$3", ""] {
        assert!(matches!(read(bad), MaxHourlyCost::Invalid(_)), "{bad}");
    }
    let long = "9".repeat(1000) + "x";
    match read(&long) {
        MaxHourlyCost::Invalid(shown) => assert_eq!(shown.len(), 64),
        other => panic!("{other:?}"),
    }
}

#[test]
fn claims_resolve_through_spec_names_and_generated_names_in_status() {
    let p = pod(serde_json::json!({
        "metadata": {"name": "p", "namespace": "ml"},
        "spec": {"resourceClaims": [
            {"name": "direct", "resourceClaimName": "shared"},
            {"name": "tmpl", "resourceClaimTemplateName": "t"},
            {"name": "pending", "resourceClaimTemplateName": "t"}
        ]},
        "status": {"resourceClaimStatuses": [{"name": "tmpl", "resourceClaimName": "p-tmpl-x1"}]}
    }));
    assert_eq!(
        claim_refs(&p),
        vec![
            ("direct".to_owned(), Some("ml/shared".to_owned())),
            ("tmpl".to_owned(), Some("ml/p-tmpl-x1".to_owned())),
            ("pending".to_owned(), None),
        ]
    );
}

#[test]
fn pod_demand_joins_cached_claims_and_reports_missing_ones() {
    let p = pod(serde_json::json!({
        "metadata": {"name": "p", "namespace": "ml"},
        "spec": {"resourceClaims": [
            {"name": "a", "resourceClaimName": "cached"},
            {"name": "b", "resourceClaimName": "absent"}
        ]}
    }));
    let cached: k8s_openapi::api::resource::v1::ResourceClaim =
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "cached", "namespace": "ml"},
            "spec": {"devices": {"requests": [
                {"name": "g", "exactly": {"deviceClassName": "mig.gpu.tessera.dev"}}
            ]}}
        }))
        .unwrap();
    let classes = DeviceClasses::new("gpu.tessera.dev");
    let demand = pod_demand(&p, |id| {
        (id == "ml/cached").then(|| claim_requests(&cached, &classes))
    });
    assert_eq!(demand.requests.len(), 1);
    assert_eq!(demand.requests[0].alternatives[0].kind, DeviceKind::Mig);
    assert_eq!(demand.missing_claims, ["ml/absent"]);
    assert!(demand.may_need_gpu());
    assert!(!demand.is_complete());
}

#[test]
fn classic_gpu_requests_follow_effective_request_rules() {
    let p = pod(serde_json::json!({
        "spec": {
            "initContainers": [
                {"restartPolicy": "Always", "resources": {"requests": {"nvidia.com/gpu": "1"}}},
                {"resources": {"limits": {"nvidia.com/gpu": "4"}}}
            ],
            "containers": [
                {"resources": {"limits": {"nvidia.com/gpu": "1"}}},
                {"resources": {"requests": {"nvidia.com/gpu": 1}}}
            ]
        }
    }));
    // Init peak: sidecar 1 + init 4 = 5; running: 2 + sidecar 1 = 3.
    assert_eq!(classic_gpus(&p), Ok(5));
    let demand = pod_demand(&p, |_| None);
    assert_eq!(demand.requests[0].source, CLASSIC_GPU_RESOURCE);
    assert_eq!(demand.requests[0].alternatives[0].count, Count::Exact(5));
    assert!(demand.is_complete());

    let none = pod(
        serde_json::json!({"spec": {"containers": [{"resources": {"requests": {"cpu": "2"}}}]}}),
    );
    assert_eq!(classic_gpus(&none), Ok(0));
    assert!(!pod_demand(&none, |_| None).may_need_gpu());

    for bad in ["0.5", "-1", "lots", "2000"] {
        let p = pod(serde_json::json!({"spec": {"containers": [
            {"resources": {"limits": {"nvidia.com/gpu": bad}}}
        ]}}));
        assert!(classic_gpus(&p).is_err(), "{bad}");
        assert_eq!(pod_demand(&p, |_| None).unreadable.len(), 1, "{bad}");
    }
}

#[test]
fn max_hourly_cost_reads_back_as_explain_shows_it() {
    let read = |v: &str| {
        PodPolicy::from_annotations(&annotations(&[(MAX_HOURLY_COST_ANNOTATION, v)]))
            .max_hourly_cost
            .to_string()
    };
    assert_eq!(read("2.5"), "2.5000 $/h");
    assert_eq!(read("$3"), "invalid: \"$3\"");
    assert_eq!(
        PodPolicy::from_annotations(&BTreeMap::new())
            .max_hourly_cost
            .to_string(),
        "unlimited"
    );
}
