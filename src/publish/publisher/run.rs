//! The publisher's loop: publish, then wait for a reason to publish again.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::resource::v1::ResourceSlice;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use super::{PublishReport, Publisher, READINESS_CONDITION, hash_of};
use crate::admin::Readiness;
use crate::model::Inventory;

/// What was last published, to tell our own changes from someone else's.
struct Published {
    names: BTreeSet<String>,
    hash: String,
    generation: i64,
}

impl From<&PublishReport> for Published {
    fn from(report: &PublishReport) -> Self {
        Published {
            names: report.slices.iter().cloned().collect(),
            hash: report.content_hash.clone(),
            generation: report.generation,
        }
    }
}

impl Publisher {
    /// Publishes `inventory_rx`'s inventory until `shutdown` is cancelled, and again
    /// whenever it changes, a slice of this node is deleted or altered behind the
    /// publisher's back, `resync_interval` passes, or (after a failure) the backoff delay
    /// passes. Sets the readiness condition [`READINESS_CONDITION`] after the first success;
    /// later failures are reported in its detail but do not make the node unready, since
    /// the published slices stay valid. Never returns an error: every failure is logged,
    /// counted and retried.
    pub async fn run(
        self,
        mut inventory_rx: watch::Receiver<Inventory>,
        readiness: Readiness,
        shutdown: CancellationToken,
    ) {
        let span = info_span!("publisher", node = %self.config.node_name, driver = %self.config.driver_name);
        async move {
            let config = watcher::Config::default().fields(&self.field_selector());
            let mut events = watcher(self.slices.clone(), config).default_backoff().boxed();
            let mut last: Option<Published> = None;
            let mut listing: Option<BTreeSet<String>> = None;
            let mut failures: u32 = 0;
            let mut inventory_open = true;
            let mut next = Instant::now();
            loop {
                if Instant::now() >= next {
                    let inventory = inventory_rx.borrow_and_update().clone();
                    // The client retries throttled requests itself, possibly for minutes:
                    // shutdown must not wait for that.
                    let attempt = tokio::select! {
                        () = shutdown.cancelled() => {
                            info!("publisher stopping");
                            return;
                        }
                        attempt = self.publish_once(&inventory) => attempt,
                    };
                    match attempt {
                        Ok(report) => {
                            failures = 0;
                            readiness.set(
                                READINESS_CONDITION,
                                true,
                                format!(
                                    "generation {} in {} slice(s)",
                                    report.generation,
                                    report.slices.len()
                                ),
                            );
                            last = Some(Published::from(&report));
                            next = Instant::now() + self.config.resync_interval;
                        }
                        Err(error) => {
                            failures = failures.saturating_add(1);
                            let delay = if error.retry_now() {
                                Duration::ZERO
                            } else {
                                self.backoff(failures)
                            };
                            warn!(%error, attempt = failures, retry_in = ?delay, "publishing failed");
                            let published = last.is_some();
                            let detail = match &last {
                                Some(p) => format!(
                                    "generation {} published; last attempt failed: {error}",
                                    p.generation
                                ),
                                None => format!("not yet: {error}"),
                            };
                            readiness.set(READINESS_CONDITION, published, detail);
                            next = Instant::now() + delay;
                        }
                    }
                }
                tokio::select! {
                    () = shutdown.cancelled() => {
                        info!("publisher stopping");
                        return;
                    }
                    changed = inventory_rx.changed(), if inventory_open => match changed {
                        Ok(()) => {
                            debug!("inventory changed");
                            next = Instant::now();
                        }
                        // The discovery side is gone: keep what we have, keep resyncing.
                        Err(_) => inventory_open = false,
                    },
                    Some(event) = events.next() => {
                        if drifted(event, last.as_ref(), &mut listing) {
                            next = Instant::now();
                        }
                    }
                    () = tokio::time::sleep_until(next) => {}
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Exponential from `retry_initial` up to `retry_max`, with a per-node jitter of
    /// ±20 % so that after an API server outage nodes do not retry in lockstep.
    pub(super) fn backoff(&self, failures: u32) -> Duration {
        let exp = self
            .config
            .retry_initial
            .saturating_mul(2u32.saturating_pow(failures.saturating_sub(1).min(20)));
        let capped = exp.min(self.config.retry_max);
        let seed = format!("{}/{failures}", self.config.node_name);
        let jitter = f64::from(crc32fast::hash(seed.as_bytes())) / f64::from(u32::MAX);
        capped.mul_f64(0.8 + 0.4 * jitter)
    }
}

/// Whether a watch event shows the published pool is no longer what was published: one of
/// our slices deleted or changed, a slice of ours that should not exist, or (after the watch
/// re-listed) one missing.
fn drifted(
    event: Result<watcher::Event<ResourceSlice>, watcher::Error>,
    last: Option<&Published>,
    listing: &mut Option<BTreeSet<String>>,
) -> bool {
    let event = match event {
        Ok(event) => event,
        Err(error) => {
            debug!(%error, "ResourceSlice watch error; it retries with backoff");
            return false;
        }
    };
    let Some(last) = last else {
        // Nothing published yet: the pending publish will look at everything anyway.
        return false;
    };
    match event {
        watcher::Event::Init => {
            *listing = Some(BTreeSet::new());
            false
        }
        watcher::Event::InitApply(slice) | watcher::Event::Apply(slice) => {
            let name = slice.metadata.name.clone().unwrap_or_default();
            if let Some(seen) = listing.as_mut() {
                seen.insert(name.clone());
            }
            let ours = last.names.contains(&name)
                && slice.spec.pool.generation == last.generation
                && hash_of(&slice) == Some(last.hash.as_str());
            if !ours {
                info!(slice = %name, "a ResourceSlice of this node differs from what was published");
            }
            !ours
        }
        watcher::Event::Delete(slice) => {
            let name = slice.metadata.name.unwrap_or_default();
            let ours = last.names.contains(&name);
            if ours {
                info!(slice = %name, "a published ResourceSlice was deleted");
            }
            ours
        }
        watcher::Event::InitDone => {
            let seen = listing.take().unwrap_or_default();
            let missing = last.names.difference(&seen).count();
            if missing > 0 {
                info!(
                    missing,
                    "published ResourceSlices are missing after a re-list"
                );
            }
            missing > 0
        }
    }
}
