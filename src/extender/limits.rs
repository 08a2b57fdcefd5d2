//! How much memory and time one request body may take, and how many bytes of bodies are
//! being decoded at once across all connections.
//!
//! Memory: a request's peak is its body plus what is decoded from it plus the answer (in
//! `Nodes` mode the answer echoes the passing Node objects, so up to the body again). Every
//! request is charged its body size (its `Content-Length`, or the body limit when the length
//! is not announced) against one process-wide budget *before* its body is read, and keeps the
//! charge until its answer is encoded. A request that does not fit waits up to
//! [`BodyLimits::queue_wait`] for others to finish, then gets 503 with `Retry-After`: kube-
//! scheduler treats any non-200 as a failed call of this extender (skipped when `ignorable`),
//! which is the right outcome when the process is full, and much better than the OOM kill
//! that unbounded concurrent decoding leads to. Waiting briefly first keeps a burst of
//! scheduling cycles from failing when a slot frees within milliseconds.
//!
//! Time: hyper bounds the request head; nothing bounds a body, so a client that sends headers
//! and then trickles (or stops) would hold its charge and its connection forever. The body is
//! read under [`BodyLimits::body_read_timeout`]; past it the request gets 408 and the
//! connection is closed.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Default [`BodyLimits::max_body_bytes`]: kube-scheduler in names mode (the chart's
/// `nodeCacheCapable: true`) sends 85 KB at 5,000 nodes, 1.28 MB if every name had the
/// 253-byte maximum; 8 MiB is over 6 times that, and holds about 480 full Node objects
/// (17 KiB each) for a small cluster in `Nodes` mode. Arithmetic in `docs/extender.md`.
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// Default [`BodyLimits::decode_budget_bytes`]: two maximum-size bodies at once.
pub const DEFAULT_DECODE_BUDGET_BYTES: usize = 2 * DEFAULT_MAX_BODY_BYTES;
/// Default [`BodyLimits::body_read_timeout`].
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default [`BodyLimits::queue_wait`].
pub const DEFAULT_QUEUE_WAIT: Duration = Duration::from_secs(1);
/// The budget is counted in KiB: a tokio semaphore hands out at most `u32::MAX` permits at
/// once, and no body limit needs finer steps.
const UNIT: usize = 1024;

/// Bounds on request bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimits {
    /// Largest body accepted; larger ones get 413 before a byte of them is read when they
    /// announce their length, or as soon as the limit is passed when they do not.
    pub max_body_bytes: usize,
    /// Bytes of bodies being read and decoded at once, all connections together.
    pub decode_budget_bytes: usize,
    /// Longest time from the start of a body to its last byte.
    pub body_read_timeout: Duration,
    /// Longest wait for room in the budget before answering 503.
    pub queue_wait: Duration,
}

impl Default for BodyLimits {
    fn default() -> Self {
        BodyLimits {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            decode_budget_bytes: DEFAULT_DECODE_BUDGET_BYTES,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            queue_wait: DEFAULT_QUEUE_WAIT,
        }
    }
}

impl BodyLimits {
    /// The default limits with another body limit, and a budget of two such bodies.
    pub fn with_max_body(max_body_bytes: usize) -> Self {
        BodyLimits {
            max_body_bytes,
            decode_budget_bytes: max_body_bytes.saturating_mul(2),
            ..BodyLimits::default()
        }
    }
}

/// The process-wide decode budget.
#[derive(Debug, Clone)]
pub struct DecodeBudget {
    permits: Arc<Semaphore>,
    /// Permits in the whole budget: no request is charged more.
    total: u32,
}

impl DecodeBudget {
    /// A budget of `bytes` (rounded up to whole KiB, at least one).
    pub fn new(bytes: usize) -> Self {
        let total = u32::try_from(bytes.div_ceil(UNIT).max(1)).unwrap_or(u32::MAX);
        DecodeBudget {
            permits: Arc::new(Semaphore::new(total as usize)),
            total,
        }
    }

    /// Bytes of the budget not charged to a request now.
    pub fn available_bytes(&self) -> usize {
        self.permits.available_permits().saturating_mul(UNIT)
    }
}

/// A body read within its limits, and its charge against the budget (released on drop).
pub struct ReadBody {
    /// The body.
    pub bytes: Bytes,
    /// Held until the answer is encoded.
    pub charge: OwnedSemaphorePermit,
}

/// Why a body was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// Announced or read past the limit.
    #[error("request body is larger than the {limit} bytes accepted")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The budget stayed full for the whole queue wait.
    #[error("the extender is decoding {budget} bytes of other requests; retry shortly")]
    Busy {
        /// The budget, bytes.
        budget: usize,
    },
    /// The body did not arrive within the read timeout.
    #[error("request body not received within {}s", timeout.as_secs_f32())]
    Slow {
        /// The timeout.
        timeout: Duration,
    },
    /// The connection broke, or the length header is not a number.
    #[error("request body unreadable: {0}")]
    Broken(String),
}

impl BodyError {
    /// The HTTP status of the answer.
    pub fn status(&self) -> StatusCode {
        match self {
            BodyError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            BodyError::Slow { .. } => StatusCode::REQUEST_TIMEOUT,
            BodyError::Broken(_) => StatusCode::BAD_REQUEST,
        }
    }

    /// A bounded label for metrics and logs.
    pub fn metric_label(&self) -> &'static str {
        match self {
            BodyError::TooLarge { .. } => "too_large",
            BodyError::Busy { .. } => "busy",
            BodyError::Slow { .. } => "slow_body",
            BodyError::Broken(_) => "broken",
        }
    }

    /// Whether the connection must be closed after the answer: always, as no refused body
    /// was read to its end and what is left of it is still on the connection (keeping it open
    /// would leave a client blocked writing a body nobody reads).
    pub fn closes_connection(&self) -> bool {
        true
    }
}

/// Charges the body of a request with `headers` to `budget`, then reads it within `limits`.
pub async fn read_body(
    limits: &BodyLimits,
    budget: &DecodeBudget,
    headers: &axum::http::HeaderMap,
    body: Body,
) -> Result<ReadBody, BodyError> {
    let declared = match headers.get(header::CONTENT_LENGTH) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| BodyError::Broken("Content-Length is not a number".into()))?,
        ),
    };
    let limit = limits.max_body_bytes;
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    // Unannounced length (chunked): charge the worst case, the limit.
    let charge_bytes = declared.map_or(limit, |n| n as usize);
    let units = u32::try_from(charge_bytes.div_ceil(UNIT).max(1))
        .unwrap_or(u32::MAX)
        .min(budget.total);
    let charge = match tokio::time::timeout(
        limits.queue_wait,
        Arc::clone(&budget.permits).acquire_many_owned(units),
    )
    .await
    {
        Ok(Ok(permit)) => permit,
        // The semaphore is never closed; treat it like a full budget all the same.
        Ok(Err(_)) | Err(_) => {
            return Err(BodyError::Busy {
                budget: limits.decode_budget_bytes,
            });
        }
    };
    let read = Limited::new(body, limit).collect();
    let bytes = match tokio::time::timeout(limits.body_read_timeout, read).await {
        Err(_) => {
            return Err(BodyError::Slow {
                timeout: limits.body_read_timeout,
            });
        }
        Ok(Err(e)) if e.is::<LengthLimitError>() => return Err(BodyError::TooLarge { limit }),
        Ok(Err(e)) => return Err(BodyError::Broken(e.to_string())),
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    Ok(ReadBody { bytes, charge })
}

#[cfg(test)]
mod tests;
