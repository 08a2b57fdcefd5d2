//! Device names as advertised in ResourceSlices and parsed back on prepare.
//!
//! Names are DNS labels, stable across restarts, and carry everything prepare needs to find
//! the hardware again: `gpu-<i>`, `gpu-<i>-mig-<profile>-<start>` (profile with `.` and `+`
//! dropped, e.g. `1g10gb`, `1g10gbme`), `gpu-<i>-shared`, `gpu-<i>-share-<k>`.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// Kubernetes' limit on a device name (a DNS label).
pub const MAX_DEVICE_NAME_LEN: usize = 63;

/// A parsed device name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeviceName {
    /// The whole GPU.
    Whole {
        /// GPU index.
        gpu: u32,
    },
    /// A MIG placement of a profile.
    Mig {
        /// GPU index.
        gpu: u32,
        /// Profile name squashed to a DNS label: `1g.10gb+me` → `1g10gbme`.
        profile_label: String,
        /// First memory slice of the placement.
        start: u8,
    },
    /// The GPU shared by consumable capacity (`memory`, `compute`).
    Shared {
        /// GPU index.
        gpu: u32,
    },
    /// One of N time-sliced replicas, for clusters without consumable capacity.
    Share {
        /// GPU index.
        gpu: u32,
        /// Replica number.
        replica: u32,
    },
}

/// Why a device name could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DeviceNameError {
    /// The name does not follow any tessera device pattern.
    #[error(
        "device name {name:?} is not a tessera device (want gpu-<i>, gpu-<i>-mig-<profile>-<start>, gpu-<i>-shared or gpu-<i>-share-<k>)"
    )]
    Unrecognised {
        /// The offending name (truncated to the DNS label limit).
        name: String,
    },
}

impl DeviceName {
    /// The GPU index this device lives on.
    pub fn gpu(&self) -> u32 {
        match self {
            DeviceName::Whole { gpu }
            | DeviceName::Mig { gpu, .. }
            | DeviceName::Shared { gpu }
            | DeviceName::Share { gpu, .. } => *gpu,
        }
    }

    /// A MIG device name for profile `profile` (as NVML spells it) at `start`.
    pub fn mig(gpu: u32, profile: &str, start: u8) -> Self {
        DeviceName::Mig {
            gpu,
            profile_label: profile_label(profile),
            start,
        }
    }
}

/// A profile name squashed into DNS-label characters: `1g.10gb+me` → `1g10gbme`.
pub fn profile_label(profile: &str) -> String {
    profile
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

impl fmt::Display for DeviceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceName::Whole { gpu } => write!(f, "gpu-{gpu}"),
            DeviceName::Mig {
                gpu,
                profile_label,
                start,
            } => write!(f, "gpu-{gpu}-mig-{profile_label}-{start}"),
            DeviceName::Shared { gpu } => write!(f, "gpu-{gpu}-shared"),
            DeviceName::Share { gpu, replica } => write!(f, "gpu-{gpu}-share-{replica}"),
        }
    }
}

impl FromStr for DeviceName {
    type Err = DeviceNameError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let bad = || DeviceNameError::Unrecognised {
            name: name.chars().take(MAX_DEVICE_NAME_LEN).collect(),
        };
        if name.len() > MAX_DEVICE_NAME_LEN {
            return Err(bad());
        }
        let rest = name.strip_prefix("gpu-").ok_or_else(bad)?;
        let mut parts = rest.split('-');
        let gpu = parse_index(parts.next()).ok_or_else(bad)?;
        let parsed = match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (None, ..) => DeviceName::Whole { gpu },
            (Some("shared"), None, ..) => DeviceName::Shared { gpu },
            (Some("share"), Some(k), None, _) => DeviceName::Share {
                gpu,
                replica: parse_index(Some(k)).ok_or_else(bad)?,
            },
            (Some("mig"), Some(label), Some(start), None)
                if !label.is_empty() && label.bytes().all(|b| b.is_ascii_alphanumeric()) =>
            {
                DeviceName::Mig {
                    gpu,
                    profile_label: label.to_owned(),
                    start: parse_index(Some(start))
                        .and_then(|s| u8::try_from(s).ok())
                        .ok_or_else(bad)?,
                }
            }
            _ => return Err(bad()),
        };
        Ok(parsed)
    }
}

/// A decimal index without sign, leading zeros (other than `0` itself) or overflow, so every
/// index has exactly one spelling and names round-trip.
fn parse_index(s: Option<&str>) -> Option<u32> {
    let s = s?;
    if s.is_empty() || (s.len() > 1 && s.starts_with('0')) || !s.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_follow_the_design_patterns() {
        assert_eq!(DeviceName::Whole { gpu: 3 }.to_string(), "gpu-3");
        assert_eq!(
            DeviceName::mig(0, "1g.10gb", 0).to_string(),
            "gpu-0-mig-1g10gb-0"
        );
        assert_eq!(
            DeviceName::mig(7, "1g.10gb+me", 6).to_string(),
            "gpu-7-mig-1g10gbme-6"
        );
        assert_eq!(DeviceName::Shared { gpu: 1 }.to_string(), "gpu-1-shared");
        assert_eq!(
            DeviceName::Share { gpu: 2, replica: 3 }.to_string(),
            "gpu-2-share-3"
        );
    }

    #[test]
    fn foreign_and_malformed_names_are_refused() {
        for bad in [
            "",
            "gpu",
            "gpu-",
            "gpu-x",
            "gpu-01",
            "gpu--1",
            "gpu-1-",
            "gpu-1-mig",
            "gpu-1-mig-1g10gb",
            "gpu-1-mig-1g.10gb-0",
            "gpu-1-mig-1g10gb-256",
            "gpu-1-share-",
            "gpu-1-shared-0",
            "gpu-1-whole",
            "nic-0",
            "gpu-99999999999",
        ] {
            assert!(bad.parse::<DeviceName>().is_err(), "{bad:?} parsed");
        }
        let long = format!("gpu-1-mig-{}-0", "a".repeat(80));
        assert!(long.parse::<DeviceName>().is_err());
    }

    proptest! {
        #[test]
        fn every_name_round_trips(gpu in 0u32..10_000, start in 0u8..=255, replica in 0u32..1000,
                                  label in "[a-z0-9]{1,12}") {
            for name in [
                DeviceName::Whole { gpu },
                DeviceName::Mig { gpu, profile_label: label.clone(), start },
                DeviceName::Shared { gpu },
                DeviceName::Share { gpu, replica },
            ] {
                let text = name.to_string();
                prop_assert!(text.len() <= MAX_DEVICE_NAME_LEN);
                prop_assert_eq!(text.parse::<DeviceName>(), Ok(name));
            }
        }

        #[test]
        fn arbitrary_text_never_panics(s in ".{0,80}") {
            let _ = s.parse::<DeviceName>();
        }
    }
}
