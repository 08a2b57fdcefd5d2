//! Recovery, at start and then periodically: make the node agree with the checkpoint again
//! after anything that stopped a call half-way (a crash, a failed rollback, a reboot, a
//! corrupt file).
//!
//! ```text
//! lock + read ─▶ corrupt? move it aside (checkpoint.json.corrupt-<n>), start empty
//!   ─▶ remove temp files ─▶ new boot? drop every claim ─▶ roll back unfinished claims
//!   ─▶ reconcile: destroy MIG instances and remove CDI specs no recorded claim accounts for
//!   ─▶ first recovery of the process, or after a corrupt file: reset the sharing setting
//!      of every GPU no recorded claim shares
//! ```
//!
//! Reconciling is what makes a lost checkpoint safe: everything tessera creates on the node
//! can be found without it (MIG instances on GPUs in dynamic MIG mode, which are tessera's
//! alone; CDI specs named `k8s.<driver>-claim_<uid>.json`), so whatever no record accounts
//! for is removed, and a claim the kubelet prepares again starts from clean hardware.
//!
//! The kubelet sends `NodePrepareResources` again only for claims its own cache does not
//! mark prepared (`prepareResources` in `pkg/kubelet/cm/dra/manager.go`, Kubernetes v1.34:
//! a claim whose cached info `isPrepared()` is skipped): new pods and retries, not pods
//! already running. Those keep running; NVML refuses to destroy an instance a process
//! uses, so it is destroyed by a later recovery once free (`docs/plugin.md`, Recovery).

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use tracing::{info, warn};

use super::{DeviceState, RecoveryReport, blocking};
use crate::model::mig::Placement;
use crate::model::{Inventory, MigState};
use crate::prepare::atomic;
use crate::prepare::cdi::CdiError;
use crate::prepare::checkpoint::{CheckpointData, CheckpointError, ClaimState};
use crate::prepare::device::{DeviceKind, GpuRef};
use crate::prepare::error::PrepareError;
use crate::prepare::fault::Step;
use crate::prepare::lock::StateLock;
use crate::prepare::mps::MPS_RECORD_FILE;

impl DeviceState {
    /// Run once at start and then periodically, with the GPUs discovery sees now: move a
    /// corrupt checkpoint aside, drop what a reboot erased, roll back claims a crash left
    /// half-done, remove temp files, and remove MIG instances and CDI specs that no
    /// recorded claim accounts for.
    pub async fn recover(&self, inventory: &Inventory) -> Result<RecoveryReport, PrepareError> {
        let _serial = self.serial.lock().await;
        let mut report = RecoveryReport::default();
        let (_lock, mut data) = self.lock_and_load_or_move_aside(&mut report).await?;
        let store = self.store.clone();
        let cdi = self.cdi.clone();
        let dir = self.config.state_dir.clone();
        report.temps_removed = blocking(move || {
            let state = store.remove_temps().unwrap_or_else(|e| {
                warn!(error = %e, "cannot clean checkpoint temp files");
                Vec::new()
            });
            let specs = cdi.remove_temps().unwrap_or_else(|e| {
                warn!(error = %e, "cannot clean CDI temp files");
                Vec::new()
            });
            let daemons = atomic::remove_temps(&dir, MPS_RECORD_FILE).unwrap_or_else(|e| {
                warn!(error = %e, "cannot clean MPS record temp files");
                Vec::new()
            });
            Ok(state.len() + specs.len() + daemons.len())
        })
        .await?;

        if data.boot_id != self.config.boot_id {
            if !data.boot_id.is_empty() {
                for (uid, record) in std::mem::take(&mut data.claims) {
                    warn!(claim = %record.display(&uid), state = ?record.state,
                        "dropping a claim prepared before the last reboot: its devices are gone and the kubelet prepares it again");
                    report.dropped_after_reboot.push(uid);
                }
            }
            data.boot_id.clone_from(&self.config.boot_id);
            // Also the first write after a corrupt file was moved aside.
            self.record(Step::RecordRecovery, &data).await?;
        }
        let unfinished: Vec<String> = data
            .claims
            .iter()
            .filter(|(_, r)| r.state != ClaimState::PrepareCompleted)
            .map(|(uid, _)| uid.clone())
            .collect();
        for uid in unfinished {
            match self.undo(&data, &uid).await {
                Ok(()) => {
                    info!(claim = %uid, "rolled back a claim a crash left half-done");
                    data.claims.remove(&uid);
                    report.rolled_back.push(uid);
                }
                Err(error) => {
                    warn!(claim = %uid, %error, "rollback failed; will retry");
                    report.failed.push(uid);
                }
            }
        }
        if !report.rolled_back.is_empty() {
            self.record(Step::RecordRecovery, &data).await?;
        }
        // Only against a checkpoint on disk: what is removed now is what the file does not
        // account for, so a crash from here on loses nothing.
        self.reconcile(&data, inventory, &mut report).await?;
        report.mps = self.reconcile_mps(&data).await;
        if self.sharing_unchecked.load(Ordering::Relaxed)
            && self
                .reset_unheld_sharing(&data, inventory, &mut report)
                .await?
        {
            self.sharing_unchecked.store(false, Ordering::Relaxed);
        }
        report.prepared = data.completed();
        report.corrupt_kept = self.store.corrupt_kept();
        Ok(report)
    }

    /// Take the lock and read the checkpoint; a corrupt one is moved aside (under the lock,
    /// so no other instance reads it meanwhile) and recovery goes on from an empty one.
    async fn lock_and_load_or_move_aside(
        &self,
        report: &mut RecoveryReport,
    ) -> Result<(StateLock, CheckpointData), PrepareError> {
        let dir = self.config.state_dir.clone();
        let store = self.store.clone();
        let (lock, loaded) = blocking(move || {
            let lock = StateLock::acquire(&dir)?;
            Ok((lock, store.load()))
        })
        .await?;
        let data = match loaded {
            Ok(data) => data,
            Err(CheckpointError::Corrupt { path, reason }) => {
                self.step(Step::MoveCorrupt).await?;
                let store = self.store.clone();
                let moved = blocking(move || Ok(store.move_aside()?)).await?;
                warn!(checkpoint = %path.display(), %reason, moved_to = %moved.display(),
                    "the checkpoint is corrupt: moved aside; starting from an empty one and removing what no claim accounts for");
                report.corrupt_moved_to = Some(moved);
                // The lost file may have recorded sharing settings that are still applied.
                self.sharing_unchecked.store(true, Ordering::Relaxed);
                CheckpointData::default()
            }
            Err(other) => return Err(other.into()),
        };
        self.prepared.store(data.completed(), Ordering::Relaxed);
        Ok((lock, data))
    }

    /// Put every GPU no recorded claim shares back to its default sharing setting. Sharing
    /// settings cannot be listed like MIG instances (NVML has no call for the time slice),
    /// so this runs where one may have been lost: at the first recovery of a process (a
    /// crash may have come anywhere) and after a corrupt checkpoint. Returns whether every
    /// GPU was reset.
    async fn reset_unheld_sharing(
        &self,
        data: &CheckpointData,
        inventory: &Inventory,
        report: &mut RecoveryReport,
    ) -> Result<bool, PrepareError> {
        let held: BTreeSet<&str> = data
            .claims
            .values()
            .flat_map(|r| r.devices.iter())
            .filter(|d| d.sharing.is_some() && !d.admin_access)
            .map(|d| d.gpu.uuid.as_str())
            .collect();
        let mut all = true;
        for gpu in inventory
            .gpus
            .iter()
            .filter(|g| !held.contains(g.uuid.as_str()))
        {
            let gpu = GpuRef {
                index: gpu.index,
                uuid: gpu.uuid.clone(),
            };
            self.step(Step::ClearSharing).await?;
            let g = gpu.clone();
            if let Err(error) = self.control(move |c| c.clear_sharing(&g)).await {
                warn!(gpu = %gpu.uuid, %error, "cannot reset the sharing setting of a GPU no claim shares; will retry");
                report
                    .orphans_left
                    .push(format!("{} sharing setting", gpu.uuid));
                all = false;
            }
        }
        Ok(all)
    }

    /// Destroy the MIG instances on dynamic-MIG GPUs and remove the CDI specs that no claim
    /// in `data` accounts for. A claim of any state accounts for what its devices name (a
    /// `PrepareStarted` one for instances it may be creating), so nothing a live call or a
    /// pending rollback needs is touched.
    async fn reconcile(
        &self,
        data: &CheckpointData,
        inventory: &Inventory,
        report: &mut RecoveryReport,
    ) -> Result<(), PrepareError> {
        let held: BTreeSet<(String, String, Placement)> = data
            .claims
            .values()
            .flat_map(|r| r.devices.iter())
            .filter(|d| !d.admin_access)
            .filter_map(|d| match &d.kind {
                DeviceKind::DynamicMig { profile, placement }
                | DeviceKind::SharedMig { profile, placement } => {
                    Some((d.gpu.uuid.clone(), profile.clone(), *placement))
                }
                _ => None,
            })
            .collect();
        for gpu in inventory
            .gpus
            .iter()
            .filter(|g| matches!(g.mig, MigState::Dynamic))
        {
            let gpu = GpuRef {
                index: gpu.index,
                uuid: gpu.uuid.clone(),
            };
            let listed = {
                let gpu = gpu.clone();
                self.control(move |c| c.mig_instances(&gpu)).await
            };
            let instances = match listed {
                Ok(instances) => instances,
                Err(error) => {
                    warn!(gpu = %gpu.uuid, %error, "cannot list MIG instances; orphans are looked for again at the next recovery");
                    report
                        .orphans_left
                        .push(format!("{} (not listed)", gpu.uuid));
                    continue;
                }
            };
            for instance in instances {
                let key = (
                    gpu.uuid.clone(),
                    instance.profile.clone(),
                    instance.placement,
                );
                if held.contains(&key) {
                    continue;
                }
                let what = format!(
                    "{} {} at {}:{}",
                    gpu.uuid, instance.profile, instance.placement.start, instance.placement.size
                );
                self.step(Step::DestroyMig).await?;
                let (g, profile, placement) =
                    (gpu.clone(), instance.profile.clone(), instance.placement);
                match self
                    .control(move |c| c.destroy_mig(&g, &profile, placement))
                    .await
                {
                    Ok(()) => {
                        warn!(instance = %what, mig = ?instance.uuid, "destroyed a MIG instance no claim accounts for");
                        report.orphan_instances_removed.push(what);
                    }
                    // In use (a container still runs on it): NVML refuses, and the next
                    // recovery tries again once it is free.
                    Err(error) => {
                        warn!(instance = %what, %error, "cannot destroy a MIG instance no claim accounts for; will retry");
                        report.orphans_left.push(what);
                    }
                }
            }
        }

        let cdi = self.cdi.clone();
        let with_specs = blocking(move || {
            cdi.claims_with_specs().map_err(|source| {
                PrepareError::Cdi(CdiError::Io {
                    path: cdi.dir().to_owned(),
                    source,
                })
            })
        })
        .await;
        let with_specs = match with_specs {
            Ok(uids) => uids,
            Err(error) => {
                warn!(%error, "cannot list CDI specs; orphans are looked for again at the next recovery");
                report
                    .orphans_left
                    .push("CDI specs (not listed)".to_owned());
                return Ok(());
            }
        };
        for uid in with_specs {
            if data.claims.contains_key(&uid) {
                continue;
            }
            self.step(Step::RemoveOrphanCdi).await?;
            let cdi = self.cdi.clone();
            let spec_uid = uid.clone();
            match blocking(move || Ok(cdi.remove(&spec_uid)?)).await {
                Ok(()) => {
                    warn!(claim = %uid, "removed the CDI spec of a claim the checkpoint does not record");
                    report.orphan_specs_removed.push(uid);
                }
                Err(error) => {
                    warn!(claim = %uid, %error, "cannot remove an orphan CDI spec; will retry");
                    report.orphans_left.push(format!("CDI spec of {uid}"));
                }
            }
        }
        Ok(())
    }
}
