//! HTTPS for the extender: a PEM certificate and key (for `enableHTTPS: true` in the
//! scheduler's extender config), optionally a client CA that every caller must present a
//! certificate from (mutual TLS: kube-scheduler's `tlsConfig.certFile`/`keyFile`), and the
//! files watched so that a rotated Secret is served without a restart.
//!
//! rustls with the *ring* provider passed explicitly, so nothing depends on a process-wide
//! default provider being installed.
//!
//! Rotation: kubelet updates a mounted Secret by swapping a symlink, so the files change
//! atomically but no inotify event is reliable across that swap on every volume type; a poll
//! of the three files' bytes every `--tls-reload-interval` seconds is (kube-rbac-proxy and
//! the API server's `dynamiccertificates` poll likewise). A new set that does not load is
//! logged and the old one is kept: a half-written rotation never takes the port down.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::ExtenderError;

/// Largest certificate, key or CA file read (a chain of a few certificates is a few KiB).
const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// Certificate and key files for HTTPS, and the optional client CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM CA bundle: when set, a client without a certificate chaining to it is refused
    /// during the handshake.
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    /// Server certificate and key, no client authentication.
    pub fn server_only(cert: PathBuf, key: PathBuf) -> Self {
        TlsFiles {
            cert,
            key,
            client_ca: None,
        }
    }

    /// The bytes of every file, in a fixed order: what the reload poll compares.
    fn read_all(&self) -> Result<Vec<Vec<u8>>, ExtenderError> {
        let mut out = vec![read(&self.cert)?, read(&self.key)?];
        if let Some(ca) = &self.client_ca {
            out.push(read(ca)?);
        }
        Ok(out)
    }
}

fn read(path: &Path) -> Result<Vec<u8>, ExtenderError> {
    let problem = |problem: String| ExtenderError::TlsFile {
        path: path.to_owned(),
        problem,
    };
    let size = std::fs::metadata(path)
        .map_err(|e| problem(e.to_string()))?
        .len();
    if size > MAX_PEM_BYTES {
        return Err(problem(format!(
            "{size} bytes is more than the {MAX_PEM_BYTES} accepted"
        )));
    }
    std::fs::read(path).map_err(|e| problem(e.to_string()))
}

/// Loads `files` into a rustls server configuration (HTTP/1.1 only, as kube-scheduler's
/// extender client speaks it).
pub fn tls_config(files: &TlsFiles) -> Result<RustlsConfig, ExtenderError> {
    let pems = files.read_all()?;
    Ok(RustlsConfig::from_config(server_config(files, &pems)?))
}

fn server_config(
    files: &TlsFiles,
    pems: &[Vec<u8>],
) -> Result<Arc<rustls::ServerConfig>, ExtenderError> {
    let (cert_pem, key_pem) = match pems {
        [cert, key, ..] => (cert, key),
        _ => return Err(ExtenderError::Tls("certificate or key missing".to_owned())),
    };
    let certs = certificates(&files.cert, cert_pem)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| ExtenderError::TlsFile {
        path: files.key.clone(),
        problem: format!("not a PEM private key: {e}"),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| ExtenderError::Tls(e.to_string()))?;
    let builder = match (&files.client_ca, pems.get(2)) {
        (Some(path), Some(ca_pem)) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(path, ca_pem)? {
                roots.add(cert).map_err(|e| ExtenderError::TlsFile {
                    path: path.clone(),
                    problem: format!("not a usable CA certificate: {e}"),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| ExtenderError::TlsFile {
                    path: path.clone(),
                    problem: format!("cannot verify clients with it: {e}"),
                })?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| ExtenderError::Tls(format!("certificate and key do not match: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn certificates(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, ExtenderError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| ExtenderError::TlsFile {
            path: path.to_owned(),
            problem: format!("not a PEM certificate chain: {e}"),
        })?;
    if certs.is_empty() {
        return Err(ExtenderError::TlsFile {
            path: path.to_owned(),
            problem: "holds no CERTIFICATE block".to_owned(),
        });
    }
    Ok(certs)
}

/// Polls `files` every `every` and swaps `config` to their new contents when they change and
/// load; returns when `shutdown` is cancelled.
#[tracing::instrument(name = "tls_reload", skip_all, fields(cert = %files.cert.display()))]
pub async fn reload_on_change(
    config: RustlsConfig,
    files: TlsFiles,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut served = files.read_all().ok();
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let pems = match files.read_all() {
            Ok(pems) => pems,
            Err(e) => {
                warn!(error = %e, "TLS files unreadable; still serving the previous ones");
                continue;
            }
        };
        if served.as_ref() == Some(&pems) {
            continue;
        }
        match server_config(&files, &pems) {
            Ok(new) => {
                config.reload_from_config(new);
                served = Some(pems);
                info!("TLS certificate reloaded");
            }
            Err(e) => {
                // Secrets are written file by file outside Kubernetes (cert-manager's CSI
                // driver, a hand copy): a key that does not match yet is usually a rotation
                // half done, which the next poll completes.
                warn!(error = %e, "new TLS files do not load; still serving the previous ones");
            }
        }
    }
}
