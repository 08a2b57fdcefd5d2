//! The one sequencer of prepare and unprepare: checkpoint first, then hardware, then CDI,
//! then checkpoint again; undo in reverse. Calls are serialised in the process (a mutex) and
//! across plugin instances (`serialize.lock`), and the checkpoint is re-read under the lock
//! every time, so two instances during a rolling update never overwrite each other.
//!
//! The claims of one kubelet call go through together (`batch`): one lock, one read, two
//! writes. `hardware` holds the per-claim device and CDI steps; this file planning, recovery
//! and the checkpoint plumbing.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::cdi::CdiDir;
use super::checkpoint::{CheckpointData, CheckpointStore, ClaimState, DeviceRecord};
use super::claim::{AllocatedDevice, ClaimRef, PreparedDevice};
use super::control::GpuControl;
use super::device::{self, DeviceKind};
use super::error::PrepareError;
use super::fault::{FaultPlan, Step};
use super::holders::{check_conflicts, created_mig_uuid};
use super::lock::StateLock;
use super::mps::{MpsConfig, MpsDaemons, MpsError};
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
    /// Where MPS control daemons live and what runs them.
    pub mps: MpsConfig,
}

/// What start-up recovery did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Where a corrupt checkpoint found by this recovery was moved.
    pub corrupt_moved_to: Option<PathBuf>,
    /// Every corrupt checkpoint kept beside the live one (this recovery's and earlier ones),
    /// until an operator removes them.
    pub corrupt_kept: Vec<PathBuf>,
    /// MIG instances on GPUs in dynamic MIG mode that no recorded claim accounts for,
    /// destroyed (`<GPU UUID> <profile> at <start>:<size>`).
    pub orphan_instances_removed: Vec<String>,
    /// CDI specs of claims the checkpoint does not record, removed (claim UIDs).
    pub orphan_specs_removed: Vec<String>,
    /// Orphans that could not be removed (an instance still in use, a file that cannot be
    /// deleted); the next recovery tries again.
    pub orphans_left: Vec<String>,
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
    /// What became of the MPS control daemons.
    pub mps: MpsReport,
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
    /// Whether GPUs' sharing settings may disagree with the checkpoint (see `recovery`).
    sharing_unchecked: AtomicBool,
    mps: MpsDaemons,
    /// Devices whose MPS daemon failed to start, and when to try again (see `mps`).
    mps_backoff: std::sync::Mutex<std::collections::BTreeMap<String, mps::Backoff>>,
}

impl DeviceState {
    /// State in `config.state_dir`, changing GPUs through `control`.
    pub fn new(config: StateConfig, control: Arc<dyn GpuControl>) -> Self {
        DeviceState {
            store: CheckpointStore::new(&config.state_dir),
            mps: MpsDaemons::new(config.mps.clone(), &config.state_dir),
            mps_backoff: std::sync::Mutex::new(std::collections::BTreeMap::new()),
            cdi: CdiDir::new(&config.cdi_dir, &config.driver),
            config,
            control,
            serial: tokio::sync::Mutex::new(()),
            faults: None,
            prepared: AtomicUsize::new(0),
            sharing_unchecked: AtomicBool::new(true),
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

    /// The MPS control daemons.
    pub fn mps(&self) -> &MpsDaemons {
        &self.mps
    }

    /// Claims prepared as of the last checkpoint this instance read or wrote.
    pub fn prepared_claims(&self) -> usize {
        self.prepared.load(Ordering::Relaxed)
    }

    /// Prepare one claim: [`DeviceState::prepare_all`] with a call of one.
    pub async fn prepare(
        &self,
        claim: &ClaimRef,
        allocated: &[AllocatedDevice],
        inventory: &Inventory,
    ) -> Result<Vec<PreparedDevice>, PrepareError> {
        let call = [(claim.clone(), allocated.to_vec())];
        self.prepare_all(&call, inventory)
            .await
            .pop()
            .unwrap_or_else(|| Err(PrepareError::Task("the claim got no outcome".to_owned())))
    }

    /// Unprepare one claim: [`DeviceState::unprepare_all`] with a call of one.
    pub async fn unprepare(&self, claim: &ClaimRef) -> Result<(), PrepareError> {
        self.unprepare_all(std::slice::from_ref(claim))
            .await
            .pop()
            .unwrap_or_else(|| Err(PrepareError::Task("the claim got no outcome".to_owned())))
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
        let asks_mps = records.iter().any(|r| {
            !r.admin_access && r.sharing.is_some_and(|s| s.gpu == device::GpuSharing::Mps)
        });
        if asks_mps {
            // Refused before anything is recorded or changed: without the daemon the
            // limits would not be enforced.
            self.mps.check_binary()?;
        }
        Ok(records)
    }

    // === plumbing ===

    async fn step(&self, step: Step) -> Result<(), PrepareError> {
        match &self.faults {
            Some(plan) => plan.check(step).await,
            None => Ok(()),
        }
    }

    /// Pass `step`, then write `data` as the checkpoint.
    async fn record(&self, step: Step, data: &CheckpointData) -> Result<(), PrepareError> {
        self.step(step).await?;
        self.save(data).await
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

    async fn save(&self, data: &CheckpointData) -> Result<(), PrepareError> {
        let store = self.store.clone();
        let copy = data.clone();
        blocking(move || Ok(store.save(&copy)?)).await?;
        self.prepared.store(data.completed(), Ordering::Relaxed);
        Ok(())
    }

    /// Run a daemon operation on the blocking pool.
    async fn mps_op<T, F>(&self, op: F) -> Result<T, PrepareError>
    where
        T: Send + 'static,
        F: FnOnce(&MpsDaemons) -> Result<T, MpsError> + Send + 'static,
    {
        let daemons = self.mps.clone();
        blocking(move || Ok(op(&daemons)?)).await
    }

    async fn control<T, F>(&self, op: F) -> Result<T, PrepareError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn GpuControl) -> Result<T, super::control::ControlError> + Send + 'static,
    {
        let control = Arc::clone(&self.control);
        let out = blocking(move || Ok(op(control.as_ref())?)).await;
        // A test "killed" the process inside the GPU operation (the fake GPUs report steps
        // inside their calls): nothing after it may run, not even the handling of its
        // error, which could otherwise finish within the same poll.
        if let Some(plan) = &self.faults
            && plan.crashed()
        {
            std::future::pending::<()>().await;
        }
        out
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

mod batch;
mod hardware;
mod mps;
mod recovery;

pub use batch::Outcomes;
pub use mps::MpsReport;

#[cfg(test)]
mod tests;
