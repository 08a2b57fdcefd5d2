//! Serving the extender routes: plain HTTP, or HTTPS with a PEM certificate and key (for
//! `enableHTTPS: true` in the scheduler's extender config), until shutdown.
//!
//! TLS uses rustls with the *ring* provider passed explicitly, so nothing depends on a
//! process-wide default provider being installed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::ExtenderError;

/// Certificate and key files for HTTPS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Loads `files` into a rustls server configuration (HTTP/1.1 only, as kube-scheduler's
/// extender client speaks it).
pub fn tls_config(files: &TlsFiles) -> Result<RustlsConfig, ExtenderError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| ExtenderError::TlsFile {
            path: path.to_owned(),
            problem: source.to_string(),
        })
    };
    let cert_pem = read(&files.cert)?;
    let key_pem = read(&files.key)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| ExtenderError::TlsFile {
            path: files.cert.clone(),
            problem: format!("not a PEM certificate chain: {e}"),
        })?;
    if certs.is_empty() {
        return Err(ExtenderError::TlsFile {
            path: files.cert.clone(),
            problem: "holds no CERTIFICATE block".to_owned(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| ExtenderError::TlsFile {
        path: files.key.clone(),
        problem: format!("not a PEM private key: {e}"),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ExtenderError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ExtenderError::Tls(format!("certificate and key do not match: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(RustlsConfig::from_config(Arc::new(config)))
}

/// A bound extender listener, ready to serve.
pub struct Bound {
    listener: std::net::TcpListener,
    addr: SocketAddr,
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
        Ok(Bound { listener, addr })
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
        let handle: Handle<SocketAddr> = Handle::new();
        let stopper = handle.clone();
        tokio::spawn(async move {
            shutdown.cancelled().await;
            stopper.graceful_shutdown(Some(grace));
        });
        let service = app.into_make_service();
        let serve_error = |source| ExtenderError::Serve { addr, source };
        info!(%addr, https = tls.is_some(), "extender listening");
        match tls {
            Some(config) => {
                axum_server::from_tcp_rustls(self.listener, config)
                    .map_err(serve_error)?
                    .handle(handle)
                    .serve(service)
                    .await
            }
            None => {
                axum_server::from_tcp(self.listener)
                    .map_err(serve_error)?
                    .handle(handle)
                    .serve(service)
                    .await
            }
        }
        .map_err(serve_error)
    }
}
