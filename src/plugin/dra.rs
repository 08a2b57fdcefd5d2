//! The DRAPlugin service in both wire versions, on one socket. Each version's messages are
//! translated to the one internal request ([`ClaimRef`]s) and the answers back; nothing
//! here decides anything.

use std::collections::HashMap;
use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::proto::{dra_v1 as v1, dra_v1beta1 as v1beta1};
use crate::prepare::{ClaimRef, PreparedDevice, Preparer};

/// Most claims accepted in one call: far above what one pod references, low enough that a
/// malformed request cannot make the plugin hold thousands of fetches.
pub const MAX_CLAIMS_PER_CALL: usize = 256;

/// The internal DRA service both wire versions delegate to.
#[derive(Clone)]
pub struct DraService {
    preparer: Arc<Preparer>,
}

/// One claim's answer, version-neutral: devices or an error message.
type ClaimAnswer = Result<Vec<PreparedDevice>, String>;

impl DraService {
    /// A service preparing through `preparer`.
    pub fn new(preparer: Arc<Preparer>) -> Self {
        DraService { preparer }
    }

    /// The v1 server.
    pub fn v1(&self) -> v1::dra_plugin_server::DraPluginServer<DraV1> {
        v1::dra_plugin_server::DraPluginServer::new(DraV1(self.clone()))
    }

    /// The v1beta1 server.
    pub fn v1beta1(&self) -> v1beta1::dra_plugin_server::DraPluginServer<DraV1beta1> {
        v1beta1::dra_plugin_server::DraPluginServer::new(DraV1beta1(self.clone()))
    }

    async fn prepare(&self, claims: Vec<ClaimRef>) -> HashMap<String, ClaimAnswer> {
        self.preparer
            .prepare(&claims)
            .await
            .into_iter()
            .map(|(uid, r)| (uid, r.map_err(|e| e.to_string())))
            .collect()
    }

    async fn unprepare(&self, claims: Vec<ClaimRef>) -> HashMap<String, String> {
        self.preparer
            .unprepare(&claims)
            .await
            .into_iter()
            .map(|(uid, r)| (uid, r.err().map(|e| e.to_string()).unwrap_or_default()))
            .collect()
    }
}

/// The request's claims, refusing the request as a whole only when no per-claim answer is
/// possible: too many claims, or a claim without a UID to key its answer.
fn claim_refs<I>(claims: I, count: usize) -> Result<Vec<ClaimRef>, Status>
where
    I: IntoIterator<Item = (String, String, String)>,
{
    if count > MAX_CLAIMS_PER_CALL {
        return Err(Status::invalid_argument(format!(
            "{count} claims in one call, more than {MAX_CLAIMS_PER_CALL}"
        )));
    }
    claims
        .into_iter()
        .map(|(namespace, name, uid)| {
            if uid.is_empty() {
                return Err(Status::invalid_argument(format!(
                    "claim {namespace}/{name} has no UID"
                )));
            }
            Ok(ClaimRef {
                namespace,
                name,
                uid,
            })
        })
        .collect()
}

/// Per-claim answers in one wire version's types: `device` translates each prepared device,
/// `entry` builds the claim's entry from its devices and error message (empty on success).
fn answers_by_uid<D, E>(
    answers: HashMap<String, ClaimAnswer>,
    device: impl Fn(PreparedDevice) -> D,
    entry: impl Fn(Vec<D>, String) -> E,
) -> HashMap<String, E> {
    answers
        .into_iter()
        .map(|(uid, answer)| {
            let answer = match answer {
                Ok(devices) => entry(devices.into_iter().map(&device).collect(), String::new()),
                Err(error) => entry(Vec::new(), error),
            };
            (uid, answer)
        })
        .collect()
}

// === impl DraV1 ===

/// `k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin`.
pub struct DraV1(DraService);

#[tonic::async_trait]
impl v1::dra_plugin_server::DraPlugin for DraV1 {
    async fn node_prepare_resources(
        &self,
        request: Request<v1::NodePrepareResourcesRequest>,
    ) -> Result<Response<v1::NodePrepareResourcesResponse>, Status> {
        let claims = request.into_inner().claims;
        let count = claims.len();
        let refs = claim_refs(
            claims.into_iter().map(|c| (c.namespace, c.name, c.uid)),
            count,
        )?;
        let claims = answers_by_uid(
            self.0.prepare(refs).await,
            |d| v1::Device {
                request_names: d.request_names,
                pool_name: d.pool,
                device_name: d.device,
                cdi_device_ids: d.cdi_device_ids,
                share_id: d.share_id,
            },
            |devices, error| v1::NodePrepareResourceResponse { devices, error },
        );
        Ok(Response::new(v1::NodePrepareResourcesResponse { claims }))
    }

    async fn node_unprepare_resources(
        &self,
        request: Request<v1::NodeUnprepareResourcesRequest>,
    ) -> Result<Response<v1::NodeUnprepareResourcesResponse>, Status> {
        let claims = request.into_inner().claims;
        let count = claims.len();
        let refs = claim_refs(
            claims.into_iter().map(|c| (c.namespace, c.name, c.uid)),
            count,
        )?;
        let claims = self
            .0
            .unprepare(refs)
            .await
            .into_iter()
            .map(|(uid, error)| (uid, v1::NodeUnprepareResourceResponse { error }))
            .collect();
        Ok(Response::new(v1::NodeUnprepareResourcesResponse { claims }))
    }
}

// === impl DraV1beta1 ===

/// `k8s.io.kubelet.pkg.apis.dra.v1beta1.DRAPlugin`: as v1, without `share_id`.
pub struct DraV1beta1(DraService);

#[tonic::async_trait]
impl v1beta1::dra_plugin_server::DraPlugin for DraV1beta1 {
    async fn node_prepare_resources(
        &self,
        request: Request<v1beta1::NodePrepareResourcesRequest>,
    ) -> Result<Response<v1beta1::NodePrepareResourcesResponse>, Status> {
        let claims = request.into_inner().claims;
        let count = claims.len();
        let refs = claim_refs(
            claims.into_iter().map(|c| (c.namespace, c.name, c.uid)),
            count,
        )?;
        let claims = answers_by_uid(
            self.0.prepare(refs).await,
            |d| v1beta1::Device {
                request_names: d.request_names,
                pool_name: d.pool,
                device_name: d.device,
                cdi_device_ids: d.cdi_device_ids,
            },
            |devices, error| v1beta1::NodePrepareResourceResponse { devices, error },
        );
        Ok(Response::new(v1beta1::NodePrepareResourcesResponse {
            claims,
        }))
    }

    async fn node_unprepare_resources(
        &self,
        request: Request<v1beta1::NodeUnprepareResourcesRequest>,
    ) -> Result<Response<v1beta1::NodeUnprepareResourcesResponse>, Status> {
        let claims = request.into_inner().claims;
        let count = claims.len();
        let refs = claim_refs(
            claims.into_iter().map(|c| (c.namespace, c.name, c.uid)),
            count,
        )?;
        let claims = self
            .0
            .unprepare(refs)
            .await
            .into_iter()
            .map(|(uid, error)| (uid, v1beta1::NodeUnprepareResourceResponse { error }))
            .collect();
        Ok(Response::new(v1beta1::NodeUnprepareResourcesResponse {
            claims,
        }))
    }
}
