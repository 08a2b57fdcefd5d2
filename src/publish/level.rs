//! Which DRA features the published slices use, and how `auto` picks them from the API
//! server's version.
//!
//! The rule (see `docs/device-model.md`), from the feature-gate table of
//! `resource.k8s.io/v1`:
//!
//! | server | `auto` gives | why |
//! |---|---|---|
//! | < 1.34 | error | `resource.k8s.io/v1` is GA from 1.34 |
//! | 1.34 | `ga` | partitionable devices and consumable capacity are alpha (off), and 1.34's partitionable shape differs from the 1.35+ split shape tessera publishes |
//! | 1.35 | `ga` | both gates still alpha, off by default; pass `--features partitionable` or `consumable` on clusters that turned them on |
//! | 1.36+ | `consumable` | `DRAPartitionableDevices` and `DRAConsumableCapacity` are beta and on by default |
//!
//! A server whose gates are off anyway drops the gated fields silently; the publisher notices
//! that in the object the server returns and steps down a level (see `publisher`).

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// The DRA features the published slices use. Ordered: each level adds to the previous one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FeatureLevel {
    /// Kubernetes 1.34+ GA fields only: whole GPUs, static MIG, legacy share replicas.
    Ga,
    /// Adds `DRAPartitionableDevices`: dynamic MIG placements with shared counters, in the
    /// 1.35+ split shape (counter sets in their own slice).
    Partitionable,
    /// Adds `DRAConsumableCapacity`: `shared` devices with consumable `memory` and `compute`.
    Consumable,
}

/// `--features`: a fixed level, or `auto` from the server version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeatureChoice {
    /// Read the API server's version ([`level_for_version`]).
    Auto,
    /// Use exactly this level.
    Fixed(FeatureLevel),
}

/// Why no level could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LevelError {
    /// The version fields are not numbers.
    #[error("cannot read the API server version {major:?}.{minor:?}")]
    Unparsable {
        /// `major` as the server sent it.
        major: String,
        /// `minor` as the server sent it.
        minor: String,
    },
    /// The server predates `resource.k8s.io/v1`.
    #[error(
        "the API server is Kubernetes {major}.{minor}; tessera needs 1.34 or later (resource.k8s.io/v1)"
    )]
    TooOld {
        /// Major version.
        major: u32,
        /// Minor version.
        minor: u32,
    },
    /// A level name that does not exist.
    #[error("unknown feature level {0:?}; expected auto, ga, partitionable or consumable")]
    UnknownName(String),
}

impl FeatureLevel {
    /// Every level, lowest first.
    pub const ALL: [FeatureLevel; 3] = [
        FeatureLevel::Ga,
        FeatureLevel::Partitionable,
        FeatureLevel::Consumable,
    ];

    /// The flag spelling.
    pub fn name(self) -> &'static str {
        match self {
            FeatureLevel::Ga => "ga",
            FeatureLevel::Partitionable => "partitionable",
            FeatureLevel::Consumable => "consumable",
        }
    }

    /// Whether shared counters (and so dynamic MIG) may be published.
    pub fn counters(self) -> bool {
        self >= FeatureLevel::Partitionable
    }

    /// Whether multi-allocatable `shared` devices may be published.
    pub fn consumable(self) -> bool {
        self >= FeatureLevel::Consumable
    }
}

/// The level `auto` picks for a server reporting `major`.`minor` (as in `/version`; a
/// trailing `+`, as some providers send, is ignored).
pub fn level_for_version(major: &str, minor: &str) -> Result<FeatureLevel, LevelError> {
    let number = |s: &str| s.trim().trim_end_matches('+').parse::<u32>().ok();
    let (Some(maj), Some(min)) = (number(major), number(minor)) else {
        return Err(LevelError::Unparsable {
            major: major.chars().take(16).collect(),
            minor: minor.chars().take(16).collect(),
        });
    };
    match (maj, min) {
        (1, m) if m < 34 => Err(LevelError::TooOld { major: 1, minor: m }),
        (0, m) => Err(LevelError::TooOld { major: 0, minor: m }),
        (1, 34 | 35) => Ok(FeatureLevel::Ga),
        _ => Ok(FeatureLevel::Consumable),
    }
}

impl fmt::Display for FeatureLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FeatureLevel {
    type Err = LevelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FeatureLevel::ALL
            .into_iter()
            .find(|l| l.name() == s)
            .ok_or_else(|| LevelError::UnknownName(s.chars().take(32).collect()))
    }
}

impl fmt::Display for FeatureChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FeatureChoice::Auto => f.write_str("auto"),
            FeatureChoice::Fixed(level) => level.fmt(f),
        }
    }
}

impl FromStr for FeatureChoice {
    type Err = LevelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "auto" {
            Ok(FeatureChoice::Auto)
        } else {
            s.parse().map(FeatureChoice::Fixed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_follows_the_feature_gate_defaults() {
        let at = |minor| level_for_version("1", minor);
        assert_eq!(at("34"), Ok(FeatureLevel::Ga));
        assert_eq!(at("35"), Ok(FeatureLevel::Ga));
        assert_eq!(at("36"), Ok(FeatureLevel::Consumable));
        assert_eq!(at("36+"), Ok(FeatureLevel::Consumable));
        assert_eq!(at("40"), Ok(FeatureLevel::Consumable));
        assert_eq!(level_for_version("2", "0"), Ok(FeatureLevel::Consumable));
        assert_eq!(
            at("33"),
            Err(LevelError::TooOld {
                major: 1,
                minor: 33
            })
        );
        assert!(matches!(at("x"), Err(LevelError::Unparsable { .. })));
        assert!(at("31").unwrap_err().to_string().contains("1.34 or later"));
    }

    #[test]
    fn levels_are_cumulative_and_parse_from_flags() {
        assert!(!FeatureLevel::Ga.counters());
        assert!(
            FeatureLevel::Partitionable.counters() && !FeatureLevel::Partitionable.consumable()
        );
        assert!(FeatureLevel::Consumable.counters() && FeatureLevel::Consumable.consumable());
        for l in FeatureLevel::ALL {
            assert_eq!(l.name().parse(), Ok(l));
            assert_eq!(l.name().parse(), Ok(FeatureChoice::Fixed(l)));
        }
        assert_eq!("auto".parse(), Ok(FeatureChoice::Auto));
        assert!("beta".parse::<FeatureChoice>().is_err());
    }
}
