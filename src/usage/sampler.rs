//! The periodic usage sample: checkpoint → pod names → device sample → `/proc` → metrics.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info_span, warn};

use super::attribute::{Attribution, PodDirectory, attribute};
use super::cgroup;
use super::held::held_devices;
use super::holdings::{Holding, holdings};
use super::metrics::UsageMetrics;
use super::pods::PodNamer;
use super::{UsageError, UsageSource};
use crate::model::Inventory;
use crate::prepare::checkpoint::CheckpointStore;

/// One node's usage sampler.
pub struct Sampler {
    source: Arc<dyn UsageSource>,
    host_proc: PathBuf,
    checkpoint: CheckpointStore,
    max_series: usize,
    inventory: Option<watch::Receiver<Inventory>>,
}

impl Sampler {
    /// A sampler of `source`, reading PIDs under `host_proc` and prepared claims from the
    /// checkpoint in `state_dir`, keeping at most `max_series` rows per sample.
    pub fn new(
        source: Arc<dyn UsageSource>,
        host_proc: &Path,
        state_dir: &Path,
        max_series: usize,
    ) -> Self {
        Sampler {
            source,
            host_proc: host_proc.to_owned(),
            checkpoint: CheckpointStore::new(state_dir),
            max_series,
            inventory: None,
        }
    }

    /// Size the held-device series (`tessera_plugin_claim_device_info`) from the discovered
    /// inventory: GPU model, memory and MIG profile sizes. Without it they carry no sizes.
    pub fn with_inventory(mut self, inventory: watch::Receiver<Inventory>) -> Self {
        self.inventory = Some(inventory);
        self
    }

    /// The devices prepared claims hold now.
    pub fn holdings(&self) -> Result<Vec<Holding>, UsageError> {
        Ok(holdings(&self.checkpoint.load()?))
    }

    /// Sample the GPUs and attribute their processes (blocking: NVML and `/proc` reads).
    pub fn attribute(
        &self,
        held: &[Holding],
        pods: &PodDirectory,
    ) -> Result<Attribution, UsageError> {
        let samples = self.source.sample()?;
        let proc_dir = &self.host_proc;
        Ok(attribute(
            &samples,
            held,
            pods,
            |pid| cgroup::lookup(proc_dir, pid),
            self.max_series,
        ))
    }

    /// Checks, once at start, that `host_proc` is readable, so a missing mount is one clear
    /// log line rather than every process counted `unreadable`.
    pub fn check_host_proc(&self) -> Result<(), UsageError> {
        std::fs::read_dir(&self.host_proc)
            .map(drop)
            .map_err(|source| UsageError::HostProc {
                path: self.host_proc.clone(),
                source,
            })
    }

    /// Sample every `interval` until `shutdown`.
    pub async fn run(
        self: Arc<Self>,
        mut namer: PodNamer,
        metrics: UsageMetrics,
        interval: Duration,
        shutdown: CancellationToken,
    ) {
        if let Err(error) = self.check_host_proc() {
            warn!(%error, "per-pod GPU usage cannot map processes to pods");
        }
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = shutdown.cancelled() => return,
            }
            let span = info_span!("usage_sample", source = %self.source.describe());
            async {
                match self.once(&mut namer, &metrics).await {
                    Ok(attribution) => {
                        debug!(
                            rows = attribution.rows.len(),
                            attributed = attribution.attributed,
                            exited = attribution.exited,
                            not_pod = attribution.not_pod,
                            overflow = attribution.overflow,
                            "GPU usage sampled"
                        );
                        metrics.record(&attribution);
                    }
                    Err(error) => {
                        warn!(%error, "GPU usage sample failed");
                        metrics.record_error(error.metric_label());
                    }
                }
            }
            .instrument(span)
            .await;
        }
    }

    async fn once(
        self: &Arc<Self>,
        namer: &mut PodNamer,
        metrics: &UsageMetrics,
    ) -> Result<Attribution, UsageError> {
        let this = Arc::clone(self);
        let held = match blocking(move || this.holdings()).await {
            Ok(held) => held,
            Err(error) => {
                // What is held is unknown: no held-device series rather than stale ones.
                metrics.record_held(&[]);
                return Err(error);
            }
        };
        let pods = namer.refresh(&held).await.clone();
        // The held devices do not depend on NVML: a failing GPU sample below still leaves
        // them (an allocation does not vanish because its usage could not be read).
        let rows = match &self.inventory {
            Some(rx) => held_devices(&held, &pods, &rx.borrow().gpus, self.max_series),
            None => held_devices(&held, &pods, &[], self.max_series),
        };
        metrics.record_held(&rows);
        let this = Arc::clone(self);
        blocking(move || this.attribute(&held, &pods)).await
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, UsageError> + Send + 'static,
) -> Result<T, UsageError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|join| Err(UsageError::Panicked(join.to_string())))
}
