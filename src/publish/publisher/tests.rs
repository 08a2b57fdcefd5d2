//! The publisher against the in-process mock API server.

use std::time::Duration;

use prometheus_client::registry::Registry;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::mock::{GateOff, MockApi};
use super::*;
use crate::admin::Readiness;
use crate::discovery::FakeProfile;

const NODE: &str = "node-1";
const DRIVER: &str = "gpu.tessera.dev";

fn config(features: FeatureChoice) -> PublisherConfig {
    PublisherConfig {
        features,
        retry_initial: Duration::from_millis(10),
        retry_max: Duration::from_millis(50),
        ..PublisherConfig::new(NODE, DRIVER)
    }
}

fn inventory(profile: FakeProfile) -> Inventory {
    profile.inventory(NODE)
}

async fn mock_136() -> MockApi {
    MockApi::start("36", &[(NODE, "node-uid-1")]).await
}

/// Polls `check` every 10 ms for up to 10 s.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn the_first_publish_applies_every_slice_owned_by_the_node() {
    let api = mock_136().await;
    let publisher = Publisher::new(api.client(), config(FeatureChoice::Auto));
    let report = publisher
        .publish_once(&inventory(FakeProfile::H100x8MigDynamic))
        .await
        .unwrap();
    assert_eq!(report.level, FeatureLevel::Consumable, "1.36 → consumable");
    assert_eq!((report.generation, report.changed), (1, true));
    // Counters, whole and shared GPUs, then one slice per GPU's placements.
    assert_eq!(report.slices.len(), 10);
    assert_eq!(report.devices["mig"], 200);

    let applies: Vec<_> = api
        .seen()
        .into_iter()
        .filter(|s| s.method == "APPLY")
        .collect();
    assert_eq!(applies.len(), 10);
    assert!(
        applies[0].name.as_ref().unwrap().ends_with("-counters-000"),
        "counters first"
    );
    for apply in &applies {
        assert_eq!(
            apply.query.get("fieldManager").map(String::as_str),
            Some(FIELD_MANAGER)
        );
        assert_eq!(apply.query.get("force").map(String::as_str), Some("true"));
        let body = apply.body.as_ref().unwrap();
        assert_eq!(body["kind"], "ResourceSlice");
        assert_eq!(body["spec"]["pool"]["generation"], 1);
        assert_eq!(body["spec"]["pool"]["resourceSliceCount"], 10);
        assert_eq!(
            body["metadata"]["ownerReferences"],
            json!([{"apiVersion": "v1", "kind": "Node", "name": NODE, "uid": "node-uid-1"}])
        );
    }
    assert_eq!(api.slices().len(), 10);
    let list = api.seen().into_iter().find(|s| s.method == "LIST").unwrap();
    assert_eq!(
        list.query.get("fieldSelector").map(String::as_str),
        Some("spec.nodeName=node-1,spec.driver=gpu.tessera.dev")
    );
}

#[tokio::test]
async fn the_generation_moves_only_when_the_content_changes() {
    let api = mock_136().await;
    let publisher = Publisher::new(api.client(), config(FeatureChoice::Fixed(FeatureLevel::Ga)));
    let mut inv = inventory(FakeProfile::H100x8);
    let first = publisher.publish_once(&inv).await.unwrap();
    let again = publisher.publish_once(&inv).await.unwrap();
    assert_eq!((again.generation, again.changed), (first.generation, false));

    inv.gpus.pop();
    let third = publisher.publish_once(&inv).await.unwrap();
    assert_eq!(
        (third.generation, third.changed),
        (first.generation + 1, true)
    );
    for slice in api.slices().values() {
        assert_eq!(slice["spec"]["pool"]["generation"], third.generation);
    }
    assert_eq!(third.devices["gpu"], 7);
}

#[tokio::test]
async fn stale_slices_of_this_node_and_driver_are_deleted_and_others_kept() {
    let api = mock_136().await;
    let foreign = |name: &str, node: &str, driver: &str| {
        json!({
            "apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice",
            "metadata": {"name": name},
            "spec": {"driver": driver, "nodeName": node,
                     "pool": {"name": node, "generation": 7, "resourceSliceCount": 1}, "devices": []},
        })
    };
    api.insert(foreign("leftover", NODE, DRIVER));
    api.insert(foreign("other-driver", NODE, "nic.example.com"));
    api.insert(foreign("other-node", "node-2", DRIVER));
    let publisher = Publisher::new(api.client(), config(FeatureChoice::Auto));
    let report = publisher
        .publish_once(&inventory(FakeProfile::Mixed))
        .await
        .unwrap();
    assert_eq!(report.deleted, ["leftover"]);
    assert_eq!(
        report.generation, 8,
        "above the highest generation already there"
    );

    // Fewer slices at a lower level: the counters slice goes, and so does GPU 3's slice of
    // dynamic placements (without counters it is published whole).
    let publisher = Publisher::new(api.client(), config(FeatureChoice::Fixed(FeatureLevel::Ga)));
    let report = publisher
        .publish_once(&inventory(FakeProfile::Mixed))
        .await
        .unwrap();
    assert_eq!(report.deleted.len(), 2, "{:?}", report.deleted);
    assert!(report.deleted.iter().any(|d| d.ends_with("-counters-000")));
    assert!(report.deleted.iter().any(|d| d.ends_with("-devices-001")));
    let names: Vec<_> = api.slices().into_keys().collect();
    assert!(names.contains(&"other-driver".to_owned()) && names.contains(&"other-node".to_owned()));
    assert_eq!(names.len(), 3);
}

#[tokio::test]
async fn auto_reads_the_server_version() {
    for (minor, want) in [
        ("34", FeatureLevel::Ga),
        ("35", FeatureLevel::Ga),
        ("36", FeatureLevel::Consumable),
    ] {
        let api = MockApi::start(minor, &[(NODE, "u")]).await;
        let publisher = Publisher::new(api.client(), config(FeatureChoice::Auto));
        assert_eq!(publisher.level().await.unwrap(), want, "1.{minor}");
        let report = publisher
            .publish_once(&inventory(FakeProfile::Mixed))
            .await
            .unwrap();
        assert_eq!(report.level, want);
    }
    let api = MockApi::start("33", &[]).await;
    let publisher = Publisher::new(api.client(), config(FeatureChoice::Auto));
    let err = publisher
        .publish_once(&inventory(FakeProfile::H100x8))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("needs 1.34 or later"), "{err}");
}

#[tokio::test]
async fn a_server_that_drops_counters_makes_auto_step_down() {
    let api = mock_136().await;
    api.gate_off(Some(GateOff::Partitionable));
    let publisher = Publisher::new(api.client(), config(FeatureChoice::Auto));
    let inv = inventory(FakeProfile::H100x8MigDynamic);
    let err = publisher.publish_once(&inv).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("dropped sharedCounters") && text.contains("DRAPartitionableDevices"),
        "{text}"
    );
    assert!(text.contains("stepping down to --features ga"), "{text}");
    // Nothing with overlapping devices reached the server: the counters slice is first.
    assert_eq!(api.seen().iter().filter(|s| s.method == "APPLY").count(), 1);

    let report = publisher.publish_once(&inv).await.unwrap();
    assert_eq!(report.level, FeatureLevel::Ga);
    assert_eq!(report.devices["gpu"], 8);
    assert_eq!(report.devices["mig"], 0);
    assert!(report.deleted.iter().any(|d| d.ends_with("-counters-000")));
}

#[tokio::test]
async fn a_server_without_consumable_capacity_keeps_counters() {
    let api = mock_136().await;
    api.gate_off(Some(GateOff::Consumable));
    let publisher = Publisher::new(api.client(), config(FeatureChoice::Auto));
    let inv = inventory(FakeProfile::H100x8MigDynamic);
    let err = publisher.publish_once(&inv).await.unwrap_err();
    assert!(err.to_string().contains("DRAConsumableCapacity"), "{err}");
    let report = publisher.publish_once(&inv).await.unwrap();
    assert_eq!(report.level, FeatureLevel::Partitionable);
    assert_eq!(report.devices["shared"], 0);
    assert_eq!(report.devices["mig"], 200);
}

#[tokio::test]
async fn a_fixed_level_the_server_cannot_keep_is_an_error_that_says_what_to_do() {
    let api = mock_136().await;
    api.gate_off(Some(GateOff::Partitionable));
    let publisher = Publisher::new(
        api.client(),
        config(FeatureChoice::Fixed(FeatureLevel::Partitionable)),
    );
    let inv = inventory(FakeProfile::Mixed);
    for _ in 0..2 {
        let err = publisher.publish_once(&inv).await.unwrap_err();
        assert!(
            err.to_string().contains("use a lower --features level"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn an_unreachable_api_server_is_a_clear_error() {
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client =
        kube::Client::try_from(kube::Config::new(format!("http://{addr}").parse().unwrap()))
            .unwrap();
    let publisher = Publisher::new(
        client.clone(),
        config(FeatureChoice::Fixed(FeatureLevel::Ga)),
    );
    let err = publisher
        .publish_once(&inventory(FakeProfile::H100x8))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot list the ResourceSlices of node node-1"),
        "{err}"
    );
    assert_eq!(err.metric_label(), "list");
    let publisher = Publisher::new(client, config(FeatureChoice::Auto));
    let err = publisher
        .publish_once(&inventory(FakeProfile::H100x8))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot read the API server version"),
        "{err}"
    );
}

#[tokio::test]
async fn a_missing_node_publishes_without_an_owner() {
    let api = MockApi::start("36", &[]).await;
    let publisher = Publisher::new(api.client(), config(FeatureChoice::Fixed(FeatureLevel::Ga)));
    publisher
        .publish_once(&inventory(FakeProfile::L4x4))
        .await
        .unwrap();
    let slice = api.slices().into_values().next().unwrap();
    assert!(
        slice["metadata"].get("ownerReferences").is_none(),
        "{slice}"
    );
}

#[tokio::test]
async fn run_retries_with_backoff_until_the_server_answers() {
    let api = mock_136().await;
    api.fail_next("VERSION", 3);
    let mut registry = Registry::default();
    let metrics = PublishMetrics::register(&mut registry);
    let publisher = Publisher::new(api.client(), config(FeatureChoice::Auto)).with_metrics(metrics);
    let readiness = Readiness::new(&[READINESS_CONDITION]);
    let shutdown = CancellationToken::new();
    let (_tx, rx) = tokio::sync::watch::channel(inventory(FakeProfile::Mixed));
    let task = tokio::spawn(publisher.run(rx, readiness.clone(), shutdown.clone()));

    eventually("readiness", || readiness.is_ready()).await;
    assert!(
        readiness
            .report()
            .contains("ok slices_published: generation 1 in 3 slice(s)"),
        "{}",
        readiness.report()
    );
    let text = crate::metrics::encode(&registry).unwrap();
    assert!(
        text.contains("tessera_plugin_publishes_total{result=\"ok\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("tessera_plugin_publishes_total{result=\"version\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("tessera_plugin_devices_advertised{type=\"mig\"} 29"),
        "{text}"
    );
    assert!(
        text.contains("tessera_plugin_devices_advertised{type=\"share\"} 0"),
        "{text}"
    );
    assert!(text.contains("tessera_plugin_pool_generation 1"), "{text}");

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn run_republishes_deleted_slices_and_new_inventories() {
    let api = mock_136().await;
    let publisher = Publisher::new(api.client(), config(FeatureChoice::Auto));
    let readiness = Readiness::new(&[READINESS_CONDITION]);
    let shutdown = CancellationToken::new();
    let (tx, rx) = tokio::sync::watch::channel(inventory(FakeProfile::H100x8));
    let task = tokio::spawn(publisher.run(rx, readiness.clone(), shutdown.clone()));
    eventually("first publish", || readiness.is_ready()).await;
    let names: Vec<String> = api.slices().into_keys().collect();
    assert_eq!(names.len(), 2);
    // Let the watch connect before deleting behind the publisher's back.
    eventually("watch", || api.seen().iter().any(|s| s.method == "WATCH")).await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    // The kubelet wipes the node's slices.
    for name in &names {
        api.delete_behind_back(name);
    }
    eventually("slices back", || api.slices().len() == 2).await;

    // A GPU disappears: the generation moves.
    let mut inv = inventory(FakeProfile::H100x8);
    inv.gpus.truncate(4);
    tx.send(inv).unwrap();
    eventually("new generation", || {
        let slices = api.slices();
        slices.len() == 2
            && slices
                .values()
                .all(|s| s["spec"]["pool"]["generation"].as_i64() >= Some(2))
            && slices.values().any(|s| {
                s["spec"]["devices"]
                    .as_array()
                    .is_some_and(|d| d.len() == 8)
            })
    })
    .await;

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
}

#[test]
fn backoff_grows_to_the_cap_with_bounded_jitter() {
    let config = PublisherConfig {
        retry_initial: Duration::from_secs(1),
        retry_max: Duration::from_secs(60),
        ..PublisherConfig::new(NODE, DRIVER)
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = rt.block_on(async {
        kube::Client::try_from(kube::Config::new("http://127.0.0.1:1".parse().unwrap())).unwrap()
    });
    let publisher = Publisher::new(client, config);
    let secs = |n| publisher.backoff(n).as_secs_f64();
    assert!((0.8..=1.2).contains(&secs(1)));
    assert!((1.6..=2.4).contains(&secs(2)));
    assert!((48.0..=72.0).contains(&secs(10)));
    assert!((48.0..=72.0).contains(&secs(u32::MAX)));
}

#[tokio::test]
async fn shutdown_interrupts_a_hanging_publish() {
    // Accepts connections (the kernel's backlog) but never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let client =
        kube::Client::try_from(kube::Config::new(format!("http://{addr}").parse().unwrap()))
            .unwrap();
    let publisher = Publisher::new(client, config(FeatureChoice::Auto));
    let readiness = Readiness::new(&[READINESS_CONDITION]);
    let shutdown = CancellationToken::new();
    let (_tx, rx) = tokio::sync::watch::channel(inventory(FakeProfile::H100x8));
    let task = tokio::spawn(publisher.run(rx, readiness.clone(), shutdown.clone()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!readiness.is_ready());
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .unwrap()
        .unwrap();
    drop(silent);
}
