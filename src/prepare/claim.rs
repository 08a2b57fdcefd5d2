//! The internal request and response types of prepare, and how a ResourceClaim's allocation
//! becomes the list of this driver's devices with their merged config.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::resource::v1::{DeviceAllocationConfiguration, ResourceClaim};
use serde::{Deserialize, Serialize};

use super::config::{self, DeviceConfig};
use super::error::PrepareError;
use super::names;

/// `AllocationResultsMaxSize`: at most this many results per claim.
pub const MAX_RESULTS: usize = 32;
/// At most this many config entries per claim (32 from the class side, 32 from the claim).
pub const MAX_CONFIG_ENTRIES: usize = 64;

/// Which claim the kubelet means: what both DRA wire versions carry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ClaimRef {
    /// ResourceClaim namespace.
    pub namespace: String,
    /// ResourceClaim name.
    pub name: String,
    /// ResourceClaim UID: the key of everything prepare stores.
    pub uid: String,
}

impl ClaimRef {
    /// A reference to `namespace/name` with `uid`.
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        uid: impl Into<String>,
    ) -> Self {
        ClaimRef {
            namespace: namespace.into(),
            name: name.into(),
            uid: uid.into(),
        }
    }

    /// Refuse anything the API server could not have stored, before it reaches an API URL
    /// or a file name: the namespace must be a DNS label, the name a DNS subdomain, the UID
    /// a UID (see [`names`]).
    pub fn validate(&self) -> Result<(), PrepareError> {
        names::dns_label("namespace", &self.namespace)?;
        names::dns_subdomain("claim name", &self.name)?;
        names::uid("claim uid", &self.uid)?;
        Ok(())
    }
}

impl fmt::Display for ClaimRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} ({})", self.namespace, self.name, self.uid)
    }
}

/// One device this driver allocated to a claim, with the config that applies to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocatedDevice {
    /// `<request>` or `<request>/<subrequest>`.
    pub request: String,
    /// Pool of the device.
    pub pool: String,
    /// Device name in the pool.
    pub device: String,
    /// Set for one share of a device allocated several times.
    pub share_id: Option<String>,
    /// Monitoring-style access that may overlap other claims.
    pub admin_access: bool,
    /// Capacity this share consumes, as quantities (e.g. `memory: 10Gi`).
    pub consumed_capacity: BTreeMap<String, String>,
    /// Class config first, claim config over it.
    pub config: DeviceConfig,
}

impl AllocatedDevice {
    /// The request name without `/<subrequest>`: what the kubelet matches containers on.
    pub fn base_request(&self) -> &str {
        base_request(&self.request)
    }
}

/// What the kubelet gets back for one prepared device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreparedDevice {
    /// Base request names this device serves.
    pub request_names: Vec<String>,
    /// Pool of the device.
    pub pool: String,
    /// Device name.
    pub device: String,
    /// Fully-qualified CDI device IDs.
    pub cdi_device_ids: Vec<String>,
    /// The allocation result's shareID, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_id: Option<String>,
}

/// `<request>/<subrequest>` → `<request>`.
pub fn base_request(request: &str) -> &str {
    request.split_once('/').map_or(request, |(base, _)| base)
}

/// The devices of `claim` allocated by `driver` on this node's `pool`, after checking the
/// claim is the one the kubelet means (`want.uid`) and is allocated.
pub fn allocated_devices(
    claim: &ResourceClaim,
    want: &ClaimRef,
    driver: &str,
    pool: &str,
) -> Result<Vec<AllocatedDevice>, PrepareError> {
    let found_uid = claim.metadata.uid.clone().unwrap_or_default();
    if found_uid != want.uid {
        return Err(PrepareError::UidMismatch {
            namespace: want.namespace.clone(),
            name: want.name.clone(),
            expected: want.uid.clone(),
            found: found_uid,
        });
    }
    let devices = claim
        .status
        .as_ref()
        .and_then(|s| s.allocation.as_ref())
        .and_then(|a| a.devices.as_ref())
        .ok_or_else(|| PrepareError::NotAllocated {
            namespace: want.namespace.clone(),
            name: want.name.clone(),
        })?;
    let results = devices.results.as_deref().unwrap_or_default();
    if results.len() > MAX_RESULTS {
        return Err(PrepareError::TooMany {
            what: "allocation results",
            count: results.len(),
            limit: MAX_RESULTS,
        });
    }
    let configs = devices.config.as_deref().unwrap_or_default();
    if configs.len() > MAX_CONFIG_ENTRIES {
        return Err(PrepareError::TooMany {
            what: "config entries",
            count: configs.len(),
            limit: MAX_CONFIG_ENTRIES,
        });
    }
    let ours: Vec<_> = results.iter().filter(|r| r.driver == driver).collect();
    if ours.is_empty() {
        let mut others: Vec<&str> = results.iter().map(|r| r.driver.as_str()).collect();
        others.sort_unstable();
        others.dedup();
        return Err(PrepareError::NoResultsForDriver {
            driver: driver.to_owned(),
            others: if others.is_empty() {
                "none".to_owned()
            } else {
                others.join(", ")
            },
        });
    }
    let entries = ordered_config_entries(configs, driver)?;
    ours.into_iter()
        .map(|result| {
            if result.pool != pool {
                return Err(PrepareError::ForeignPool {
                    device: result.device.clone(),
                    pool: result.pool.clone(),
                    expected: pool.to_owned(),
                });
            }
            // The device name, the request and the share ID become parts of CDI device
            // names and of the checkpoint; the API server validated them, but a claim is
            // input all the same.
            names::dns_label("device", &result.device)?;
            names::request_name("request", &result.request)?;
            if let Some(share) = &result.share_id {
                names::uid("share ID", share)?;
            }
            let mut applicable = Vec::new();
            for entry in &entries {
                if entry.applies_to(&result.request) {
                    let decoded =
                        entry
                            .decoded
                            .as_ref()
                            .map_err(|source| PrepareError::InvalidConfig {
                                request: result.request.clone(),
                                source: source.clone(),
                            })?;
                    applicable.push(decoded);
                }
            }
            Ok(AllocatedDevice {
                request: result.request.clone(),
                pool: result.pool.clone(),
                device: result.device.clone(),
                share_id: result.share_id.clone(),
                admin_access: result.admin_access.unwrap_or(false),
                consumed_capacity: result
                    .consumed_capacity
                    .iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v.0.clone()))
                    .collect(),
                config: DeviceConfig::merged(applicable),
            })
        })
        .collect()
}

/// One opaque config entry of this driver, decoded (or the reason it could not be).
struct ConfigEntry {
    requests: Vec<String>,
    decoded: Result<DeviceConfig, config::ConfigError>,
}

impl ConfigEntry {
    /// An entry applies when it names no request, the request, or the request's base name.
    fn applies_to(&self, request: &str) -> bool {
        self.requests.is_empty()
            || self
                .requests
                .iter()
                .any(|r| r == request || r == base_request(request))
    }
}

/// This driver's entries, DeviceClass ones first, then the claim's, each group in its
/// original order, so that applying them in order lets the claim win.
fn ordered_config_entries(
    configs: &[DeviceAllocationConfiguration],
    driver: &str,
) -> Result<Vec<ConfigEntry>, PrepareError> {
    let mut from_class = Vec::new();
    let mut from_claim = Vec::new();
    for entry in configs {
        let Some(opaque) = entry.opaque.as_ref() else {
            continue;
        };
        if opaque.driver != driver {
            continue;
        }
        let decoded = ConfigEntry {
            requests: entry.requests.clone().unwrap_or_default(),
            decoded: config::decode(&opaque.parameters.0),
        };
        match entry.source.as_str() {
            "FromClass" => from_class.push(decoded),
            "FromClaim" => from_claim.push(decoded),
            other => {
                return Err(PrepareError::InvalidRequest {
                    reason: format!("config entry has unknown source {other:?}"),
                });
            }
        }
    }
    from_class.extend(from_claim);
    Ok(from_class)
}

#[cfg(test)]
mod tests;
