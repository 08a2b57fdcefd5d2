//! Why a usage sample could not be taken.

use std::path::PathBuf;

use thiserror::Error;

/// Why reading usage failed.
#[derive(Debug, Error)]
pub enum UsageError {
    /// The device list is longer than [`MAX_DEVICES`](super::MAX_DEVICES).
    #[error("usage source reported {found} devices, more than the bound of {max}")]
    TooManyDevices {
        /// Devices reported.
        found: usize,
        /// The bound.
        max: usize,
    },
    /// The checkpoint of prepared claims could not be read.
    #[error("cannot read prepared claims: {0}")]
    Checkpoint(#[from] crate::prepare::checkpoint::CheckpointError),
    /// The host `/proc` is not a directory (not mounted, or a wrong `--host-proc`).
    #[error("host proc {path} is not readable: {source}")]
    HostProc {
        /// The configured path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A usage read panicked (a bug in the source).
    #[error("GPU usage read panicked: {0}")]
    Panicked(String),
    /// An NVML call failed.
    #[cfg(feature = "nvml")]
    #[error("NVML {call}: {source}")]
    Nvml {
        /// The NVML function, e.g. `nvmlDeviceGetComputeRunningProcesses`.
        call: &'static str,
        /// NVML's error.
        #[source]
        source: ::nvml_wrapper::error::NvmlError,
    },
}

impl UsageError {
    /// A short, bounded label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            UsageError::TooManyDevices { .. } => "too_many_devices",
            UsageError::Checkpoint(_) => "checkpoint",
            UsageError::HostProc { .. } => "host_proc",
            UsageError::Panicked(_) => "panicked",
            #[cfg(feature = "nvml")]
            UsageError::Nvml { .. } => "nvml",
        }
    }
}
