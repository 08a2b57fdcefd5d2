//! The cache's Prometheus metrics: what it holds, how old the served view is, and how each
//! watcher is doing.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::health::WatcherHealth;
use super::snapshot::CacheStats;
use super::store::Kind;

/// Label of the object counts.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ObjectLabels {
    kind: &'static str,
}

/// Label of the per-watcher series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WatcherLabels {
    watcher: &'static str,
}

/// The cache's metrics; clones share the same series.
#[derive(Debug, Clone, Default)]
pub struct CacheMetrics {
    objects: Family<ObjectLabels, Gauge>,
    snapshot_age: Gauge<f64, AtomicU64>,
    synced: Family<WatcherLabels, Gauge>,
    last_event_age: Family<WatcherLabels, Gauge<f64, AtomicU64>>,
    stale: Family<WatcherLabels, Gauge<f64, AtomicU64>>,
    events: Family<WatcherLabels, Counter>,
    errors: Family<WatcherLabels, Counter>,
}

impl CacheMetrics {
    /// Registers every series under `tessera_cluster_`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("tessera_cluster");
        r.register(
            "cache_objects",
            "Objects in the served cache view, by kind (nodes, devices, allocations, resourceclaims, pods)",
            self.objects.clone(),
        );
        r.register(
            "cache_age_seconds",
            "Seconds since the served cache view was last replaced by a newer one",
            self.snapshot_age.clone(),
        );
        r.register(
            "watch_synced",
            "1 once the watcher's initial list has completed",
            self.synced.clone(),
        );
        r.register(
            "watch_last_event_age_seconds",
            "Seconds since the watcher last delivered an event (a quiet healthy watch grows too)",
            self.last_event_age.clone(),
        );
        r.register(
            "watch_stale_seconds",
            "Seconds the watcher has been failing (0 when healthy): changes since may be missing",
            self.stale.clone(),
        );
        r.register("watch_events", "Watch events applied", self.events.clone());
        r.register(
            "watch_errors",
            "Watch errors (each retried after a back-off)",
            self.errors.clone(),
        );
    }

    pub(crate) fn set_stats(&self, stats: CacheStats) {
        for (kind, value) in [
            ("nodes", stats.nodes),
            ("devices", stats.devices),
            ("allocations", stats.allocations),
            ("resourceclaims", stats.claims),
            ("pods", stats.pods),
        ] {
            self.objects
                .get_or_create(&ObjectLabels { kind })
                .set(i64::try_from(value).unwrap_or(i64::MAX));
        }
    }

    pub(crate) fn set_snapshot_age(&self, seconds: f64) {
        self.snapshot_age.set(seconds);
    }

    pub(crate) fn event(&self, kind: Kind) {
        self.events.get_or_create(&labels(kind)).inc();
    }

    pub(crate) fn error(&self, kind: Kind) {
        self.errors.get_or_create(&labels(kind)).inc();
    }

    pub(crate) fn set_health(&self, health: &WatcherHealth) {
        let l = labels(health.kind);
        self.synced.get_or_create(&l).set(i64::from(health.synced));
        self.last_event_age
            .get_or_create(&l)
            .set(health.last_event_age.map_or(0.0, |d| d.as_secs_f64()));
        self.stale
            .get_or_create(&l)
            .set(health.stale_for.map_or(0.0, |d| d.as_secs_f64()));
    }
}

fn labels(kind: Kind) -> WatcherLabels {
    WatcherLabels {
        watcher: kind.as_str(),
    }
}
