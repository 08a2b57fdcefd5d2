//! Publishing against a real API server: a fake profile's slices for a real node are
//! accepted, read back as sent, kept at one generation when unchanged, recreated when deleted
//! behind the publisher's back, and removed afterwards.
//!
//! The node is `TESSERA_E2E_NODE`, or the cluster's first node. Each test uses its own driver
//! name, so it never touches slices of a real driver.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::resource::v1::ResourceSlice;
use kube::api::{Api, DeleteParams, ListParams};
use tessera::admin::Readiness;
use tessera::discovery::FakeProfile;
use tessera::publish::{
    FeatureChoice, FeatureLevel, Publisher, PublisherConfig, READINESS_CONDITION, SliceOptions,
    render,
};
use tokio_util::sync::CancellationToken;

use crate::support::{NODE_VAR, cluster_client};

async fn node_name(client: &kube::Client) -> String {
    if let Ok(name) = std::env::var(NODE_VAR) {
        return name;
    }
    let nodes: Api<Node> = Api::all(client.clone());
    let list = nodes
        .list(&ListParams::default().limit(1))
        .await
        .expect("list nodes");
    list.items
        .first()
        .and_then(|n| n.metadata.name.clone())
        .expect("the cluster has a node")
}

async fn ours(client: &kube::Client, publisher: &Publisher) -> Vec<ResourceSlice> {
    let api: Api<ResourceSlice> = Api::all(client.clone());
    api.list(&ListParams::default().fields(&publisher.field_selector()))
        .await
        .expect("list slices")
        .items
}

fn device_names(slices: &[ResourceSlice]) -> BTreeSet<String> {
    slices
        .iter()
        .flat_map(|s| s.spec.devices.iter().flatten())
        .map(|d| d.name.clone())
        .collect()
}

async fn publish_round_trip(test: &str, driver: &str, features: FeatureChoice) {
    let client = cluster_client(test).await;
    let node = node_name(&client).await;
    let config = PublisherConfig {
        features,
        retry_initial: Duration::from_millis(200),
        retry_max: Duration::from_secs(2),
        ..PublisherConfig::new(node.clone(), driver)
    };
    let publisher = Publisher::new(client.clone(), config.clone());
    // Leftovers of an interrupted earlier run.
    publisher.delete_all().await.expect("clean up before");
    let inventory = FakeProfile::Mixed.inventory(&node);

    let report = publisher.publish_once(&inventory).await.expect("publish");
    println!("{test}: {node} at {} → {:?}", report.level, report.devices);
    let published = ours(&client, &publisher).await;
    assert_eq!(published.len(), report.slices.len());
    let want = render(
        &inventory,
        &SliceOptions {
            node_name: node.clone(),
            driver_name: driver.to_owned(),
            level: report.level,
            share_replicas: 0,
            generation: report.generation,
        },
    )
    .expect("render");
    assert_eq!(device_names(&published), device_names(&want));
    for slice in &published {
        assert_eq!(slice.spec.pool.generation, report.generation);
        assert_eq!(slice.spec.node_name.as_deref(), Some(node.as_str()));
        let owner = slice
            .metadata
            .owner_references
            .as_ref()
            .expect("owned by the Node");
        assert_eq!(owner[0].kind, "Node");
    }
    // What the server stored is what was rendered, device by device.
    for (got, sent) in published.iter().zip(&want) {
        assert_eq!(
            got.spec.devices, sent.spec.devices,
            "{:?}",
            got.metadata.name
        );
        assert_eq!(got.spec.shared_counters, sent.spec.shared_counters);
    }

    let again = publisher.publish_once(&inventory).await.expect("republish");
    assert_eq!(
        (again.generation, again.changed),
        (report.generation, false)
    );

    // The running publisher puts back a slice deleted behind its back.
    let readiness = Readiness::new(&[READINESS_CONDITION]);
    let shutdown = CancellationToken::new();
    let (_tx, rx) = tokio::sync::watch::channel(inventory.clone());
    let runner = tokio::spawn(Publisher::new(client.clone(), config).run(
        rx,
        readiness.clone(),
        shutdown.clone(),
    ));
    for _ in 0..100 {
        if readiness.is_ready() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(readiness.is_ready(), "{}", readiness.report());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let victim = report.slices.last().expect("a slice").clone();
    let api: Api<ResourceSlice> = Api::all(client.clone());
    api.delete(&victim, &DeleteParams::default())
        .await
        .expect("delete");
    let mut back = false;
    for _ in 0..150 {
        if ours(&client, &publisher).await.iter().any(|s| {
            s.metadata.name.as_deref() == Some(victim.as_str())
                && s.metadata.deletion_timestamp.is_none()
        }) {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shutdown.cancel();
    runner.await.expect("publisher task");
    assert!(back, "slice {victim} was not republished");

    let deleted = publisher.delete_all().await.expect("clean up");
    assert_eq!(deleted.len(), report.slices.len());
    assert!(ours(&client, &publisher).await.is_empty());
}

#[tokio::test]
#[ignore = "needs a cluster: TESSERA_E2E_KUBECONFIG=<file> cargo test --test e2e -- --ignored"]
async fn auto_level_slices_are_accepted_read_back_and_kept() {
    publish_round_trip(
        "auto_level_slices_are_accepted_read_back_and_kept",
        "e2e-auto.tessera.dev",
        FeatureChoice::Auto,
    )
    .await;
}

#[tokio::test]
#[ignore = "needs a cluster: TESSERA_E2E_KUBECONFIG=<file> cargo test --test e2e -- --ignored"]
async fn ga_slices_are_accepted_by_every_supported_server() {
    publish_round_trip(
        "ga_slices_are_accepted_by_every_supported_server",
        "e2e-ga.tessera.dev",
        FeatureChoice::Fixed(FeatureLevel::Ga),
    )
    .await;
}
