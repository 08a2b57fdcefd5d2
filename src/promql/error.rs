//! What can go wrong talking to Prometheus.

/// A failed Prometheus query.
#[derive(Debug, thiserror::Error)]
pub enum PromError {
    /// The `--prometheus` URL cannot be used.
    #[error("--prometheus {url}: {reason}")]
    Url {
        /// As given.
        url: String,
        /// Why.
        reason: String,
    },
    /// Nothing answered at the address.
    #[error("Prometheus at {url} is unreachable: {source}")]
    Unreachable {
        /// The server.
        url: String,
        /// The connect error.
        #[source]
        source: std::io::Error,
    },
    /// The server took longer than the timeout.
    #[error("Prometheus at {url} did not answer within {seconds} s (--timeout)")]
    Timeout {
        /// The server.
        url: String,
        /// The timeout.
        seconds: f64,
    },
    /// The HTTP exchange failed.
    #[error("HTTP exchange with Prometheus at {url} failed: {reason}")]
    Http {
        /// The server.
        url: String,
        /// Why.
        reason: String,
    },
    /// Prometheus answered with an error (bad query, overload, timeout on its side).
    #[error("Prometheus answered HTTP {status}: {error_type} {error}")]
    Status {
        /// HTTP status.
        status: u16,
        /// `errorType` (`bad_data`, `timeout`, `execution`, …).
        error_type: String,
        /// `error`.
        error: String,
    },
    /// The answer is larger than allowed.
    #[error("Prometheus's answer is larger than {limit} bytes; shorten --window")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The answer has more series than allowed.
    #[error("Prometheus returned {got} series, more than the limit of {limit}, for {query}")]
    TooManySeries {
        /// The limit.
        limit: usize,
        /// How many came.
        got: usize,
        /// The query.
        query: String,
    },
    /// The answer is not Prometheus's JSON.
    #[error("the answer of {url} is not Prometheus API JSON: {source}")]
    Decode {
        /// The server.
        url: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The answer is JSON of an unexpected shape.
    #[error("unexpected Prometheus answer: {0}")]
    Shape(String),
}
