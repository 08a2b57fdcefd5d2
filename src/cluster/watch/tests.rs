use futures::channel::mpsc::{UnboundedSender, unbounded};

use super::*;
use crate::cluster::DEFAULT_DRIVER;
use crate::cluster::testing::objects::{node, pod};

type Feed = UnboundedSender<Result<ClusterEvent, ClusterError>>;

/// A cache fed by four hand-driven sources.
fn cache() -> (Cache, Readiness, [Feed; 4], CancellationToken) {
    let readiness = Readiness::new(&READINESS_CONDITIONS);
    let shutdown = CancellationToken::new();
    let mut feeds = Vec::new();
    let mut sources = Vec::new();
    for kind in Kind::ALL {
        let (tx, rx) = unbounded();
        feeds.push(tx);
        sources.push(WatchSource::new(kind, rx));
    }
    let config = CacheConfig::builtin(DEFAULT_DRIVER).unwrap();
    let cache = Cache::start_with(sources, config, readiness.clone(), shutdown.clone());
    let feeds: [Feed; 4] = feeds.try_into().unwrap();
    (cache, readiness, feeds, shutdown)
}

fn send(feed: &Feed, item: Result<ClusterEvent, ClusterError>) {
    feed.unbounded_send(item).unwrap();
}

fn initial_list(feed: &Feed, kind: Kind, objects: Vec<ClusterObject>) {
    send(feed, Ok(ClusterEvent::ResyncStarted(kind)));
    for o in objects {
        send(feed, Ok(ClusterEvent::Applied(o)));
    }
    send(feed, Ok(ClusterEvent::ResyncDone(kind)));
}

/// Polls `check` until it holds (the store task runs concurrently).
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..500 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn ready_only_once_every_watcher_has_listed() {
    let (cache, readiness, feeds, _shutdown) = cache();
    assert!(!readiness.is_ready());
    initial_list(&feeds[0], Kind::Node, vec![node("n1", &[]).into()]);
    initial_list(&feeds[1], Kind::ResourceSlice, vec![]);
    initial_list(&feeds[2], Kind::ResourceClaim, vec![]);
    send(&feeds[3], Ok(ClusterEvent::ResyncStarted(Kind::Pod)));
    eventually("three watchers synced", || {
        cache.health().iter().filter(|h| h.synced).count() == 3
    })
    .await;
    assert!(!readiness.is_ready());
    assert!(!cache.is_synced());
    let report = readiness.report();
    assert!(
        report.contains("-- cluster-cache-pods: initial list in progress"),
        "{report}"
    );
    assert!(
        report.contains("ok cluster-cache-nodes: synced, watching"),
        "{report}"
    );

    send(
        &feeds[3],
        Ok(ClusterEvent::Applied(
            pod("ns", "p", "u", Some("n1"), &[], 1).into(),
        )),
    );
    send(&feeds[3], Ok(ClusterEvent::ResyncDone(Kind::Pod)));
    assert!(
        tokio::time::timeout(Duration::from_secs(5), cache.synced())
            .await
            .unwrap()
    );
    assert!(readiness.is_ready());
    let snapshot = cache.snapshot();
    assert_eq!(snapshot.node("n1").unwrap().classic.requested, 1);
    assert!(snapshot.pod("ns", "p").is_some());
}

#[tokio::test]
async fn a_failing_watch_keeps_serving_and_reports_staleness() {
    let (cache, readiness, feeds, _shutdown) = cache();
    initial_list(&feeds[0], Kind::Node, vec![node("n1", &[]).into()]);
    for (feed, kind) in feeds.iter().zip(Kind::ALL).skip(1) {
        initial_list(feed, kind, vec![]);
    }
    assert!(
        tokio::time::timeout(Duration::from_secs(5), cache.synced())
            .await
            .unwrap()
    );
    let error = ClusterError::Watch {
        kind: "nodes",
        message: "connection refused".into(),
    };
    send(&feeds[0], Err(error));
    eventually("the error to be seen", || cache.health()[0].errors == 1).await;
    let health = &cache.health()[0];
    assert!(health.synced && health.stale_for.is_some());
    assert_eq!(
        health.last_error.as_deref(),
        Some("watch of nodes failed: connection refused")
    );
    assert!(
        readiness.is_ready(),
        "an outage does not take the extender out of service"
    );
    let report = readiness.report();
    assert!(
        report.contains("ok cluster-cache-nodes: synced, serving cached data that may be stale"),
        "{report}"
    );
    assert!(cache.snapshot().node("n1").is_some());

    // Recovery: the relist clears the failure.
    initial_list(
        &feeds[0],
        Kind::Node,
        vec![node("n1", &[]).into(), node("n2", &[]).into()],
    );
    eventually("the relist", || cache.snapshot().node("n2").is_some()).await;
    assert_eq!(cache.health()[0].stale_for, None);
}

#[tokio::test]
async fn metrics_report_sizes_and_watcher_health() {
    let (cache, _readiness, feeds, _shutdown) = cache();
    let mut registry = Registry::default();
    cache.register_metrics(&mut registry);
    initial_list(
        &feeds[0],
        Kind::Node,
        vec![node("n1", &[]).into(), node("n2", &[]).into()],
    );
    for (feed, kind) in feeds.iter().zip(Kind::ALL).skip(1) {
        initial_list(feed, kind, vec![]);
    }
    assert!(
        tokio::time::timeout(Duration::from_secs(5), cache.synced())
            .await
            .unwrap()
    );
    eventually("metrics", || {
        crate::metrics::encode(&registry)
            .unwrap()
            .contains("tessera_cluster_cache_objects{kind=\"nodes\"} 2")
    })
    .await;
    let text = crate::metrics::encode(&registry).unwrap();
    for want in [
        "tessera_cluster_watch_synced{watcher=\"pods\"} 1",
        "tessera_cluster_watch_events_total{watcher=\"nodes\"} 4",
        "tessera_cluster_watch_stale_seconds{watcher=\"nodes\"} 0",
        "tessera_cluster_cache_age_seconds",
        "tessera_cluster_watch_last_event_age_seconds{watcher=\"resourceclaims\"}",
    ] {
        assert!(text.contains(want), "{want} missing in\n{text}");
    }
}

#[tokio::test]
async fn snapshots_stay_readable_after_shutdown() {
    let (cache, _readiness, feeds, shutdown) = cache();
    initial_list(&feeds[0], Kind::Node, vec![node("n1", &[]).into()]);
    eventually("the node", || cache.snapshot().node("n1").is_some()).await;
    shutdown.cancel();
    let mut rx = cache.subscribe();
    let stopped = tokio::time::timeout(Duration::from_secs(5), async {
        while rx.changed().await.is_ok() {}
    })
    .await;
    assert!(stopped.is_ok(), "the store task ends on shutdown");
    assert!(cache.snapshot().node("n1").is_some());
}

#[tokio::test]
async fn synced_wakes_up_even_when_the_last_list_is_empty() {
    let (cache, readiness, feeds, _shutdown) = cache();
    for (feed, kind) in feeds.iter().zip(Kind::ALL) {
        initial_list(feed, kind, vec![]);
    }
    assert!(
        tokio::time::timeout(Duration::from_secs(5), cache.synced())
            .await
            .unwrap()
    );
    assert!(cache.is_synced());
    assert!(readiness.is_ready(), "{}", readiness.report());
    assert_eq!(cache.snapshot().stats().nodes, 0);
}
