use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{PodResourceClaim, PodStatus, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::*;
use crate::cluster::testing::objects::pod;

fn read(p: &Pod) -> Option<PodView> {
    read_pod(p, &mut Interners::default())
}

fn gpus(n: &str) -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([(
            CLASSIC_GPU_RESOURCE.to_owned(),
            Quantity(n.into()),
        )])),
        ..ResourceRequirements::default()
    }
}

fn container(name: &str, n: &str, restart: Option<&str>) -> Container {
    Container {
        name: name.into(),
        resources: Some(gpus(n)),
        restart_policy: restart.map(str::to_owned),
        ..Container::default()
    }
}

#[test]
fn a_scheduled_pod_with_a_generated_claim() {
    let view = read(&pod(
        "team-a",
        "train",
        "uid-1",
        Some("node-a"),
        &[("gpu", Some("train-gpu-x1"))],
        0,
    ))
    .unwrap();
    assert_eq!(view.key.as_str(), "team-a/train");
    assert_eq!(view.uid.to_string(), "uid-1");
    assert_eq!(view.node.as_deref(), Some("node-a"));
    assert_eq!(view.gpu_request, 0);
    assert_eq!(view.claims.len(), 1);
    assert_eq!(&*view.claims[0].name, "gpu");
    assert!(view.claims[0].from_template);
    assert_eq!(view.claim_names().collect::<Vec<_>>(), ["train-gpu-x1"]);
}

#[test]
fn a_pending_pod_whose_claim_is_not_generated_yet() {
    let view = read(&pod("ns", "p", "u", None, &[("gpu", None)], 0)).unwrap();
    assert_eq!(view.node, None);
    assert_eq!(view.claims[0].claim, None);
    assert_eq!(view.claim_names().count(), 0);
}

#[test]
fn a_direct_claim_reference_needs_no_status() {
    let mut p = pod("ns", "p", "u", None, &[], 0);
    p.spec.as_mut().unwrap().resource_claims = Some(vec![PodResourceClaim {
        name: "shared".into(),
        resource_claim_name: Some("team-gpu".into()),
        resource_claim_template_name: None,
    }]);
    let view = read(&p).unwrap();
    assert!(!view.claims[0].from_template);
    assert_eq!(view.claims[0].claim.as_deref(), Some("team-gpu"));
}

#[test]
fn pods_without_gpus_or_finished_are_not_kept() {
    assert!(read(&pod("ns", "web", "u", Some("n"), &[], 0)).is_none());
    for phase in ["Succeeded", "Failed"] {
        let mut p = pod("ns", "p", "u", Some("n"), &[("gpu", Some("c"))], 2);
        p.status.get_or_insert_with(PodStatus::default).phase = Some(phase.into());
        assert!(read(&p).is_none(), "{phase}");
    }
}

#[test]
fn classic_gpu_requests_count_like_the_scheduler() {
    // Limits alone imply requests.
    assert_eq!(
        read(&pod("ns", "p", "u", Some("n"), &[], 2))
            .unwrap()
            .gpu_request,
        2
    );

    let mut p = pod("ns", "p", "u", Some("n"), &[], 0);
    let spec = p.spec.as_mut().unwrap();
    spec.containers = vec![container("a", "1", None), container("b", "2", None)];
    // A regular init container needing 4 runs alone: the peak is 4 > 3.
    spec.init_containers = Some(vec![container("init", "4", None)]);
    assert_eq!(read(&p).unwrap().gpu_request, 4);

    // A sidecar keeps running next to the app containers: 1 + 2 + 1.
    let spec = p.spec.as_mut().unwrap();
    spec.init_containers = Some(vec![
        container("sidecar", "1", Some("Always")),
        container("init", "2", None),
    ]);
    assert_eq!(read(&p).unwrap().gpu_request, 4);

    // Overhead adds; bad quantities count as zero.
    let spec = p.spec.as_mut().unwrap();
    spec.init_containers = None;
    spec.overhead = Some(BTreeMap::from([(
        CLASSIC_GPU_RESOURCE.to_owned(),
        Quantity("1".into()),
    )]));
    spec.containers.push(container("c", "many", None));
    assert_eq!(read(&p).unwrap().gpu_request, 4);
}

fn cpu_memory(name: &str, requests: &[(&str, &str)], limits: &[(&str, &str)]) -> Container {
    let map = |pairs: &[(&str, &str)]| {
        (!pairs.is_empty()).then(|| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Quantity((*v).into())))
                .collect::<BTreeMap<_, _>>()
        })
    };
    Container {
        name: name.into(),
        resources: Some(ResourceRequirements {
            requests: map(requests),
            limits: map(limits),
            ..ResourceRequirements::default()
        }),
        ..Container::default()
    }
}

#[test]
fn cpu_and_memory_requests_count_like_the_scheduler() {
    let mut p = pod("ns", "p", "u", Some("n"), &[("gpu", Some("c"))], 0);
    let spec = p.spec.as_mut().unwrap();
    spec.containers = vec![
        cpu_memory("a", &[("cpu", "1500m"), ("memory", "2Gi")], &[]),
        // Limits alone stand for requests; a request beats a limit.
        cpu_memory("b", &[("cpu", "500m")], &[("cpu", "4"), ("memory", "1Gi")]),
    ];
    let view = read(&p).unwrap();
    assert_eq!(
        (view.cpu_request_milli, view.memory_request_mib),
        (2000, 3072)
    );

    // A plain init container asking more than the app runs alone: its peak counts.
    let spec = p.spec.as_mut().unwrap();
    spec.init_containers = Some(vec![cpu_memory(
        "init",
        &[("cpu", "3"), ("memory", "1Gi")],
        &[],
    )]);
    let view = read(&p).unwrap();
    assert_eq!(
        (view.cpu_request_milli, view.memory_request_mib),
        (3000, 3072)
    );

    // A sidecar runs next to the app: 2 + 0.25 CPUs; overhead adds on top.
    let spec = p.spec.as_mut().unwrap();
    let mut sidecar = cpu_memory("proxy", &[("cpu", "250m"), ("memory", "100Mi")], &[]);
    sidecar.restart_policy = Some("Always".into());
    spec.init_containers = Some(vec![sidecar]);
    spec.overhead = Some(BTreeMap::from([
        ("cpu".to_owned(), Quantity("100m".into())),
        ("memory".to_owned(), Quantity("120Mi".into())),
    ]));
    let view = read(&p).unwrap();
    assert_eq!(
        (view.cpu_request_milli, view.memory_request_mib),
        (2350, 3292)
    );
    assert_eq!(view.gpu_request, 0, "no GPU request appears");

    // Unreadable quantities count as zero; memory rounds down to whole MiB.
    let spec = p.spec.as_mut().unwrap();
    spec.init_containers = None;
    spec.overhead = None;
    spec.containers = vec![
        cpu_memory("a", &[("cpu", "lots"), ("memory", "1536Ki")], &[]),
        cpu_memory("b", &[("cpu", "1e30"), ("memory", "-1")], &[]),
    ];
    let view = read(&p).unwrap();
    assert_eq!((view.cpu_request_milli, view.memory_request_mib), (0, 1));
}

#[test]
fn a_pod_without_requests_asks_for_no_cpu_or_memory() {
    let view = read(&pod("ns", "p", "u", Some("n"), &[], 1)).unwrap();
    assert_eq!((view.cpu_request_milli, view.memory_request_mib), (0, 0));
}

#[test]
fn only_bounded_tessera_annotations_are_kept() {
    let mut p = pod("ns", "p", "u", Some("n"), &[("gpu", Some("c"))], 0);
    p.metadata.annotations = Some(BTreeMap::from([
        ("tessera.dev/interruption".to_owned(), "tolerant".to_owned()),
        ("tessera.dev/max-hourly-cost".to_owned(), "1.5".to_owned()),
        (
            "tessera.dev/huge".to_owned(),
            "x".repeat(MAX_ANNOTATION_LEN + 1),
        ),
        (
            "kubectl.kubernetes.io/last-applied-configuration".to_owned(),
            "{}".to_owned(),
        ),
    ]));
    let view = read(&p).unwrap();
    assert_eq!(
        view.annotation("tessera.dev/interruption"),
        Some("tolerant")
    );
    assert_eq!(view.annotation("tessera.dev/max-hourly-cost"), Some("1.5"));
    assert_eq!(view.annotation("tessera.dev/huge"), None);
    assert_eq!(view.annotations.len(), 2);
}
