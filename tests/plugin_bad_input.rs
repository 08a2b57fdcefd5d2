//! Bad input over the kubelet's socket: each bad claim gets a clear error in its own
//! response entry, good claims in the same call still succeed, nothing is left behind, and
//! the error is counted by kind.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod plugin_support;

use std::time::Duration;

use plugin_support::{DRIVER, MockApiServer, NODE, RunningPlugin, TestNode};
use serde_json::json;
use tessera::plugin::READY_CHECKPOINT;
use tessera::plugin::proto::dra_v1 as v1;
use tessera::prepare::ClaimBuilder;
use tonic::Code;

fn claim(name: &str, uid: &str) -> v1::Claim {
    v1::Claim {
        namespace: "default".to_owned(),
        name: name.to_owned(),
        uid: uid.to_owned(),
    }
}

/// The `checkpoint` line of `/readyz`'s report, once it satisfies `want` (5 s at most).
async fn checkpoint_readiness(plugin: &RunningPlugin, want: impl Fn(&str) -> bool) -> String {
    let mut line = String::new();
    for _ in 0..500 {
        let report = plugin.readiness.report();
        line = report
            .lines()
            .find(|l| l[3..].starts_with(&format!("{READY_CHECKPOINT}:")))
            .unwrap_or_default()
            .to_owned();
        if want(&line) {
            return line;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the checkpoint condition never became what was expected: {line:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_claim_gets_its_own_clear_error_and_good_ones_still_prepare() {
    let api = MockApiServer::start().await;
    let node = TestNode::new(2);
    api.insert(
        ClaimBuilder::new("default", "good", "uid-good")
            .device("gpu", DRIVER, NODE, "gpu-0")
            .build(),
    );
    api.insert(
        ClaimBuilder::new("default", "replaced", "uid-new")
            .device("gpu", DRIVER, NODE, "gpu-0")
            .build(),
    );
    api.insert(
        ClaimBuilder::new("default", "pending", "uid-pending")
            .unallocated()
            .build(),
    );
    api.insert(
        ClaimBuilder::new("default", "nic", "uid-nic")
            .device("net", "net.example.com", NODE, "eth0")
            .build(),
    );
    api.insert(
        ClaimBuilder::new("default", "ghost", "uid-ghost")
            .device("gpu", DRIVER, NODE, "gpu-9")
            .build(),
    );
    api.insert(
        ClaimBuilder::new("default", "config", "uid-config")
            .device("gpu", DRIVER, NODE, "gpu-1-mig-1g10gb-0")
            .config(
                "FromClaim",
                DRIVER,
                &["gpu"],
                json!({"apiVersion": "gpu.tessera.dev/v1alpha1", "kind": "GpuConfig",
                       "sharing": {"strategy": "TimeSlicing", "interval": "Long", "priority": 9}}),
            )
            .build(),
    );
    let plugin = node.start(&api, None).await;
    let response = plugin
        .prepare_v1(&[
            ("default", "good", "uid-good"),
            ("default", "missing", "uid-missing"),
            ("default", "replaced", "uid-old"),
            ("default", "pending", "uid-pending"),
            ("default", "nic", "uid-nic"),
            ("default", "ghost", "uid-ghost"),
            ("default", "config", "uid-config"),
        ])
        .await;
    assert_eq!(response.claims.len(), 7, "every claim has an entry");
    assert_eq!(response.claims["uid-good"].error, "");
    assert_eq!(response.claims["uid-good"].devices.len(), 1);

    for (uid, expected) in [
        ("uid-missing", "claim default/missing not found"),
        (
            "uid-old",
            "claim default/replaced got replaced: the kubelet asked for UID uid-old, the API server has uid-new",
        ),
        ("uid-pending", "claim default/pending is not allocated"),
        (
            "uid-nic",
            "claim has no devices allocated by driver gpu.tessera.dev (results are for: net.example.com)",
        ),
        ("uid-ghost", "unknown device gpu-9: this node has no GPU 9"),
        (
            "uid-config",
            "invalid config for request gpu: unknown field `priority`",
        ),
    ] {
        let entry = &response.claims[uid];
        assert!(
            entry.error.starts_with(expected),
            "{uid}: {:?}",
            entry.error
        );
        assert!(entry.devices.is_empty());
    }

    // Nothing of the failed claims was recorded, created or described.
    let claims = node.checkpoint()["data"]["claims"].clone();
    assert_eq!(
        claims.as_object().unwrap().keys().collect::<Vec<_>>(),
        vec!["uid-good"]
    );
    assert!(node.control.snapshot().values().all(|g| g.mig.is_empty()));
    let specs: Vec<_> = std::fs::read_dir(&node.cdi_dir).unwrap().collect();
    assert_eq!(specs.len(), 1);

    let metrics = plugin.metrics();
    for kind in [
        "claim_not_found",
        "uid_mismatch",
        "not_allocated",
        "wrong_driver",
        "unknown_device",
        "invalid_config",
    ] {
        assert!(
            metrics.contains(&format!(
                "tessera_plugin_errors_total{{operation=\"prepare\",kind=\"{kind}\"}} 1"
            )),
            "{kind}: {metrics}"
        );
    }
    plugin.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_prepared_for_another_claim_is_refused_naming_that_claim() {
    let api = MockApiServer::start().await;
    let node = TestNode::new(2);
    api.insert(
        ClaimBuilder::new("default", "a", "uid-a")
            .device("gpu", DRIVER, NODE, "gpu-1-mig-2g20gb-0")
            .build(),
    );
    api.insert(
        ClaimBuilder::new("default", "b", "uid-b")
            .device("gpu", DRIVER, NODE, "gpu-1-mig-1g10gb-1")
            .build(),
    );
    let plugin = node.start(&api, None).await;
    assert_eq!(
        plugin.prepare_v1(&[("default", "a", "uid-a")]).await.claims["uid-a"].error,
        ""
    );
    let refused = plugin.prepare_v1(&[("default", "b", "uid-b")]).await;
    assert_eq!(
        refused.claims["uid-b"].error,
        "device gpu-1-mig-1g10gb-1 is already prepared for claim default/a (uid-a) through overlapping device gpu-1-mig-2g20gb-0"
    );
    assert_eq!(
        node.control.snapshot()[&node.inventory.gpus[1].uuid]
            .mig
            .len(),
        1
    );
    plugin.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_checkpoint_is_moved_aside_and_the_mig_claim_prepared_before_prepares_again() {
    let api = MockApiServer::start().await;
    let mut node = TestNode::new(2);
    node.recovery_interval = Duration::from_millis(50);
    api.insert(
        ClaimBuilder::new("default", "c", "uid-c")
            .device("gpu", DRIVER, NODE, "gpu-1-mig-1g10gb-0")
            .build(),
    );
    let gpu1 = node.inventory.gpus[1].uuid.clone();
    let plugin = node.start(&api, None).await;
    let first = plugin.prepare_v1(&[("default", "c", "uid-c")]).await;
    assert_eq!(first.claims["uid-c"].error, "");
    assert_eq!(node.control.snapshot()[&gpu1].mig.len(), 1);
    plugin.stop().await.unwrap();

    // The disk damages the checkpoint while the plugin is down (a torn sector, say).
    let good = std::fs::read(node.checkpoint_path()).unwrap();
    let corrupt = &good[..good.len() / 2];
    std::fs::write(node.checkpoint_path(), corrupt).unwrap();

    // Start-up recovery moves it aside, keeps it, and removes the instance and the spec
    // that nothing accounts for any more. The plugin is ready and says so.
    let plugin = node.start(&api, None).await;
    let kept = node.plugin_dir.join("checkpoint.json.corrupt-1");
    let line = checkpoint_readiness(&plugin, |l| l.starts_with("ok ")).await;
    assert!(line.contains("corrupt checkpoints moved aside"), "{line}");
    assert!(line.contains(&kept.display().to_string()), "{line}");
    assert_eq!(std::fs::read(&kept).unwrap(), corrupt);
    assert!(
        node.control.snapshot()[&gpu1].mig.is_empty(),
        "no orphan instance"
    );
    assert!(node.control.snapshot()[&gpu1].bare.is_empty());
    assert!(!node.cdi_spec_path("uid-c").exists(), "no stale spec");
    let metrics = plugin.metrics();
    for series in [
        "tessera_plugin_checkpoint_corrupt_total 1",
        "tessera_plugin_checkpoint_corrupt_kept 1",
        "tessera_plugin_orphans_removed_total{kind=\"mig_instance\"} 1",
        "tessera_plugin_orphans_removed_total{kind=\"cdi_spec\"} 1",
    ] {
        assert!(metrics.contains(series), "{series}: {metrics}");
    }

    // The kubelet prepares the claim again (a new pod, or its retry): it works, on the
    // same placement, and the node holds exactly what the new checkpoint records.
    let again = plugin.prepare_v1(&[("default", "c", "uid-c")]).await;
    assert_eq!(again.claims["uid-c"].error, "", "{again:?}");
    assert_eq!(node.control.snapshot()[&gpu1].mig.len(), 1);
    assert!(node.cdi_spec_path("uid-c").exists());
    assert_eq!(
        node.checkpoint()["data"]["claims"]["uid-c"]["state"],
        "PrepareCompleted"
    );

    // Damaged while running: calls fail with the reason until the periodic recovery
    // moves it aside too; the claim is then prepared again from clean hardware.
    std::fs::write(
        node.checkpoint_path(),
        b"{\"version\":1,\"checksum\":12,\"data\":{}}",
    )
    .unwrap();
    let refused = plugin.unprepare_v1(&[("default", "c", "uid-c")]).await;
    let error = &refused.claims["uid-c"].error;
    if !error.is_empty() {
        assert!(error.contains("is corrupt (checksum mismatch"), "{error}");
    }
    let line = checkpoint_readiness(&plugin, |l| l.contains("checkpoint.json.corrupt-2")).await;
    assert!(line.starts_with("ok "), "{line}");
    assert!(node.control.snapshot()[&gpu1].mig.is_empty());
    let third = plugin.prepare_v1(&[("default", "c", "uid-c")]).await;
    assert_eq!(third.claims["uid-c"].error, "", "{third:?}");
    let gone = plugin.unprepare_v1(&[("default", "c", "uid-c")]).await;
    assert_eq!(gone.claims["uid-c"].error, "");
    assert!(node.control.snapshot()[&gpu1].mig.is_empty());
    assert!(!node.cdi_spec_path("uid-c").exists());
    plugin.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_of_another_version_fails_each_claim_and_is_left_alone() {
    let api = MockApiServer::start().await;
    let mut node = TestNode::new(1);
    node.recovery_interval = Duration::from_millis(50);
    api.insert(
        ClaimBuilder::new("default", "c", "uid-c")
            .device("gpu", DRIVER, NODE, "gpu-0")
            .build(),
    );
    std::fs::create_dir_all(&node.plugin_dir).unwrap();
    std::fs::write(
        node.checkpoint_path(),
        b"{\"version\":9,\"checksum\":0,\"data\":{}}",
    )
    .unwrap();
    let plugin = node.start(&api, None).await;
    // Not ready, and /readyz says why, from start-up recovery on.
    let line = checkpoint_readiness(&plugin, |l| l.contains("has version 9")).await;
    assert!(line.starts_with("-- checkpoint: checkpoint "), "{line}");
    assert!(!plugin.readiness.is_ready());
    let response = plugin.prepare_v1(&[("default", "c", "uid-c")]).await;
    assert!(
        response.claims["uid-c"]
            .error
            .contains("has version 9, this build reads version 1"),
        "{response:?}"
    );
    let unprepare = plugin.unprepare_v1(&[("default", "c", "uid-c")]).await;
    assert!(
        unprepare.claims["uid-c"].error.contains("has version 9"),
        "{unprepare:?}"
    );
    // Periodic recovery keeps the reason current and never moves or writes the file.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let line = checkpoint_readiness(&plugin, |l| l.contains("has version 9")).await;
    assert!(line.starts_with("-- "), "{line}");
    assert_eq!(
        std::fs::read(node.checkpoint_path()).unwrap(),
        b"{\"version\":9,\"checksum\":0,\"data\":{}}"
    );
    assert!(!node.plugin_dir.join("checkpoint.json.corrupt-1").exists());
    assert!(!node.cdi_spec_path("uid-c").exists());

    // The operator moves the file away: the next recovery makes the plugin ready again,
    // without a restart, and the claim prepares.
    std::fs::rename(
        node.checkpoint_path(),
        node.plugin_dir.join("checkpoint.json.v9"),
    )
    .unwrap();
    let line = checkpoint_readiness(&plugin, |l| l.starts_with("ok ")).await;
    assert!(line.contains("recovered: 0 claims prepared"), "{line}");
    let response = plugin.prepare_v1(&[("default", "c", "uid-c")]).await;
    assert_eq!(response.claims["uid-c"].error, "");
    plugin.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cdi_dir_that_cannot_be_written_fails_the_claim_and_undoes_the_mig_instance() {
    let api = MockApiServer::start().await;
    let node = TestNode::new(2);
    api.insert(
        ClaimBuilder::new("default", "c", "uid-c")
            .device("gpu", DRIVER, NODE, "gpu-1-mig-1g10gb-0")
            .build(),
    );
    let plugin = node.start(&api, None).await;
    // Replace the CDI directory by a file: not writable even for root.
    std::fs::remove_dir(&node.cdi_dir).unwrap();
    std::fs::write(&node.cdi_dir, b"").unwrap();
    let response = plugin.prepare_v1(&[("default", "c", "uid-c")]).await;
    let error = &response.claims["uid-c"].error;
    assert!(
        error.starts_with(&format!(
            "CDI spec {}",
            node.cdi_spec_path("uid-c").display()
        )),
        "{error}"
    );
    assert!(
        node.control.snapshot()[&node.inventory.gpus[1].uuid]
            .mig
            .is_empty()
    );
    assert_eq!(node.checkpoint()["data"]["claims"], json!({}));
    assert!(plugin.metrics().contains("kind=\"cdi\"} 1"));
    plugin.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_are_refused_as_a_whole() {
    let api = MockApiServer::start().await;
    let node = TestNode::new(1);
    let plugin = node.start(&api, None).await;
    let mut client = plugin.v1().await;
    let no_uid = client
        .node_prepare_resources(v1::NodePrepareResourcesRequest {
            claims: vec![claim("c", "")],
        })
        .await
        .unwrap_err();
    assert_eq!(no_uid.code(), Code::InvalidArgument);
    assert!(no_uid.message().contains("no UID"), "{no_uid:?}");

    let many: Vec<_> = (0..257).map(|i| claim("c", &format!("uid-{i}"))).collect();
    let too_many = client
        .node_prepare_resources(v1::NodePrepareResourcesRequest { claims: many })
        .await
        .unwrap_err();
    assert_eq!(too_many.code(), Code::InvalidArgument);
    assert_eq!(
        api.requests(),
        0,
        "nothing was fetched for a refused request"
    );

    // A UID that would escape the CDI directory is that claim's error, before any fetch.
    let escape = plugin.prepare_v1(&[("default", "c", "../../etc/x")]).await;
    assert!(
        escape.claims["../../etc/x"]
            .error
            .starts_with("claim uid \"../../etc/x\" is not a valid UID"),
        "{escape:?}"
    );
    assert_eq!(api.requests(), 0);
    plugin.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crafted_namespaces_and_names_are_refused_per_claim_and_never_reach_the_api_server() {
    let api = MockApiServer::start().await;
    let node = TestNode::new(2);
    // The claims a crafted reference would reach if it went into the URL as it is:
    // `namespaces/ns1/resourceclaims/claim-a#/resourceclaims/x` is a GET of ns1/claim-a
    // (the fragment is dropped), and `claim-a?watch=1` a GET of claim-a with a parameter.
    api.insert(
        ClaimBuilder::new("ns1", "claim-a", "uid-a")
            .device("gpu", DRIVER, NODE, "gpu-0")
            .build(),
    );
    api.insert(
        ClaimBuilder::new("default", "claim-a", "uid-w")
            .device("gpu", DRIVER, NODE, "gpu-1-mig-1g10gb-0")
            .build(),
    );
    api.insert(
        ClaimBuilder::new("default", "good", "uid-good")
            .device("gpu", DRIVER, NODE, "gpu-1-mig-1g10gb-1")
            .build(),
    );
    let plugin = node.start(&api, None).await;
    let response = plugin
        .prepare_v1(&[
            ("ns1/resourceclaims/claim-a#", "x", "uid-a"),
            ("default", "claim-a?watch=1", "uid-w"),
            ("default", "good", "uid-good"),
            ("Default", "good", "uid-upper"),
            ("default", "good", "uid/../x"),
        ])
        .await;
    assert_eq!(response.claims.len(), 5, "{response:?}");
    assert_eq!(response.claims["uid-good"].error, "", "{response:?}");
    assert_eq!(response.claims["uid-good"].devices.len(), 1);
    for (uid, expected) in [
        (
            "uid-a",
            "namespace \"ns1/resourceclaims/claim-a#\" is not a valid DNS label",
        ),
        (
            "uid-w",
            "claim name \"claim-a?watch=1\" is not a valid DNS subdomain",
        ),
        (
            "uid-upper",
            "namespace \"Default\" is not a valid DNS label",
        ),
        ("uid/../x", "claim uid \"uid/../x\" is not a valid UID"),
    ] {
        let entry = &response.claims[uid];
        assert!(
            entry.error.starts_with(expected),
            "{uid}: {:?}",
            entry.error
        );
        assert!(entry.devices.is_empty());
    }
    assert_eq!(api.requests(), 1, "only the good claim was read");
    let claims = node.checkpoint()["data"]["claims"].clone();
    assert_eq!(
        claims.as_object().unwrap().keys().collect::<Vec<_>>(),
        vec!["uid-good"]
    );
    assert_eq!(std::fs::read_dir(&node.cdi_dir).unwrap().count(), 1);
    assert!(
        plugin
            .metrics()
            .contains("tessera_plugin_errors_total{operation=\"prepare\",kind=\"invalid_name\"} 4"),
        "{}",
        plugin.metrics()
    );

    // Unprepare refuses the same references the same way, and tears the good one down.
    let gone = plugin
        .unprepare_v1(&[
            ("ns1/resourceclaims/claim-a#", "x", "uid-a"),
            ("default", "good", "uid-good"),
        ])
        .await;
    assert!(
        gone.claims["uid-a"]
            .error
            .contains("is not a valid DNS label"),
        "{gone:?}"
    );
    assert_eq!(gone.claims["uid-good"].error, "");
    assert!(node.control.snapshot().values().all(|g| g.mig.is_empty()));
    plugin.stop().await.unwrap();
}
