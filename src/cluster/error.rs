//! The one error type of the `cluster` module.
//!
//! The cache itself never fails on bad objects: a field it cannot read is left out of the
//! view and the reason is logged, so one malformed object cannot hide the rest of the
//! cluster. These errors are what the readers return to say why.

use thiserror::Error;

/// Why a value from an API object could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ClusterError {
    /// A resource quantity (`80Gi`, `100`) is malformed, negative or too large.
    #[error("quantity {value:?} {problem}")]
    InvalidQuantity {
        /// The offending text (shortened when long).
        value: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A watch failed; kube-runtime retries it after a back-off.
    #[error("watch of {kind} failed: {message}")]
    Watch {
        /// What was watched (`nodes`, `pods`, …).
        kind: &'static str,
        /// The watcher's error.
        message: String,
    },
}

impl ClusterError {
    /// A short, fixed label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            ClusterError::InvalidQuantity { .. } => "invalid_quantity",
            ClusterError::Watch { .. } => "watch",
        }
    }
}
