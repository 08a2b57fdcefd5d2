//! What a claim's CDI spec says: every device's GPU or MIG UUID in `NVIDIA_VISIBLE_DEVICES`,
//! its device nodes, and MPS client limits where the config asks for MPS.

use super::cdi::{CDI_VERSION, CdiDir, ContainerEdits, DeviceNode, Spec, SpecDevice};
use super::checkpoint::DeviceRecord;
use super::error::PrepareError;

/// Build the spec of claim `uid` from its prepared devices and, per device, its nodes.
///
/// CDI applies env entries in order and the last one of a key wins, so variables that
/// must list several devices are set once at spec level, not per device.
pub fn build(cdi: &CdiDir, uid: &str, devices: &[DeviceRecord], nodes: &[Vec<String>]) -> Spec {
    let mut visible: Vec<&str> = Vec::new();
    for d in devices {
        if let Some(uuid) = d.visible_uuid.as_deref()
            && !visible.contains(&uuid)
        {
            visible.push(uuid);
        }
    }
    let mut env = vec![format!("NVIDIA_VISIBLE_DEVICES={}", visible.join(","))];
    let mps: Vec<_> = devices
        .iter()
        .filter_map(|d| d.sharing.and_then(|s| s.mps).map(|m| (d, m)))
        .collect();
    if let Some(percentage) = mps.iter().find_map(|(_, m)| m.active_thread_percentage) {
        env.push(format!("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE={percentage}"));
    }
    // Limits are per device ordinal, as the container sees devices: the order above.
    let limits: Vec<String> = mps
        .iter()
        .filter_map(|(d, m)| {
            let bytes = m.pinned_memory_limit_bytes?;
            let uuid = d.visible_uuid.as_deref()?;
            let ordinal = visible.iter().position(|v| *v == uuid)?;
            Some(format!("{ordinal}={}M", (bytes >> 20).max(1)))
        })
        .collect();
    if !limits.is_empty() {
        env.push(format!(
            "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT={}",
            limits.join(",")
        ));
    }
    let spec_devices = devices
        .iter()
        .enumerate()
        .map(|(i, d)| SpecDevice {
            name: CdiDir::device_name(uid, &d.device, d.share_id.as_deref()),
            container_edits: ContainerEdits {
                env: Vec::new(),
                device_nodes: nodes
                    .get(i)
                    .into_iter()
                    .flatten()
                    .map(|path| DeviceNode { path: path.clone() })
                    .collect(),
            },
        })
        .collect();
    Spec {
        cdi_version: CDI_VERSION.to_owned(),
        kind: cdi.kind(),
        devices: spec_devices,
        container_edits: ContainerEdits {
            env,
            device_nodes: Vec::new(),
        },
    }
}

/// `CUDA_MPS_ACTIVE_THREAD_PERCENTAGE` is one value per process, so every MPS device of a
/// claim must agree on it.
pub fn check_mps_limits(devices: &[DeviceRecord]) -> Result<(), PrepareError> {
    let mut seen: Option<(u32, &str)> = None;
    for d in devices {
        let Some(p) = d
            .sharing
            .and_then(|s| s.mps)
            .and_then(|m| m.active_thread_percentage)
        else {
            continue;
        };
        match seen {
            Some((q, first)) if q != p => {
                return Err(PrepareError::UnsupportedConfig {
                    device: d.device.clone(),
                    reason: format!(
                        "activeThreadPercentage {p} differs from {q} on {first}; a process has one MPS thread limit"
                    ),
                });
            }
            Some(_) => {}
            None => seen = Some((p, &d.device)),
        }
    }
    Ok(())
}
