//! `/explain` of a pod that holds devices lists them at the price the cost attribution
//! gauges give them (the numbers a dashboard shows), on the node the pod is bound to; a
//! pending pod holds nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use tessera::cluster::CacheConfig;
use tessera::cluster::testing::synthetic_cluster;
use tessera::extender::Decider;
use tessera::extender::cluster_view::MemoScoring;
use tessera::extender::demand::DeviceClasses;
use tessera::extender::evaluate::{Scoring, default_typical_pods};
use tessera::extender::testing::{DRIVER, FixedView};
use tessera::scoring::Weights;

#[test]
fn explain_prices_what_a_bound_pod_holds_as_the_attribution_gauges_do() {
    let config = CacheConfig::builtin(DRIVER).unwrap();
    let snapshot = synthetic_cluster(40, 8, 200, 5)
        .with_pending_pods(3)
        .snapshot(config.clone());
    let decider = Decider::new(
        FixedView::new(snapshot.clone()),
        MemoScoring::new(Scoring::new(
            Weights::default(),
            default_typical_pods().unwrap(),
        )),
        DeviceClasses::new(DRIVER),
        config.catalog,
        config.advisor,
    );
    let attribution = decider.attribute();

    let mut bound: Vec<_> = snapshot
        .pods()
        .filter(|p| p.node.is_some() && !p.claims.is_empty())
        .collect();
    bound.sort_by(|a, b| a.key.as_str().cmp(b.key.as_str()));
    assert!(bound.len() >= 10);
    let mut compared = 0;
    for pod in bound.iter().take(25) {
        let (namespace, name) = (pod.key.namespace(), pod.key.name());
        let explained = decider.explain(namespace, name, 5).unwrap();
        let mut got: Vec<(String, String, String, f64)> = explained
            .allocated
            .iter()
            .map(|a| {
                assert_eq!(Some(a.node.as_str()), pod.node.as_deref());
                (
                    a.claim.clone(),
                    a.device.clone(),
                    a.kind.clone(),
                    a.hourly_cost_usd,
                )
            })
            .collect();
        let mut want: Vec<(String, String, String, f64)> = attribution
            .allocations
            .iter()
            .filter(|(l, _)| l.namespace == namespace && l.pod == name)
            .map(|(l, cost)| {
                (
                    l.claim.clone(),
                    l.device.clone(),
                    l.kind.r#type.clone(),
                    *cost,
                )
            })
            .collect();
        got.sort_by(|a, b| a.partial_cmp(b).unwrap());
        want.sort_by(|a, b| a.partial_cmp(b).unwrap());
        assert_eq!(got, want, "{}", pod.key);
        assert!(!got.is_empty(), "{} holds devices", pod.key);
        assert!(got.iter().all(|(_, _, _, cost)| *cost > 0.0));
        compared += got.len();
    }
    assert!(compared >= 25);

    let pending = snapshot.pods().find(|p| p.node.is_none()).unwrap();
    let explained = decider
        .explain(pending.key.namespace(), pending.key.name(), 5)
        .unwrap();
    assert!(explained.allocated.is_empty());
    assert_eq!(explained.outcome, "scored");
}
