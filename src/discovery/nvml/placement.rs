//! Where an existing MIG device sits on its GPU: the one NVML query `nvml-wrapper` does not
//! wrap, so the crate's single `unsafe` block lives here.
//!
//! The placement (first memory slice and size) is what makes a static MIG device's name
//! stable (`gpu-0-mig-1g10gb-3`). NVML gives it through the GPU instance: MIG device →
//! GPU-instance ID → GPU-instance handle → `nvmlGpuInstanceGetInfo().placement`. All three
//! calls are read-only queries.

#![allow(unsafe_code)]

use nvml_wrapper::error::{NvmlError, nvml_sym, nvml_try};
use nvml_wrapper::{Device, Nvml};

/// `(start, size)` of the GPU instance that `mig` (a MIG device handle of `parent`) belongs to.
pub(super) fn of(
    nvml: &Nvml,
    parent: &Device<'_>,
    mig: &Device<'_>,
) -> Result<(u32, u32), NvmlError> {
    let lib = nvml.lib();
    let get_instance_id = nvml_sym(lib.nvmlDeviceGetGpuInstanceId.as_ref())?;
    let get_instance = nvml_sym(lib.nvmlDeviceGetGpuInstanceById.as_ref())?;
    let get_info = nvml_sym(lib.nvmlGpuInstanceGetInfo.as_ref())?;
    // SAFETY: the handles come from live `Device`s borrowed from `nvml`, so NVML is
    // initialised and the handles are valid for the duration of these calls. Every out
    // pointer points at a local of exactly the type the symbol's signature names (the types
    // are inferred from those signatures), zero-initialised, and is read only after NVML
    // reported success. `nvmlGpuInstanceInfo_t` is plain data (a handle, integers and a
    // placement struct), for which all-zero bytes are a valid value. The GPU-instance handle
    // is not owned and needs no release.
    unsafe {
        let mut instance_id = 0;
        nvml_try(get_instance_id(mig.handle(), &mut instance_id))?;
        let mut instance = std::ptr::null_mut();
        nvml_try(get_instance(parent.handle(), instance_id, &mut instance))?;
        let mut info = std::mem::MaybeUninit::zeroed();
        nvml_try(get_info(instance, info.as_mut_ptr()))?;
        let info = info.assume_init();
        Ok((info.placement.start, info.placement.size))
    }
}
