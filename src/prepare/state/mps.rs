//! The MPS side of prepare, unprepare, recovery and supervision. A device (GPU or MIG
//! instance) needs a daemon while any recorded claim has an MPS share on it; the daemon's
//! clients are those claims, counted from the checkpoint, so the count can never drift from
//! what is prepared.
//!
//! ```text
//! prepare:   devices set up ─▶ StartMps (if no live daemon) ─▶ configure ─▶ RecordMpsDaemons ─▶ CDI
//! unprepare: CDI removed ─▶ last client? StopMps : configure ─▶ RecordMpsDaemons ─▶ sharing cleared
//! recovery / supervision: every device a prepared claim needs has a live daemon (adopted,
//!            or started again with backoff); every other daemon, recorded or only found by
//!            its directory, is stopped
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::DeviceState;
use crate::prepare::checkpoint::{CheckpointData, ClaimState, DeviceRecord};
use crate::prepare::device::{GpuSharing, MpsLimits};
use crate::prepare::error::PrepareError;
use crate::prepare::fault::Step;
use crate::prepare::mps::{DaemonRecord, DaemonsData, MpsError};

/// First wait after a failed daemon start; doubled per failure up to [`BACKOFF_MAX`].
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
/// Longest wait between start attempts of one device's daemon.
const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// What a recovery or supervision pass found and did about the MPS daemons.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MpsReport {
    /// Devices whose daemon was running (adopted, at the first pass of a process).
    pub running: Vec<String>,
    /// Devices whose daemon was found dead (or missing) and started again.
    pub restarted: Vec<String>,
    /// Devices that need a daemon and have none: `<device>: <why>`.
    pub down: Vec<String>,
    /// UUIDs of the GPUs those devices are on (a MIG instance's parent), for device health.
    pub down_gpus: BTreeSet<String>,
    /// Devices whose daemon no prepared claim needs any more, stopped.
    pub stopped: Vec<String>,
}

/// Start attempts of one device's daemon that failed in a row.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    failures: u32,
    next: Instant,
}

/// The device whose MPS daemon `devices` need and the limits their claim gives its
/// clients, if the claim has an MPS share whose device is known (a MIG instance only once
/// created). A claim has at most one such device (`spec::check_mps_limits`).
pub(crate) fn serves(device: &DeviceRecord) -> Option<(String, MpsLimits)> {
    let plan = device.sharing.filter(|_| !device.admin_access)?;
    if plan.gpu != GpuSharing::Mps {
        return None;
    }
    Some((device.visible_uuid.clone()?, plan.mps.unwrap_or_default()))
}

fn claim_needs(devices: &[DeviceRecord]) -> Option<(String, MpsLimits)> {
    devices.iter().find_map(serves)
}

/// The device whose daemon recorded claim `uid` is a client of, if any.
fn daemon_device_of(data: &CheckpointData, uid: &str) -> Option<String> {
    let (device, _) = claim_needs(&data.claims.get(uid)?.devices)?;
    Some(device)
}

/// Claims other than `except` with an MPS share on `device` (any state: a claim half-way
/// through still holds the device until its teardown), with their limits.
fn clients_of(
    data: &CheckpointData,
    device: &str,
    except: Option<&str>,
) -> BTreeMap<String, MpsLimits> {
    data.claims
        .iter()
        .filter(|(uid, _)| Some(uid.as_str()) != except)
        .filter_map(|(uid, r)| {
            let (d, limits) = claim_needs(&r.devices)?;
            (d == device).then(|| (uid.clone(), limits))
        })
        .collect()
}

/// Every device prepared claims need a daemon for: its GPU's UUID and its clients.
fn needed(data: &CheckpointData) -> BTreeMap<String, (String, BTreeMap<String, MpsLimits>)> {
    let mut out: BTreeMap<String, (String, BTreeMap<String, MpsLimits>)> = BTreeMap::new();
    for (uid, record) in &data.claims {
        if record.state != ClaimState::PrepareCompleted {
            continue;
        }
        let gpu = record.devices.iter().find(|d| serves(d).is_some());
        if let (Some((device, limits)), Some(gpu)) = (claim_needs(&record.devices), gpu) {
            out.entry(device)
                .or_insert_with(|| (gpu.gpu.uuid.clone(), BTreeMap::new()))
                .1
                .insert(uid.clone(), limits);
        }
    }
    out
}

/// How a daemon came to serve its clients.
enum BroughtUp {
    /// It was running.
    Running,
    /// It was started: the first time, or again after it died.
    Started {
        /// It had died (or its record was lost while clients needed it).
        again: bool,
    },
}

impl DeviceState {
    /// Make the daemon claim `uid` needs run and count the claim among its clients.
    pub(super) async fn ensure_mps(
        &self,
        data: &CheckpointData,
        uid: &str,
    ) -> Result<(), PrepareError> {
        let Some(device) = daemon_device_of(data, uid) else {
            return Ok(());
        };
        let clients = clients_of(data, &device, None);
        let brought = self.bring_up(&device, &clients).await?;
        if let BroughtUp::Started { again } = brought {
            info!(claim = %uid, %device, again, "started the MPS control daemon");
        }
        Ok(())
    }

    /// Take claim `uid` off its daemon's clients; the last client stops the daemon.
    pub(super) async fn release_mps(
        &self,
        data: &CheckpointData,
        uid: &str,
    ) -> Result<(), PrepareError> {
        let Some(device) = daemon_device_of(data, uid) else {
            return Ok(());
        };
        let remaining = clients_of(data, &device, Some(uid));
        let mut records = self.load_daemons().await?;
        let recorded = records.daemons.remove(&device);
        if remaining.is_empty() {
            self.step(Step::StopMps).await?;
            let dev = device.clone();
            self.mps_op(move |m| m.stop(&dev, recorded.as_ref()))
                .await?;
            info!(claim = %uid, %device, "stopped the MPS control daemon: its last client is gone");
        } else if let Some(mut daemon) = recorded {
            daemon = self
                .mps_op(move |m| {
                    if m.alive(&daemon) {
                        m.configure(&mut daemon, &remaining)?;
                    } else {
                        // Supervision starts it again for the remaining clients.
                        daemon.clients = remaining.keys().cloned().collect();
                    }
                    Ok(daemon)
                })
                .await?;
            records.daemons.insert(device, daemon);
        } else {
            // Other clients, no record: recovery or supervision brings the daemon up.
            return Ok(());
        }
        self.step(Step::RecordMpsDaemons).await?;
        self.save_daemons(records).await
    }

    /// Start the daemon of `device` unless it runs, give it `clients`, and record it.
    async fn bring_up(
        &self,
        device: &str,
        clients: &BTreeMap<String, MpsLimits>,
    ) -> Result<BroughtUp, PrepareError> {
        let mut records = self.load_daemons().await?;
        let previous = records.daemons.remove(device);
        let dev = device.to_owned();
        let (running, previous) = self
            .mps_op(move |m| {
                if previous.as_ref().is_some_and(|d| m.alive(d)) {
                    return Ok((true, previous));
                }
                // Not the recorded one (or none recorded): one the record lost is adopted
                // rather than made to clash with a second daemon on its pipe directory.
                match m.find_unrecorded(&dev)? {
                    Some(found) => Ok((true, Some(found))),
                    None => Ok((false, previous)),
                }
            })
            .await?;
        let (mut daemon, brought) = match previous {
            Some(daemon) if running => (daemon, BroughtUp::Running),
            previous => {
                self.step(Step::StartMps).await?;
                let dev = device.to_owned();
                let mut daemon = self.mps_op(move |m| m.start(&dev)).await?;
                let again = previous.is_some();
                if let Some(p) = &previous {
                    daemon.restarts = p.restarts.saturating_add(1);
                }
                (daemon, BroughtUp::Started { again })
            }
        };
        let clients = clients.clone();
        let before = daemon.clone();
        daemon = self
            .mps_op(move |m| {
                m.configure(&mut daemon, &clients)?;
                Ok(daemon)
            })
            .await?;
        if matches!(brought, BroughtUp::Running) && daemon == before {
            // A supervision pass that found everything as recorded writes nothing.
            return Ok(brought);
        }
        self.step(Step::RecordMpsDaemons).await?;
        records.daemons.insert(device.to_owned(), daemon);
        self.save_daemons(records).await?;
        Ok(brought)
    }

    async fn load_daemons(&self) -> Result<DaemonsData, PrepareError> {
        self.mps_op(|m| match m.load() {
            Ok(data) => Ok(data),
            // Nothing in it is needed to undo safely: start from what the checkpoint and
            // the pipe directories say, and the next write replaces the file.
            Err(MpsError::Corrupt { path, reason }) => {
                warn!(record = %path.display(), %reason, "the MPS daemon record is corrupt; rebuilding it");
                Ok(DaemonsData::default())
            }
            Err(other) => Err(other),
        })
        .await
    }

    async fn save_daemons(&self, records: DaemonsData) -> Result<(), PrepareError> {
        self.mps_op(move |m| m.save(&records)).await
    }

    /// Make the daemons agree with `data` (on disk): every device a prepared claim needs
    /// has a live daemon, every other daemon is stopped. A start that failed is tried again
    /// after a backoff, not at every pass.
    pub(super) async fn reconcile_mps(&self, data: &CheckpointData) -> MpsReport {
        let mut report = MpsReport::default();
        let needed = needed(data);
        for (device, (gpu, clients)) in &needed {
            if let Some(wait) = self.backoff_left(device) {
                report.down.push(format!(
                    "{device}: next start attempt in {}s",
                    wait.as_secs()
                ));
                report.down_gpus.insert(gpu.clone());
                continue;
            }
            match self.bring_up(device, clients).await {
                Ok(BroughtUp::Running) => {
                    self.backoff_clear(device);
                    report.running.push(device.clone());
                }
                Ok(BroughtUp::Started { .. }) => {
                    self.backoff_clear(device);
                    warn!(%device, clients = clients.len(), "the MPS control daemon was not running; started it again (its clients lost their MPS server)");
                    report.restarted.push(device.clone());
                }
                Err(error) => {
                    let wait = self.backoff_fail(device);
                    warn!(%device, %error, retry_in_s = wait.as_secs(), "cannot start the MPS control daemon; its clients run without one");
                    report.down.push(format!("{device}: {error}"));
                    report.down_gpus.insert(gpu.clone());
                }
            }
        }

        // Stop what nothing needs: recorded daemons, then daemons only their directories
        // tell of (a crash between start and record).
        let records = match self.load_daemons().await {
            Ok(records) => records,
            Err(error) => {
                warn!(%error, "cannot read the MPS daemon record; unneeded daemons are looked for again at the next pass");
                return report;
            }
        };
        let mut kept = records.clone();
        let mut unneeded: Vec<(String, Option<DaemonRecord>)> = Vec::new();
        for (device, daemon) in &records.daemons {
            if !needed.contains_key(device) {
                kept.daemons.remove(device);
                unneeded.push((device.clone(), Some(daemon.clone())));
            }
        }
        let known: BTreeSet<String> = records.daemons.keys().cloned().collect();
        match self.mps_op(move |m| m.unknown_dirs(&known)).await {
            Ok(dirs) => unneeded.extend(
                dirs.into_iter()
                    .filter(|d| !needed.contains_key(d))
                    .map(|d| (d, None)),
            ),
            Err(error) => warn!(%error, "cannot list the MPS directories"),
        }
        for (device, daemon) in unneeded {
            if self.step(Step::StopMps).await.is_err() {
                continue;
            }
            let (dev, record) = (device.clone(), daemon.clone());
            match self.mps_op(move |m| m.stop(&dev, record.as_ref())).await {
                Ok(()) => {
                    warn!(%device, "stopped an MPS control daemon no prepared claim needs");
                    report.stopped.push(device);
                }
                Err(error) => {
                    warn!(%device, %error, "cannot stop an MPS control daemon no claim needs; will retry");
                    if let Some(d) = daemon {
                        kept.daemons.insert(device, d);
                    }
                }
            }
        }
        if kept != records
            && self.step(Step::RecordMpsDaemons).await.is_ok()
            && let Err(error) = self.save_daemons(kept).await
        {
            warn!(%error, "cannot record the stopped MPS daemons; the next pass finds them gone");
        }
        report
    }

    /// One supervision pass: [`DeviceState::reconcile_mps`] under the lock, against the
    /// checkpoint on disk.
    pub async fn supervise_mps(&self) -> Result<MpsReport, PrepareError> {
        let _serial = self.serial.lock().await;
        let (_lock, data) = self.lock_and_load().await?;
        Ok(self.reconcile_mps(&data).await)
    }

    fn backoff_left(&self, device: &str) -> Option<Duration> {
        let map = self.mps_backoff.lock().unwrap_or_else(|e| e.into_inner());
        let b = map.get(device)?;
        b.next.checked_duration_since(Instant::now())
    }

    fn backoff_clear(&self, device: &str) {
        self.mps_backoff
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(device);
    }

    /// Count a failed start; the wait before the next attempt.
    fn backoff_fail(&self, device: &str) -> Duration {
        let mut map = self.mps_backoff.lock().unwrap_or_else(|e| e.into_inner());
        let failures = map.get(device).map_or(0, |b| b.failures).saturating_add(1);
        let wait = BACKOFF_FIRST
            .saturating_mul(1u32 << (failures - 1).min(16))
            .min(BACKOFF_MAX);
        map.insert(
            device.to_owned(),
            Backoff {
                failures,
                next: Instant::now() + wait,
            },
        );
        wait
    }
}
