//! Serving the registration and DRA services on their Unix sockets until shutdown, then
//! removing the sockets: a new plugin instance cannot remove an old one's sockets, so each
//! instance must clean up after itself.

use tokio_stream::wrappers::UnixListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;
use tracing::{info, warn};

use super::dra::DraService;
use super::health::HealthService;
use super::proto::registration::registration_server::RegistrationServer;
use super::registration::RegistrationService;
use super::socket::{self, SocketPaths};
use super::{PluginError, READY_SOCKETS};
use crate::admin::Readiness;

/// Largest gRPC message accepted: 256 claims of a few hundred bytes each fit many times over.
const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// Both sockets, bound and listening.
pub struct BoundSockets {
    paths: SocketPaths,
    dra: tokio::net::UnixListener,
    registration: tokio::net::UnixListener,
}

impl BoundSockets {
    /// Bind the DRA socket first, then the registration socket, so the endpoint the kubelet
    /// learns about is already listening.
    pub fn bind(paths: &SocketPaths) -> Result<Self, PluginError> {
        let dra = socket::bind(&paths.dra)?;
        let registration = socket::bind(&paths.registration)?;
        Ok(BoundSockets {
            paths: paths.clone(),
            dra,
            registration,
        })
    }

    /// Where they are.
    pub fn paths(&self) -> &SocketPaths {
        &self.paths
    }
}

/// Serve until `shutdown` is cancelled: stop accepting, let in-flight calls finish, remove
/// both socket files. `health`, when given, is served on the DRA socket and advertised.
pub async fn serve(
    bound: BoundSockets,
    driver: &str,
    dra: DraService,
    health: Option<HealthService>,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> Result<(), PluginError> {
    let BoundSockets {
        paths,
        dra: dra_listener,
        registration: registration_listener,
    } = bound;
    let registration =
        RegistrationService::new(driver, paths.dra.display().to_string(), readiness.clone())
            .with_health(health.is_some());
    let dra_server = Server::builder()
        .add_service(dra.v1().max_decoding_message_size(MAX_MESSAGE_BYTES))
        .add_service(dra.v1beta1().max_decoding_message_size(MAX_MESSAGE_BYTES))
        .add_optional_service(
            health.map(|h| h.server().max_decoding_message_size(MAX_MESSAGE_BYTES)),
        )
        .serve_with_incoming_shutdown(
            UnixListenerStream::new(dra_listener),
            shutdown.clone().cancelled_owned(),
        );
    let registration_server = Server::builder()
        .add_service(
            RegistrationServer::new(registration).max_decoding_message_size(MAX_MESSAGE_BYTES),
        )
        .serve_with_incoming_shutdown(
            UnixListenerStream::new(registration_listener),
            shutdown.cancelled_owned(),
        );
    info!(dra = %paths.dra.display(), registration = %paths.registration.display(), "serving the kubelet");
    readiness.set(
        READY_SOCKETS,
        true,
        format!(
            "{} and {}",
            paths.dra.display(),
            paths.registration.display()
        ),
    );
    let (dra_result, registration_result) = tokio::join!(dra_server, registration_server);
    readiness.set(READY_SOCKETS, false, "stopped");
    // Registration first: the kubelet drops the plugin when its socket disappears.
    for path in [&paths.registration, &paths.dra] {
        if let Err(error) = socket::remove(path) {
            warn!(path = %path.display(), %error, "cannot remove socket");
        }
    }
    info!("sockets removed");
    dra_result.map_err(|source| PluginError::Serve {
        what: "DRA",
        source,
    })?;
    registration_result.map_err(|source| PluginError::Serve {
        what: "registration",
        source,
    })
}
