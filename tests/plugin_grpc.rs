//! `tessera plugin` driven over its Unix sockets exactly as the kubelet drives it:
//! registration, v1 and v1beta1 NodePrepareResources / NodeUnprepareResources, against an
//! in-process API server serving the ResourceClaims; responses, CDI specs and checkpoint
//! checked on disk.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod plugin_support;

use plugin_support::{DRIVER, MockApiServer, NODE, TestNode};
use serde_json::json;
use tessera::plugin::proto::dra_v1 as v1;
use tessera::plugin::proto::dra_v1beta1 as v1beta1;
use tessera::plugin::proto::registration::{InfoRequest, RegistrationStatus};
use tessera::prepare::ClaimBuilder;

fn v1beta1_claim(namespace: &str, name: &str, uid: &str) -> v1beta1::Claim {
    v1beta1::Claim {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        uid: uid.to_owned(),
    }
}

fn gpu_config(sharing: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "gpu.tessera.dev/v1alpha1", "kind": "GpuConfig", "sharing": sharing})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_announces_both_versions_and_health_and_the_kubelets_answer_drives_readiness()
{
    let api = MockApiServer::start().await;
    let node = TestNode::new(2);
    let plugin = node.start(&api, None).await;
    let mut registration = plugin.registration().await;

    let info = registration
        .get_info(InfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.r#type, "DRAPlugin");
    assert_eq!(info.name, DRIVER);
    assert_eq!(info.endpoint, plugin.sockets.dra.display().to_string());
    assert!(plugin.sockets.dra.is_absolute());
    assert_eq!(
        info.supported_versions,
        vec![
            "v1.DRAPlugin",
            "v1beta1.DRAPlugin",
            "v1alpha1.DRAResourceHealth"
        ]
    );

    assert!(
        plugin.readiness.report().contains("-- registered"),
        "{}",
        plugin.readiness.report()
    );
    registration
        .notify_registration_status(RegistrationStatus {
            plugin_registered: true,
            error: String::new(),
        })
        .await
        .unwrap();
    assert!(plugin.readiness.is_ready(), "{}", plugin.readiness.report());
    assert!(
        plugin
            .readiness
            .report()
            .contains("ok checkpoint: recovered: 0 claims prepared"),
        "{}",
        plugin.readiness.report()
    );

    let refused = registration
        .notify_registration_status(RegistrationStatus {
            plugin_registered: false,
            error: "none of services supported by the plugin are supported by the kubelet"
                .to_owned(),
        })
        .await
        .unwrap_err();
    assert!(
        refused.message().contains("none of services"),
        "{refused:?}"
    );
    assert!(!plugin.readiness.is_ready());
    assert!(
        plugin.readiness.report().contains("refused"),
        "{}",
        plugin.readiness.report()
    );

    plugin.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_prepares_a_share_and_a_mig_device_then_unprepares_them() {
    let api = MockApiServer::start().await;
    let node = TestNode::new(2);
    api.insert(
        ClaimBuilder::new("team-a", "shared", "uid-shared")
            .share(
                "gpu/shared",
                DRIVER,
                NODE,
                "gpu-0-shared",
                "share-7",
                &[("memory", "10Gi"), ("compute", "25")],
            )
            .config(
                "FromClass",
                DRIVER,
                &[],
                gpu_config(json!({"strategy": "MPS"})),
            )
            .build(),
    );
    api.insert(
        ClaimBuilder::new("team-a", "mig", "uid-mig")
            .device("gpu", DRIVER, NODE, "gpu-1-mig-3g40gb-4")
            .build(),
    );
    let plugin = node.start(&api, None).await;

    let response = plugin
        .prepare_v1(&[
            ("team-a", "shared", "uid-shared"),
            ("team-a", "mig", "uid-mig"),
        ])
        .await;
    assert_eq!(response.claims.len(), 2);
    let shared = &response.claims["uid-shared"];
    assert_eq!(shared.error, "");
    assert_eq!(
        shared.devices,
        vec![v1::Device {
            request_names: vec!["gpu".to_owned()],
            pool_name: NODE.to_owned(),
            device_name: "gpu-0-shared".to_owned(),
            cdi_device_ids: vec![format!(
                "k8s.{DRIVER}/claim=uid-shared-gpu-0-shared-share-7"
            )],
            share_id: Some("share-7".to_owned()),
        }]
    );
    let mig = &response.claims["uid-mig"];
    assert_eq!(mig.error, "");
    assert_eq!(mig.devices[0].device_name, "gpu-1-mig-3g40gb-4");
    assert_eq!(
        mig.devices[0].share_id, None,
        "no share, no share_id on the wire"
    );

    // CDI: the share's GPU with MPS limits from the consumed capacity.
    let spec = node.cdi_spec("uid-shared");
    assert_eq!(spec["cdiVersion"], "0.3.0");
    assert_eq!(spec["kind"], format!("k8s.{DRIVER}/claim"));
    assert_eq!(
        spec["devices"][0]["name"],
        "uid-shared-gpu-0-shared-share-7"
    );
    let env: Vec<String> = serde_json::from_value(spec["containerEdits"]["env"].clone()).unwrap();
    assert_eq!(
        env,
        vec![
            format!("NVIDIA_VISIBLE_DEVICES={}", node.inventory.gpus[0].uuid),
            "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=25".to_owned(),
            "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT=0=10240M".to_owned(),
            "CUDA_MPS_PIPE_DIRECTORY=/tmp/nvidia-mps".to_owned(),
        ]
    );
    // CDI: the MIG device the plugin created, with its capability device nodes.
    let mig_spec = node.cdi_spec("uid-mig");
    let created = &node.control.snapshot()[&node.inventory.gpus[1].uuid].mig;
    let (profile, mig_uuid) = created.values().next().unwrap();
    assert_eq!(profile, "3g.40gb");
    assert_eq!(
        mig_spec["containerEdits"]["env"][0],
        format!("NVIDIA_VISIBLE_DEVICES={mig_uuid}")
    );
    let nodes = mig_spec["devices"][0]["containerEdits"]["deviceNodes"]
        .as_array()
        .unwrap();
    assert!(
        nodes.iter().any(|n| n["path"] == "/dev/nvidia1"),
        "{nodes:?}"
    );
    assert!(
        nodes
            .iter()
            .any(|n| n["path"].as_str().unwrap().starts_with("/dev/nvidia-caps/")),
        "{nodes:?}"
    );

    // Checkpoint: both claims complete, versioned and checksummed.
    let checkpoint = node.checkpoint();
    assert_eq!(checkpoint["version"], 1);
    assert!(checkpoint["checksum"].is_u64());
    let claims = &checkpoint["data"]["claims"];
    assert_eq!(claims["uid-shared"]["state"], "PrepareCompleted");
    assert_eq!(claims["uid-shared"]["devices"][0]["shareId"], "share-7");
    assert_eq!(
        claims["uid-mig"]["devices"][0]["kind"]["type"],
        "dynamicMig"
    );
    assert_eq!(
        claims["uid-mig"]["devices"][0]["visibleUuid"],
        mig_uuid.as_str()
    );

    // The kubelet asks again (it restarted): the same answer, no new MIG instance.
    let again = plugin.prepare_v1(&[("team-a", "mig", "uid-mig")]).await;
    assert_eq!(again.claims["uid-mig"], *mig);
    assert_eq!(
        node.control.snapshot()[&node.inventory.gpus[1].uuid]
            .mig
            .len(),
        1
    );

    let response = plugin
        .unprepare_v1(&[
            ("team-a", "shared", "uid-shared"),
            ("team-a", "mig", "uid-mig"),
            ("team-a", "never-prepared", "uid-unknown"),
        ])
        .await;
    assert_eq!(response.claims.len(), 3, "every claim has an entry");
    assert!(
        response.claims.values().all(|c| c.error.is_empty()),
        "{response:?}"
    );
    assert!(!node.cdi_spec_path("uid-shared").exists());
    assert!(!node.cdi_spec_path("uid-mig").exists());
    assert!(
        node.control.snapshot()[&node.inventory.gpus[1].uuid]
            .mig
            .is_empty()
    );
    assert_eq!(node.checkpoint()["data"]["claims"], json!({}));

    let metrics = plugin.metrics();
    assert!(
        metrics.contains("tessera_plugin_prepare_duration_seconds_count 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tessera_plugin_unprepare_duration_seconds_count 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tessera_plugin_prepared_claims 0"),
        "{metrics}"
    );
    plugin.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1beta1_serves_the_same_claims_without_share_ids() {
    let api = MockApiServer::start().await;
    let node = TestNode::new(3);
    api.insert(
        ClaimBuilder::new("default", "old-kubelet", "uid-beta")
            .share("gpu", DRIVER, NODE, "gpu-0-shared", "share-1", &[])
            .device("mig", DRIVER, NODE, "gpu-2-mig-1g10gb-0")
            .build(),
    );
    let plugin = node.start(&api, None).await;
    let mut client = plugin.v1beta1().await;
    let response = client
        .node_prepare_resources(v1beta1::NodePrepareResourcesRequest {
            claims: vec![v1beta1_claim("default", "old-kubelet", "uid-beta")],
        })
        .await
        .unwrap()
        .into_inner();
    let entry = &response.claims["uid-beta"];
    assert_eq!(entry.error, "");
    assert_eq!(entry.devices.len(), 2);
    assert_eq!(entry.devices[0].device_name, "gpu-0-shared");
    assert_eq!(entry.devices[1].request_names, vec!["mig".to_owned()]);
    assert_eq!(
        entry.devices[1].cdi_device_ids,
        vec![format!("k8s.{DRIVER}/claim=uid-beta-gpu-2-mig-1g10gb-0")]
    );
    let spec = node.cdi_spec("uid-beta");
    assert_eq!(
        spec["containerEdits"]["env"][0],
        format!(
            "NVIDIA_VISIBLE_DEVICES={},MIG-static-2-0",
            node.inventory.gpus[0].uuid
        )
    );
    // Prepared through v1beta1, seen the same through v1.
    let through_v1 = plugin
        .prepare_v1(&[("default", "old-kubelet", "uid-beta")])
        .await;
    assert_eq!(
        through_v1.claims["uid-beta"].devices[0].share_id.as_deref(),
        Some("share-1")
    );

    let response = client
        .node_unprepare_resources(v1beta1::NodeUnprepareResourcesRequest {
            claims: vec![v1beta1_claim("default", "old-kubelet", "uid-beta")],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.claims["uid-beta"].error, "");
    assert!(!node.cdi_spec_path("uid-beta").exists());
    plugin.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_plugin_finds_what_the_last_one_prepared() {
    let api = MockApiServer::start().await;
    let node = TestNode::new(2);
    api.insert(
        ClaimBuilder::new("default", "c", "uid-c")
            .device("gpu", DRIVER, NODE, "gpu-1")
            .build(),
    );
    let first = node.start(&api, None).await;
    let prepared = first.prepare_v1(&[("default", "c", "uid-c")]).await;
    assert_eq!(prepared.claims["uid-c"].error, "");
    first.stop().await.unwrap();
    assert!(
        !node
            .registry_dir
            .join(format!("{DRIVER}-reg.sock"))
            .exists(),
        "sockets removed on stop"
    );

    let second = node.start(&api, None).await;
    let again = second.prepare_v1(&[("default", "c", "uid-c")]).await;
    assert_eq!(again, prepared);
    let whole_gpu_instances = &node.control.snapshot()[&node.inventory.gpus[1].uuid].mig;
    assert_eq!(
        whole_gpu_instances.len(),
        1,
        "the full-size instance was created once"
    );
    let response = second.unprepare_v1(&[("default", "c", "uid-c")]).await;
    assert_eq!(response.claims["uid-c"].error, "");
    assert!(
        node.control.snapshot()[&node.inventory.gpus[1].uuid]
            .mig
            .is_empty()
    );
    second.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_of_a_rolling_update_share_one_checkpoint() {
    let api = MockApiServer::start().await;
    let node = TestNode::new(2);
    api.insert(
        ClaimBuilder::new("default", "c", "uid-c")
            .device("gpu", DRIVER, NODE, "gpu-0")
            .build(),
    );
    api.insert(
        ClaimBuilder::new("default", "d", "uid-d")
            .device("gpu", DRIVER, NODE, "gpu-0")
            .build(),
    );
    let old = node
        .start(&api, Some("11111111-1111-1111-1111-111111111111"))
        .await;
    let new = node
        .start(&api, Some("22222222-2222-2222-2222-222222222222"))
        .await;
    assert_ne!(old.sockets, new.sockets);
    assert!(old.sockets.registration.exists() && new.sockets.registration.exists());

    let prepared = old.prepare_v1(&[("default", "c", "uid-c")]).await;
    assert_eq!(prepared.claims["uid-c"].error, "");
    // The other instance sees the claim holding gpu-0.
    let refused = new.prepare_v1(&[("default", "d", "uid-d")]).await;
    assert!(
        refused.claims["uid-d"]
            .error
            .contains("already prepared for claim default/c (uid-c)"),
        "{refused:?}"
    );
    old.stop().await.unwrap();
    let unprepared = new.unprepare_v1(&[("default", "c", "uid-c")]).await;
    assert_eq!(unprepared.claims["uid-c"].error, "");
    assert_eq!(node.checkpoint()["data"]["claims"], json!({}));
    let new_sockets = new.sockets.clone();
    new.stop().await.unwrap();
    assert!(!new_sockets.registration.exists() && !new_sockets.dra.exists());
}
