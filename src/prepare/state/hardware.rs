//! The device side of one claim: MIG instances, sharing settings and the CDI spec, set up
//! and torn down. No checkpoint writes here: the callers record intent before and outcome
//! after, for all the claims of a call at once.

use std::collections::HashSet;

use tracing::info;

use super::{DeviceState, blocking};
use crate::prepare::cdi::Spec;
use crate::prepare::checkpoint::CheckpointData;
use crate::prepare::device::DeviceKind;
use crate::prepare::error::PrepareError;
use crate::prepare::fault::Step;
use crate::prepare::holders::{
    shared_instance_held_elsewhere, shared_instance_uuid, sharing_held_elsewhere,
    sharing_set_elsewhere,
};
use crate::prepare::spec;

impl DeviceState {
    /// Hardware changes, then the CDI spec. Records MIG UUIDs in `data` as they appear.
    pub(super) async fn apply(
        &self,
        data: &mut CheckpointData,
        uid: &str,
    ) -> Result<(), PrepareError> {
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
                    if first_here && !sharing_set_elsewhere(data, uid, &dev.gpu.uuid) {
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
        // The daemon before the spec: no client container starts without its server.
        self.ensure_mps(data, uid).await?;
        let record = data
            .claims
            .get(uid)
            .ok_or_else(|| PrepareError::Task("claim vanished from the checkpoint".to_owned()))?;
        let mps = match record.devices.iter().find_map(super::mps::serves) {
            Some((device, _)) => Some(spec::MpsMounts {
                pipe: self.mps.dirs(&device)?.pipe,
                shm: self.mps.shm_dir(),
            }),
            None => None,
        };
        let spec: Spec = spec::build(&self.cdi, uid, &record.devices, &nodes, mps.as_ref());
        self.step(Step::WriteCdi).await?;
        let cdi = self.cdi.clone();
        let uid = uid.to_owned();
        blocking(move || Ok(cdi.write(&uid, &spec)?)).await
    }

    /// Undo a claim's devices and CDI spec from whatever state it is in, leaving its record
    /// in `data` for the caller to drop and write: the checkpoint keeps saying what is left
    /// to undo until the caller's next write, so a crash in between is finished by recovery.
    pub(super) async fn undo(&self, data: &CheckpointData, uid: &str) -> Result<(), PrepareError> {
        let Some(record) = data.claims.get(uid) else {
            return Ok(());
        };
        // The spec goes first, so no new container can start with devices being taken away.
        self.step(Step::DeleteCdi).await?;
        let cdi = self.cdi.clone();
        let spec_uid = uid.to_owned();
        blocking(move || Ok(cdi.remove(&spec_uid)?)).await?;
        // Then the daemon, while the GPU is still in MPS mode.
        self.release_mps(data, uid).await?;

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
        Ok(())
    }
}
