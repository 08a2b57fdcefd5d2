//! Who may read `/explain` and `/metrics`: a bearer token the API server vouches for
//! (TokenReview) whose user the API server allows to `get` the path (SubjectAccessReview on
//! a non-resource URL), the check kube-rbac-proxy puts in front of metrics endpoints
//! (`brancz/kube-rbac-proxy` `pkg/filters/auth.go`: 401 when the token does not authenticate,
//! 403 when the review denies, and its SAR decisions cached; `pkg/authz/auth.go`).
//!
//! Grant access the Kubernetes way, e.g. a ClusterRole with
//! `nonResourceURLs: ["/metrics", "/explain"]`, `verbs: ["get"]` bound to Prometheus's service
//! account. The extender itself needs `create` on `tokenreviews` and `subjectaccessreviews`
//! (the built-in `system:auth-delegator` ClusterRole).
//!
//! Decisions (allowed, denied, unauthenticated) are cached per token digest, path and verb for
//! a short TTL so a scrape every 15 s costs the API server two calls per TTL, not per scrape;
//! errors reaching the API server are never cached. The cache is bounded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};
use tracing::{debug, warn};

/// Default time a decision is reused.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(30);
/// Most decisions kept; past it, expired ones are dropped, then all.
const MAX_CACHED: usize = 4096;
/// Longest bearer token accepted (service-account JWTs are ~1 KiB; OIDC ones a few).
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Why a request was not let through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// No bearer token, or one the API server does not authenticate.
    #[error("unauthorized: {0}")]
    Unauthenticated(String),
    /// The token's user may not `get` this path.
    #[error("forbidden: user {user:?} may not {verb} {path}")]
    Forbidden {
        /// Authenticated user name.
        user: String,
        /// Verb asked.
        verb: String,
        /// Path asked.
        path: String,
    },
    /// The API server could not be asked.
    #[error("access review unavailable: {0}")]
    Unavailable(String),
}

impl AccessError {
    fn status(&self) -> StatusCode {
        match self {
            AccessError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            AccessError::Forbidden { .. } => StatusCode::FORBIDDEN,
            AccessError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// The TokenReview/SubjectAccessReview check with its decision cache.
pub struct AccessReview {
    client: kube::Client,
    ttl: Duration,
    cache: Mutex<HashMap<CacheKey, Cached>>,
}

/// A decision and when it was made.
type Cached = (Instant, Result<(), AccessError>);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    token_sha256: [u8; 32],
    verb: &'static str,
    path: String,
}

impl AccessReview {
    /// Reviews against the API server `client` talks to, reusing decisions for `ttl`.
    pub fn new(client: kube::Client, ttl: Duration) -> Arc<Self> {
        Arc::new(AccessReview {
            client,
            ttl,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Whether the request with `headers` may `method` `path`.
    pub async fn check(
        &self,
        headers: &HeaderMap,
        method: &Method,
        path: &str,
    ) -> Result<(), AccessError> {
        let token = bearer_token(headers)?;
        let verb = verb_of(method);
        let key = CacheKey {
            token_sha256: sha256(token),
            verb,
            path: path.to_owned(),
        };
        if let Some(hit) = self.cached(&key) {
            return hit;
        }
        let decision = self.review(token, verb, path).await;
        if !matches!(decision, Err(AccessError::Unavailable(_))) {
            self.remember(key, decision.clone());
        }
        decision
    }

    fn cached(&self, key: &CacheKey) -> Option<Result<(), AccessError>> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let (at, decision) = cache.get(key)?;
        (at.elapsed() < self.ttl).then(|| decision.clone())
    }

    fn remember(&self, key: CacheKey, decision: Result<(), AccessError>) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_CACHED {
            let ttl = self.ttl;
            cache.retain(|_, (at, _)| at.elapsed() < ttl);
            if cache.len() >= MAX_CACHED {
                // Many distinct live tokens: someone is spraying tokens. Forgetting costs
                // only extra reviews.
                cache.clear();
            }
        }
        cache.insert(key, (Instant::now(), decision));
    }

    async fn review(&self, token: &str, verb: &'static str, path: &str) -> Result<(), AccessError> {
        let unavailable = |what: &str, e: kube::Error| {
            warn!(error = %e, "{what} failed");
            AccessError::Unavailable(format!("{what}: {e}"))
        };
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: token.to_owned(),
                audiences: None,
            },
            ..TokenReview::default()
        };
        let reviewed = Api::<TokenReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| unavailable("TokenReview", e))?;
        let status = reviewed.status.unwrap_or_default();
        let user = match (status.authenticated, status.user) {
            (Some(true), Some(user)) => user,
            _ => {
                let why = status
                    .error
                    .filter(|e| !e.is_empty())
                    .unwrap_or_else(|| "token not authenticated".to_owned());
                debug!(reason = %why, "token refused");
                return Err(AccessError::Unauthenticated(why));
            }
        };
        let name = user.username.clone().unwrap_or_default();
        let sar = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: user.username,
                groups: user.groups,
                uid: user.uid,
                extra: user.extra,
                non_resource_attributes: Some(NonResourceAttributes {
                    path: Some(path.to_owned()),
                    verb: Some(verb.to_owned()),
                }),
                resource_attributes: None,
            },
            ..SubjectAccessReview::default()
        };
        let decided = Api::<SubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &sar)
            .await
            .map_err(|e| unavailable("SubjectAccessReview", e))?;
        if decided.status.is_some_and(|s| s.allowed) {
            debug!(user = %name, verb, path, "access allowed");
            Ok(())
        } else {
            debug!(user = %name, verb, path, "access denied");
            Err(AccessError::Forbidden {
                user: name,
                verb: verb.to_owned(),
                path: path.to_owned(),
            })
        }
    }
}

/// axum middleware: lets the request through only when [`AccessReview::check`] allows it.
pub async fn require(
    State(review): State<Arc<AccessReview>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    match review
        .check(request.headers(), request.method(), &path)
        .await
    {
        Ok(()) => next.run(request).await,
        Err(e) => {
            let mut response = (e.status(), format!("{e}\n")).into_response();
            if matches!(e, AccessError::Unauthenticated(_)) {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            response
        }
    }
}

fn bearer_token(headers: &HeaderMap) -> Result<&str, AccessError> {
    let missing = || AccessError::Unauthenticated("no bearer token".to_owned());
    let value = headers.get(header::AUTHORIZATION).ok_or_else(missing)?;
    let text = value.to_str().map_err(|_| missing())?;
    let (scheme, token) = text.trim().split_once(' ').ok_or_else(missing)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(missing());
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(AccessError::Unauthenticated(format!(
            "bearer token longer than {MAX_TOKEN_BYTES} bytes"
        )));
    }
    Ok(token)
}

/// The API server's verb for a non-resource request: the lower-cased HTTP method
/// (`kubernetes/kubernetes` master 2026,
/// `staging/src/k8s.io/apiserver/pkg/endpoints/request/requestinfo.go`, `NewRequestInfo`).
fn verb_of(method: &Method) -> &'static str {
    match *method {
        Method::GET => "get",
        Method::HEAD => "head",
        Method::POST => "post",
        Method::PUT => "put",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        Method::OPTIONS => "options",
        _ => "unknown",
    }
}

fn sha256(token: &str) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

#[cfg(test)]
mod tests;
