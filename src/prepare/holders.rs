//! Questions about what the claims in a checkpoint hold: who keeps a GPU in a sharing mode,
//! who holds the full-size instance shares run on, which MIG UUID a placement has, and whether
//! a new device collides with any of it. Pure functions over [`CheckpointData`].

use super::checkpoint::{CheckpointData, ClaimRecord, ClaimState, DeviceRecord};
use super::claim::ClaimRef;
use super::device::DeviceKind;
use super::error::PrepareError;
use crate::model::mig::Placement;

/// Whether a claim other than `uid`, in any state, has `gpu` in a sharing plan: while one
/// does, tearing down must not clear the mode (that claim may run on it, or its own
/// teardown clears it last).
pub(super) fn sharing_held_elsewhere(data: &CheckpointData, uid: &str, gpu: &str) -> bool {
    data.claims
        .iter()
        .any(|(other, record)| other != uid && plans_sharing(record, gpu))
}

/// Whether a fully prepared claim other than `uid` has set `gpu`'s sharing mode, so setting
/// it up again can be skipped. A claim half-way through prepare or teardown does not count:
/// its teardown may already have cleared the mode (the setting is idempotent, so applying it
/// again is harmless, while skipping it would leave the new share on an unshared GPU).
pub(super) fn sharing_set_elsewhere(data: &CheckpointData, uid: &str, gpu: &str) -> bool {
    data.claims.iter().any(|(other, record)| {
        other != uid && record.state == ClaimState::PrepareCompleted && plans_sharing(record, gpu)
    })
}

fn plans_sharing(record: &ClaimRecord, gpu: &str) -> bool {
    record
        .devices
        .iter()
        .any(|d| !d.admin_access && d.sharing.is_some() && d.gpu.uuid == gpu)
}

/// The full-size instance the shares of dynamic-MIG `gpu` run on, if a share holds it.
pub(super) fn shared_instance_uuid(data: &CheckpointData, gpu: &str) -> Option<String> {
    data.claims
        .values()
        .flat_map(|r| r.devices.iter())
        .find(|d| {
            !d.admin_access
                && d.gpu.uuid == gpu
                && matches!(d.kind, DeviceKind::SharedMig { .. })
                && d.visible_uuid.is_some()
        })
        .and_then(|d| d.visible_uuid.clone())
}

/// Whether a claim other than `uid` holds a share of dynamic-MIG `gpu`.
pub(super) fn shared_instance_held_elsewhere(data: &CheckpointData, uid: &str, gpu: &str) -> bool {
    data.claims.iter().any(|(other, record)| {
        other != uid
            && record.devices.iter().any(|d| {
                !d.admin_access
                    && d.gpu.uuid == gpu
                    && matches!(d.kind, DeviceKind::SharedMig { .. })
            })
    })
}

/// The UUID of the MIG instance a claim created at `placement` on `gpu`.
pub(super) fn created_mig_uuid(
    data: &CheckpointData,
    gpu: &str,
    placement: Placement,
) -> Option<String> {
    data.claims
        .values()
        .filter(|r| r.state == ClaimState::PrepareCompleted)
        .flat_map(|r| r.devices.iter())
        .find(|d| {
            !d.admin_access
                && d.gpu.uuid == gpu
                && matches!(&d.kind,
                    DeviceKind::DynamicMig { placement: p, .. } | DeviceKind::SharedMig { placement: p, .. }
                    if *p == placement)
        })
        .and_then(|d| d.visible_uuid.clone())
}

/// Refuse `ours` if another claim (or an earlier device of this claim) holds hardware it
/// overlaps, or shares its GPU in another mode. Admin access overlaps by design.
pub(super) fn check_conflicts(
    claim: &ClaimRef,
    ours: &DeviceRecord,
    earlier: &[DeviceRecord],
    data: &CheckpointData,
) -> Result<(), PrepareError> {
    if ours.admin_access {
        return Ok(());
    }
    let this_claim = claim.to_string();
    let others = data
        .claims
        .iter()
        .filter(|(uid, _)| **uid != claim.uid)
        .flat_map(|(uid, r)| r.devices.iter().map(move |d| (r.display(uid), d)));
    let mine = earlier.iter().map(|d| (this_claim.clone(), d));
    let our_print = ours.kind.footprint(ours.share_id.as_deref());
    for (holder, theirs) in others.chain(mine) {
        if theirs.admin_access || theirs.gpu.uuid != ours.gpu.uuid {
            continue;
        }
        if our_print.conflicts_with(&theirs.kind.footprint(theirs.share_id.as_deref())) {
            return Err(PrepareError::DeviceInUse {
                device: ours.device.clone(),
                holder: if theirs.device == ours.device {
                    holder
                } else {
                    format!("{holder} through overlapping device {}", theirs.device)
                },
            });
        }
        if let (Some(a), Some(b)) = (ours.sharing, theirs.sharing)
            && a.gpu != b.gpu
        {
            return Err(PrepareError::SharingConflict {
                device: ours.device.clone(),
                gpu: ours.gpu.index,
                holder,
                theirs: b.gpu.to_string(),
                ours: a.gpu.to_string(),
            });
        }
    }
    Ok(())
}
