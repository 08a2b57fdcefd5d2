//! `tessera extender`: the kube-scheduler HTTP extender.
//!
//! HTTP surface only: wire types ([`api`]), the translation of pods and claims into GPU
//! demand ([`pod`], [`claim`]), routes and server. Every decision comes from
//! [`crate::scoring`] ([`decide`] gathers its inputs), fed with the cluster cache's snapshot
//! ([`view`]) and [`crate::market`] data.

pub mod api;
pub mod attribution;
pub mod claim;
pub mod cluster_view;
pub mod decide;
pub mod demand;
pub mod evaluate;
pub mod limits;
pub mod metrics;
pub mod pod;
pub mod predict;
pub mod quantity;
mod reason;
pub mod routes;
pub mod server;
pub mod testing;
pub mod tls;
pub mod typical;
pub mod view;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use api::{ExtenderArgs, FilterResult, HostPriority};
pub use decide::{Decider, NEUTRAL_SCORE};
pub use limits::BodyLimits;
pub use metrics::ExtenderMetrics;
pub use routes::{Decide, RouteOptions, router, router_with};
pub use server::Bound;
pub use tls::{TlsFiles, tls_config};

/// Why the extender could not start or keep serving.
#[derive(Debug, thiserror::Error)]
pub enum ExtenderError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The server stopped with an I/O error.
    #[error("extender server on {addr} failed: {source}")]
    Serve {
        /// The bound address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A certificate or key file is unreadable or not PEM.
    #[error("TLS file {}: {problem}", path.display())]
    TlsFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The certificate and key could not make a TLS configuration.
    #[error("TLS configuration: {0}")]
    Tls(String),
}

impl ExtenderError {
    /// A bounded label for metrics and logs.
    pub fn metric_label(&self) -> &'static str {
        match self {
            ExtenderError::Bind { .. } => "bind",
            ExtenderError::Serve { .. } => "serve",
            ExtenderError::TlsFile { .. } => "tls_file",
            ExtenderError::Tls(_) => "tls",
        }
    }
}
