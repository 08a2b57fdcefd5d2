//! Errors of partition demands and of committing or releasing a fit.

use crate::model::mig::MigError;

/// Why a demand is invalid, or a fit cannot be applied to or released from a GPU state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartitionError {
    /// The demand breaks a bound (count, compute, preference, model names).
    #[error("invalid partition demand: {reason}")]
    InvalidDemand {
        /// What is wrong.
        reason: String,
    },
    /// A stored state is inconsistent.
    #[error("invalid partition state: {reason}")]
    InvalidState {
        /// What is wrong.
        reason: String,
    },
    /// An assignment names a GPU the slice does not have.
    #[error("GPU {gpu} does not exist (the node has {gpus})")]
    NoSuchGpu {
        /// The index asked for.
        gpu: usize,
        /// GPUs given.
        gpus: usize,
    },
    /// Two assignments of one fit name the same GPU.
    #[error("GPU {gpu} is assigned twice in one fit")]
    DuplicateGpu {
        /// The repeated index.
        gpu: usize,
    },
    /// The partition's kind is not one this GPU's state offers.
    #[error("GPU {gpu} cannot give a {kind} partition")]
    WrongKind {
        /// The GPU.
        gpu: usize,
        /// The kind asked for.
        kind: &'static str,
    },
    /// The whole GPU or a static instance is already held.
    #[error("the partition is already taken")]
    AlreadyTaken,
    /// Releasing something that is not held.
    #[error("the partition is not taken")]
    NotTaken,
    /// A static layout has no such instance.
    #[error("no such MIG instance on the GPU")]
    NoSuchInstance,
    /// A share asks for more than the shared GPU has left.
    #[error("the share exceeds what the GPU has left")]
    ShareExceeded,
    /// The MIG layout refused the change.
    #[error(transparent)]
    Mig(#[from] MigError),
}
