//! Prepare and unprepare metrics, registered under the plugin's prefix (`tessera_plugin_…`).

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::error::PrepareError;
use super::state::{MpsReport, RecoveryReport};
use crate::metrics::latency_buckets;

/// Which call a measurement belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// NodePrepareResources, per claim.
    Prepare,
    /// NodeUnprepareResources, per claim.
    Unprepare,
}

impl Operation {
    fn label(self) -> &'static str {
        match self {
            Operation::Prepare => "prepare",
            Operation::Unprepare => "unprepare",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OrphanLabels {
    /// `mig_instance` or `cdi_spec`.
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DaemonLabels {
    /// `running` or `down`.
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    operation: &'static str,
    /// From [`PrepareError::metric_label`]: a fixed set.
    kind: &'static str,
}

/// Latency per claim, failures by kind, and prepared claims.
#[derive(Debug, Clone)]
pub struct PrepareMetrics {
    prepare: Histogram,
    unprepare: Histogram,
    errors: Family<ErrorLabels, Counter>,
    prepared: Gauge,
    corrupt: Counter,
    corrupt_kept: Gauge,
    orphans: Family<OrphanLabels, Counter>,
    mps_daemons: Family<DaemonLabels, Gauge>,
    mps_restarts: Counter,
}

impl PrepareMetrics {
    /// Create the metrics and register them in `registry` under `tessera_plugin_`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = PrepareMetrics::unregistered();
        let registry = registry.sub_registry_with_prefix("tessera_plugin");
        registry.register(
            "prepare_duration_seconds",
            "Time to prepare one claim: the kubelet call that carried it, claim reads included",
            metrics.prepare.clone(),
        );
        registry.register(
            "unprepare_duration_seconds",
            "Time to unprepare one claim: the kubelet call that carried it",
            metrics.unprepare.clone(),
        );
        registry.register(
            "errors",
            "Claims whose prepare or unprepare failed, by operation and kind",
            metrics.errors.clone(),
        );
        registry.register(
            "prepared_claims",
            "Claims prepared on this node",
            metrics.prepared.clone(),
        );
        registry.register(
            "checkpoint_corrupt",
            "Corrupt checkpoints found by recovery and moved aside",
            metrics.corrupt.clone(),
        );
        registry.register(
            "checkpoint_corrupt_kept",
            "Corrupt checkpoints kept beside the live one for diagnosis",
            metrics.corrupt_kept.clone(),
        );
        registry.register(
            "orphans_removed",
            "MIG instances and CDI specs no recorded claim accounted for, removed by recovery",
            metrics.orphans.clone(),
        );
        registry.register(
            "mps_daemons",
            "MPS control daemons of devices with prepared MPS shares as the last supervision pass (every 10 s) or recovery found them, by state: running, or down (its clients have no MPS server until a restart succeeds)",
            metrics.mps_daemons.clone(),
        );
        registry.register(
            "mps_daemon_restarts",
            "MPS control daemons found dead (or missing) while claims needed them, and started again",
            metrics.mps_restarts.clone(),
        );
        metrics
    }

    /// Metrics that are counted but exported nowhere (tests, benches).
    pub fn unregistered() -> Self {
        PrepareMetrics {
            prepare: Histogram::new(latency_buckets()),
            unprepare: Histogram::new(latency_buckets()),
            errors: Family::default(),
            prepared: Gauge::default(),
            corrupt: Counter::default(),
            corrupt_kept: Gauge::default(),
            orphans: Family::default(),
            mps_daemons: Family::default(),
            mps_restarts: Counter::default(),
        }
    }

    /// Record one claim's outcome.
    pub fn observe(&self, op: Operation, elapsed: Duration, error: Option<&PrepareError>) {
        let histogram = match op {
            Operation::Prepare => &self.prepare,
            Operation::Unprepare => &self.unprepare,
        };
        histogram.observe(elapsed.as_secs_f64());
        if let Some(error) = error {
            self.errors
                .get_or_create(&ErrorLabels {
                    operation: op.label(),
                    kind: error.metric_label(),
                })
                .inc();
        }
    }

    /// Count what one recovery found: a corrupt checkpoint, the ones kept, orphans removed.
    pub fn observe_recovery(&self, report: &RecoveryReport) {
        if report.corrupt_moved_to.is_some() {
            self.corrupt.inc();
        }
        self.corrupt_kept
            .set(i64::try_from(report.corrupt_kept.len()).unwrap_or(i64::MAX));
        for (kind, removed) in [
            ("mig_instance", report.orphan_instances_removed.len()),
            ("cdi_spec", report.orphan_specs_removed.len()),
        ] {
            self.orphans
                .get_or_create(&OrphanLabels { kind })
                .inc_by(u64::try_from(removed).unwrap_or(u64::MAX));
        }
        self.set_prepared(report.prepared);
        self.observe_mps(&report.mps);
    }

    /// Count what one MPS supervision (or recovery) pass found.
    pub fn observe_mps(&self, report: &MpsReport) {
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.mps_daemons
            .get_or_create(&DaemonLabels { state: "running" })
            .set(count(report.running.len() + report.restarted.len()));
        self.mps_daemons
            .get_or_create(&DaemonLabels { state: "down" })
            .set(count(report.down.len()));
        self.mps_restarts
            .inc_by(u64::try_from(report.restarted.len()).unwrap_or(u64::MAX));
    }

    /// Set the prepared-claims gauge.
    pub fn set_prepared(&self, claims: usize) {
        self.prepared.set(i64::try_from(claims).unwrap_or(i64::MAX));
    }
}
