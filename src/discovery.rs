//! Read-only GPU discovery: what GPUs this node has, as a [`model::Inventory`](crate::model::Inventory).
//!
//! Two sources implement [`DeviceSource`]: [`FakeSource`] (a YAML inventory file or a built-in
//! profile such as `h100x8`, used by tests, CI, e2e and demos) and, with the cargo feature
//! `nvml`, `NvmlSource`, which reads the real GPUs through NVML loaded at run time. Neither
//! changes anything on the GPUs: creating and destroying MIG instances is `prepare`'s job,
//! behind its own trait.

use std::path::PathBuf;

use thiserror::Error;

use crate::model::{Inventory, InventoryError};

mod fake;
#[cfg(feature = "nvml")]
mod nvml;
mod poll;
mod profiles;

pub use fake::{FakeSource, MAX_INVENTORY_FILE_BYTES};
#[cfg(feature = "nvml")]
pub use nvml::NvmlSource;
pub use poll::poll;
pub use profiles::FakeProfile;

/// A read-only view of this node's GPUs.
///
/// Implementations are cheap to call repeatedly: the plugin runtime polls them to notice
/// inventory changes (a GPU that fell off the bus, an admin re-partitioning static MIG) and
/// republishes when the answer differs. Calls block (NVML is synchronous); async callers run
/// them on a blocking thread.
pub trait DeviceSource: Send + Sync {
    /// The current inventory, validated ([`Inventory::validate`]).
    fn inventory(&self) -> Result<Inventory, DiscoveryError>;

    /// A short description for logs: `fake profile h100x8`, `fake inventory /etc/gpus.yaml`,
    /// `NVML 570.124.06`.
    fn describe(&self) -> String;
}

/// What to do with a GPU whose MIG mode is on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum MigStrategy {
    /// Advertise the MIG devices the admin created, as they are.
    #[default]
    Static,
    /// Advertise every valid placement and create instances on prepare (GPUs whose MIG
    /// geometry is in tessera's catalog; others fall back to static).
    Dynamic,
}

/// Why discovery failed.
#[derive(Debug, Error)]
pub enum DiscoveryError {
    /// `--fake-gpus` named a profile that does not exist.
    #[error("unknown fake GPU profile {name:?}; known profiles: {known}")]
    UnknownProfile {
        /// The name asked for.
        name: String,
        /// Every known profile name, comma-separated.
        known: String,
    },
    /// The inventory file could not be read.
    #[error("cannot read inventory file {path}: {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The inventory file is larger than [`MAX_INVENTORY_FILE_BYTES`].
    #[error("inventory file {path} is larger than {max} bytes")]
    FileTooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        max: u64,
    },
    /// The inventory file is not valid YAML for an inventory.
    #[error("inventory file {path} is not a valid inventory: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// The inventory parsed but breaks a bound or consistency rule.
    #[error("{origin}: {source}")]
    Invalid {
        /// Where the inventory came from (file path, profile name, NVML).
        origin: String,
        /// The rule it breaks.
        #[source]
        source: InventoryError,
    },
    /// A discovery read panicked (a bug in the source).
    #[error("GPU discovery panicked: {0}")]
    Panicked(String),
    /// Real GPUs were asked for, but this binary was built without the `nvml` feature.
    #[error(
        "this tessera was built without NVML support; pass --fake-gpus or --fake-inventory, or build with --features nvml"
    )]
    NvmlNotBuilt,
    /// An NVML call failed.
    #[cfg(feature = "nvml")]
    #[error("NVML {call}{}: {source}", gpu.map(|g| format!(" on GPU {g}")).unwrap_or_default())]
    Nvml {
        /// The NVML function, e.g. `nvmlDeviceGetUUID`.
        call: &'static str,
        /// The GPU index, when the call concerned one GPU.
        gpu: Option<u32>,
        /// NVML's error.
        #[source]
        source: ::nvml_wrapper::error::NvmlError,
    },
}

impl DiscoveryError {
    /// A short, bounded label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            DiscoveryError::UnknownProfile { .. } => "unknown_profile",
            DiscoveryError::ReadFile { .. } | DiscoveryError::FileTooLarge { .. } => "read",
            DiscoveryError::Parse { .. } => "parse",
            DiscoveryError::Invalid { .. } => "invalid",
            DiscoveryError::NvmlNotBuilt => "nvml_not_built",
            DiscoveryError::Panicked(_) => "panicked",
            #[cfg(feature = "nvml")]
            DiscoveryError::Nvml { .. } => "nvml",
        }
    }
}

/// Where the plugin (or `tessera slices`) reads its GPUs from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// A built-in fake profile; UUIDs are derived from `seed` (the node name) so two fake
    /// nodes do not share them.
    Profile {
        /// The profile.
        profile: FakeProfile,
        /// Seed of the fake UUIDs.
        seed: String,
    },
    /// A YAML inventory file, re-read on every call.
    File(PathBuf),
    /// The real GPUs, through NVML.
    Nvml(MigStrategy),
}

/// Opens the source `spec` describes.
pub fn open(spec: &SourceSpec) -> Result<Box<dyn DeviceSource>, DiscoveryError> {
    match spec {
        SourceSpec::Profile { profile, seed } => {
            Ok(Box::new(FakeSource::from_profile(*profile, seed)?))
        }
        SourceSpec::File(path) => Ok(Box::new(FakeSource::from_file(path)?)),
        #[cfg(feature = "nvml")]
        SourceSpec::Nvml(strategy) => Ok(Box::new(NvmlSource::new(*strategy)?)),
        #[cfg(not(feature = "nvml"))]
        SourceSpec::Nvml(_) => Err(DiscoveryError::NvmlNotBuilt),
    }
}
