//! The NVML [`DeviceSource`]: the real GPUs, read through `libnvidia-ml.so` loaded at run
//! time (so building needs no GPU and no driver). Only query functions are called.

use nvml_wrapper::Nvml;
use nvml_wrapper::enums::device::DeviceArchitecture;
use nvml_wrapper::error::NvmlError;
use tracing::{debug, warn};

use super::{DeviceSource, DiscoveryError, MigStrategy};
use crate::model::inventory::MAX_INVENTORY_GPUS;
use crate::model::mig::{GpuProduct, Placement};
use crate::model::{Gpu, Inventory, MigDevice, MigState};

mod placement;

/// `nvmlDeviceGetMigMode` reports this when MIG is on (`NVML_DEVICE_MIG_ENABLE`).
const MIG_ENABLED: u32 = 1;

/// The real GPUs, through NVML.
pub struct NvmlSource {
    nvml: Nvml,
    strategy: MigStrategy,
}

impl std::fmt::Debug for NvmlSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NvmlSource")
            .field("strategy", &self.strategy)
            .finish_non_exhaustive()
    }
}

impl NvmlSource {
    /// Loads and initialises NVML. Fails with a clear error on a machine without the NVIDIA
    /// driver.
    pub fn new(strategy: MigStrategy) -> Result<Self, DiscoveryError> {
        let nvml = Nvml::init().map_err(nvml_err("nvmlInit", None))?;
        Ok(NvmlSource { nvml, strategy })
    }

    fn gpu(&self, index: u32) -> Result<Gpu, DiscoveryError> {
        let at = Some(index);
        let device = self
            .nvml
            .device_by_index(index)
            .map_err(nvml_err("nvmlDeviceGetHandleByIndex", at))?;
        let uuid = device.uuid().map_err(nvml_err("nvmlDeviceGetUUID", at))?;
        let product_name = device.name().map_err(nvml_err("nvmlDeviceGetName", at))?;
        let pci = device
            .pci_info()
            .map_err(nvml_err("nvmlDeviceGetPciInfo", at))?;
        let memory_bytes = device
            .memory_info()
            .map_err(nvml_err("nvmlDeviceGetMemoryInfo", at))?
            .total;
        let architecture = device
            .architecture()
            .map_err(nvml_err("nvmlDeviceGetArchitecture", at))?;
        let cc = device
            .cuda_compute_capability()
            .map_err(nvml_err("nvmlDeviceGetCudaComputeCapability", at))?;
        let mig_on = match device.mig_mode() {
            Ok(mode) => {
                if mode.pending != mode.current {
                    warn!(
                        gpu = index,
                        current = mode.current,
                        pending = mode.pending,
                        "MIG mode change is pending a GPU reset; advertising the current mode"
                    );
                }
                mode.current == MIG_ENABLED
            }
            // GPUs that cannot do MIG say so with NotSupported.
            Err(NvmlError::NotSupported) => false,
            Err(e) => return Err(nvml_err("nvmlDeviceGetMigMode", at)(e)),
        };
        let product = GpuProduct::from_product_name(&product_name);
        let mig = match (mig_on, self.strategy, product) {
            (false, ..) => MigState::Disabled,
            (true, MigStrategy::Dynamic, Some(_)) => MigState::Dynamic,
            (true, strategy, _) => {
                if strategy == MigStrategy::Dynamic {
                    warn!(
                        gpu = index,
                        product = %product_name,
                        "dynamic MIG needs a GPU in tessera's MIG catalog; advertising this GPU's existing MIG devices instead"
                    );
                }
                MigState::Static {
                    devices: self.mig_devices(index, &device)?,
                }
            }
        };
        Ok(Gpu {
            index,
            uuid,
            pci_bus_id: normalise_bus_id(&pci.bus_id),
            product_name,
            memory_bytes,
            architecture: architecture_name(architecture).to_owned(),
            cuda_compute_capability: format!("{}.{}", cc.major, cc.minor),
            mig,
        })
    }

    /// The MIG devices that exist on `parent`, with their placements.
    fn mig_devices(
        &self,
        index: u32,
        parent: &nvml_wrapper::Device<'_>,
    ) -> Result<Vec<MigDevice>, DiscoveryError> {
        let at = Some(index);
        let slots = parent
            .mig_device_count()
            .map_err(nvml_err("nvmlDeviceGetMaxMigDeviceCount", at))?;
        let mut devices = Vec::new();
        for slot in 0..slots {
            let mig = match parent.mig_device_by_index(slot) {
                Ok(mig) => mig,
                // An empty slot: fewer instances than the maximum.
                Err(NvmlError::NotFound | NvmlError::InvalidArg) => continue,
                Err(e) => return Err(nvml_err("nvmlDeviceGetMigDeviceHandleByIndex", at)(e)),
            };
            let uuid = mig.uuid().map_err(nvml_err("nvmlDeviceGetUUID", at))?;
            let name = mig.name().map_err(nvml_err("nvmlDeviceGetName", at))?;
            let memory_bytes = mig
                .memory_info()
                .map_err(nvml_err("nvmlDeviceGetMemoryInfo", at))?
                .total;
            let Some(profile) = profile_from_name(&name) else {
                warn!(gpu = index, %uuid, name = %name, "MIG device name carries no profile; not advertised");
                continue;
            };
            let placement = match placement::of(&self.nvml, parent, &mig) {
                Ok((start, size)) => match (u8::try_from(start), u8::try_from(size)) {
                    (Ok(start), Ok(size)) => Placement::new(start, size),
                    _ => {
                        warn!(gpu = index, %uuid, start, size, "MIG placement out of range; not advertised");
                        continue;
                    }
                },
                Err(e) => {
                    // Without a placement the device cannot be named stably; leave it out
                    // rather than guess.
                    warn!(gpu = index, %uuid, error = %e, "cannot read the MIG device's placement; not advertised");
                    continue;
                }
            };
            debug!(gpu = index, %uuid, %profile, start = placement.start, size = placement.size, "MIG device");
            devices.push(MigDevice {
                uuid,
                profile,
                placement,
                memory_bytes,
            });
        }
        Ok(devices)
    }
}

impl DeviceSource for NvmlSource {
    fn inventory(&self) -> Result<Inventory, DiscoveryError> {
        let driver_version = self
            .nvml
            .sys_driver_version()
            .map_err(nvml_err("nvmlSystemGetDriverVersion", None))?;
        let cuda_driver_version = match self.nvml.sys_cuda_driver_version() {
            Ok(v) => Some(cuda_version(v)),
            Err(e) => {
                warn!(error = %e, "cannot read the CUDA driver version");
                None
            }
        };
        let count = self
            .nvml
            .device_count()
            .map_err(nvml_err("nvmlDeviceGetCount", None))?;
        let count = count.min(u32::try_from(MAX_INVENTORY_GPUS + 1).unwrap_or(u32::MAX));
        let gpus = (0..count)
            .map(|i| self.gpu(i))
            .collect::<Result<Vec<_>, _>>()?;
        let inventory = Inventory {
            driver_version,
            cuda_driver_version,
            gpus,
        };
        inventory
            .validate()
            .map_err(|source| DiscoveryError::Invalid {
                origin: "NVML".to_owned(),
                source,
            })?;
        Ok(inventory)
    }

    fn describe(&self) -> String {
        match self.nvml.sys_driver_version() {
            Ok(v) => format!("NVML, driver {v}"),
            Err(_) => "NVML".to_owned(),
        }
    }
}

fn nvml_err(call: &'static str, gpu: Option<u32>) -> impl Fn(NvmlError) -> DiscoveryError {
    move |source| DiscoveryError::Nvml { call, gpu, source }
}

/// `00000000:3B:00.0` (NVML) → `0000:3b:00.0` (Kubernetes' `pciBusID` attribute).
fn normalise_bus_id(bus_id: &str) -> String {
    let lower = bus_id.to_ascii_lowercase();
    match lower.split_once(':') {
        Some((domain, rest)) if domain.len() > 4 => {
            format!("{}:{rest}", &domain[domain.len() - 4..])
        }
        _ => lower,
    }
}

/// `12080` → `12.8`, as `nvidia-smi` prints it.
fn cuda_version(v: i32) -> String {
    format!("{}.{}", v / 1000, (v % 1000) / 10)
}

/// The profile in a MIG device's name: `NVIDIA H100 80GB HBM3 MIG 1g.10gb` → `1g.10gb`.
fn profile_from_name(name: &str) -> Option<String> {
    let (_, profile) = name.rsplit_once("MIG ")?;
    let profile = profile.trim();
    (!profile.is_empty()).then(|| profile.to_owned())
}

fn architecture_name(arch: DeviceArchitecture) -> &'static str {
    match arch {
        DeviceArchitecture::Kepler => "Kepler",
        DeviceArchitecture::Maxwell => "Maxwell",
        DeviceArchitecture::Pascal => "Pascal",
        DeviceArchitecture::Volta => "Volta",
        DeviceArchitecture::Turing => "Turing",
        DeviceArchitecture::Ampere => "Ampere",
        DeviceArchitecture::Ada => "Ada Lovelace",
        DeviceArchitecture::Hopper => "Hopper",
        DeviceArchitecture::Blackwell => "Blackwell",
        DeviceArchitecture::Unknown => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bus_ids_are_normalised_to_the_kubernetes_form() {
        assert_eq!(normalise_bus_id("00000000:3B:00.0"), "0000:3b:00.0");
        assert_eq!(normalise_bus_id("0000:3b:00.0"), "0000:3b:00.0");
        assert!(crate::model::inventory::is_pci_bus_id(&normalise_bus_id(
            "00000001:DB:00.7"
        )));
    }

    #[test]
    fn cuda_versions_and_profiles_read_like_nvidia_smi() {
        assert_eq!(cuda_version(12080), "12.8");
        assert_eq!(cuda_version(13000), "13.0");
        assert_eq!(
            profile_from_name("NVIDIA H100 80GB HBM3 MIG 1g.10gb").as_deref(),
            Some("1g.10gb")
        );
        assert_eq!(
            profile_from_name("NVIDIA A100-SXM4-40GB MIG 1g.5gb+me").as_deref(),
            Some("1g.5gb+me")
        );
        assert_eq!(profile_from_name("NVIDIA H100 80GB HBM3"), None);
    }

    #[test]
    fn without_a_driver_nvml_fails_with_a_clear_error() {
        // CI machines have no libnvidia-ml; on a GPU machine this test checks nothing more
        // than that initialisation and one inventory call work.
        match NvmlSource::new(MigStrategy::Static) {
            Err(e) => assert!(e.to_string().starts_with("NVML nvmlInit"), "{e}"),
            Ok(source) => {
                source.inventory().unwrap();
            }
        }
    }
}
