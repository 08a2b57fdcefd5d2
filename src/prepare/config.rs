//! Opaque device configuration: what a DeviceClass or a claim may say about how a device is
//! shared, decoded from `opaque.parameters`, validated, and merged (class first, claim wins).
//!
//! ```yaml
//! apiVersion: gpu.tessera.dev/v1alpha1
//! kind: GpuConfig
//! sharing:
//!   strategy: TimeSlicing        # or MPS
//!   interval: Long               # TimeSlicing: Default | Short | Medium | Long
//!   # MPS: activeThreadPercentage: 50, pinnedMemoryLimit: 10Gi
//! ```

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::quantity::{QuantityError, parse_quantity};

/// The API version every tessera config object must carry.
pub const CONFIG_API_VERSION: &str = "gpu.tessera.dev/v1alpha1";
/// The one kind defined so far.
pub const CONFIG_KIND: &str = "GpuConfig";
/// Kubernetes' limit on `opaque.parameters` (`OpaqueParametersMaxLength`).
pub const MAX_PARAMETERS_BYTES: usize = 10 * 1024;

/// Why an opaque config object was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// Larger than the API server would ever store.
    #[error("opaque parameters are {bytes} bytes, more than the {MAX_PARAMETERS_BYTES} allowed")]
    TooLarge {
        /// Encoded size.
        bytes: usize,
    },
    /// `apiVersion` is missing or not one this plugin reads.
    #[error("apiVersion {found:?} is not supported (want {CONFIG_API_VERSION:?})")]
    ApiVersion {
        /// What the object said.
        found: String,
    },
    /// `kind` is missing or unknown.
    #[error("kind {found:?} is not supported (want {CONFIG_KIND:?})")]
    Kind {
        /// What the object said.
        found: String,
    },
    /// The object does not match the schema (unknown field, wrong type, unknown strategy).
    #[error("{reason}")]
    Schema {
        /// The decoder's message, naming the field.
        reason: String,
    },
    /// `activeThreadPercentage` outside 1..=100.
    #[error("activeThreadPercentage {value} is outside 1..=100")]
    ThreadPercentage {
        /// The value given.
        value: u32,
    },
    /// `pinnedMemoryLimit` is not a quantity, or zero.
    #[error("pinnedMemoryLimit: {0}")]
    PinnedMemory(QuantityError),
}

/// How a device (or the GPU under it) is shared between the processes that use it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "strategy", deny_unknown_fields)]
pub enum Sharing {
    /// Processes take turns on the whole GPU; the interval is the GPU's time slice.
    TimeSlicing {
        /// Length of each process's time slice.
        #[serde(default)]
        interval: TimeSliceInterval,
    },
    /// CUDA MPS: processes run concurrently, each limited to a share of SMs and memory.
    #[serde(rename = "MPS")]
    Mps {
        /// Percentage of SMs each client may use (1..=100); without it, the `compute`
        /// capacity the allocation consumed, if any.
        #[serde(default, rename = "activeThreadPercentage")]
        active_thread_percentage: Option<u32>,
        /// Device memory each client may pin, in bytes; without it, the `memory` capacity the
        /// allocation consumed, if any.
        #[serde(default, rename = "pinnedMemoryLimitBytes")]
        pinned_memory_limit_bytes: Option<u64>,
    },
}

/// The GPU time-slice lengths `nvidia-smi compute-policy --set-timeslice` offers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TimeSliceInterval {
    /// The driver's default.
    #[default]
    Default,
    /// Short slices: lower latency, more switching.
    Short,
    /// Medium slices.
    Medium,
    /// Long slices: higher throughput for batch work.
    Long,
}

impl TimeSliceInterval {
    /// The value `nvidia-smi compute-policy --set-timeslice` takes.
    pub fn nvidia_smi_value(self) -> u8 {
        match self {
            TimeSliceInterval::Default => 0,
            TimeSliceInterval::Short => 1,
            TimeSliceInterval::Medium => 2,
            TimeSliceInterval::Long => 3,
        }
    }
}

/// The validated content of one config object, or the merge of several.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceConfig {
    /// How the device is shared; `None` = not said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharing: Option<Sharing>,
}

impl DeviceConfig {
    /// Apply `entries` in order, later ones overriding what earlier ones said: callers pass
    /// DeviceClass entries first, then the claim's, so the claim wins.
    pub fn merged<'a>(entries: impl IntoIterator<Item = &'a DeviceConfig>) -> DeviceConfig {
        let mut out = DeviceConfig::default();
        for entry in entries {
            if entry.sharing.is_some() {
                out.sharing.clone_from(&entry.sharing);
            }
        }
        out
    }
}

// === wire format ===

/// Just enough to say which object this is before decoding it strictly.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypeMeta {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GpuConfigWire {
    #[allow(dead_code)] // checked through TypeMeta; here only so it is not an unknown field
    api_version: String,
    #[allow(dead_code)]
    kind: String,
    #[serde(default)]
    sharing: Option<SharingWire>,
}

#[derive(Deserialize)]
#[serde(tag = "strategy", deny_unknown_fields)]
enum SharingWire {
    TimeSlicing {
        #[serde(default)]
        interval: TimeSliceInterval,
    },
    #[serde(rename = "MPS", rename_all = "camelCase")]
    Mps {
        #[serde(default)]
        active_thread_percentage: Option<u32>,
        #[serde(default)]
        pinned_memory_limit: Option<String>,
    },
}

/// Decode and validate one `opaque.parameters` object.
pub fn decode(parameters: &serde_json::Value) -> Result<DeviceConfig, ConfigError> {
    let bytes = serde_json::to_vec(parameters)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if bytes > MAX_PARAMETERS_BYTES {
        return Err(ConfigError::TooLarge { bytes });
    }
    let meta = TypeMeta::deserialize(parameters).map_err(|e| ConfigError::Schema {
        reason: e.to_string(),
    })?;
    if meta.api_version != CONFIG_API_VERSION {
        return Err(ConfigError::ApiVersion {
            found: meta.api_version,
        });
    }
    if meta.kind != CONFIG_KIND {
        return Err(ConfigError::Kind { found: meta.kind });
    }
    let wire = GpuConfigWire::deserialize(parameters).map_err(|e| ConfigError::Schema {
        reason: e.to_string(),
    })?;
    let sharing = match wire.sharing {
        None => None,
        Some(SharingWire::TimeSlicing { interval }) => Some(Sharing::TimeSlicing { interval }),
        Some(SharingWire::Mps {
            active_thread_percentage,
            pinned_memory_limit,
        }) => {
            if let Some(value) = active_thread_percentage
                && !(1..=100).contains(&value)
            {
                return Err(ConfigError::ThreadPercentage { value });
            }
            let pinned_memory_limit_bytes = match pinned_memory_limit {
                None => None,
                Some(text) => match parse_quantity(&text).map_err(ConfigError::PinnedMemory)? {
                    0 => {
                        return Err(ConfigError::PinnedMemory(QuantityError::OutOfRange {
                            text,
                        }));
                    }
                    n => Some(n),
                },
            };
            Some(Sharing::Mps {
                active_thread_percentage,
                pinned_memory_limit_bytes,
            })
        }
    };
    Ok(DeviceConfig { sharing })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn time_slicing_and_mps_decode() {
        let ts = decode(&json!({
            "apiVersion": "gpu.tessera.dev/v1alpha1", "kind": "GpuConfig",
            "sharing": {"strategy": "TimeSlicing", "interval": "Long"}
        }))
        .unwrap();
        assert_eq!(
            ts.sharing,
            Some(Sharing::TimeSlicing {
                interval: TimeSliceInterval::Long
            })
        );
        let mps = decode(&json!({
            "apiVersion": "gpu.tessera.dev/v1alpha1", "kind": "GpuConfig",
            "sharing": {"strategy": "MPS", "activeThreadPercentage": 25, "pinnedMemoryLimit": "10Gi"}
        }))
        .unwrap();
        assert_eq!(
            mps.sharing,
            Some(Sharing::Mps {
                active_thread_percentage: Some(25),
                pinned_memory_limit_bytes: Some(10 << 30)
            })
        );
        let empty = decode(&json!({"apiVersion": "gpu.tessera.dev/v1alpha1", "kind": "GpuConfig"}));
        assert_eq!(empty, Ok(DeviceConfig::default()));
    }

    #[test]
    fn unknown_fields_versions_kinds_and_values_are_refused_with_the_reason() {
        let base = |sharing: serde_json::Value| json!({"apiVersion": "gpu.tessera.dev/v1alpha1", "kind": "GpuConfig", "sharing": sharing});
        let unknown_top =
            json!({"apiVersion": "gpu.tessera.dev/v1alpha1", "kind": "GpuConfig", "color": "red"});
        assert!(
            matches!(decode(&unknown_top), Err(ConfigError::Schema { reason }) if reason.contains("color"))
        );
        let unknown_inner = base(json!({"strategy": "TimeSlicing", "interval": "Long", "x": 1}));
        assert!(
            matches!(decode(&unknown_inner), Err(ConfigError::Schema { reason }) if reason.contains('x'))
        );
        let bad_strategy = base(json!({"strategy": "Magic"}));
        assert!(matches!(
            decode(&bad_strategy),
            Err(ConfigError::Schema { .. })
        ));
        let bad_interval = base(json!({"strategy": "TimeSlicing", "interval": "Forever"}));
        assert!(matches!(
            decode(&bad_interval),
            Err(ConfigError::Schema { .. })
        ));
        assert_eq!(
            decode(&base(
                json!({"strategy": "MPS", "activeThreadPercentage": 0})
            )),
            Err(ConfigError::ThreadPercentage { value: 0 })
        );
        assert_eq!(
            decode(&base(
                json!({"strategy": "MPS", "activeThreadPercentage": 101})
            )),
            Err(ConfigError::ThreadPercentage { value: 101 })
        );
        assert!(matches!(
            decode(&base(
                json!({"strategy": "MPS", "pinnedMemoryLimit": "lots"})
            )),
            Err(ConfigError::PinnedMemory(_))
        ));
        assert!(matches!(
            decode(&json!({"apiVersion": "gpu.tessera.dev/v2", "kind": "GpuConfig"})),
            Err(ConfigError::ApiVersion { found }) if found == "gpu.tessera.dev/v2"
        ));
        assert!(matches!(
            decode(&json!({"apiVersion": "gpu.tessera.dev/v1alpha1", "kind": "MigConfig"})),
            Err(ConfigError::Kind { .. })
        ));
        assert!(matches!(
            decode(&json!("just a string")),
            Err(ConfigError::Schema { .. })
        ));
        let huge = json!({"apiVersion": "gpu.tessera.dev/v1alpha1", "kind": "GpuConfig", "pad": "x".repeat(11_000)});
        assert!(matches!(decode(&huge), Err(ConfigError::TooLarge { .. })));
    }

    #[test]
    fn later_entries_override_earlier_ones() {
        let class = DeviceConfig {
            sharing: Some(Sharing::TimeSlicing {
                interval: TimeSliceInterval::Short,
            }),
        };
        let claim = DeviceConfig {
            sharing: Some(Sharing::Mps {
                active_thread_percentage: Some(50),
                pinned_memory_limit_bytes: None,
            }),
        };
        let silent = DeviceConfig::default();
        assert_eq!(
            DeviceConfig::merged([&class, &claim, &silent]).sharing,
            claim.sharing
        );
        assert_eq!(DeviceConfig::merged([&class]).sharing, class.sharing);
    }
}
