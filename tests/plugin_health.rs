//! The v1alpha1 DRAResourceHealth stream read over the DRA socket as the kubelet reads it,
//! with the GPUs coming from discovery polling a fake inventory file: every advertised
//! device Healthy at first, a GPU removed from the file turns its devices Unhealthy.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod plugin_support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use plugin_support::{DRIVER, MockApiServer, NODE, TestNode, next_report};
use tessera::discovery::{self, DeviceSource, FakeSource};
use tessera::model::Inventory;
use tessera::plugin::proto::dra_health_v1alpha1::{
    HealthStatus, NodeWatchResourcesRequest, NodeWatchResourcesResponse,
};
use tessera::publish::{FeatureLevel, SliceOptions, render};
use tokio_util::sync::CancellationToken;

/// Device name → (health, message), checking every entry's pool and fields on the way.
fn by_name(response: &NodeWatchResourcesResponse) -> BTreeMap<String, (HealthStatus, String)> {
    let mut out = BTreeMap::new();
    for d in &response.devices {
        let id = d.device.as_ref().expect("device identifier");
        assert_eq!(id.pool_name, NODE);
        assert!(d.last_updated_time > 1_600_000_000, "{d:?}");
        assert_eq!(d.health_check_timeout_seconds, 60);
        assert!(d.message.chars().count() <= 1024);
        let previous = out.insert(id.device_name.clone(), (d.health(), d.message.clone()));
        assert!(previous.is_none(), "{} listed twice", id.device_name);
    }
    out
}

/// Every device name any feature level publishes for `inventory`.
fn published_names(inventory: &Inventory) -> BTreeSet<String> {
    FeatureLevel::ALL
        .iter()
        .flat_map(|&level| {
            let options = SliceOptions {
                driver_name: DRIVER.to_owned(),
                share_replicas: 4,
                ..SliceOptions::new(NODE, level)
            };
            render(inventory, &options).unwrap()
        })
        .flat_map(|s| s.spec.devices.unwrap_or_default())
        .map(|d| d.name)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_device_is_healthy_until_its_gpu_leaves_the_inventory() {
    let api = MockApiServer::start().await;
    let node = TestNode::new(3);
    let file = node.dir.path().join("gpus.yaml");
    std::fs::write(&file, serde_saphyr::to_string(&node.inventory).unwrap()).unwrap();
    let source: Arc<dyn DeviceSource> = Arc::new(FakeSource::from_file(&file).unwrap());
    let stop_discovery = CancellationToken::new();
    let (inventory, discovery_task) =
        discovery::poll(source, Duration::from_millis(50), stop_discovery.clone())
            .await
            .unwrap();
    let plugin = node.start_with(&api, None, inventory).await;
    let mut client = plugin.health().await;
    let mut stream = client
        .node_watch_resources(NodeWatchResourcesRequest {})
        .await
        .unwrap()
        .into_inner();

    // The first report: every advertised device, all Healthy.
    let first = by_name(&next_report(&mut stream).await);
    let names: BTreeSet<String> = first.keys().cloned().collect();
    assert_eq!(names, published_names(&node.inventory));
    for name in [
        "gpu-0",
        "gpu-0-shared",
        "gpu-0-share-3",
        "gpu-1",
        "gpu-1-mig-3g40gb-4",
        "gpu-2-mig-1g10gb-0",
    ] {
        assert!(names.contains(name), "{name} not reported: {names:?}");
    }
    assert!(
        first
            .values()
            .all(|(h, m)| *h == HealthStatus::Healthy && m.is_empty()),
        "{first:?}"
    );

    // GPU 0 falls off the bus: discovery re-reads the file, the stream reports it.
    let mut without_gpu0 = node.inventory.clone();
    without_gpu0.gpus.retain(|g| g.index != 0);
    std::fs::write(&file, serde_saphyr::to_string(&without_gpu0).unwrap()).unwrap();
    let mut changed = None;
    for _ in 0..20 {
        let report = by_name(&next_report(&mut stream).await);
        if report["gpu-0"].0 != HealthStatus::Healthy {
            changed = Some(report);
            break;
        }
    }
    let changed = changed.expect("GPU 0's removal was never reported");
    // Still the complete list: gone devices stay listed, Unhealthy, with the reason.
    assert_eq!(
        changed.keys().cloned().collect::<BTreeSet<_>>(),
        names,
        "a device was dropped from the list"
    );
    for (name, (health, message)) in &changed {
        let on_gpu0 = name == "gpu-0" || name.starts_with("gpu-0-");
        if on_gpu0 {
            assert_eq!(*health, HealthStatus::Unhealthy, "{name}");
            assert!(message.contains("no longer discovered"), "{message}");
        } else {
            assert_eq!(*health, HealthStatus::Healthy, "{name}");
        }
    }

    // A second stream (a kubelet reconnecting) sees the same state at once.
    let mut again = client
        .node_watch_resources(NodeWatchResourcesRequest {})
        .await
        .unwrap()
        .into_inner();
    let reconnected = by_name(&next_report(&mut again).await);
    assert_eq!(reconnected, changed);

    // Shutdown ends open streams instead of waiting on them.
    plugin.stop().await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("the stream ended at shutdown");
    assert!(matches!(ended, Ok(None) | Err(_)), "{ended:?}");
    stop_discovery.cancel();
    discovery_task.await.unwrap();
}
