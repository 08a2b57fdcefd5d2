//! Structural checks on an [`Inventory`]: every bound the publisher and prepare rely on.
//!
//! Discovery output and hand-written fake inventories both pass through here, so a typo in a
//! YAML file or an odd NVML answer is refused with the GPU and field it concerns, instead of
//! surfacing later as a ResourceSlice the API server rejects.

use std::collections::BTreeSet;

use thiserror::Error;

use super::{Gpu, Inventory, MigDevice, MigState};
use crate::model::device_name::profile_label;
use crate::model::mig::{MigError, MigLayout, profile};

/// Most GPUs one node's inventory may hold (the largest servers carry 16; the margin is for
/// future boards, the bound is there so a corrupt input cannot ask for millions).
pub const MAX_INVENTORY_GPUS: usize = 64;

/// Most MIG devices one GPU may hold (7 is the most any product allows).
pub const MAX_MIG_DEVICES_PER_GPU: usize = 16;

/// Longest text field (UUIDs, product names, versions): Kubernetes' limit on a string
/// attribute value, so every field can be published as it is.
pub const MAX_TEXT_LEN: usize = 64;

/// Longest MIG profile name (`1g.10gb+me` and friends are about ten characters).
pub const MAX_PROFILE_LEN: usize = 32;

/// Memory slices of the largest MIG geometry: a placement may not reach past them.
const MAX_MEMORY_SLICES: u16 = 8;

/// Why an inventory was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InventoryError {
    /// More GPUs than [`MAX_INVENTORY_GPUS`].
    #[error("the inventory lists {count} GPUs; at most {MAX_INVENTORY_GPUS} are supported")]
    TooManyGpus {
        /// GPUs listed.
        count: usize,
    },
    /// Two GPUs share an index.
    #[error("GPU index {index} appears more than once")]
    DuplicateIndex {
        /// The repeated index.
        index: u32,
    },
    /// Two GPUs or MIG devices share a UUID.
    #[error("UUID {uuid:?} appears more than once")]
    DuplicateUuid {
        /// The repeated UUID.
        uuid: String,
    },
    /// A text field is empty or longer than [`MAX_TEXT_LEN`].
    #[error("{field} of {owner} must be 1 to {max} characters, got {len}")]
    BadText {
        /// `inventory`, `GPU 3`, `GPU 3 MIG device 1`.
        owner: String,
        /// The field name as written in the inventory file.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit that applies.
        max: usize,
    },
    /// The PCI bus ID is not in the `0000:3b:00.0` form.
    #[error("pciBusId of GPU {gpu} is {value:?}; expected the form 0000:3b:00.0 (lower-case hex)")]
    BadPciBusId {
        /// GPU index.
        gpu: u32,
        /// The value given.
        value: String,
    },
    /// A GPU or MIG device reports no memory.
    #[error("memoryBytes of {owner} must be greater than zero")]
    NoMemory {
        /// `GPU 3` or `GPU 3 MIG device 1`.
        owner: String,
    },
    /// Dynamic MIG asked for on a GPU whose MIG geometry tessera does not know.
    #[error(
        "GPU {gpu} ({product:?}) is in dynamic MIG mode, but its MIG profiles are not in tessera's catalog; use static MIG or disable MIG"
    )]
    DynamicMigUnknownProduct {
        /// GPU index.
        gpu: u32,
        /// Its product name.
        product: String,
    },
    /// More MIG devices than [`MAX_MIG_DEVICES_PER_GPU`].
    #[error("GPU {gpu} lists {count} MIG devices; at most {MAX_MIG_DEVICES_PER_GPU} are supported")]
    TooManyMigDevices {
        /// GPU index.
        gpu: u32,
        /// Devices listed.
        count: usize,
    },
    /// A MIG profile name that cannot become a device name.
    #[error(
        "MIG device {device} of GPU {gpu} has profile {profile:?}; expected a name like 1g.10gb (letters, digits, '.', '+', at most {MAX_PROFILE_LEN})"
    )]
    BadProfile {
        /// GPU index.
        gpu: u32,
        /// Position of the device in the GPU's list.
        device: usize,
        /// The profile given.
        profile: String,
    },
    /// A MIG placement outside the GPU, or overlapping another, on a GPU the catalog does
    /// not cover.
    #[error("MIG device {device} of GPU {gpu} sits at {start}:{size}, {reason}")]
    BadPlacement {
        /// GPU index.
        gpu: u32,
        /// Position of the device in the GPU's list.
        device: usize,
        /// First memory slice.
        start: u8,
        /// Memory slices.
        size: u8,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The static layout breaks the catalog's rules for this product.
    #[error("MIG device {device} of GPU {gpu}: {source}")]
    Layout {
        /// GPU index.
        gpu: u32,
        /// Position of the device in the GPU's list.
        device: usize,
        /// The catalog's objection.
        #[source]
        source: MigError,
    },
}

impl Inventory {
    /// Checks every bound and consistency rule; the first problem found is returned.
    pub fn validate(&self) -> Result<(), InventoryError> {
        if self.gpus.len() > MAX_INVENTORY_GPUS {
            return Err(InventoryError::TooManyGpus {
                count: self.gpus.len(),
            });
        }
        text("inventory", "driverVersion", &self.driver_version)?;
        if let Some(cuda) = &self.cuda_driver_version {
            text("inventory", "cudaDriverVersion", cuda)?;
        }
        let mut indexes = BTreeSet::new();
        let mut uuids = BTreeSet::new();
        for gpu in &self.gpus {
            if !indexes.insert(gpu.index) {
                return Err(InventoryError::DuplicateIndex { index: gpu.index });
            }
            check_gpu(gpu, &mut uuids)?;
        }
        Ok(())
    }
}

fn check_gpu<'a>(gpu: &'a Gpu, uuids: &mut BTreeSet<&'a str>) -> Result<(), InventoryError> {
    let owner = format!("GPU {}", gpu.index);
    text(&owner, "uuid", &gpu.uuid)?;
    unique(uuids, &gpu.uuid)?;
    text(&owner, "productName", &gpu.product_name)?;
    text(&owner, "architecture", &gpu.architecture)?;
    text(
        &owner,
        "cudaComputeCapability",
        &gpu.cuda_compute_capability,
    )?;
    if !is_pci_bus_id(&gpu.pci_bus_id) {
        return Err(InventoryError::BadPciBusId {
            gpu: gpu.index,
            value: gpu.pci_bus_id.chars().take(MAX_TEXT_LEN).collect(),
        });
    }
    if gpu.memory_bytes == 0 {
        return Err(InventoryError::NoMemory { owner });
    }
    match &gpu.mig {
        MigState::Disabled => Ok(()),
        MigState::Dynamic if gpu.mig_product().is_none() => {
            Err(InventoryError::DynamicMigUnknownProduct {
                gpu: gpu.index,
                product: gpu.product_name.clone(),
            })
        }
        MigState::Dynamic => Ok(()),
        MigState::Static { devices } => check_static(gpu, devices, uuids),
    }
}

fn check_static<'a>(
    gpu: &Gpu,
    devices: &'a [MigDevice],
    uuids: &mut BTreeSet<&'a str>,
) -> Result<(), InventoryError> {
    if devices.len() > MAX_MIG_DEVICES_PER_GPU {
        return Err(InventoryError::TooManyMigDevices {
            gpu: gpu.index,
            count: devices.len(),
        });
    }
    let mut layout = gpu.mig_product().map(MigLayout::new);
    for (i, device) in devices.iter().enumerate() {
        let owner = format!("GPU {} MIG device {i}", gpu.index);
        text(&owner, "uuid", &device.uuid)?;
        unique(uuids, &device.uuid)?;
        let profile_ok = !device.profile.is_empty()
            && device.profile.len() <= MAX_PROFILE_LEN
            && device
                .profile
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '+')
            && !profile_label(&device.profile).is_empty();
        if !profile_ok {
            return Err(InventoryError::BadProfile {
                gpu: gpu.index,
                device: i,
                profile: device.profile.chars().take(MAX_TEXT_LEN).collect(),
            });
        }
        if device.memory_bytes == 0 {
            return Err(InventoryError::NoMemory { owner });
        }
        let placement = device.placement;
        let bad = |reason| InventoryError::BadPlacement {
            gpu: gpu.index,
            device: i,
            start: placement.start,
            size: placement.size,
            reason,
        };
        if placement.size == 0 || placement.end() > MAX_MEMORY_SLICES {
            return Err(bad("outside the GPU's 8 memory slices"));
        }
        if devices[..i].iter().any(|d| d.placement.overlaps(placement)) {
            return Err(bad("overlapping another MIG device"));
        }
        // On a catalog product the layout must be one the driver could have created.
        if let Some(layout) = layout.as_mut() {
            let row = profile(layout.product(), &device.profile).ok_or_else(|| {
                InventoryError::Layout {
                    gpu: gpu.index,
                    device: i,
                    source: MigError::UnknownProfile {
                        product: layout.product(),
                        profile: device.profile.clone(),
                    },
                }
            })?;
            layout
                .place(row, placement)
                .map_err(|source| InventoryError::Layout {
                    gpu: gpu.index,
                    device: i,
                    source,
                })?;
        }
    }
    Ok(())
}

fn text(owner: &str, field: &'static str, value: &str) -> Result<(), InventoryError> {
    if value.is_empty() || value.len() > MAX_TEXT_LEN {
        return Err(InventoryError::BadText {
            owner: owner.to_owned(),
            field,
            len: value.len(),
            max: MAX_TEXT_LEN,
        });
    }
    Ok(())
}

fn unique<'a>(seen: &mut BTreeSet<&'a str>, uuid: &'a str) -> Result<(), InventoryError> {
    if seen.insert(uuid) {
        Ok(())
    } else {
        Err(InventoryError::DuplicateUuid {
            uuid: uuid.to_owned(),
        })
    }
}

/// `dddd:bb:dd.f` in lower-case hex, the form of Kubernetes' `pciBusID` attribute.
pub fn is_pci_bus_id(s: &str) -> bool {
    let b = s.as_bytes();
    let hex = |r: std::ops::Range<usize>| {
        b[r].iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
    };
    b.len() == 12
        && hex(0..4)
        && b[4] == b':'
        && hex(5..7)
        && b[7] == b':'
        && hex(8..10)
        && b[10] == b'.'
        && (b'0'..=b'7').contains(&b[11])
}

#[cfg(test)]
mod tests;
