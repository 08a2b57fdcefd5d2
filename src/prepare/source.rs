//! Where prepare reads ResourceClaims from: the API server in production, a map in tests.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::resource::v1::ResourceClaim;
use kube::Api;
use thiserror::Error;

use super::names::{self, NameError};

/// How long one claim read may take. Well under the kubelet's 45 s call timeout, so a slow
/// API server shows up as a per-claim error the kubelet retries, not as a dead RPC.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a claim could not be read.
#[derive(Debug, Error)]
pub enum ClaimSourceError {
    /// The claim does not exist (deleted, or never created).
    #[error("claim {namespace}/{name} not found")]
    NotFound {
        /// Claim namespace.
        namespace: String,
        /// Claim name.
        name: String,
    },
    /// The API server could not be asked, or answered with an error.
    #[error("cannot read claim {namespace}/{name}: {source}")]
    Api {
        /// Claim namespace.
        namespace: String,
        /// Claim name.
        name: String,
        /// The client error.
        source: kube::Error,
    },
    /// The namespace or name is not one the API server could hold: refused before a URL is
    /// built from it.
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// The API server did not answer in time.
    #[error("reading claim {namespace}/{name} timed out after {FETCH_TIMEOUT:?}")]
    Timeout {
        /// Claim namespace.
        namespace: String,
        /// Claim name.
        name: String,
    },
}

impl ClaimSourceError {
    /// A bounded label for the errors metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            ClaimSourceError::NotFound { .. } => "claim_not_found",
            ClaimSourceError::Api { .. } => "api",
            ClaimSourceError::Timeout { .. } => "api_timeout",
            ClaimSourceError::InvalidName(_) => "invalid_name",
        }
    }
}

/// Reads a ResourceClaim by namespace and name.
pub trait ClaimSource: Send + Sync + 'static {
    /// The claim as the API server has it now.
    fn get<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<ResourceClaim, ClaimSourceError>>;
}

// === impl KubeClaimSource ===

/// Claims from the Kubernetes API server (`resource.k8s.io/v1`).
#[derive(Clone)]
pub struct KubeClaimSource {
    client: kube::Client,
}

impl KubeClaimSource {
    /// A source using `client`.
    pub fn new(client: kube::Client) -> Self {
        KubeClaimSource { client }
    }
}

impl ClaimSource for KubeClaimSource {
    fn get<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<ResourceClaim, ClaimSourceError>> {
        Box::pin(async move {
            // kube-core (5.0) joins the namespace and name into the path as they are, without
            // escaping: `a/b`, `?` or `#` would address another object or add parameters.
            // Prepare checks names first; this keeps the client safe on its own.
            names::dns_label("namespace", namespace)?;
            names::dns_subdomain("claim name", name)?;
            let api: Api<ResourceClaim> = Api::namespaced(self.client.clone(), namespace);
            let answer = tokio::time::timeout(FETCH_TIMEOUT, api.get_opt(name))
                .await
                .map_err(|_| ClaimSourceError::Timeout {
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                })?;
            match answer {
                Ok(Some(claim)) => Ok(claim),
                Ok(None) => Err(ClaimSourceError::NotFound {
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                }),
                Err(source) => Err(ClaimSourceError::Api {
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                    source,
                }),
            }
        })
    }
}

// === impl MemoryClaimSource ===

/// Claims held in memory: the API server stand-in for unit tests and benches.
#[derive(Debug, Default)]
pub struct MemoryClaimSource {
    claims: RwLock<HashMap<(String, String), ResourceClaim>>,
}

impl MemoryClaimSource {
    /// An empty source.
    pub fn new() -> Self {
        MemoryClaimSource::default()
    }

    /// Store `claim` under its namespace and name, replacing any claim of that name.
    pub fn insert(&self, claim: ResourceClaim) {
        let key = (
            claim.metadata.namespace.clone().unwrap_or_default(),
            claim.metadata.name.clone().unwrap_or_default(),
        );
        let mut claims = self.claims.write().unwrap_or_else(|e| e.into_inner());
        claims.insert(key, claim);
    }

    /// Delete the claim `namespace/name`, if present.
    pub fn remove(&self, namespace: &str, name: &str) {
        let mut claims = self.claims.write().unwrap_or_else(|e| e.into_inner());
        claims.remove(&(namespace.to_owned(), name.to_owned()));
    }
}

impl ClaimSource for MemoryClaimSource {
    fn get<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<ResourceClaim, ClaimSourceError>> {
        let found = {
            let claims = self.claims.read().unwrap_or_else(|e| e.into_inner());
            claims
                .get(&(namespace.to_owned(), name.to_owned()))
                .cloned()
        };
        Box::pin(async move {
            found.ok_or_else(|| ClaimSourceError::NotFound {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn the_kube_source_refuses_names_that_would_change_the_url_before_any_request() {
        // Nothing listens there: a request would fail with a connection error instead.
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        let source = KubeClaimSource::new(kube::Client::try_from(config).unwrap());
        for (namespace, name, what) in [
            ("ns1/resourceclaims/claim-a#", "x", "namespace"),
            ("default", "claim-a?watch=1", "claim name"),
            ("default", "a/../b", "claim name"),
        ] {
            match source.get(namespace, name).await {
                Err(ClaimSourceError::InvalidName(e)) => assert_eq!(e.what, what),
                other => panic!("{namespace}/{name}: {other:?}"),
            }
        }
        let err = source.get("default", "claim-a").await.unwrap_err();
        assert!(matches!(err, ClaimSourceError::Api { .. }), "{err}");
    }
}
