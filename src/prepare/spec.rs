//! What a claim's CDI spec says: every device's GPU or MIG UUID in `NVIDIA_VISIBLE_DEVICES`,
//! its device nodes, and where the config asks for MPS, the client limits and the way to
//! the device's MPS control daemon (its pipe directory and shared memory).

use std::path::PathBuf;

use super::cdi::{CDI_VERSION, CdiDir, ContainerEdits, DeviceNode, Mount, Spec, SpecDevice};
use super::checkpoint::DeviceRecord;
use super::error::PrepareError;
use super::mps;

/// The host directories of the MPS control daemon a claim's MPS shares use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpsMounts {
    /// The daemon's pipe directory.
    pub pipe: PathBuf,
    /// The daemons' shared memory.
    pub shm: PathBuf,
}

/// Build the spec of claim `uid` from its prepared devices, per device its nodes, and the
/// directories of the MPS daemon its MPS shares use.
///
/// CDI applies env entries in order and the last one of a key wins, so variables that
/// must list several devices are set once at spec level, not per device.
pub fn build(
    cdi: &CdiDir,
    uid: &str,
    devices: &[DeviceRecord],
    nodes: &[Vec<String>],
    mps_daemon: Option<&MpsMounts>,
) -> Spec {
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
    // A client finds its server through the pipe directory and talks to it through shared
    // memory: both come from the daemon's side (NVIDIA's driver mounts the same two,
    // `cmd/gpu-kubelet-plugin/sharing.go`, `GetCDIContainerEdits`).
    let mut mounts = Vec::new();
    if let Some(daemon) = mps_daemon {
        env.push(format!("CUDA_MPS_PIPE_DIRECTORY={}", mps::CLIENT_PIPE_DIR));
        for (host, container) in [
            (&daemon.pipe, mps::CLIENT_PIPE_DIR),
            (&daemon.shm, mps::CLIENT_SHM_DIR),
        ] {
            mounts.push(Mount {
                host_path: host.display().to_string(),
                container_path: container.to_owned(),
                options: ["rbind", "rw", "nosuid", "nodev"]
                    .map(str::to_owned)
                    .to_vec(),
            });
        }
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
                ..ContainerEdits::default()
            },
        })
        .collect();
    Spec {
        cdi_version: CDI_VERSION.to_owned(),
        kind: cdi.kind(),
        devices: spec_devices,
        container_edits: ContainerEdits {
            env,
            mounts,
            ..ContainerEdits::default()
        },
    }
}

/// `CUDA_MPS_ACTIVE_THREAD_PERCENTAGE` is one value per process, so every MPS device of a
/// claim must agree on it; and `CUDA_MPS_PIPE_DIRECTORY` names one control daemon per
/// process, so a claim's MPS shares must all be on one GPU (whose daemon serves them).
pub fn check_mps_limits(devices: &[DeviceRecord]) -> Result<(), PrepareError> {
    let mut gpu: Option<&DeviceRecord> = None;
    for d in devices.iter().filter(|d| {
        !d.admin_access
            && d.sharing
                .is_some_and(|s| s.gpu == super::device::GpuSharing::Mps)
    }) {
        match gpu {
            Some(first) if first.gpu.uuid != d.gpu.uuid => {
                return Err(PrepareError::UnsupportedConfig {
                    device: d.device.clone(),
                    reason: format!(
                        "MPS shares of one claim must be on one GPU, and {} is on another; a process talks to one MPS control daemon",
                        first.device
                    ),
                });
            }
            Some(_) => {}
            None => gpu = Some(d),
        }
    }
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
