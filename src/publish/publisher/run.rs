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
            // Fused: a finished stream then just stays quiet instead of being polled again.
            let mut events = watcher(self.slices.clone(), config)
                .default_backoff()
                .boxed()
                .fuse();
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
    // Track what a (re-)list returns, whether or not anything was published yet.
    match &event {
        watcher::Event::Init => *listing = Some(BTreeSet::new()),
        watcher::Event::InitApply(slice) => {
            if let (Some(seen), Some(name)) = (listing.as_mut(), &slice.metadata.name) {
                seen.insert(name.clone());
            }
        }
        _ => {}
    }
    let Some(last) = last else {
        // Nothing published yet: the pending publish will look at everything anyway.
        if matches!(event, watcher::Event::InitDone) {
            *listing = None;
        }
        return false;
    };
    match event {
        watcher::Event::Init => false,
        watcher::Event::InitApply(slice) | watcher::Event::Apply(slice) => {
            let name = slice.metadata.name.clone().unwrap_or_default();
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::super::CONTENT_HASH_ANNOTATION;
    use super::*;

    fn slice(name: &str, generation: i64, hash: &str) -> ResourceSlice {
        let mut s = ResourceSlice {
            metadata: ObjectMeta {
                name: Some(name.into()),
                annotations: Some(BTreeMap::from([(
                    CONTENT_HASH_ANNOTATION.to_owned(),
                    hash.to_owned(),
                )])),
                ..ObjectMeta::default()
            },
            spec: Default::default(),
        };
        s.spec.pool.generation = generation;
        s
    }

    fn published() -> Published {
        Published {
            names: ["a".to_owned(), "b".to_owned()].into(),
            hash: "h".into(),
            generation: 3,
        }
    }

    fn drift(event: watcher::Event<ResourceSlice>, listing: &mut Option<BTreeSet<String>>) -> bool {
        drifted(Ok(event), Some(&published()), listing)
    }

    #[test]
    fn own_changes_are_not_drift_but_foreign_ones_are() {
        let mut l = None;
        assert!(!drift(watcher::Event::Apply(slice("a", 3, "h")), &mut l));
        assert!(drift(watcher::Event::Apply(slice("a", 2, "h")), &mut l));
        assert!(drift(watcher::Event::Apply(slice("a", 3, "other")), &mut l));
        assert!(drift(watcher::Event::Apply(slice("stale", 3, "h")), &mut l));
        assert!(drift(watcher::Event::Delete(slice("b", 3, "h")), &mut l));
        assert!(!drift(watcher::Event::Delete(slice("old", 2, "h")), &mut l));
    }

    #[test]
    fn a_relist_missing_a_published_slice_is_drift() {
        let mut l = None;
        assert!(!drift(watcher::Event::Init, &mut l));
        assert!(!drift(
            watcher::Event::InitApply(slice("a", 3, "h")),
            &mut l
        ));
        assert!(drift(watcher::Event::InitDone, &mut l));
        for name in ["a", "b"] {
            drift(watcher::Event::InitApply(slice(name, 3, "h")), &mut l);
        }
        assert!(!drift(watcher::Event::Init, &mut l));
        for name in ["a", "b"] {
            assert!(!drift(
                watcher::Event::InitApply(slice(name, 3, "h")),
                &mut l
            ));
        }
        assert!(!drift(watcher::Event::InitDone, &mut l));
    }

    #[test]
    fn before_the_first_publish_and_on_errors_nothing_is_drift() {
        let mut l = None;
        assert!(!drifted(
            Ok(watcher::Event::Delete(slice("a", 3, "h"))),
            None,
            &mut l
        ));
        let error = watcher::Error::NoResourceVersion;
        assert!(!drifted(Err(error), Some(&published()), &mut l));
    }
}
