//! The task that feeds the learner from the running cluster cache and publishes its models,
//! and the metrics it keeps.
//!
//! It waits for the cache's first full list (so that a restart replays every running pod in
//! creation order at once), then scans each new snapshot at most once per [`SCAN_EVERY`].
//! Scans and model builds run on the blocking pool: a scan walks every cached pod, a build
//! solves the share prices; neither belongs on the runtime's workers.

use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::learner::{Refresh, ScanReport, TypicalLearner};
use super::{TypicalHandle, TypicalModel};
use crate::cluster::Cache;

/// Fewest time between two scans: snapshots are published up to ten times a second.
pub const SCAN_EVERY: Duration = Duration::from_secs(1);

/// A float gauge.
type FloatGauge = Gauge<f64, AtomicU64>;

/// Metrics of the typical-pod learner, under `tessera_extender_typical_`.
#[derive(Debug, Clone, Default)]
pub struct TypicalMetrics {
    observed: Counter,
    skipped: Family<SkipLabels, Counter>,
    shapes: Gauge,
    prior_share: FloatGauge,
    generation: Gauge,
    age: FloatGauge,
    seen: Gauge,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, prometheus_client::encoding::EncodeLabelSet)]
struct SkipLabels {
    reason: &'static str,
}

impl TypicalMetrics {
    /// Registers the learner's metrics in `registry` under `tessera_extender_typical`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = TypicalMetrics::default();
        let r = registry.sub_registry_with_prefix("tessera_extender_typical");
        r.register(
            "pods_observed",
            "Pods counted into the learned typical-pod tally since the start",
            metrics.observed.clone(),
        );
        r.register(
            "pods_skipped",
            "Pods not learned, by reason (no_gpu, unshaped, over_bound)",
            metrics.skipped.clone(),
        );
        r.register(
            "shapes",
            "Distinct pod shapes in the learned tally (at most --typical-max-shapes)",
            metrics.shapes.clone(),
        );
        r.register(
            "prior_share",
            "Share of the learned tally still held by the bundled prior (1 at start)",
            metrics.prior_share.clone(),
        );
        r.register(
            "generation",
            "Generation of the typical-pod model scoring uses (0: the start-up model)",
            metrics.generation.clone(),
        );
        r.register(
            "snapshot_age_seconds",
            "Time since the typical-pod model scoring uses was published",
            metrics.age.clone(),
        );
        r.register(
            "seen_pods",
            "Pod UIDs the learner remembers (pods still in the cache)",
            metrics.seen.clone(),
        );
        metrics
    }

    fn record_scan(&self, report: &ScanReport, learner: &TypicalLearner) {
        self.observed.inc_by(report.observed);
        for (reason, count) in [
            ("no_gpu", report.no_gpu),
            ("unshaped", report.unshaped),
            ("over_bound", report.over_bound),
        ] {
            if count > 0 {
                self.skipped
                    .get_or_create(&SkipLabels { reason })
                    .inc_by(count);
            }
        }
        let stats = learner.stats();
        self.shapes
            .set(i64::try_from(stats.shapes).unwrap_or(i64::MAX));
        self.prior_share.set(stats.prior_share);
        self.seen
            .set(i64::try_from(learner.seen()).unwrap_or(i64::MAX));
    }

    fn record_model(&self, model: &TypicalModel) {
        self.generation
            .set(i64::try_from(model.generation()).unwrap_or(i64::MAX));
        self.age.set(0.0);
    }
}

/// Feeds `learner` from `cache` and publishes its models through `handle` until `shutdown`.
/// Publishes the prior as generation 0 first.
pub async fn run(
    mut learner: TypicalLearner,
    cache: Cache,
    handle: TypicalHandle,
    refresh: Refresh,
    metrics: TypicalMetrics,
    shutdown: CancellationToken,
) {
    let prior = learner.prior_model();
    metrics.record_model(&prior);
    metrics.prior_share.set(prior.stats().prior_share);
    handle.publish(prior);
    tokio::select! {
        _ = shutdown.cancelled() => return,
        synced = cache.synced() => if !synced { return },
    }
    let mut snapshots = cache.subscribe();
    let mut published = Instant::now();
    let mut last_version = None;
    let mut ticker = tokio::time::interval(SCAN_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        metrics.age.set(published.elapsed().as_secs_f64());
        let snapshot = snapshots.borrow_and_update().clone();
        let since_last = published.elapsed();
        let changed = last_version != Some(snapshot.version());
        // Nothing new to read, but pods observed earlier may have waited long enough.
        if !changed && !learner.publish_due(since_last, refresh) {
            continue;
        }
        last_version = Some(snapshot.version());
        let work = tokio::task::spawn_blocking(move || {
            let report = if changed {
                learner.scan(&snapshot)
            } else {
                ScanReport::default()
            };
            let model = learner
                .publish_due(since_last, refresh)
                .then(|| learner.model(&snapshot));
            (learner, report, model)
        });
        let (returned, report, model) = match work.await {
            Ok(done) => done,
            Err(e) => {
                // The learner went with the panicked task; scoring keeps the last model.
                warn!(error = %e, "typical-pod learner stopped; scoring keeps the last model");
                return;
            }
        };
        learner = returned;
        metrics.record_scan(&report, &learner);
        if report != ScanReport::default() {
            debug!(
                observed = report.observed,
                waiting = report.waiting,
                no_gpu = report.no_gpu,
                unshaped = report.unshaped,
                over_bound = report.over_bound,
                forgotten = report.forgotten,
                "typical-pod scan"
            );
        }
        if let Some(model) = model {
            let stats = model.stats();
            info!(
                generation = model.generation(),
                observed_pods = stats.observed_pods,
                shapes = stats.shapes,
                typical_shapes = model.typical().len(),
                prior_share = stats.prior_share,
                "typical pods learned"
            );
            metrics.record_model(&model);
            handle.publish(model);
            published = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests;
