//! A small client of Prometheus's HTTP API: instant queries (`POST /api/v1/query`) returning
//! vectors, with a timeout, a bounded response and a bounded number of series.
//!
//! Plain HTTP/1.1 over hyper (already linked for the extender and kube): Prometheus is read in
//! the cluster or through `kubectl port-forward`, and one query at a time needs no pool. The
//! response format is Prometheus's documented one (`docs/querying/api.md` in
//! `prometheus/prometheus`, v2.42.0): `{"status": "success" | "error", "data": {"resultType",
//! "result"}, "errorType", "error"}`.

mod encode;
mod error;

use std::collections::BTreeMap;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tracing::debug;

pub use error::PromError;

/// Largest response body read by default: 64 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 << 20;
/// Most series one query may return by default.
pub const DEFAULT_MAX_SERIES: usize = 50_000;

/// One series of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Its labels (`__name__` included when the expression kept it).
    pub labels: BTreeMap<String, String>,
    /// Its value (`NaN` and `±Inf` as Prometheus writes them).
    pub value: f64,
}

impl Sample {
    /// The value of label `name`, empty when absent (as in PromQL).
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map_or("", String::as_str)
    }
}

/// A Prometheus server.
#[derive(Debug, Clone)]
pub struct Client {
    /// `host:port`.
    authority: String,
    /// Path prefix before `/api/v1/…` (a Prometheus behind `--web.route-prefix`), no trailing `/`.
    prefix: String,
    /// The URL as given, for errors.
    url: String,
    timeout: Duration,
    max_body_bytes: usize,
    max_series: usize,
}

impl Client {
    /// A client of the Prometheus at `url` (`http://host:port[/prefix]`).
    pub fn new(url: &str, timeout: Duration) -> Result<Self, PromError> {
        let uri: Uri = url.parse().map_err(|_| PromError::Url {
            url: url.to_owned(),
            reason: "not a URL".to_owned(),
        })?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(PromError::Url {
                    url: url.to_owned(),
                    reason: "https is not supported; reach Prometheus over plain HTTP inside the \
                             cluster or through `kubectl port-forward`"
                        .to_owned(),
                });
            }
            _ => {
                return Err(PromError::Url {
                    url: url.to_owned(),
                    reason: "must start with http://".to_owned(),
                });
            }
        }
        let Some(authority) = uri.authority() else {
            return Err(PromError::Url {
                url: url.to_owned(),
                reason: "no host".to_owned(),
            });
        };
        if uri.query().is_some() {
            return Err(PromError::Url {
                url: url.to_owned(),
                reason: "must not have a query string".to_owned(),
            });
        }
        let authority = if authority.port_u16().is_some() {
            authority.as_str().to_owned()
        } else {
            format!("{}:80", authority.host())
        };
        Ok(Client {
            authority,
            prefix: uri.path().trim_end_matches('/').to_owned(),
            url: url.to_owned(),
            timeout,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_series: DEFAULT_MAX_SERIES,
        })
    }

    /// The same client with other bounds.
    pub fn with_limits(mut self, max_body_bytes: usize, max_series: usize) -> Self {
        self.max_body_bytes = max_body_bytes;
        self.max_series = max_series;
        self
    }

    /// The URL given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Evaluates `query` at Unix time `time`; the result must be an instant vector.
    pub async fn query(&self, query: &str, time: f64) -> Result<Vec<Sample>, PromError> {
        let form = format!(
            "query={}&time={}",
            encode::form(query),
            encode::form(&format!("{time:.3}"))
        );
        let started = std::time::Instant::now();
        let body = tokio::time::timeout(self.timeout, self.post("/api/v1/query", form))
            .await
            .map_err(|_| PromError::Timeout {
                url: self.url.clone(),
                seconds: self.timeout.as_secs_f64(),
            })??;
        let samples = self.decode(body.0, &body.1, query)?;
        debug!(
            query,
            series = samples.len(),
            bytes = body.1.len(),
            took_ms = started.elapsed().as_millis() as u64,
            "prometheus query"
        );
        Ok(samples)
    }

    async fn post(&self, path: &str, form: String) -> Result<(u16, Bytes), PromError> {
        let stream = tokio::net::TcpStream::connect(&self.authority)
            .await
            .map_err(|source| PromError::Unreachable {
                url: self.url.clone(),
                source,
            })?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| PromError::Http {
                url: self.url.clone(),
                reason: e.to_string(),
            })?;
        let driver = tokio::spawn(connection);
        let request = Request::post(format!("{}{path}", self.prefix))
            .header(hyper::header::HOST, &self.authority)
            .header(
                hyper::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(hyper::header::ACCEPT, "application/json")
            .body(Full::new(Bytes::from(form)))
            .map_err(|e| PromError::Http {
                url: self.url.clone(),
                reason: e.to_string(),
            })?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| PromError::Http {
                url: self.url.clone(),
                reason: e.to_string(),
            })?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), self.max_body_bytes)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    PromError::TooLarge {
                        limit: self.max_body_bytes,
                    }
                } else {
                    PromError::Http {
                        url: self.url.clone(),
                        reason: e.to_string(),
                    }
                }
            })?
            .to_bytes();
        driver.abort();
        Ok((status, body))
    }

    fn decode(&self, status: u16, body: &Bytes, query: &str) -> Result<Vec<Sample>, PromError> {
        let parsed: Envelope = match serde_json::from_slice(body) {
            Ok(parsed) => parsed,
            Err(source) => {
                if !(200..300).contains(&status) {
                    let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
                    return Err(PromError::Status {
                        status,
                        error_type: String::new(),
                        error: text.trim().to_owned(),
                    });
                }
                return Err(PromError::Decode {
                    url: self.url.clone(),
                    source,
                });
            }
        };
        if parsed.status != "success" {
            return Err(PromError::Status {
                status,
                error_type: parsed.error_type.unwrap_or_default(),
                error: parsed.error.unwrap_or_default(),
            });
        }
        let Some(data) = parsed.data else {
            return Err(PromError::Shape("a success without data".to_owned()));
        };
        if data.result_type != "vector" {
            return Err(PromError::Shape(format!(
                "result type {} where an instant vector was expected",
                data.result_type
            )));
        }
        if data.result.len() > self.max_series {
            return Err(PromError::TooManySeries {
                limit: self.max_series,
                got: data.result.len(),
                query: query.to_owned(),
            });
        }
        data.result
            .into_iter()
            .map(|series| {
                let value = parse_value(&series.value.1)?;
                Ok(Sample {
                    labels: series.metric,
                    value,
                })
            })
            .collect()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    result_type: String,
    #[serde(default)]
    result: Vec<Series>,
}

#[derive(Deserialize)]
struct Series {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

fn parse_value(text: &str) -> Result<f64, PromError> {
    match text {
        "NaN" => Ok(f64::NAN),
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        other => other
            .parse()
            .map_err(|_| PromError::Shape(format!("sample value {other:?} is not a number"))),
    }
}

#[cfg(test)]
mod tests;
