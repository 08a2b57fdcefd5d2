use super::*;

/// `ExtenderArgs` exactly as upstream's `TestCompatibility` encodes it (Go `json.Marshal`).
const UPSTREAM_ARGS: &str = r#"{"Pod":{"metadata":{"name":"podname","creationTimestamp":null},"spec":{"containers":null},"status":{}},"Nodes":{"metadata":{},"items":[{"metadata":{"name":"nodename","creationTimestamp":null},"spec":{},"status":{"daemonEndpoints":{"kubeletEndpoint":{"Port":0}},"nodeInfo":{"machineID":"","systemUUID":"","bootID":"","kernelVersion":"","osImage":"","containerRuntimeVersion":"","kubeletVersion":"","kubeProxyVersion":"","operatingSystem":"","architecture":""}}}]},"NodeNames":["node1"]}"#;

fn names(args: &ExtenderArgs<'_>) -> Vec<String> {
    args.nodes.iter().map(|n| n.name.to_string()).collect()
}

#[test]
fn upstream_compatibility_args_parse_and_prefer_node_names() {
    let args = ExtenderArgs::parse(UPSTREAM_ARGS.as_bytes()).unwrap();
    assert_eq!(args.pod.metadata.name, "podname");
    assert!(args.names_mode);
    assert_eq!(names(&args), ["node1"]);
}

#[test]
fn lowercased_upstream_args_parse_the_same() {
    let lower = UPSTREAM_ARGS.to_lowercase();
    let args = ExtenderArgs::parse(lower.as_bytes()).unwrap();
    assert_eq!(args.pod.metadata.name, "podname");
    assert!(args.names_mode);
    assert_eq!(names(&args), ["node1"]);
}

#[test]
fn nodes_mode_keeps_each_node_verbatim() {
    let body = r#"{"Pod":{"metadata":{"name":"p","namespace":"ns"}},"Nodes":{"metadata":{},"items":[
        {"metadata":{"name":"a","labels":{"karpenter.sh/capacity-type":"spot"}},"spec":{"taints":[{"key":"karpenter.sh/disrupted","effect":"NoSchedule"}]},"status":{"images":[{"names":["x"],"sizeBytes":1}]}},
        {"metadata":{"name":"b","deletionTimestamp":"2026-01-01T00:00:00Z","annotations":null},"spec":null}
    ]},"NodeNames":null}"#;
    let args = ExtenderArgs::parse(body.as_bytes()).unwrap();
    assert!(!args.names_mode);
    assert_eq!(names(&args), ["a", "b"]);
    let a = args.nodes[0].object.as_ref().unwrap();
    assert_eq!(a.labels["karpenter.sh/capacity-type"], "spot");
    assert_eq!(a.taints[0].key, "karpenter.sh/disrupted");
    assert!(!a.deleting);
    assert!(args.nodes[1].object.as_ref().unwrap().deleting);
    assert!(args.nodes[0].raw.unwrap().get().contains("sizeBytes"));
}

#[test]
fn null_and_absent_node_lists_mean_no_nodes() {
    for body in [
        r#"{"Pod":{},"Nodes":null,"NodeNames":null}"#,
        r#"{"Pod":{}}"#,
        r#"{"Pod":{},"Nodes":{"items":null}}"#,
    ] {
        let args = ExtenderArgs::parse(body.as_bytes()).unwrap();
        assert!(args.nodes.is_empty(), "{body}");
        assert!(!args.names_mode, "{body}");
    }
    let args = ExtenderArgs::parse(br#"{"Pod":{},"NodeNames":[]}"#).unwrap();
    assert!(args.names_mode && args.nodes.is_empty());
}

#[test]
fn bad_bodies_are_errors_not_panics() {
    let cases: [(&[u8], &str); 8] = [
        (b"", "malformed"),
        (b"{", "malformed"),
        (
            br#"{"Pod":{"metadata":{"name":"p"}},"NodeNames":["a","#,
            "malformed",
        ),
        (b"[]", "malformed"),
        (br#"{"NodeNames":["a"]}"#, "no Pod"),
        (br#"{"Pod":null,"NodeNames":["a"]}"#, "no Pod"),
        (br#"{"Pod":{},"NodeNames":[""]}"#, "no name"),
        (br#"{"Pod":{},"NodeNames":[1]}"#, "malformed"),
    ];
    for (body, want) in cases {
        let err = ExtenderArgs::parse(body).unwrap_err().to_string();
        assert!(
            err.contains(want),
            "{:?}: {err}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn node_count_and_name_length_are_bounded() {
    let long = "n".repeat(MAX_NODE_NAME_LEN + 1);
    let body = format!(r#"{{"Pod":{{}},"NodeNames":["{long}"]}}"#);
    assert!(matches!(
        ExtenderArgs::parse(body.as_bytes()),
        Err(ApiError::BadNodeName { index: 0, .. })
    ));
    let many: Vec<String> = (0..=MAX_NODES).map(|i| format!("n{i}")).collect();
    let body = serde_json::json!({"Pod": {}, "NodeNames": many}).to_string();
    assert_eq!(
        ExtenderArgs::parse(body.as_bytes()).unwrap_err(),
        ApiError::TooManyNodes {
            count: MAX_NODES + 1
        }
    );
}

#[test]
fn escaped_names_are_unescaped() {
    let args = ExtenderArgs::parse(br#"{"Pod":{},"NodeNames":["node\u002d1"]}"#).unwrap();
    assert_eq!(names(&args), ["node-1"]);
}

#[test]
fn filter_result_has_upstream_keys_in_order_with_nulls() {
    let mut result = FilterResult {
        node_names: Some(vec!["node1"]),
        ..FilterResult::default()
    };
    result.failed_nodes.insert("foo", "bar".into());
    assert_eq!(
        serde_json::to_string(&result).unwrap(),
        r#"{"Nodes":null,"NodeNames":["node1"],"FailedNodes":{"foo":"bar"},"FailedAndUnresolvableNodes":null,"Error":""}"#
    );
    let empty_names = FilterResult {
        node_names: Some(vec![]),
        ..FilterResult::default()
    };
    assert_eq!(
        serde_json::to_string(&empty_names).unwrap(),
        r#"{"Nodes":null,"NodeNames":[],"FailedNodes":null,"FailedAndUnresolvableNodes":null,"Error":""}"#
    );
    assert_eq!(
        serde_json::to_string(&FilterResult::error("bad")).unwrap(),
        r#"{"Nodes":null,"NodeNames":null,"FailedNodes":null,"FailedAndUnresolvableNodes":null,"Error":"bad"}"#
    );
}

#[test]
fn filter_result_echoes_node_objects_as_a_node_list() {
    let args = ExtenderArgs::parse(
        UPSTREAM_ARGS
            .replace(r#","NodeNames":["node1"]"#, "")
            .as_bytes(),
    )
    .map(|a| {
        a.nodes
            .iter()
            .map(|n| n.raw.unwrap().get().to_owned())
            .collect::<Vec<_>>()
    })
    .unwrap();
    let raws: Vec<Box<RawValue>> = args
        .iter()
        .map(|s| RawValue::from_string(s.clone()).unwrap())
        .collect();
    let result = FilterResult {
        nodes: Some(raws.iter().map(AsRef::as_ref).collect()),
        ..FilterResult::default()
    };
    let json = serde_json::to_string(&result).unwrap();
    assert!(
        json.starts_with(r#"{"Nodes":{"metadata":{},"items":[{"metadata":{"name":"nodename","creationTimestamp":null},"spec":{},"status":{"daemonEndpoints""#),
        "{json}"
    );
    assert!(json.ends_with(
        r#""NodeNames":null,"FailedNodes":null,"FailedAndUnresolvableNodes":null,"Error":""}"#
    ));
}

#[test]
fn host_priority_matches_upstream() {
    let entry = HostPriority {
        host: "myhost".into(),
        score: 1,
    };
    assert_eq!(
        serde_json::to_string(&entry).unwrap(),
        r#"{"Host":"myhost","Score":1}"#
    );
    let borrowed = HostScore {
        host: "myhost",
        score: 1,
    };
    assert_eq!(
        serde_json::to_string(&borrowed).unwrap(),
        serde_json::to_string(&entry).unwrap()
    );
    let error = ErrorBody {
        error: "myerror".into(),
    };
    assert_eq!(
        serde_json::to_string(&error).unwrap(),
        r#"{"Error":"myerror"}"#
    );
}

#[test]
fn pod_fields_tessera_reads_are_decoded() {
    let body = r#"{"Pod":{"metadata":{"name":"p","namespace":"ns","uid":"u1","annotations":{"tessera.dev/interruption":"intolerant"}},
      "spec":{"containers":[{"name":"c","resources":{"limits":{"nvidia.com/gpu":2}}}],
              "initContainers":[{"name":"s","restartPolicy":"Always","resources":{"requests":{"nvidia.com/gpu":"1"}}}],
              "resourceClaims":[{"name":"gpu","resourceClaimTemplateName":"t"},{"name":"x","resourceClaimName":"shared-claim"}]},
      "status":{"resourceClaimStatuses":[{"name":"gpu","resourceClaimName":"p-gpu-abc12"}]}},"NodeNames":["a"]}"#;
    let pod = ExtenderArgs::parse(body.as_bytes()).unwrap().pod;
    assert_eq!(pod.metadata.namespace, "ns");
    assert_eq!(
        pod.metadata.annotations["tessera.dev/interruption"],
        "intolerant"
    );
    assert_eq!(
        pod.spec.containers[0].resources.limits["nvidia.com/gpu"].0,
        "2"
    );
    assert_eq!(
        pod.spec.init_containers[0].restart_policy.as_deref(),
        Some("Always")
    );
    assert_eq!(pod.spec.resource_claims.len(), 2);
    assert_eq!(
        pod.status.resource_claim_statuses[0]
            .resource_claim_name
            .as_deref(),
        Some("p-gpu-abc12")
    );
}

/// A wrong JSON type anywhere is an error that names the field, as Go's decoder refuses it
/// ("cannot unmarshal array into Go struct field"); serde's derive alone would read an array
/// into a struct by position.
#[test]
fn wrong_types_are_refused_naming_the_field() {
    let cases: [(&str, &str); 12] = [
        (r#"{"Pod":[],"NodeNames":["a"]}"#, "field Pod:"),
        (
            r#"{"Pod":{"metadata":["p","ns"]},"NodeNames":["a"]}"#,
            "field Pod.metadata:",
        ),
        (
            r#"{"Pod":{"spec":[[]]},"NodeNames":["a"]}"#,
            "field Pod.spec:",
        ),
        (
            r#"{"Pod":{"status":[[]]},"NodeNames":["a"]}"#,
            "field Pod.status:",
        ),
        (
            r#"{"Pod":{"spec":{"containers":[["c"]]}},"NodeNames":["a"]}"#,
            "field Pod.spec.containers[0]:",
        ),
        (
            r#"{"Pod":{"spec":{"containers":[{"resources":[{}]}]}},"NodeNames":["a"]}"#,
            "field Pod.spec.containers[0].resources:",
        ),
        (
            r#"{"Pod":{"spec":{"resourceClaims":[["gpu","c"]]}},"NodeNames":["a"]}"#,
            "field Pod.spec.resourceClaims[0]:",
        ),
        (
            r#"{"Pod":{"status":{"resourceClaimStatuses":[["gpu","c"]]}},"NodeNames":["a"]}"#,
            "field Pod.status.resourceClaimStatuses[0]:",
        ),
        (r#"{"Pod":{},"Nodes":[[{}]]}"#, "field Nodes:"),
        (
            r#"{"Pod":{},"Nodes":{"items":[["a"]]}}"#,
            "field Nodes.items[0]:",
        ),
        (
            r#"{"Pod":{},"Nodes":{"items":[{"metadata":{"name":"a"},"spec":{"taints":[["k","v","NoSchedule"]]}}]}}"#,
            "field Nodes.items[0].spec.taints[0]:",
        ),
        (
            r#"{"Pod":{"metadata":{"name":"p","labels":["x"]}},"NodeNames":["a"]}"#,
            "field Pod.metadata.labels:",
        ),
    ];
    for (body, want) in cases {
        let err = ExtenderArgs::parse(body.as_bytes()).unwrap_err();
        assert!(matches!(err, ApiError::Json(_)), "{body}: {err:?}");
        let text = err.to_string();
        assert!(text.contains(want), "{body}: {text}");
    }
}

#[test]
fn objects_inside_the_lists_still_decode_by_field() {
    let body = r#"{"Pod":{"metadata":{"name":"p"},"spec":{"containers":[{"name":"c"}]}},"Nodes":{"items":[{"metadata":{"name":"a"},"spec":{"taints":[{"key":"k","effect":"NoSchedule"}]}}]}}"#;
    let args = ExtenderArgs::parse(body.as_bytes()).unwrap();
    assert_eq!(args.pod.spec.containers.len(), 1);
    assert_eq!(
        args.nodes[0].object.as_ref().unwrap().taints[0].effect,
        "NoSchedule"
    );
}
