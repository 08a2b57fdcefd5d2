//! Errors of the right-sizing rules' settings.

/// A setting of the right-sizing rules is out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RightsizeError {
    /// The memory headroom must be a fraction in 0..=4 (0 % to 400 %).
    #[error("headroom {0} must be between 0 and 4 (a fraction of peak memory)")]
    Headroom(f64),
    /// The idle threshold is a percentage of a GPU.
    #[error("idle threshold {0} % must be between 0 and 100")]
    IdleThreshold(f64),
    /// At least one partition kind must be allowed besides the whole GPU.
    #[error("unknown partition kind `{0}` (expected mig, shared)")]
    Kind(String),
}
