//! Prepare and unprepare: everything between "the kubelet names a claim" and "the runtime
//! can start containers with its GPUs", and back.
//!
//! ```text
//! ClaimRef ──▶ ClaimSource (API server) ──▶ claim::allocated_devices (this driver, this pool,
//!   merged opaque config) ──▶ state::DeviceState::prepare_all (all claims of one call):
//!     checkpoint PrepareStarted (all) ──▶ per claim: GpuControl (MIG, sharing) ──▶ CDI spec
//!     ──▶ checkpoint PrepareCompleted (all that succeeded)
//! ```
//!
//! [`DeviceState`] is the only sequencer; [`Preparer`] adds the claim fetch, per-claim
//! error isolation and metrics, and is what the gRPC layer calls.

mod atomic;
pub mod cdi;
pub mod checkpoint;
pub mod claim;
mod claim_builder;
pub mod config;
pub mod control;
pub mod device;
mod error;
pub mod fault;
mod holders;
mod lock;
pub mod metrics;
pub mod mps;
pub mod names;
pub mod quantity;
mod sealed;
mod service;
pub mod source;
mod spec;
pub mod state;

#[cfg(test)]
mod test_inventory;

pub use claim::{AllocatedDevice, ClaimRef, PreparedDevice};
pub use claim_builder::ClaimBuilder;
pub use control::{FakeGpuControl, GpuControl};
pub use error::PrepareError;
pub use fault::{Fault, FaultPlan, Step};
pub use metrics::PrepareMetrics;
pub use mps::{MpsConfig, MpsDaemons, MpsError};
pub use service::Preparer;
pub use source::{ClaimSource, KubeClaimSource, MemoryClaimSource};
pub use state::{DeviceState, Outcomes, RecoveryReport, StateConfig};
