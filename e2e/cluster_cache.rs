//! The cluster cache against a real API server: it lists every Node, becomes ready, and
//! follows a ResourceClaim being created and deleted.

use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::resource::v1::ResourceClaim;
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use tessera::admin::Readiness;
use tessera::cluster::testing::objects::{Want, claim};
use tessera::cluster::{Cache, CacheConfig, DEFAULT_DRIVER, READINESS_CONDITIONS};
use tokio_util::sync::CancellationToken;

use crate::support::cluster_client;

/// Polls `check` every 100 ms for up to 30 s.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..300 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out after 30 s waiting for {what}");
}

#[tokio::test]
#[ignore = "needs a cluster: TESSERA_E2E_KUBECONFIG=<file> cargo test --test e2e -- --ignored"]
async fn cache_syncs_every_node_and_follows_a_claim() {
    let client = cluster_client("cache_syncs_every_node_and_follows_a_claim").await;
    let readiness = Readiness::new(&READINESS_CONDITIONS);
    let shutdown = CancellationToken::new();
    let config = CacheConfig::builtin(DEFAULT_DRIVER).expect("market data");
    let cache = Cache::start(client.clone(), config, readiness.clone(), shutdown.clone());
    let synced = tokio::time::timeout(Duration::from_secs(60), cache.synced()).await;
    assert_eq!(synced, Ok(true), "{}", readiness.report());
    assert!(readiness.is_ready(), "{}", readiness.report());

    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .expect("list nodes");
    let snapshot = cache.snapshot();
    for node in &nodes.items {
        let name = node.metadata.name.as_deref().expect("named node");
        assert!(
            snapshot.node(name).is_some(),
            "node {name} missing from the cache"
        );
    }
    assert_eq!(snapshot.stats().nodes, nodes.items.len());

    let claims = Api::<ResourceClaim>::namespaced(client, "default");
    let name = format!("tessera-e2e-cache-{}", std::process::id());
    let want = Want {
        class: "gpu.tessera.dev",
        selector: None,
        capacity: &[],
    };
    let mut object = claim("default", &name, "", want);
    object.metadata.uid = None;
    claims
        .create(&PostParams::default(), &object)
        .await
        .expect("create claim");
    eventually("the claim in the cache", || {
        cache.snapshot().claim("default", &name).is_some()
    })
    .await;
    let seen = cache.snapshot();
    let view = seen.claim("default", &name).expect("claim");
    assert!(!view.is_allocated());
    assert_eq!(
        &*view.spec.requests[0].alternatives[0].device_class,
        "gpu.tessera.dev"
    );

    claims
        .delete(&name, &DeleteParams::default())
        .await
        .expect("delete claim");
    eventually("the claim to leave the cache", || {
        cache.snapshot().claim("default", &name).is_none()
    })
    .await;
    shutdown.cancel();
}
