//! Serving the extender routes: plain HTTP, or HTTPS (optionally mutual, see [`super::tls`]),
//! with every connection phase bounded in time ([`crate::serving`]), until shutdown.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::ExtenderError;
use crate::serving::{self, Timeouts};

/// A bound extender listener, ready to serve.
pub struct Bound {
    listener: std::net::TcpListener,
    addr: SocketAddr,
    timeouts: Timeouts,
}

impl Bound {
    /// Binds `addr` now, so a taken port is reported before anything else starts.
    pub fn bind(addr: SocketAddr) -> Result<Self, ExtenderError> {
        let listener = std::net::TcpListener::bind(addr)
            .map_err(|source| ExtenderError::Bind { addr, source })?;
        listener
            .set_nonblocking(true)
            .map_err(|source| ExtenderError::Bind { addr, source })?;
        let addr = listener.local_addr().unwrap_or(addr);
        Ok(Bound {
            listener,
            addr,
            timeouts: Timeouts::default(),
        })
    }

    /// The same listener with other connection timeouts than [`Timeouts::default`].
    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// The bound address (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `app` until `shutdown` is cancelled, then lets requests in flight finish within
    /// `grace`.
    pub async fn serve(
        self,
        app: Router,
        tls: Option<RustlsConfig>,
        shutdown: CancellationToken,
        grace: Duration,
    ) -> Result<(), ExtenderError> {
        let addr = self.addr;
        info!(%addr, https = tls.is_some(), header_read_timeout = ?self.timeouts.header_read,
              "extender listening");
        serving::serve(self.listener, app, tls, self.timeouts, shutdown, grace)
            .await
            .map_err(|source| ExtenderError::Serve { addr, source })
    }
}
