//! Why preparing or unpreparing one claim failed. Each variant reads as a sentence the
//! kubelet shows in the pod's events, and maps to one bounded metric label.

use std::sync::Arc;

use thiserror::Error;

use super::cdi::CdiError;
use super::checkpoint::CheckpointError;
use super::config::ConfigError;
use super::control::ControlError;
use super::fault::Step;
use super::mps::MpsError;
use super::names::NameError;
use super::source::ClaimSourceError;

/// A per-claim failure of prepare or unprepare.
#[derive(Debug, Error)]
pub enum PrepareError {
    /// The kubelet's request itself is unusable (empty or oversized fields).
    #[error("invalid claim reference: {reason}")]
    InvalidRequest {
        /// What is wrong with it.
        reason: String,
    },
    /// A namespace, name, UID, device, request or share ID that breaks the API's name rules:
    /// refused before it reaches an API URL or a file name.
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// The ResourceClaim could not be read from the API server.
    #[error(transparent)]
    Fetch(#[from] ClaimSourceError),
    /// The claim with that name now has another UID: the one the kubelet means is gone.
    #[error(
        "claim {namespace}/{name} got replaced: the kubelet asked for UID {expected}, the API server has {found}"
    )]
    UidMismatch {
        /// Claim namespace.
        namespace: String,
        /// Claim name.
        name: String,
        /// UID in the kubelet's request.
        expected: String,
        /// UID on the API server.
        found: String,
    },
    /// The claim has no `status.allocation`.
    #[error("claim {namespace}/{name} is not allocated")]
    NotAllocated {
        /// Claim namespace.
        namespace: String,
        /// Claim name.
        name: String,
    },
    /// The claim has no allocation result for this driver.
    #[error("claim has no devices allocated by driver {driver} (results are for: {others})")]
    NoResultsForDriver {
        /// This plugin's driver name.
        driver: String,
        /// The drivers that do appear, comma-separated, or `none`.
        others: String,
    },
    /// More allocation results or config entries than the API allows.
    #[error("claim has {count} {what}, more than the {limit} the API allows")]
    TooMany {
        /// `allocation results` or `config entries`.
        what: &'static str,
        /// How many there are.
        count: usize,
        /// The API limit.
        limit: usize,
    },
    /// A result of this driver names a pool other than this node's.
    #[error("device {device} is in pool {pool}, but this node's pool is {expected}")]
    ForeignPool {
        /// Device name.
        device: String,
        /// Pool in the result.
        pool: String,
        /// This node's pool.
        expected: String,
    },
    /// The device is not one this node has (or not in a state that can be prepared).
    #[error("unknown device {device}: {reason}")]
    UnknownDevice {
        /// Device name from the allocation result.
        device: String,
        /// Why it does not resolve.
        reason: String,
    },
    /// An opaque config entry for this driver is invalid.
    #[error("invalid config for request {request}: {source}")]
    InvalidConfig {
        /// The request the config applies to.
        request: String,
        /// What is wrong.
        source: ConfigError,
    },
    /// The config asks for something the device cannot do.
    #[error("config for device {device} cannot be applied: {reason}")]
    UnsupportedConfig {
        /// Device name.
        device: String,
        /// Why.
        reason: String,
    },
    /// Another claim holds the device (or hardware it overlaps).
    #[error("device {device} is already prepared for claim {holder}")]
    DeviceInUse {
        /// Device name.
        device: String,
        /// `namespace/name (uid)` of the other claim.
        holder: String,
    },
    /// Another claim shares the same GPU with different settings.
    #[error(
        "device {device}: GPU {gpu} is already shared as {theirs} by claim {holder}; this claim asks for {ours}"
    )]
    SharingConflict {
        /// Device name.
        device: String,
        /// GPU index.
        gpu: u32,
        /// The other claim.
        holder: String,
        /// Its sharing setting.
        theirs: String,
        /// This claim's sharing setting.
        ours: String,
    },
    /// Reading or writing the checkpoint failed.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// Writing or deleting the CDI spec failed.
    #[error(transparent)]
    Cdi(#[from] CdiError),
    /// A hardware operation (MIG, sharing settings) failed.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// The lock serialising prepare and unprepare across plugin instances failed.
    #[error("cannot lock {path}: {source}")]
    Lock {
        /// The lock file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A blocking task died (the runtime is shutting down).
    #[error("prepare task stopped: {0}")]
    Task(String),
    /// A failure of the whole call (taking the lock, reading or writing the checkpoint),
    /// reported for each of its claims: the claims of one call share those steps.
    #[error(transparent)]
    Call(Arc<PrepareError>),
    /// An MPS control daemon could not be started, configured or stopped, or its binary is
    /// missing.
    #[error(transparent)]
    Mps(#[from] MpsError),
    /// A fault injected by a test at a given step.
    #[error("injected failure at step {step:?}")]
    Injected {
        /// Where.
        step: Step,
    },
}

impl PrepareError {
    /// `self` as the error of each of `claims` claims: itself for one claim, shared for more.
    pub(crate) fn for_each_claim(self, claims: usize) -> Vec<PrepareError> {
        if claims == 1 {
            return vec![self];
        }
        let shared = Arc::new(self);
        (0..claims)
            .map(|_| PrepareError::Call(Arc::clone(&shared)))
            .collect()
    }

    /// A bounded, stable label for the `errors` metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            PrepareError::InvalidRequest { .. } => "invalid_request",
            PrepareError::InvalidName(_) => "invalid_name",
            PrepareError::Fetch(e) => e.metric_label(),
            PrepareError::UidMismatch { .. } => "uid_mismatch",
            PrepareError::NotAllocated { .. } => "not_allocated",
            PrepareError::NoResultsForDriver { .. } => "wrong_driver",
            PrepareError::TooMany { .. } => "too_many",
            PrepareError::ForeignPool { .. } => "foreign_pool",
            PrepareError::UnknownDevice { .. } => "unknown_device",
            PrepareError::InvalidConfig { .. } => "invalid_config",
            PrepareError::UnsupportedConfig { .. } => "unsupported_config",
            PrepareError::DeviceInUse { .. } => "device_in_use",
            PrepareError::SharingConflict { .. } => "sharing_conflict",
            PrepareError::Checkpoint(_) => "checkpoint",
            PrepareError::Cdi(_) => "cdi",
            PrepareError::Control(_) => "gpu_control",
            PrepareError::Lock { .. } => "lock",
            PrepareError::Task(_) => "task",
            PrepareError::Mps(MpsError::BinaryMissing { .. }) => "mps_binary_missing",
            PrepareError::Mps(_) => "mps",
            PrepareError::Injected { .. } => "injected",
            PrepareError::Call(inner) => inner.metric_label(),
        }
    }
}
