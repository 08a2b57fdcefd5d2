//! [`GpuControl`] on real GPUs: MIG instances through NVML, time-slice intervals through
//! `nvidia-smi compute-policy` (NVML has no public call for them; the NVIDIA DRA driver does
//! the same).
//!
//! NVML is loaded at run time (`libnvidia-ml.so.1` from the host driver), so building needs
//! no GPU. nvml-wrapper has no safe wrapper for creating and destroying GPU and compute
//! instances, so this file calls those NVML functions directly: the crate's one exception
//! to `unsafe_code = "deny"`. Every `unsafe` block passes handles NVML itself returned, for
//! a `Device` that outlives the call, and buffers sized as NVML documents.

#![allow(unsafe_code)]

use std::ffi::c_uint;
use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::ptr;

use nvml_wrapper::Device;
use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::ComputeMode;
use nvml_wrapper::error::{NvmlError, nvml_sym, nvml_try};
use nvml_wrapper_sys::bindings::{
    NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED, NVML_COMPUTE_INSTANCE_PROFILE_COUNT,
    NVML_GPU_INSTANCE_PROFILE_COUNT, nvmlComputeInstance_t, nvmlComputeInstanceInfo_t,
    nvmlComputeInstanceProfileInfo_t, nvmlDevice_t, nvmlGpuInstance_t, nvmlGpuInstanceInfo_t,
    nvmlGpuInstancePlacement_t,
};
use tracing::warn;

use super::{ControlError, GpuControl, MigInstance};
use crate::model::mig::{GpuProduct, Placement, profile, profiles};
use crate::prepare::config::TimeSliceInterval;
use crate::prepare::device::{GpuRef, GpuSharing};

/// More instances than any profile allows on one GPU (7 on today's parts).
const MAX_INSTANCES: usize = 32;
/// Where the driver publishes the device-file minors of MIG capabilities.
const CAPS_ROOT: &str = "/proc/driver/nvidia/capabilities";

/// Real GPUs through NVML and `nvidia-smi`.
pub struct NvmlGpuControl {
    nvml: Nvml,
    nvidia_smi: PathBuf,
}

impl NvmlGpuControl {
    /// Load NVML; `nvidia_smi` is the tool used for time-slice intervals.
    pub fn new(nvidia_smi: PathBuf) -> Result<Self, ControlError> {
        let nvml = Nvml::init().map_err(|e| ControlError::GpuNotFound {
            uuid: "*".to_owned(),
            reason: format!("cannot load NVML: {e}"),
        })?;
        Ok(NvmlGpuControl { nvml, nvidia_smi })
    }

    fn device(&self, gpu: &GpuRef) -> Result<Device<'_>, ControlError> {
        self.nvml
            .device_by_uuid(gpu.uuid.as_str())
            .map_err(|e| ControlError::GpuNotFound {
                uuid: gpu.uuid.clone(),
                reason: e.to_string(),
            })
    }

    /// NVML's GPU-instance profile ID for `name` on this GPU, from the MIG catalog.
    fn profile_id(
        &self,
        device: &Device<'_>,
        gpu: &GpuRef,
        name: &str,
    ) -> Result<(u32, u8), ControlError> {
        let product_name = device
            .name()
            .map_err(|e| failed("read product name", gpu, e))?;
        let product =
            GpuProduct::from_product_name(&product_name).ok_or_else(|| ControlError::Failed {
                op: "find MIG profile",
                gpu: gpu.index,
                reason: format!("{product_name:?} is not in the MIG catalog"),
            })?;
        let entry = profile(product, name).ok_or_else(|| ControlError::Failed {
            op: "find MIG profile",
            gpu: gpu.index,
            reason: format!("{} has no profile {name}", product.name()),
        })?;
        let id = entry.id.ok_or_else(|| ControlError::Failed {
            op: "find MIG profile",
            gpu: gpu.index,
            reason: format!(
                "the catalog does not know NVML's ID of {name} on {}",
                product.name()
            ),
        })?;
        Ok((id, entry.compute_slices))
    }

    /// The GPU instances of profile `profile_id`.
    fn gpu_instances(
        &self,
        device: &Device<'_>,
        profile_id: u32,
    ) -> Result<Vec<nvmlGpuInstance_t>, NvmlError> {
        let sym = nvml_sym(self.nvml.lib().nvmlDeviceGetGpuInstances.as_ref())?;
        let mut instances: Vec<nvmlGpuInstance_t> = vec![ptr::null_mut(); MAX_INSTANCES];
        let mut count: c_uint = 0;
        // SAFETY: the device handle is valid while `device` lives; the buffer holds
        // MAX_INSTANCES entries, more than NVML returns for any profile.
        unsafe {
            nvml_try(sym(
                device.handle(),
                profile_id,
                instances.as_mut_ptr(),
                &mut count,
            ))?;
        }
        instances.truncate(count as usize);
        Ok(instances)
    }

    fn gpu_instance_info(
        &self,
        instance: nvmlGpuInstance_t,
    ) -> Result<nvmlGpuInstanceInfo_t, NvmlError> {
        let sym = nvml_sym(self.nvml.lib().nvmlGpuInstanceGetInfo.as_ref())?;
        // SAFETY: `instance` came from NVML for a live device; `info` is plain data NVML fills.
        unsafe {
            let mut info: nvmlGpuInstanceInfo_t = std::mem::zeroed();
            nvml_try(sym(instance, &mut info))?;
            Ok(info)
        }
    }

    /// The GPU instance at `placement`, among the profiles in `profile_ids`.
    fn instance_at(
        &self,
        device: &Device<'_>,
        profile_ids: &[u32],
        placement: Placement,
    ) -> Result<Option<(nvmlGpuInstance_t, u32)>, NvmlError> {
        for &id in profile_ids {
            for instance in self.gpu_instances(device, id)? {
                let info = self.gpu_instance_info(instance)?;
                if info.placement.start == c_uint::from(placement.start)
                    && info.placement.size == c_uint::from(placement.size)
                {
                    return Ok(Some((instance, info.id)));
                }
            }
        }
        Ok(None)
    }

    /// Every GPU-instance profile ID this GPU supports.
    fn all_profile_ids(&self, device: &Device<'_>) -> Vec<u32> {
        (0..NVML_GPU_INSTANCE_PROFILE_COUNT)
            .filter_map(|index| device.profile_info(index).ok().map(|p| p.id))
            .collect()
    }

    /// Compute-instance profiles of a GPU instance: (profile ID, slice count).
    fn compute_profiles(&self, instance: nvmlGpuInstance_t) -> Result<Vec<(u32, u32)>, NvmlError> {
        let sym = nvml_sym(
            self.nvml
                .lib()
                .nvmlGpuInstanceGetComputeInstanceProfileInfo
                .as_ref(),
        )?;
        let mut out = Vec::new();
        for index in 0..NVML_COMPUTE_INSTANCE_PROFILE_COUNT {
            // SAFETY: `instance` is a live NVML handle; `info` is plain data NVML fills.
            let info = unsafe {
                let mut info: nvmlComputeInstanceProfileInfo_t = std::mem::zeroed();
                if nvml_try(sym(
                    instance,
                    index,
                    NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED,
                    &mut info,
                ))
                .is_err()
                {
                    continue; // not offered by this GPU instance
                }
                info
            };
            out.push((info.id, info.sliceCount));
        }
        Ok(out)
    }

    fn compute_instances(
        &self,
        instance: nvmlGpuInstance_t,
    ) -> Result<Vec<nvmlComputeInstance_t>, NvmlError> {
        let sym = nvml_sym(self.nvml.lib().nvmlGpuInstanceGetComputeInstances.as_ref())?;
        let mut all = Vec::new();
        for (profile_id, _) in self.compute_profiles(instance)? {
            let mut buf: Vec<nvmlComputeInstance_t> = vec![ptr::null_mut(); MAX_INSTANCES];
            let mut count: c_uint = 0;
            // SAFETY: live handle; buffer larger than the compute slices of any instance.
            unsafe {
                nvml_try(sym(instance, profile_id, buf.as_mut_ptr(), &mut count))?;
            }
            buf.truncate(count as usize);
            all.extend(buf);
        }
        Ok(all)
    }

    /// Destroy a GPU instance's compute instances, then the instance.
    fn destroy_instance(&self, instance: nvmlGpuInstance_t) -> Result<(), NvmlError> {
        let destroy_ci = nvml_sym(self.nvml.lib().nvmlComputeInstanceDestroy.as_ref())?;
        let destroy_gi = nvml_sym(self.nvml.lib().nvmlGpuInstanceDestroy.as_ref())?;
        for ci in self.compute_instances(instance)? {
            // SAFETY: `ci` was just listed by NVML for this live instance.
            unsafe { nvml_try(destroy_ci(ci))? };
        }
        // SAFETY: `instance` is live and now has no compute instances.
        unsafe { nvml_try(destroy_gi(instance)) }
    }

    /// UUID of the MIG device whose GPU instance ID is `gi_id`.
    fn mig_uuid(&self, device: &Device<'_>, gi_id: u32) -> Result<Option<String>, NvmlError> {
        let sym = nvml_sym(self.nvml.lib().nvmlDeviceGetGpuInstanceId.as_ref())?;
        for index in 0..device.mig_device_count()? {
            let Ok(mig) = device.mig_device_by_index(index) else {
                continue; // empty slot
            };
            let mut id: c_uint = 0;
            // SAFETY: `mig` is a live MIG device handle from NVML.
            unsafe { nvml_try(sym(mig.handle(), &mut id))? };
            if id == gi_id {
                return mig.uuid().map(Some);
            }
        }
        Ok(None)
    }

    fn set_timeslice(&self, gpu: &GpuRef, interval: TimeSliceInterval) -> Result<(), ControlError> {
        let value = interval.nvidia_smi_value().to_string();
        let output = Command::new(&self.nvidia_smi)
            .args([
                "compute-policy",
                "-i",
                gpu.uuid.as_str(),
                "--set-timeslice",
                value.as_str(),
            ])
            .output();
        let error = match output {
            Ok(out) if out.status.success() => return Ok(()),
            Ok(out) => String::from_utf8_lossy(&out.stderr)
                .trim()
                .chars()
                .take(512)
                .collect(),
            Err(e) => format!("cannot run {}: {e}", self.nvidia_smi.display()),
        };
        if interval == TimeSliceInterval::Default {
            // Some GPUs do not support time-slice settings (NVIDIA driver issues #81, #363);
            // then nothing was changed and there is nothing to reset.
            warn!(gpu = %gpu.uuid, %error, "cannot reset the time slice; leaving it as it is");
            return Ok(());
        }
        Err(ControlError::Failed {
            op: "set time slice",
            gpu: gpu.index,
            reason: error,
        })
    }
}

impl GpuControl for NvmlGpuControl {
    fn create_mig(
        &self,
        gpu: &GpuRef,
        profile: &str,
        placement: Placement,
    ) -> Result<String, ControlError> {
        let device = self.device(gpu)?;
        let (profile_id, compute_slices) = self.profile_id(&device, gpu, profile)?;
        let create_gi = nvml_sym(
            self.nvml
                .lib()
                .nvmlDeviceCreateGpuInstanceWithPlacement
                .as_ref(),
        )
        .map_err(|e| failed("create MIG instance", gpu, e))?;
        let where_ = nvmlGpuInstancePlacement_t {
            start: c_uint::from(placement.start),
            size: c_uint::from(placement.size),
        };
        let mut instance: nvmlGpuInstance_t = ptr::null_mut();
        // SAFETY: live device handle; `where_` and `instance` outlive the call.
        unsafe {
            nvml_try(create_gi(
                device.handle(),
                profile_id,
                &where_,
                &mut instance,
            ))
        }
        .map_err(|e| failed("create MIG instance", gpu, e))?;

        let created = (|| -> Result<String, NvmlError> {
            let ci_profile = self
                .compute_profiles(instance)?
                .into_iter()
                .find(|(_, slices)| *slices == u32::from(compute_slices))
                .map(|(id, _)| id)
                .ok_or(NvmlError::NotSupported)?;
            let create_ci = nvml_sym(
                self.nvml
                    .lib()
                    .nvmlGpuInstanceCreateComputeInstance
                    .as_ref(),
            )?;
            let mut ci: nvmlComputeInstance_t = ptr::null_mut();
            // SAFETY: `instance` was just created by NVML; `ci` outlives the call.
            unsafe { nvml_try(create_ci(instance, ci_profile, &mut ci))? };
            let gi_id = self.gpu_instance_info(instance)?.id;
            self.mig_uuid(&device, gi_id)?.ok_or(NvmlError::NotFound)
        })();
        match created {
            Ok(uuid) => Ok(uuid),
            Err(e) => {
                // Leave no half-made instance behind.
                if let Err(cleanup) = self.destroy_instance(instance) {
                    warn!(gpu = %gpu.uuid, error = %cleanup, "cannot remove a half-created MIG instance");
                }
                Err(failed("create MIG compute instance", gpu, e))
            }
        }
    }

    fn destroy_mig(
        &self,
        gpu: &GpuRef,
        profile: &str,
        placement: Placement,
    ) -> Result<(), ControlError> {
        let device = self.device(gpu)?;
        let (profile_id, _) = self.profile_id(&device, gpu, profile)?;
        match self.instance_at(&device, &[profile_id], placement) {
            Ok(Some((instance, _))) => self
                .destroy_instance(instance)
                .map_err(|e| failed("destroy MIG instance", gpu, e)),
            Ok(None) => Ok(()),
            Err(e) => Err(failed("list MIG instances", gpu, e)),
        }
    }

    fn mig_instances(&self, gpu: &GpuRef) -> Result<Vec<MigInstance>, ControlError> {
        let device = self.device(gpu)?;
        let product_name = device
            .name()
            .map_err(|e| failed("read product name", gpu, e))?;
        let Some(product) = GpuProduct::from_product_name(&product_name) else {
            // Not a MIG-capable part tessera knows: it cannot have created anything there.
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for id in self.all_profile_ids(&device) {
            let instances = self
                .gpu_instances(&device, id)
                .map_err(|e| failed("list MIG instances", gpu, e))?;
            if instances.is_empty() {
                continue;
            }
            let Some(entry) = profiles(product).iter().find(|p| p.id == Some(id)) else {
                warn!(gpu = %gpu.uuid, profile_id = id, "GPU instances of a profile the MIG catalog does not know; left alone");
                continue;
            };
            for instance in instances {
                let info = self
                    .gpu_instance_info(instance)
                    .map_err(|e| failed("read MIG instance", gpu, e))?;
                let (Ok(start), Ok(size)) = (
                    u8::try_from(info.placement.start),
                    u8::try_from(info.placement.size),
                ) else {
                    continue; // not a placement any catalog profile has
                };
                let uuid = self
                    .mig_uuid(&device, info.id)
                    .map_err(|e| failed("read MIG device", gpu, e))?;
                out.push(MigInstance {
                    profile: entry.name.to_owned(),
                    placement: Placement::new(start, size),
                    uuid,
                });
            }
        }
        Ok(out)
    }

    fn apply_sharing(&self, gpu: &GpuRef, sharing: GpuSharing) -> Result<(), ControlError> {
        match sharing {
            GpuSharing::TimeSlicing { interval } => {
                let mut device = self.device(gpu)?;
                device
                    .set_compute_mode(ComputeMode::Default)
                    .map_err(|e| failed("set compute mode", gpu, e))?;
                self.set_timeslice(gpu, interval)
            }
            // Exclusive-process, as NVIDIA's DRA driver sets before starting a control
            // daemon (`cmd/gpu-kubelet-plugin/sharing.go`): the MPS server is then the one
            // process on the GPU, so a process that bypasses MPS (no pipe directory) fails
            // instead of running past the limits. The plugin starts the daemon right after.
            GpuSharing::Mps => {
                let mut device = self.device(gpu)?;
                device
                    .set_compute_mode(ComputeMode::ExclusiveProcess)
                    .map_err(|e| failed("set compute mode", gpu, e))
            }
        }
    }

    fn clear_sharing(&self, gpu: &GpuRef) -> Result<(), ControlError> {
        let mut device = self.device(gpu)?;
        match device.set_compute_mode(ComputeMode::Default) {
            Ok(()) => {}
            // Recovery resets every GPU no claim shares, including ones whose compute mode
            // cannot be changed: nothing to undo there, as with the time slice below.
            Err(NvmlError::NotSupported) => {
                tracing::debug!(gpu = %gpu.uuid, "compute mode cannot be set on this GPU");
            }
            Err(e) => return Err(failed("set compute mode", gpu, e)),
        }
        self.set_timeslice(gpu, TimeSliceInterval::Default)
    }

    fn device_nodes(
        &self,
        gpu: &GpuRef,
        mig: Option<Placement>,
    ) -> Result<Vec<String>, ControlError> {
        let device = self.device(gpu)?;
        let minor = device
            .minor_number()
            .map_err(|e| failed("read minor number", gpu, e))?;
        let mut nodes = vec![
            "/dev/nvidiactl".to_owned(),
            "/dev/nvidia-uvm".to_owned(),
            "/dev/nvidia-uvm-tools".to_owned(),
            format!("/dev/nvidia{minor}"),
        ];
        let Some(placement) = mig else {
            return Ok(nodes);
        };
        let ids = self.all_profile_ids(&device);
        let (instance, gi_id) = self
            .instance_at(&device, &ids, placement)
            .map_err(|e| failed("list MIG instances", gpu, e))?
            .ok_or_else(|| ControlError::Failed {
                op: "find MIG instance",
                gpu: gpu.index,
                reason: format!("no instance at {}:{}", placement.start, placement.size),
            })?;
        let ci = self
            .compute_instances(instance)
            .map_err(|e| failed("list compute instances", gpu, e))?
            .into_iter()
            .next()
            .ok_or_else(|| ControlError::Failed {
                op: "find compute instance",
                gpu: gpu.index,
                reason: format!("GPU instance {gi_id} has none"),
            })?;
        let info_sym = nvml_sym(self.nvml.lib().nvmlComputeInstanceGetInfo_v2.as_ref())
            .map_err(|e| failed("read compute instance", gpu, e))?;
        // SAFETY: `ci` was just listed by NVML; `info` is plain data NVML fills.
        let ci_id = unsafe {
            let mut info: nvmlComputeInstanceInfo_t = std::mem::zeroed();
            nvml_try(info_sym(ci, &mut info))
                .map_err(|e| failed("read compute instance", gpu, e))?;
            info.id
        };
        for access in [
            format!("{CAPS_ROOT}/gpu{minor}/mig/gi{gi_id}/access"),
            format!("{CAPS_ROOT}/gpu{minor}/mig/gi{gi_id}/ci{ci_id}/access"),
        ] {
            nodes.push(format!(
                "/dev/nvidia-caps/nvidia-cap{}",
                cap_minor(&access, gpu)?
            ));
        }
        Ok(nodes)
    }
}

/// The `DeviceFileMinor:` of a capability's `access` file.
fn cap_minor(path: &str, gpu: &GpuRef) -> Result<u32, ControlError> {
    let text = fs::read_to_string(path)
        .map_err(|e| failed("read MIG capability", gpu, format!("{path}: {e}")))?;
    text.lines()
        .find_map(|line| line.strip_prefix("DeviceFileMinor:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| {
            failed(
                "read MIG capability",
                gpu,
                format!("{path} has no DeviceFileMinor"),
            )
        })
}

fn failed(op: &'static str, gpu: &GpuRef, error: impl std::fmt::Display) -> ControlError {
    ControlError::Failed {
        op,
        gpu: gpu.index,
        reason: error.to_string(),
    }
}

// Keep the handle type named so a change of nvml-wrapper-sys's layout fails to compile here.
const _: Option<nvmlDevice_t> = None;
