use futures::channel::mpsc::{UnboundedSender, unbounded};

use super::*;
use crate::admin::Readiness;
use crate::cluster::testing::objects::{pod, request_resources};
use crate::cluster::testing::synthetic_cluster;
use crate::cluster::{
    CacheConfig, ClusterError, ClusterEvent, ClusterObject, Kind, READINESS_CONDITIONS, WatchSource,
};
use crate::extender::demand::DeviceClasses;
use crate::extender::evaluate::default_typical_pods;
use crate::extender::testing::DRIVER;
use crate::extender::typical::TypicalKind;
use crate::scoring::{OnlineWindow, Weights};

type Feed = UnboundedSender<Result<ClusterEvent, ClusterError>>;

fn send(feed: &Feed, event: ClusterEvent) {
    feed.unbounded_send(Ok(event)).unwrap();
}

fn gpu_pod(i: u32, node: &str) -> ClusterObject {
    let mut p = pod(
        "ml",
        &format!("p{i}"),
        &format!("uid-{i}"),
        Some(node),
        &[],
        2,
    );
    request_resources(&mut p, &[("cpu", "16")]);
    ClusterObject::Pod(Box::new(p))
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..800 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_feeds_the_learner_and_scoring_sees_each_new_generation() {
    let shutdown = CancellationToken::new();
    let mut feeds = Vec::new();
    let mut sources = Vec::new();
    for kind in Kind::ALL {
        let (tx, rx) = unbounded();
        feeds.push(tx);
        sources.push(WatchSource::new(kind, rx));
    }
    let config = CacheConfig::builtin(DRIVER).unwrap();
    let cache = Cache::start_with(
        sources,
        config,
        Readiness::new(&READINESS_CONDITIONS),
        shutdown.clone(),
    );
    let cluster = synthetic_cluster(2, 8, 0, 3);
    let node = cluster.node_name(0);
    for (feed, kind) in feeds.iter().zip(Kind::ALL) {
        send(feed, ClusterEvent::ResyncStarted(kind));
        for o in cluster.objects().filter(|o| o.kind() == kind) {
            send(feed, ClusterEvent::Applied(o));
        }
        if kind == Kind::Pod {
            for i in 0..3 {
                send(feed, ClusterEvent::Applied(gpu_pod(i, &node)));
            }
        }
        send(feed, ClusterEvent::ResyncDone(kind));
    }

    let learner = TypicalLearner::new(
        &default_typical_pods().unwrap(),
        OnlineWindow {
            half_life_pods: 10.0,
            max_shapes: 64,
            prior_pods: 10.0,
        },
        Weights::default().fragmentation,
        DeviceClasses::new(DRIVER),
        1000,
    )
    .unwrap();
    let handle = TypicalHandle::new(learner.prior_model());
    let mut registry = Registry::default();
    let metrics = TypicalMetrics::register(&mut registry);
    let refresh = Refresh {
        pods: 2,
        interval: Duration::from_secs(3600),
    };
    let task = tokio::spawn(run(
        learner,
        cache.clone(),
        handle.clone(),
        refresh,
        metrics,
        shutdown.clone(),
    ));

    // The first list is learned and published at once.
    eventually("generation 1", || handle.load().generation() == 1).await;
    let first = handle.load();
    assert_eq!(first.kind(), TypicalKind::Online);
    assert_eq!(first.stats().observed_pods, 3);

    // A pod already seen, re-sent, counts nothing; two new ones make the next model.
    send(&feeds[3], ClusterEvent::Applied(gpu_pod(0, &node)));
    send(&feeds[3], ClusterEvent::Applied(gpu_pod(3, &node)));
    send(&feeds[3], ClusterEvent::Applied(gpu_pod(4, &node)));
    eventually("generation 2", || handle.load().generation() == 2).await;
    assert_eq!(handle.load().stats().observed_pods, 5);
    let text = crate::metrics::encode(&registry).unwrap();
    for line in [
        "tessera_extender_typical_pods_observed_total 5",
        "tessera_extender_typical_generation 2",
        "tessera_extender_typical_seen_pods 5",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
}
