//! The NVML [`UsageSource`]: running compute processes, their memory and SM samples, and
//! device utilization, through the same run-time-loaded `libnvidia-ml.so` as discovery.
//! Only query functions are called; no GPU setting is changed.
//!
//! NVML facts this relies on (NVML API reference, "Device Queries"):
//! - `nvmlDeviceGetComputeRunningProcesses` on a MIG device handle lists that instance's
//!   processes; on the parent of MIG instances it is not used, so nothing is counted twice;
//! - `nvmlDeviceGetProcessUtilization` is not supported on MIG device handles, and returns only
//!   processes that ran a kernel since the timestamp passed in (idle ones are absent);
//! - `nvmlDeviceGetUtilizationRates` is not supported on MIG device handles either; the
//!   instance's utilization is then unknown (`None`), never borrowed from the parent.

use std::collections::HashMap;
use std::sync::Mutex;

use nvml_wrapper::Device;
use nvml_wrapper::Nvml;
use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::error::NvmlError;

use super::{
    DeviceSample, MAX_DEVICES, MAX_PROCESSES_PER_DEVICE, ProcessSample, UsageError, UsageSource,
};

/// `nvmlDeviceGetMigMode` reports this when MIG is on (`NVML_DEVICE_MIG_ENABLE`).
const MIG_ENABLED: u32 = 1;

/// The real GPUs' processes, through NVML.
pub struct NvmlUsageSource {
    nvml: Nvml,
    /// Per device UUID, the newest process-utilization timestamp seen, so each call gets the
    /// samples since the previous one (µs, the driver's clock).
    last_seen: Mutex<HashMap<String, u64>>,
}

impl std::fmt::Debug for NvmlUsageSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NvmlUsageSource").finish_non_exhaustive()
    }
}

impl NvmlUsageSource {
    /// Loads and initialises NVML.
    pub fn new() -> Result<Self, UsageError> {
        let nvml = Nvml::init().map_err(err("nvmlInit"))?;
        Ok(NvmlUsageSource {
            nvml,
            last_seen: Mutex::new(HashMap::new()),
        })
    }

    fn device(
        &self,
        device: &Device<'_>,
        parent: Option<&str>,
    ) -> Result<DeviceSample, UsageError> {
        let uuid = device.uuid().map_err(err("nvmlDeviceGetUUID"))?;
        let mut processes: Vec<ProcessSample> = optional(device.running_compute_processes())
            .map_err(err("nvmlDeviceGetComputeRunningProcesses"))?
            .unwrap_or_default()
            .into_iter()
            .take(MAX_PROCESSES_PER_DEVICE)
            .map(|p| ProcessSample {
                pid: p.pid,
                used_memory_bytes: match p.used_gpu_memory {
                    UsedGpuMemory::Used(bytes) => Some(bytes),
                    UsedGpuMemory::Unavailable => None,
                },
                sm_percent: None,
            })
            .collect();
        let utilization_percent = optional(device.utilization_rates())
            .map_err(err("nvmlDeviceGetUtilizationRates"))?
            .map(|u| u.gpu);
        if parent.is_none() {
            let since = self.since(&uuid);
            let samples = optional(device.process_utilization_stats(since))
                .map_err(err("nvmlDeviceGetProcessUtilization"))?
                .unwrap_or_default();
            let mut latest: HashMap<u32, (u64, u32)> = HashMap::new();
            for s in &samples {
                let entry = latest.entry(s.pid).or_insert((s.timestamp, s.sm_util));
                if s.timestamp >= entry.0 {
                    *entry = (s.timestamp, s.sm_util);
                }
            }
            if let Some(newest) = samples.iter().map(|s| s.timestamp).max() {
                self.seen(&uuid, newest);
            }
            for p in &mut processes {
                p.sm_percent = latest.get(&p.pid).map(|&(_, sm)| sm.min(100));
            }
        }
        Ok(DeviceSample {
            uuid,
            parent_uuid: parent.map(str::to_owned),
            utilization_percent: utilization_percent.map(|u| u.min(100)),
            processes,
        })
    }

    fn since(&self, uuid: &str) -> u64 {
        let seen = self.last_seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.get(uuid).copied().unwrap_or(0)
    }

    fn seen(&self, uuid: &str, timestamp: u64) {
        let mut seen = self.last_seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.insert(uuid.to_owned(), timestamp);
    }
}

impl UsageSource for NvmlUsageSource {
    fn sample(&self) -> Result<Vec<DeviceSample>, UsageError> {
        let count = self
            .nvml
            .device_count()
            .map_err(err("nvmlDeviceGetCount"))?;
        let mut out = Vec::new();
        for index in 0..count {
            let gpu = self
                .nvml
                .device_by_index(index)
                .map_err(err("nvmlDeviceGetHandleByIndex"))?;
            let mig_on =
                matches!(optional(gpu.mig_mode()), Ok(Some(m)) if m.current == MIG_ENABLED);
            if !mig_on {
                out.push(self.device(&gpu, None)?);
                continue;
            }
            let parent = gpu.uuid().map_err(err("nvmlDeviceGetUUID"))?;
            let slots = gpu
                .mig_device_count()
                .map_err(err("nvmlDeviceGetMaxMigDeviceCount"))?;
            for slot in 0..slots {
                // Empty slots answer NotFound.
                let Some(mig) = optional(gpu.mig_device_by_index(slot))
                    .map_err(err("nvmlDeviceGetMigDeviceHandleByIndex"))?
                else {
                    continue;
                };
                out.push(self.device(&mig, Some(&parent))?);
            }
            if out.len() > MAX_DEVICES {
                return Err(UsageError::TooManyDevices {
                    found: out.len(),
                    max: MAX_DEVICES,
                });
            }
        }
        Ok(out)
    }

    fn describe(&self) -> String {
        match self.nvml.sys_driver_version() {
            Ok(version) => format!("NVML {version}"),
            Err(_) => "NVML".to_owned(),
        }
    }
}

/// `Ok(None)` for what a device does not support or does not have.
fn optional<T>(result: Result<T, NvmlError>) -> Result<Option<T>, NvmlError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(NvmlError::NotSupported | NvmlError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

fn err(call: &'static str) -> impl Fn(NvmlError) -> UsageError {
    move |source| UsageError::Nvml { call, source }
}
