//! The running cache: kube-runtime watchers for Nodes, ResourceSlices, ResourceClaims and
//! Pods feed one store task, which applies their events in batches and publishes a new
//! [`Snapshot`] after each batch.
//!
//! ```text
//! watcher(Nodes)  ─┐
//! watcher(Slices) ─┤  mpsc   ┌──────────── store task ─────────────┐   watch channel
//! watcher(Claims) ─┼───────▶ │ apply batch → Store::snapshot()     │ ─────────────────▶ Cache::snapshot()
//! watcher(Pods)   ─┘         │ health → /readyz detail, metrics    │
//!                            └─────────────────────────────────────┘
//! ```
//!
//! Each watcher backs off and relists on errors (kube-runtime's default back-off); the last
//! published snapshot keeps being served meanwhile, and `/readyz` says how stale it may be.
//! Readiness becomes true once every watcher has finished its first list and stays true
//! through later outages: an extender that stops answering hurts scheduling more than one
//! answering from a slightly old view.

use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::resource::v1::{ResourceClaim, ResourceSlice};
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use prometheus_client::registry::Registry;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use super::config::CacheConfig;
use super::error::ClusterError;
use super::health::{WatcherHealth, WatcherState};
use super::metrics::CacheMetrics;
use super::snapshot::Snapshot;
use super::store::{ClusterEvent, ClusterObject, Kind, Store};
use crate::admin::Readiness;

/// The readiness conditions the cache sets, one per watcher; register them with the others
/// (`Readiness::new(&[...])`) so `/readyz` is not ready before the cache has started.
pub const READINESS_CONDITIONS: [&str; 4] = [
    "cluster-cache-nodes",
    "cluster-cache-resourceslices",
    "cluster-cache-resourceclaims",
    "cluster-cache-pods",
];

/// Most events applied before a snapshot is published.
const BATCH: usize = 1024;
/// Events in flight between the watchers and the store task.
const CHANNEL: usize = 4096;
/// While events keep coming (an initial list), publish at most this often: each publish makes
/// the next writes copy the shards they touch.
const PUBLISH_INTERVAL: Duration = Duration::from_millis(100);
/// How often readiness details and age metrics are refreshed.
const REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// Pods the cache never needs: finished ones hold no GPUs.
const POD_FIELD_SELECTOR: &str = "status.phase!=Succeeded,status.phase!=Failed";

/// One watch feed: events (or errors) for one kind.
pub struct WatchSource {
    kind: Kind,
    stream: BoxStream<'static, Result<ClusterEvent, ClusterError>>,
}

impl WatchSource {
    /// A feed of `kind` events from any stream (tests, replays).
    pub fn new(
        kind: Kind,
        stream: impl Stream<Item = Result<ClusterEvent, ClusterError>> + Send + 'static,
    ) -> Self {
        WatchSource {
            kind,
            stream: stream.boxed(),
        }
    }
}

impl Debug for WatchSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchSource")
            .field("kind", &self.kind)
            .finish()
    }
}

/// The running cluster cache; clones share it.
#[derive(Debug, Clone)]
pub struct Cache {
    snapshots: watch::Receiver<Snapshot>,
    health: Arc<Mutex<Vec<(Kind, WatcherState)>>>,
    /// Set once a snapshot holding every watcher's first list has been published.
    synced: Arc<AtomicBool>,
    metrics: CacheMetrics,
}

impl Cache {
    /// Starts watching the cluster `client` talks to. Returns at once; the cache fills in the
    /// background until `shutdown` is cancelled, and sets [`READINESS_CONDITIONS`] on
    /// `readiness` as each watcher completes its first list. Needs a tokio runtime.
    pub fn start(
        client: kube::Client,
        config: CacheConfig,
        readiness: Readiness,
        shutdown: CancellationToken,
    ) -> Cache {
        let driver = config.driver.to_string();
        let sources = vec![
            kube_source::<Node>(
                Api::all(client.clone()),
                Kind::Node,
                vec![watcher::Config::default()],
            ),
            kube_source::<ResourceSlice>(
                Api::all(client.clone()),
                Kind::ResourceSlice,
                vec![
                    watcher::Config::default().fields(&format!("spec.driver={driver}")),
                    // Every server serving resource.k8s.io/v1 supports the driver field
                    // selector; should one refuse it, filter on our side instead.
                    watcher::Config::default(),
                ],
            ),
            kube_source::<ResourceClaim>(
                Api::all(client.clone()),
                Kind::ResourceClaim,
                vec![watcher::Config::default()],
            ),
            kube_source::<Pod>(
                Api::all(client),
                Kind::Pod,
                vec![watcher::Config::default().fields(POD_FIELD_SELECTOR)],
            ),
        ];
        Cache::start_with(sources, config, readiness, shutdown)
    }

    /// Starts a cache fed by `sources` instead of the API server.
    pub fn start_with(
        sources: Vec<WatchSource>,
        config: CacheConfig,
        readiness: Readiness,
        shutdown: CancellationToken,
    ) -> Cache {
        let now = Instant::now();
        for kind in Kind::ALL {
            readiness.set(condition(kind), false, "not started");
        }
        let (events_tx, events_rx) = mpsc::channel(CHANNEL);
        let health: Vec<(Kind, WatcherState)> = sources
            .iter()
            .map(|s| (s.kind, WatcherState::new(now)))
            .collect();
        let health = Arc::new(Mutex::new(health));
        let (snapshots_tx, snapshots_rx) = watch::channel(Snapshot::default());
        let metrics = CacheMetrics::default();
        let synced = Arc::new(AtomicBool::new(false));
        for source in sources {
            let span = info_span!("watch", kind = source.kind.as_str());
            tokio::spawn(forward(source, events_tx.clone(), shutdown.clone()).instrument(span));
        }
        let task = StoreTask {
            store: Store::new(config),
            events: events_rx,
            snapshots: snapshots_tx,
            health: Arc::clone(&health),
            synced: Arc::clone(&synced),
            readiness,
            metrics: metrics.clone(),
        };
        tokio::spawn(task.run(shutdown).instrument(info_span!("cluster_cache")));
        Cache {
            snapshots: snapshots_rx,
            health,
            synced,
            metrics,
        }
    }

    /// The cluster as of the last published batch. Cheap (a few reference counts); hold it for
    /// the whole request so every lookup sees the same version.
    pub fn snapshot(&self) -> Snapshot {
        self.snapshots.borrow().clone()
    }

    /// A receiver notified at every published snapshot.
    pub fn subscribe(&self) -> watch::Receiver<Snapshot> {
        self.snapshots.clone()
    }

    /// Each watcher's health.
    pub fn health(&self) -> Vec<WatcherHealth> {
        let now = Instant::now();
        lock(&self.health)
            .iter()
            .map(|(kind, state)| state.health(*kind, now))
            .collect()
    }

    /// Whether every watcher has completed its first list and its data has been published.
    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// Waits until [`Cache::is_synced`]; `false` if the cache stopped first.
    pub async fn synced(&self) -> bool {
        let mut rx = self.snapshots.clone();
        loop {
            if self.is_synced() {
                return true;
            }
            if rx.changed().await.is_err() {
                return self.is_synced();
            }
        }
    }

    /// Registers the cache's metrics (sizes, ages, watcher health) under `tessera_cluster_`.
    pub fn register_metrics(&self, registry: &mut Registry) {
        self.metrics.register(registry);
    }
}

/// The readiness condition of `kind`'s watcher.
fn condition(kind: Kind) -> &'static str {
    match kind {
        Kind::Node => READINESS_CONDITIONS[0],
        Kind::ResourceSlice => READINESS_CONDITIONS[1],
        Kind::ResourceClaim => READINESS_CONDITIONS[2],
        Kind::Pod => READINESS_CONDITIONS[3],
    }
}

/// A poisoned lock only means a panic elsewhere mid-update of plain counters; keep going.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn forward(
    mut source: WatchSource,
    tx: mpsc::Sender<(Kind, Result<ClusterEvent, ClusterError>)>,
    shutdown: CancellationToken,
) {
    loop {
        let item = tokio::select! {
            _ = shutdown.cancelled() => return,
            item = source.stream.next() => item,
        };
        let Some(item) = item else {
            debug!("watch stream ended");
            return;
        };
        if tx.send((source.kind, item)).await.is_err() {
            return;
        }
    }
}

/// A watcher of `K` with kube-runtime's back-off. `configs` are tried in order: the next is
/// used only when the API server rejects the field selector of the previous one before it
/// ever listed.
fn kube_source<K>(api: Api<K>, kind: Kind, configs: Vec<watcher::Config>) -> WatchSource
where
    K: kube::Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    ClusterObject: From<K>,
{
    let stream = futures::stream::unfold(
        (
            api,
            configs.into_iter(),
            None::<BoxStream<'static, _>>,
            false,
        ),
        move |(api, mut configs, mut current, mut listed)| async move {
            loop {
                if current.is_none() {
                    let config = configs.next()?;
                    current = Some(
                        watcher::watcher(api.clone(), config)
                            .default_backoff()
                            .boxed(),
                    );
                    listed = false;
                }
                let stream = current.as_mut()?;
                let item = stream.next().await?;
                if !listed && configs.len() > 0 && selector_rejected(&item) {
                    warn!(
                        watcher = kind.as_str(),
                        "field selector refused; filtering locally"
                    );
                    current = None;
                    continue;
                }
                listed |= item.is_ok();
                let event = translate(kind, item);
                return Some((event, (api, configs, current, listed)));
            }
        },
    );
    WatchSource::new(kind, stream)
}

fn selector_rejected<K>(item: &Result<Event<K>, watcher::Error>) -> bool {
    matches!(
        item,
        Err(watcher::Error::InitialListFailed(kube::Error::Api(status))
            | watcher::Error::WatchStartFailed(kube::Error::Api(status)))
            if status.code == 400
    )
}

fn translate<K>(
    kind: Kind,
    item: Result<Event<K>, watcher::Error>,
) -> Result<ClusterEvent, ClusterError>
where
    ClusterObject: From<K>,
{
    match item {
        Ok(Event::Apply(o) | Event::InitApply(o)) => Ok(ClusterEvent::Applied(o.into())),
        Ok(Event::Delete(o)) => Ok(ClusterEvent::Deleted(o.into())),
        Ok(Event::Init) => Ok(ClusterEvent::ResyncStarted(kind)),
        Ok(Event::InitDone) => Ok(ClusterEvent::ResyncDone(kind)),
        Err(error) => Err(ClusterError::Watch {
            kind: kind.as_str(),
            message: error.to_string(),
        }),
    }
}

struct StoreTask {
    store: Store,
    events: mpsc::Receiver<(Kind, Result<ClusterEvent, ClusterError>)>,
    snapshots: watch::Sender<Snapshot>,
    health: Arc<Mutex<Vec<(Kind, WatcherState)>>>,
    synced: Arc<AtomicBool>,
    readiness: Readiness,
    metrics: CacheMetrics,
}

impl StoreTask {
    async fn run(mut self, shutdown: CancellationToken) {
        let mut batch = Vec::with_capacity(BATCH);
        let mut report = tokio::time::interval(REPORT_INTERVAL);
        let mut published = Instant::now();
        let mut pending = false;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                n = self.events.recv_many(&mut batch, BATCH) => {
                    if n == 0 {
                        break;
                    }
                    self.apply(&mut batch);
                    pending = true;
                    if self.events.is_empty() || published.elapsed() >= PUBLISH_INTERVAL {
                        self.publish();
                        published = Instant::now();
                        pending = false;
                    }
                }
                _ = report.tick() => {
                    if pending {
                        self.publish();
                        published = Instant::now();
                        pending = false;
                    }
                    self.report(published);
                }
            }
        }
        info!("cluster cache stopped");
    }

    fn apply(&mut self, batch: &mut Vec<(Kind, Result<ClusterEvent, ClusterError>)>) {
        let now = Instant::now();
        let mut health = lock(&self.health);
        for (kind, item) in batch.drain(..) {
            let state = health.iter_mut().find(|(k, _)| *k == kind).map(|(_, s)| s);
            match item {
                Ok(event) => {
                    let done = matches!(event, ClusterEvent::ResyncDone(_));
                    if let Some(state) = state {
                        let newly = done && !state.is_synced();
                        state.event(now, done);
                        if newly {
                            info!(watcher = kind.as_str(), "initial list complete");
                        }
                    }
                    self.metrics.event(kind);
                    self.store.apply(event);
                }
                Err(error) => {
                    // WARN once per run of failures, DEBUG for the retries after it: an API
                    // server that is away for a minute is one warning per watcher, not one
                    // per back-off step. The count is in tessera_cluster_watch_errors_total.
                    if state.as_ref().is_some_and(|s| s.is_failing()) {
                        debug!(watcher = kind.as_str(), %error, "watch still failing; retrying after back-off");
                    } else {
                        warn!(watcher = kind.as_str(), %error, "watch failed; retrying after back-off");
                    }
                    if let Some(state) = state {
                        state.error(now, &error.to_string());
                    }
                    self.metrics.error(kind);
                }
            }
        }
    }

    fn publish(&mut self) {
        let snapshot = self.store.snapshot();
        self.metrics.set_stats(snapshot.stats());
        let all_synced = lock(&self.health).iter().all(|(_, s)| s.is_synced());
        // Set before sending, so a waiter woken by the new snapshot sees it; and send when
        // it flips even if the data did not change, so waiters wake at all.
        let flipped = all_synced && !self.synced.swap(true, Ordering::AcqRel);
        if flipped || snapshot.version() != self.snapshots.borrow().version() {
            self.snapshots.send_replace(snapshot);
        }
        // Readiness follows the published data, never ahead of it.
        self.report(Instant::now());
    }

    fn report(&self, published: Instant) {
        let now = Instant::now();
        self.metrics
            .set_snapshot_age(now.saturating_duration_since(published).as_secs_f64());
        let health = lock(&self.health);
        for (kind, state) in health.iter() {
            self.readiness
                .set(condition(*kind), state.is_synced(), state.describe(now));
            self.metrics.set_health(&state.health(*kind, now));
        }
    }
}

#[cfg(test)]
mod tests;
