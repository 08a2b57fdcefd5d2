//! `tessera plugin` wired together: recover the checkpoint, serve the kubelet on both
//! sockets, keep rolling back abandoned half-prepared claims, and run the ResourceSlice
//! publisher beside it (discovery → publish, discovery → prepare); on shutdown stop accepting, finish in-flight calls and remove the
//! sockets.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use thiserror::Error;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::server::{self, BoundSockets};
use super::socket::SocketPaths;
use super::{DraService, HealthService, HealthTracker, PluginError, READY_CHECKPOINT, READY_MPS};
use crate::admin::Readiness;
use crate::model::Inventory;
use crate::prepare::state::MpsReport;
use crate::prepare::{
    ClaimSource, DeviceState, GpuControl, MpsConfig, PrepareMetrics, Preparer, RecoveryReport,
    StateConfig,
};
use crate::shutdown::drain_within;

/// Why the plugin stopped.
#[derive(Debug, Error)]
pub enum RuntimeError {
    /// A directory the plugin needs could not be created.
    #[error("cannot create {path}: {source}")]
    Directory {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The gRPC surface failed.
    #[error(transparent)]
    Plugin(#[from] PluginError),
}

/// Everything `tessera plugin` is configured with.
#[derive(Debug, Clone)]
pub struct PluginConfig {
    /// This node; also the pool name.
    pub node_name: String,
    /// DRA driver name.
    pub driver: String,
    /// Socket paths.
    pub sockets: SocketPaths,
    /// CDI spec directory.
    pub cdi_dir: PathBuf,
    /// Checkpoint directory.
    pub state_dir: PathBuf,
    /// Legacy share replicas per GPU.
    pub share_replicas: u32,
    /// This boot's ID.
    pub boot_id: String,
    /// How often abandoned half-prepared claims are looked for.
    pub recovery_interval: Duration,
    /// How long in-flight calls may take after SIGTERM.
    pub drain_grace: Duration,
    /// Serve (and advertise) the v1alpha1 DRAResourceHealth stream.
    pub serve_health: bool,
    /// MPS control daemons: where they live, what runs them.
    pub mps: MpsConfig,
    /// How often the MPS control daemons are checked (and dead ones restarted).
    pub mps_check_interval: Duration,
}

/// What the plugin works with: the discovered GPUs, the hands that change them, where
/// claims come from, and the publisher of this node's ResourceSlices.
pub struct PluginParts {
    /// The GPUs as discovered, updated when discovery sees a change.
    pub inventory: watch::Receiver<Inventory>,
    /// Changes GPUs.
    pub control: Arc<dyn GpuControl>,
    /// Reads ResourceClaims.
    pub claims: Arc<dyn ClaimSource>,
    /// Publishes (and keeps publishing) this node's ResourceSlices, setting the
    /// [`READINESS_CONDITION`](crate::publish::READINESS_CONDITION) condition; runs until the
    /// shutdown token it was built with fires.
    pub publisher: BoxFuture<'static, ()>,
}

/// Run the plugin until `shutdown` fires.
pub async fn run(
    config: PluginConfig,
    parts: PluginParts,
    metrics: PrepareMetrics,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> Result<(), RuntimeError> {
    for dir in [&config.state_dir, &config.cdi_dir] {
        super::socket::create_dir(dir).map_err(|source| RuntimeError::Directory {
            path: dir.clone(),
            source,
        })?;
    }
    let state = DeviceState::new(
        StateConfig {
            driver: config.driver.clone(),
            state_dir: config.state_dir.clone(),
            cdi_dir: config.cdi_dir.clone(),
            share_replicas: config.share_replicas,
            boot_id: config.boot_id.clone(),
            mps: config.mps.clone(),
        },
        parts.control,
    );
    // Stop accepting at the signal; in-flight calls get `drain_grace` to finish, and the
    // health streams end at once.
    let stop_serving = CancellationToken::new();
    // GPUs whose MPS daemon is down, from recovery and supervision to the health stream.
    let (mps_down, mps_down_rx) = watch::channel(std::collections::BTreeSet::new());
    let health = config.serve_health.then(|| {
        HealthService::new(
            parts.inventory.clone(),
            HealthTracker::new(&config.node_name, &config.driver, config.share_replicas),
            stop_serving.clone(),
        )
        .with_mps_down(mps_down_rx)
    });
    let mps = MpsStatus {
        readiness: readiness.clone(),
        down: Arc::new(mps_down),
    };
    let preparer = Arc::new(Preparer::new(
        state,
        parts.claims,
        parts.inventory,
        config.driver.clone(),
        config.node_name.clone(),
        metrics,
    ));
    recover(&preparer, &readiness, &mps).await;

    let bound = BoundSockets::bind(&config.sockets)?;
    let publisher = tokio::spawn(parts.publisher);
    let stop_recovery = shutdown.child_token();
    let cleanup = tokio::spawn(periodic_recovery(
        Arc::clone(&preparer),
        config.recovery_interval,
        readiness.clone(),
        mps.clone(),
        stop_recovery.clone(),
    ));

    let supervision = tokio::spawn(supervise_mps(
        Arc::clone(&preparer),
        config.mps_check_interval,
        mps,
        stop_recovery.clone(),
    ));

    let serving = tokio::spawn({
        let driver = config.driver.clone();
        let dra = DraService::new(Arc::clone(&preparer));
        let readiness = readiness.clone();
        let stop = stop_serving.clone();
        async move { server::serve(bound, &driver, dra, health, readiness, stop).await }
    });
    tokio::pin!(serving);
    let served = tokio::select! {
        result = &mut serving => Some(result),
        () = shutdown.cancelled() => None,
    };
    let result = match served {
        Some(result) => result,
        None => {
            info!("draining in-flight kubelet calls");
            stop_serving.cancel();
            match drain_within(config.drain_grace, &mut serving).await {
                Some(result) => result,
                None => {
                    // The server is stuck on a call; remove the sockets ourselves so a new
                    // instance is not blocked by them.
                    serving.abort();
                    for path in [&config.sockets.registration, &config.sockets.dra] {
                        let _ = super::socket::remove(path);
                    }
                    Ok(Ok(()))
                }
            }
        }
    };
    publisher.abort();
    // Let a recovery under way finish instead of aborting it: an aborted task's blocking
    // step (moving a corrupt checkpoint aside, destroying a MIG instance) still runs, but
    // the rest of that recovery (recording it, the metrics) would not.
    stop_recovery.cancel();
    if tokio::time::timeout(config.drain_grace, cleanup)
        .await
        .is_err()
    {
        warn!("a periodic recovery was still running at shutdown; left to finish on its own");
    }
    // The daemons keep running: a plugin restarted outside a container adopts them, and a
    // container's end stops them with it.
    if tokio::time::timeout(config.drain_grace, supervision)
        .await
        .is_err()
    {
        warn!("an MPS supervision pass was still running at shutdown; left to finish on its own");
    }
    match result {
        Ok(inner) => inner.map_err(RuntimeError::from),
        Err(join) => {
            error!(error = %join, "the gRPC server task died");
            Ok(())
        }
    }
}

async fn recover(preparer: &Preparer, readiness: &Readiness, mps: &MpsStatus) {
    match preparer.recover().await {
        Ok(report) => {
            info!(
                rolled_back = report.rolled_back.len(),
                failed = report.failed.len(),
                dropped_after_reboot = report.dropped_after_reboot.len(),
                temps_removed = report.temps_removed,
                prepared = report.prepared,
                corrupt_moved_to = ?report.corrupt_moved_to,
                orphan_instances_removed = report.orphan_instances_removed.len(),
                orphan_specs_removed = report.orphan_specs_removed.len(),
                orphans_left = report.orphans_left.len(),
                "checkpoint recovered"
            );
            checkpoint_readable(readiness, &report);
            mps.publish(&report.mps);
        }
        // Keep serving: every call then answers with this error per claim, which the kubelet
        // shows in the pod's events, and the checkpoint is never overwritten. Readiness says
        // why until a periodic recovery can read it again.
        Err(error) => {
            error!(%error, "checkpoint recovery failed; prepare and unprepare will fail until it is fixed");
            readiness.set(READY_CHECKPOINT, false, error.to_string());
        }
    }
}

fn checkpoint_readable(readiness: &Readiness, report: &RecoveryReport) {
    let mut detail = format!(
        "recovered: {} claims prepared, {} rolled back, {} rollbacks to retry",
        report.prepared,
        report.rolled_back.len(),
        report.failed.len()
    );
    if !report.orphans_left.is_empty() {
        detail.push_str(&format!(
            "; {} orphans left to remove: {}",
            report.orphans_left.len(),
            report.orphans_left.join(", ")
        ));
    }
    // Ready (the plugin works from the fresh checkpoint), but said for as long as the files
    // are kept, so an operator sees it without reading logs.
    if !report.corrupt_kept.is_empty() {
        let kept: Vec<String> = report
            .corrupt_kept
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        detail.push_str(&format!(
            "; corrupt checkpoints moved aside and kept for diagnosis (MIG instances and CDI specs no claim accounted for were removed): {}",
            kept.join(", ")
        ));
    }
    readiness.set(READY_CHECKPOINT, true, detail);
}

/// Roll back claims whose prepare failed and whose rollback failed too, once the kubelet
/// stopped asking for them (NVIDIA driver issue #840: without this they pile up); and keep
/// the `checkpoint` readiness condition current, so fixing a corrupt checkpoint makes the
/// plugin ready again without a restart.
async fn periodic_recovery(
    preparer: Arc<Preparer>,
    every: Duration,
    readiness: Readiness,
    mps: MpsStatus,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await; // the first tick is immediate; start-up already recovered
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shutdown.cancelled() => return,
        }
        match preparer.recover().await {
            Ok(report) => {
                if !report.rolled_back.is_empty()
                    || !report.failed.is_empty()
                    || report.corrupt_moved_to.is_some()
                    || !report.orphan_instances_removed.is_empty()
                    || !report.orphan_specs_removed.is_empty()
                {
                    info!(rolled_back = ?report.rolled_back, failed = ?report.failed,
                        corrupt_moved_to = ?report.corrupt_moved_to,
                        orphan_instances_removed = ?report.orphan_instances_removed,
                        orphan_specs_removed = ?report.orphan_specs_removed, "periodic recovery");
                }
                checkpoint_readable(&readiness, &report);
                mps.publish(&report.mps);
            }
            Err(error) => {
                warn!(%error, "periodic recovery failed");
                readiness.set(READY_CHECKPOINT, false, error.to_string());
            }
        }
    }
}

/// Where the MPS daemons' state is reported: `/readyz` and the device health stream.
#[derive(Clone)]
struct MpsStatus {
    readiness: Readiness,
    down: Arc<watch::Sender<std::collections::BTreeSet<String>>>,
}

impl MpsStatus {
    fn publish(&self, report: &MpsReport) {
        mps_readiness(&self.readiness, report);
        self.down.send_if_modified(|down| {
            let changed = *down != report.down_gpus;
            if changed {
                down.clone_from(&report.down_gpus);
            }
            changed
        });
    }
}

/// Say in `/readyz` whether every device that needs an MPS control daemon has one.
pub fn mps_readiness(readiness: &Readiness, report: &MpsReport) {
    if report.down.is_empty() {
        let mut detail = format!(
            "MPS control daemons running: {}",
            report.running.len() + report.restarted.len()
        );
        if !report.restarted.is_empty() {
            detail.push_str(&format!(
                "; restarted after they died: {}",
                report.restarted.join(", ")
            ));
        }
        readiness.set(READY_MPS, true, detail);
    } else {
        readiness.set(
            READY_MPS,
            false,
            format!(
                "MPS control daemons down (their clients run without an MPS server; restarting with backoff): {}",
                report.down.join("; ")
            ),
        );
    }
}

/// Check the MPS control daemons every `every`: restart a dead one (with backoff), stop one
/// nothing needs, and keep the `mps` readiness condition and the daemon metrics current.
async fn supervise_mps(
    preparer: Arc<Preparer>,
    every: Duration,
    mps: MpsStatus,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate; start-up recovery already checked
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shutdown.cancelled() => return,
        }
        match preparer.supervise_mps().await {
            Ok(report) => mps.publish(&report),
            Err(error) => warn!(%error, "MPS supervision pass failed"),
        }
    }
}
