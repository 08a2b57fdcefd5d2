//! The one sequencer of prepare and unprepare: checkpoint first, then hardware, then CDI,
//! then checkpoint again; undo in reverse. Calls are serialised in the process (a mutex) and
//! across plugin instances (`serialize.lock`), and the checkpoint is re-read under the lock
//! every time, so two instances during a rolling update never overwrite each other.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tracing::{info, warn};

use super::cdi::{CdiDir, Spec};
use super::checkpoint::{CheckpointData, CheckpointStore, ClaimRecord, ClaimState, DeviceRecord};
use super::claim::{AllocatedDevice, ClaimRef, PreparedDevice};
use super::control::GpuControl;
use super::device::{self, DeviceKind};
use super::error::PrepareError;
use super::fault::{FaultPlan, Step};
use super::holders::{
    check_conflicts, created_mig_uuid, shared_instance_held_elsewhere, shared_instance_uuid,
    sharing_held_elsewhere,
};
use super::lock::StateLock;
use super::spec;
use crate::model::Inventory;

/// Where prepare keeps its state and how it names things.
#[derive(Debug, Clone)]
pub struct StateConfig {
    /// Driver name (CDI vendor, results filter).
    pub driver: String,
    /// Directory of the checkpoint and `serialize.lock`.
    pub state_dir: PathBuf,
    /// CDI spec directory.
    pub cdi_dir: PathBuf,
    /// Legacy share replicas advertised per GPU.
    pub share_replicas: u32,
    /// This boot's ID (`/proc/sys/kernel/random/boot_id`).
    pub boot_id: String,
}

/// What start-up recovery did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Claims found half-prepared or half-unprepared and rolled back.
    pub rolled_back: Vec<String>,
    /// Claims whose rollback failed (they stay recorded and are retried).
    pub failed: Vec<String>,
    /// Claims recorded before the last reboot, dropped because their devices are gone.
    pub dropped_after_reboot: Vec<String>,
    /// Temp files left by a crash mid-write and removed.
    pub temps_removed: usize,
    /// Claims prepared after recovery.
    pub prepared: usize,
}

/// Prepared devices on this node: the checkpoint, the hardware and the CDI specs.
pub struct DeviceState {
    config: StateConfig,
    store: CheckpointStore,
    cdi: CdiDir,
    control: Arc<dyn GpuControl>,
    serial: tokio::sync::Mutex<()>,
    faults: Option<Arc<FaultPlan>>,
    prepared: AtomicUsize,
}

impl DeviceState {
    /// State in `config.state_dir`, changing GPUs through `control`.
    pub fn new(config: StateConfig, control: Arc<dyn GpuControl>) -> Self {
        DeviceState {
            store: CheckpointStore::new(&config.state_dir),
            cdi: CdiDir::new(&config.cdi_dir, &config.driver),
            config,
            control,
            serial: tokio::sync::Mutex::new(()),
            faults: None,
            prepared: AtomicUsize::new(0),
        }
    }

    /// Install a fault plan (tests only; see [`FaultPlan`]).
    pub fn with_faults(mut self, plan: Arc<FaultPlan>) -> Self {
        self.faults = Some(plan);
        self
    }

    /// The CDI naming in use.
    pub fn cdi(&self) -> &CdiDir {
        &self.cdi
    }

    /// Claims prepared as of the last checkpoint this instance read or wrote.
    pub fn prepared_claims(&self) -> usize {
        self.prepared.load(Ordering::Relaxed)
    }

    /// Run once at start (and periodically): drop what a reboot erased, roll back claims a
    /// crash left half-done, and remove temp files.
    pub async fn recover(&self) -> Result<RecoveryReport, PrepareError> {
        let _serial = self.serial.lock().await;
        let (_lock, mut data) = self.lock_and_load().await?;
        let mut report = RecoveryReport::default();
        let store = self.store.clone();
        let cdi = self.cdi.clone();
        report.temps_removed = blocking(move || {
            let state = store.remove_temps().unwrap_or_else(|e| {
                warn!(error = %e, "cannot clean checkpoint temp files");
                Vec::new()
            });
            let specs = cdi.remove_temps().unwrap_or_else(|e| {
                warn!(error = %e, "cannot clean CDI temp files");
                Vec::new()
            });
            Ok(state.len() + specs.len())
        })
        .await?;

        if data.boot_id != self.config.boot_id {
            if !data.boot_id.is_empty() {
                for (uid, record) in std::mem::take(&mut data.claims) {
                    warn!(claim = %record.display(&uid), state = ?record.state,
                        "dropping a claim prepared before the last reboot: its devices are gone and the kubelet prepares it again");
                    let cdi = self.cdi.clone();
                    let spec_uid = uid.clone();
                    if let Err(e) = blocking(move || Ok(cdi.remove(&spec_uid)?)).await {
                        warn!(error = %e, "cannot remove the CDI spec of a dropped claim");
                    }
                    report.dropped_after_reboot.push(uid);
                }
            }
            data.boot_id.clone_from(&self.config.boot_id);
            self.save(&data).await?;
        }
        let unfinished: Vec<String> = data
            .claims
            .iter()
            .filter(|(_, r)| r.state != ClaimState::PrepareCompleted)
            .map(|(uid, _)| uid.clone())
            .collect();
        for uid in unfinished {
            match self.tear_down(&mut data, &uid).await {
                Ok(()) => {
                    info!(claim = %uid, "rolled back a claim a crash left half-done");
                    report.rolled_back.push(uid);
                }
                Err(error) => {
                    warn!(claim = %uid, %error, "rollback failed; will retry");
                    report.failed.push(uid);
                    // Continue from what is on disk, not from the half-updated copy.
                    data = self.load().await?;
                }
            }
        }
        report.prepared = data.completed();
        Ok(report)
    }

    /// Prepare `claim`'s `allocated` devices. Idempotent: a prepared claim returns what it
    /// returned before; a half-prepared one is rolled back and prepared again.
    pub async fn prepare(
        &self,
        claim: &ClaimRef,
        allocated: &[AllocatedDevice],
        inventory: &Inventory,
    ) -> Result<Vec<PreparedDevice>, PrepareError> {
        let _serial = self.serial.lock().await;
        let (_lock, mut data) = self.lock_and_load().await?;
        match data.claims.get(&claim.uid) {
            Some(record) if record.state == ClaimState::PrepareCompleted => {
                return Ok(record.prepared_devices());
            }
            Some(record) => {
                info!(claim = %claim, state = ?record.state, "rolling back an unfinished attempt first");
                self.tear_down(&mut data, &claim.uid).await?;
            }
            None => {}
        }
        let devices = self.plan(claim, allocated, inventory, &data)?;
        if data.boot_id.is_empty() {
            data.boot_id.clone_from(&self.config.boot_id);
        }
        data.claims.insert(
            claim.uid.clone(),
            ClaimRecord {
                namespace: claim.namespace.clone(),
                name: claim.name.clone(),
                state: ClaimState::PrepareStarted,
                devices,
            },
        );
        self.step(Step::RecordPrepareStarted).await?;
        self.save(&data).await?;

        let applied = self.apply(&mut data, &claim.uid).await;
        let completed = match applied {
            Ok(()) => {
                set_state(&mut data, &claim.uid, ClaimState::PrepareCompleted);
                match self.step(Step::RecordPrepareCompleted).await {
                    Ok(()) => self.save(&data).await,
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        if let Err(error) = completed {
            // Disk says PrepareStarted; undo from there. If undoing fails too, the record
            // stays and the next prepare or recovery finishes the job.
            set_state(&mut data, &claim.uid, ClaimState::PrepareStarted);
            if let Err(rollback) = self.tear_down(&mut data, &claim.uid).await {
                warn!(claim = %claim, %rollback, "rollback after a failed prepare failed; will retry");
            }
            return Err(error);
        }
        data.claims
            .get(&claim.uid)
            .map(ClaimRecord::prepared_devices)
            .ok_or_else(|| PrepareError::Task("claim vanished from the checkpoint".to_owned()))
    }

    /// Undo everything prepare did for `claim`. Idempotent: an unknown claim is a success.
    pub async fn unprepare(&self, claim: &ClaimRef) -> Result<(), PrepareError> {
        let _serial = self.serial.lock().await;
        let (_lock, mut data) = self.lock_and_load().await?;
        if !data.claims.contains_key(&claim.uid) {
            return Ok(());
        }
        self.tear_down(&mut data, &claim.uid).await
    }

    // === planning ===

    /// Resolve every device and check it against what other claims hold. Pure.
    fn plan(
        &self,
        claim: &ClaimRef,
        allocated: &[AllocatedDevice],
        inventory: &Inventory,
        data: &CheckpointData,
    ) -> Result<Vec<DeviceRecord>, PrepareError> {
        let mut records: Vec<DeviceRecord> = Vec::with_capacity(allocated.len());
        for dev in allocated {
            let resolved = device::resolve(&dev.device, inventory, self.config.share_replicas)?;
            let sharing = if dev.admin_access {
                None
            } else {
                device::sharing_plan(dev, &resolved.kind)?
            };
            let visible_uuid = match &resolved.kind {
                DeviceKind::Whole | DeviceKind::Shared | DeviceKind::Share { .. } => {
                    Some(resolved.gpu.uuid.clone())
                }
                DeviceKind::StaticMig { uuid, .. } => Some(uuid.clone()),
                DeviceKind::DynamicMig { placement, .. } if dev.admin_access => Some(
                    created_mig_uuid(data, &resolved.gpu.uuid, *placement).ok_or_else(|| {
                        PrepareError::UnknownDevice {
                            device: dev.device.clone(),
                            reason: "admin access to a MIG device no claim has created".to_owned(),
                        }
                    })?,
                ),
                DeviceKind::DynamicMig { .. } | DeviceKind::SharedMig { .. } => None,
            };
            let name = CdiDir::device_name(&claim.uid, &dev.device, dev.share_id.as_deref());
            let record = DeviceRecord {
                request: dev.request.clone(),
                pool: dev.pool.clone(),
                device: dev.device.clone(),
                share_id: dev.share_id.clone(),
                admin_access: dev.admin_access,
                gpu: resolved.gpu,
                kind: resolved.kind,
                sharing,
                visible_uuid,
                cdi_device_ids: vec![self.cdi.qualified(&name)],
            };
            check_conflicts(claim, &record, &records, data)?;
            records.push(record);
        }
        spec::check_mps_limits(&records)?;
        Ok(records)
    }

    // === doing ===

    /// Hardware changes, then the CDI spec. Records MIG UUIDs in `data` as they appear.
    async fn apply(&self, data: &mut CheckpointData, uid: &str) -> Result<(), PrepareError> {
        let devices = data
            .claims
            .get(uid)
            .map(|r| r.devices.clone())
            .unwrap_or_default();
        let mut shared_gpus: HashSet<String> = HashSet::new();
        let mut nodes = Vec::with_capacity(devices.len());
        for (i, dev) in devices.iter().enumerate() {
            if !dev.admin_access {
                if let DeviceKind::DynamicMig { profile, placement } = &dev.kind {
                    self.step(Step::CreateMig).await?;
                    let (gpu, profile, placement) = (dev.gpu.clone(), profile.clone(), *placement);
                    let uuid = self
                        .control(move |c| c.create_mig(&gpu, &profile, placement))
                        .await?;
                    info!(claim = %uid, device = %dev.device, mig = %uuid, "created MIG instance");
                    if let Some(record) = data.claims.get_mut(uid)
                        && let Some(d) = record.devices.get_mut(i)
                    {
                        d.visible_uuid = Some(uuid);
                    }
                }
                if let DeviceKind::SharedMig { profile, placement } = &dev.kind {
                    // The shares of a dynamic-MIG GPU run on one full-size instance: the
                    // first share creates it, the others use it.
                    let uuid = match shared_instance_uuid(data, &dev.gpu.uuid) {
                        Some(uuid) => uuid,
                        None => {
                            self.step(Step::CreateMig).await?;
                            let (gpu, profile, placement) =
                                (dev.gpu.clone(), profile.clone(), *placement);
                            let uuid = self
                                .control(move |c| c.create_mig(&gpu, &profile, placement))
                                .await?;
                            info!(claim = %uid, device = %dev.device, mig = %uuid, "created the shared full-size MIG instance");
                            uuid
                        }
                    };
                    if let Some(d) = data.claims.get_mut(uid).and_then(|r| r.devices.get_mut(i)) {
                        d.visible_uuid = Some(uuid);
                    }
                }
                if let Some(plan) = dev.sharing {
                    let first_here = shared_gpus.insert(dev.gpu.uuid.clone());
                    if first_here && !sharing_held_elsewhere(data, uid, &dev.gpu.uuid) {
                        self.step(Step::ApplySharing).await?;
                        let gpu = dev.gpu.clone();
                        self.control(move |c| c.apply_sharing(&gpu, plan.gpu))
                            .await?;
                    }
                }
            }
            let gpu = dev.gpu.clone();
            let mig = match &dev.kind {
                DeviceKind::StaticMig { placement, .. }
                | DeviceKind::DynamicMig { placement, .. }
                | DeviceKind::SharedMig { placement, .. } => Some(*placement),
                _ => None,
            };
            nodes.push(self.control(move |c| c.device_nodes(&gpu, mig)).await?);
        }
        let record = data
            .claims
            .get(uid)
            .ok_or_else(|| PrepareError::Task("claim vanished from the checkpoint".to_owned()))?;
        let spec: Spec = spec::build(&self.cdi, uid, &record.devices, &nodes);
        self.step(Step::WriteCdi).await?;
        let cdi = self.cdi.clone();
        let uid = uid.to_owned();
        blocking(move || Ok(cdi.write(&uid, &spec)?)).await
    }

    /// Undo a claim from whatever state it is in, then drop its record.
    async fn tear_down(&self, data: &mut CheckpointData, uid: &str) -> Result<(), PrepareError> {
        let Some(record) = data.claims.get(uid).cloned() else {
            return Ok(());
        };
        if record.state == ClaimState::PrepareCompleted {
            set_state(data, uid, ClaimState::UnprepareStarted);
            self.step(Step::RecordUnprepareStarted).await?;
            self.save(data).await?;
        }
        // The spec goes first, so no new container can start with devices being taken away.
        self.step(Step::DeleteCdi).await?;
        let cdi = self.cdi.clone();
        let spec_uid = uid.to_owned();
        blocking(move || Ok(cdi.remove(&spec_uid)?)).await?;

        let mut cleared: HashSet<String> = HashSet::new();
        let mut destroyed: HashSet<String> = HashSet::new();
        for dev in record.devices.iter().rev().filter(|d| !d.admin_access) {
            if dev.sharing.is_some()
                && cleared.insert(dev.gpu.uuid.clone())
                && !sharing_held_elsewhere(data, uid, &dev.gpu.uuid)
            {
                self.step(Step::ClearSharing).await?;
                let gpu = dev.gpu.clone();
                self.control(move |c| c.clear_sharing(&gpu)).await?;
            }
            if let DeviceKind::SharedMig { profile, placement } = &dev.kind {
                // Destroyed with the last share anywhere on the GPU.
                if destroyed.insert(dev.gpu.uuid.clone())
                    && !shared_instance_held_elsewhere(data, uid, &dev.gpu.uuid)
                {
                    self.step(Step::DestroyMig).await?;
                    let (gpu, profile, placement) = (dev.gpu.clone(), profile.clone(), *placement);
                    self.control(move |c| c.destroy_mig(&gpu, &profile, placement))
                        .await?;
                }
            }
            if let DeviceKind::DynamicMig { profile, placement } = &dev.kind {
                self.step(Step::DestroyMig).await?;
                let (gpu, profile, placement) = (dev.gpu.clone(), profile.clone(), *placement);
                self.control(move |c| c.destroy_mig(&gpu, &profile, placement))
                    .await?;
            }
        }
        data.claims.remove(uid);
        self.step(Step::RemoveRecord).await?;
        self.save(data).await
    }

    // === plumbing ===

    async fn step(&self, step: Step) -> Result<(), PrepareError> {
        match &self.faults {
            Some(plan) => plan.check(step).await,
            None => Ok(()),
        }
    }

    /// Take the cross-instance lock and read the checkpoint under it, in one trip to the
    /// blocking pool (each trip is a thread hand-off on the latency path).
    async fn lock_and_load(&self) -> Result<(StateLock, CheckpointData), PrepareError> {
        let dir = self.config.state_dir.clone();
        let store = self.store.clone();
        let (lock, data) = blocking(move || {
            let lock = StateLock::acquire(&dir)?;
            Ok((lock, store.load()?))
        })
        .await?;
        self.prepared.store(data.completed(), Ordering::Relaxed);
        Ok((lock, data))
    }

    async fn load(&self) -> Result<CheckpointData, PrepareError> {
        let store = self.store.clone();
        let data = blocking(move || Ok(store.load()?)).await?;
        self.prepared.store(data.completed(), Ordering::Relaxed);
        Ok(data)
    }

    async fn save(&self, data: &CheckpointData) -> Result<(), PrepareError> {
        let store = self.store.clone();
        let copy = data.clone();
        blocking(move || Ok(store.save(&copy)?)).await?;
        self.prepared.store(data.completed(), Ordering::Relaxed);
        Ok(())
    }

    async fn control<T, F>(&self, op: F) -> Result<T, PrepareError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn GpuControl) -> Result<T, super::control::ControlError> + Send + 'static,
    {
        let control = Arc::clone(&self.control);
        blocking(move || Ok(op(control.as_ref())?)).await
    }
}

/// Run blocking file or hardware work off the async threads.
async fn blocking<T, F>(work: F) -> Result<T, PrepareError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, PrepareError> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| PrepareError::Task(e.to_string()))?
}

fn set_state(data: &mut CheckpointData, uid: &str, state: ClaimState) {
    if let Some(record) = data.claims.get_mut(uid) {
        record.state = state;
    }
}

#[cfg(test)]
mod tests;
