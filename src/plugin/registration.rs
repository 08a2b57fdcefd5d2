//! The kubelet's plugin-registration service: who we are, where the DRA socket is, which
//! DRA service versions we serve; and whether the kubelet accepted us.

use tonic::{Request, Response, Status};
use tracing::{info, warn};

use super::health::HEALTH_SERVICE;
use super::proto::registration::registration_server::Registration;
use super::proto::registration::{
    InfoRequest, PluginInfo, RegistrationStatus, RegistrationStatusResponse,
};
use crate::admin::Readiness;

/// `PluginInfo.type` for a DRA driver.
pub const PLUGIN_TYPE: &str = "DRAPlugin";
/// The DRA services served, most preferred first: a kubelet takes the first it supports,
/// so 1.34+ kubelets use v1 and older ones fall back to v1beta1. The health service
/// ([`HEALTH_SERVICE`]) follows them when it is served.
pub const SUPPORTED_VERSIONS: [&str; 2] = ["v1.DRAPlugin", "v1beta1.DRAPlugin"];
/// The readiness condition this service drives.
pub const READY_REGISTERED: &str = "registered";

/// Answers the kubelet's plugin watcher.
#[derive(Debug, Clone)]
pub struct RegistrationService {
    driver: String,
    endpoint: String,
    health: bool,
    readiness: Readiness,
}

impl RegistrationService {
    /// Registration of `driver` whose DRA socket is `endpoint` (an absolute path).
    pub fn new(
        driver: impl Into<String>,
        endpoint: impl Into<String>,
        readiness: Readiness,
    ) -> Self {
        RegistrationService {
            driver: driver.into(),
            endpoint: endpoint.into(),
            health: false,
            readiness,
        }
    }

    /// Also advertise the health service: only when it is served on the DRA socket, or
    /// the kubelet would open a stream that fails every 5 s.
    pub fn with_health(mut self, served: bool) -> Self {
        self.health = served;
        self
    }

    /// The service IDs `GetInfo` announces, most preferred first.
    pub fn supported_versions(&self) -> Vec<String> {
        let health = self.health.then_some(HEALTH_SERVICE);
        SUPPORTED_VERSIONS
            .iter()
            .copied()
            .chain(health)
            .map(str::to_owned)
            .collect()
    }
}

#[tonic::async_trait]
impl Registration for RegistrationService {
    async fn get_info(&self, _: Request<InfoRequest>) -> Result<Response<PluginInfo>, Status> {
        Ok(Response::new(PluginInfo {
            r#type: PLUGIN_TYPE.to_owned(),
            name: self.driver.clone(),
            endpoint: self.endpoint.clone(),
            supported_versions: self.supported_versions(),
        }))
    }

    async fn notify_registration_status(
        &self,
        request: Request<RegistrationStatus>,
    ) -> Result<Response<RegistrationStatusResponse>, Status> {
        let status = request.into_inner();
        if status.plugin_registered {
            info!(driver = %self.driver, "the kubelet registered the plugin");
            self.readiness
                .set(READY_REGISTERED, true, "the kubelet accepted the plugin");
            Ok(Response::new(RegistrationStatusResponse {}))
        } else {
            let reason: String = status.error.chars().take(1024).collect();
            warn!(driver = %self.driver, error = %reason, "the kubelet refused the plugin");
            self.readiness.set(
                READY_REGISTERED,
                false,
                format!("the kubelet refused the plugin: {reason}"),
            );
            // As the Go helper does: answer a refusal with an error carrying the reason.
            Err(Status::unknown(format!("registration failed: {reason}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_is_advertised_last_and_only_when_served() {
        let readiness = Readiness::new(&[READY_REGISTERED]);
        let without = RegistrationService::new("gpu.tessera.dev", "/p/dra.sock", readiness);
        assert_eq!(
            without.supported_versions(),
            ["v1.DRAPlugin", "v1beta1.DRAPlugin"]
        );
        assert_eq!(
            without.with_health(true).supported_versions(),
            [
                "v1.DRAPlugin",
                "v1beta1.DRAPlugin",
                "v1alpha1.DRAResourceHealth"
            ]
        );
    }
}
