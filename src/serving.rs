//! Serving an axum router on a TCP listener with every connection phase bounded in time; the
//! extender's port and the admin port (plugin and extender) both go through here.
//!
//! What is bounded, and why each bound is where it is:
//! - TLS handshake: a peer that opens a socket and never finishes the handshake.
//! - Request head: hyper's `header_read_timeout` runs from the moment a connection waits for
//!   a request head until the head is complete, so a client trickling header bytes
//!   (slowloris) and an idle keep-alive connection are both closed after it.
//! - Head size: hyper's read buffer is capped, so one connection's headers cannot grow
//!   without bound (kube-scheduler, kubelet probes and Prometheus send well under 8 KiB).
//! - Request body: read by the handler under its own deadline (see
//!   `extender::limits::read_body`), because hyper has no body timeout.
//!
//! HTTP/1.1 only: kube-scheduler's extender client, kubelet probes and Prometheus all speak
//! it, and HTTP/2 would bring its own flow-control windows to bound.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum_server::Handle;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use hyper_util::rt::TokioTimer;
use tokio_util::sync::CancellationToken;

/// Default [`Timeouts::header_read`].
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default [`Timeouts::tls_handshake`].
pub const DEFAULT_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest read buffer of one connection; hyper refuses a request head that does not fit.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Time bounds of each connection phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// From waiting for a request head (new or keep-alive connection) to having all of it.
    pub header_read: Duration,
    /// From accepting a TLS connection to the end of its handshake.
    pub tls_handshake: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            header_read: DEFAULT_HEADER_READ_TIMEOUT,
            tls_handshake: DEFAULT_TLS_HANDSHAKE_TIMEOUT,
        }
    }
}

/// Serves `app` on `listener` (non-blocking) until `shutdown` is cancelled, then lets requests
/// in flight finish within `grace`.
pub async fn serve(
    listener: std::net::TcpListener,
    app: Router,
    tls: Option<RustlsConfig>,
    timeouts: Timeouts,
    shutdown: CancellationToken,
    grace: Duration,
) -> io::Result<()> {
    let handle: Handle<SocketAddr> = Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        stopper.graceful_shutdown(Some(grace));
    });
    let mut server = axum_server::from_tcp(listener)?.handle(handle).http1_only();
    server
        .http_builder()
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header_read)
        .max_buf_size(MAX_HEAD_BYTES);
    let service = app.into_make_service();
    match tls {
        Some(config) => {
            let acceptor = RustlsAcceptor::new(config).handshake_timeout(timeouts.tls_handshake);
            server.acceptor(acceptor).serve(service).await
        }
        None => server.serve(service).await,
    }
}
