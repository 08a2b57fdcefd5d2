//! The v1alpha1 `DRAResourceHealth` service (KEP-4680) on the DRA socket: a stream telling
//! the kubelet, for every device this plugin advertises, whether it is still there.
//!
//! tessera's health source is discovery: a device is Healthy while it is in the current
//! inventory and Unhealthy once it is gone from it (a GPU fell off the bus, a static MIG
//! device was destroyed). The shared devices of a GPU whose MPS control daemon is down are
//! Unhealthy too, until supervision has it running again: their MPS clients have no server. Each message is the complete list, sent when the stream opens,
//! whenever the inventory changes, and every [`RESEND_INTERVAL`] so the kubelet's staleness
//! timeout never turns a quiet device Unknown.

mod tracker;

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::Stream;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use tracing::{debug, info};

pub use tracker::{HealthTracker, MAX_TRACKED_DEVICES, Presence};

use super::proto::dra_health_v1alpha1 as wire;
use crate::model::Inventory;

/// The ID the registration service advertises for this service.
pub const HEALTH_SERVICE: &str = "v1alpha1.DRAResourceHealth";
/// How often the full list is sent when nothing changes.
pub const RESEND_INTERVAL: Duration = Duration::from_secs(10);
/// How long the kubelet should wait for the next report before marking a device Unknown:
/// several resend intervals, so one slow send does not flap every device.
pub const HEALTH_CHECK_TIMEOUT: Duration = Duration::from_secs(60);

const GONE_MESSAGE: &str = "no longer discovered on this node";
const MPS_DOWN_MESSAGE: &str =
    "the GPU's MPS control daemon is down: MPS clients have no server until the plugin restarts it";

/// Serves the health stream from the discovered inventory.
#[derive(Clone)]
pub struct HealthService {
    inventory: watch::Receiver<Inventory>,
    /// UUIDs of GPUs whose MPS control daemon is down.
    mps_down: watch::Receiver<BTreeSet<String>>,
    tracker: Arc<Mutex<HealthTracker>>,
    shutdown: CancellationToken,
}

impl HealthService {
    /// Health of the devices `tracker` knows, following `inventory`. Every stream ends when
    /// `shutdown` fires, so a graceful stop is not held up by the kubelet's open stream.
    pub fn new(
        inventory: watch::Receiver<Inventory>,
        mut tracker: HealthTracker,
        shutdown: CancellationToken,
    ) -> Self {
        // Devices advertised at start-up must read Unhealthy if they vanish before the
        // kubelet first asks.
        tracker.observe(&inventory.borrow());
        HealthService {
            inventory,
            mps_down: watch::channel(BTreeSet::new()).1,
            tracker: Arc::new(Mutex::new(tracker)),
            shutdown,
        }
    }

    /// Also report the shared devices of the GPUs `mps_down` names (GPU UUIDs whose MPS
    /// control daemon is down, from supervision) as Unhealthy.
    pub fn with_mps_down(mut self, mps_down: watch::Receiver<BTreeSet<String>>) -> Self {
        self.mps_down = mps_down;
        self
    }

    /// The tonic server.
    pub fn server(&self) -> wire::dra_resource_health_server::DraResourceHealthServer<Self> {
        wire::dra_resource_health_server::DraResourceHealthServer::new(self.clone())
    }

    /// The complete list for the inventory now.
    pub fn report(&self) -> wire::NodeWatchResourcesResponse {
        let inventory = self.inventory.borrow().clone();
        let mut tracker = self.tracker.lock().unwrap_or_else(|e| e.into_inner());
        tracker.observe(&inventory);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let timeout = i64::try_from(HEALTH_CHECK_TIMEOUT.as_secs()).unwrap_or(i64::MAX);
        let pool = tracker.pool().to_owned();
        let mps_down = shared_devices_of(&inventory, &self.mps_down.borrow());
        let devices = tracker
            .devices()
            .map(|(name, presence)| {
                let (health, message) = match presence {
                    Presence::Present if mps_down.iter().any(|p| p.matches(name)) => {
                        (wire::HealthStatus::Unhealthy, MPS_DOWN_MESSAGE.to_owned())
                    }
                    Presence::Present => (wire::HealthStatus::Healthy, String::new()),
                    Presence::Gone => (wire::HealthStatus::Unhealthy, GONE_MESSAGE.to_owned()),
                };
                wire::DeviceHealth {
                    device: Some(wire::DeviceIdentifier {
                        pool_name: pool.clone(),
                        device_name: name.to_owned(),
                    }),
                    health: health.into(),
                    last_updated_time: now,
                    health_check_timeout_seconds: timeout,
                    message,
                }
            })
            .collect();
        wire::NodeWatchResourcesResponse { devices }
    }
}

/// The shared devices (`gpu-<i>-shared`, `gpu-<i>-share-<k>`) of one GPU.
struct SharedOf(String);

impl SharedOf {
    fn matches(&self, device: &str) -> bool {
        device
            .strip_prefix(self.0.as_str())
            .is_some_and(|rest| rest == "-shared" || rest.starts_with("-share-"))
    }
}

/// The shared-device name prefixes of the GPUs in `gpus` (UUIDs) that `inventory` has.
fn shared_devices_of(inventory: &Inventory, gpus: &BTreeSet<String>) -> Vec<SharedOf> {
    inventory
        .gpus
        .iter()
        .filter(|g| gpus.contains(&g.uuid))
        .map(|g| SharedOf(format!("gpu-{}", g.index)))
        .collect()
}

/// One open stream's state.
struct Watch {
    service: HealthService,
    inventory: watch::Receiver<Inventory>,
    inventory_open: bool,
    mps_down: watch::Receiver<BTreeSet<String>>,
    mps_open: bool,
    tick: tokio::time::Interval,
}

impl Watch {
    /// Wait for a reason to send (the first tick is immediate); `None` at shutdown.
    async fn next(mut self) -> Option<(Result<wire::NodeWatchResourcesResponse, Status>, Self)> {
        loop {
            tokio::select! {
                () = self.service.shutdown.cancelled() => return None,
                _ = self.tick.tick() => break,
                changed = self.inventory.changed(), if self.inventory_open => match changed {
                    Ok(()) => {
                        self.inventory.borrow_and_update();
                        break;
                    }
                    // Discovery stopped: keep reporting the last inventory on the tick.
                    Err(_) => self.inventory_open = false,
                },
                changed = self.mps_down.changed(), if self.mps_open => match changed {
                    Ok(()) => {
                        self.mps_down.borrow_and_update();
                        break;
                    }
                    Err(_) => self.mps_open = false,
                },
            }
        }
        let report = self.service.report();
        debug!(devices = report.devices.len(), "health report");
        Some((Ok(report), self))
    }
}

type HealthStream =
    Pin<Box<dyn Stream<Item = Result<wire::NodeWatchResourcesResponse, Status>> + Send>>;

#[tonic::async_trait]
impl wire::dra_resource_health_server::DraResourceHealth for HealthService {
    type NodeWatchResourcesStream = HealthStream;

    async fn node_watch_resources(
        &self,
        _: Request<wire::NodeWatchResourcesRequest>,
    ) -> Result<Response<Self::NodeWatchResourcesStream>, Status> {
        info!("the kubelet opened the device health stream");
        let mut inventory = self.inventory.clone();
        inventory.borrow_and_update();
        let mut tick = tokio::time::interval(RESEND_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut mps_down = self.mps_down.clone();
        mps_down.borrow_and_update();
        let watch = Watch {
            service: self.clone(),
            inventory,
            inventory_open: true,
            mps_down,
            mps_open: true,
            tick,
        };
        Ok(Response::new(Box::pin(futures::stream::unfold(
            watch,
            Watch::next,
        ))))
    }
}
