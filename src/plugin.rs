//! The kubelet-facing gRPC surface of `tessera plugin`: sockets, registration and the DRA
//! service in both wire versions. It translates wire messages to and from `prepare`'s types
//! and makes no decisions.

pub mod dra;
pub mod health;
pub mod proto;
pub mod registration;
pub mod runtime;
pub mod server;
pub mod socket;

use std::path::PathBuf;

use thiserror::Error;

pub use dra::DraService;
pub use health::{HEALTH_SERVICE, HealthService, HealthTracker};
pub use registration::{READY_REGISTERED, RegistrationService, SUPPORTED_VERSIONS};
pub use server::{BoundSockets, serve};
pub use socket::SocketPaths;

/// Readiness condition: both sockets are listening.
pub const READY_SOCKETS: &str = "sockets";
/// Readiness condition: the last checkpoint recovery (at start-up, then periodic) could read
/// the checkpoint. While it cannot, every prepare and unprepare fails.
pub const READY_CHECKPOINT: &str = "checkpoint";
/// Readiness condition: every device with a prepared MPS share has its MPS control daemon
/// running. While one is down (and being restarted with backoff), its clients run without
/// an MPS server.
pub const READY_MPS: &str = "mps";

/// Why the plugin's gRPC surface could not run.
#[derive(Debug, Error)]
pub enum PluginError {
    /// A socket could not be created.
    #[error("cannot listen on {path}: {source}")]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A gRPC server stopped with an error.
    #[error("{what} gRPC server failed: {source}")]
    Serve {
        /// `DRA` or `registration`.
        what: &'static str,
        /// The transport error.
        source: tonic::transport::Error,
    },
}
