//! `--fake-gpus`, `--fake-inventory`, `--mig-strategy`: where GPUs are discovered from.
//! Shared by `tessera slices` and `tessera plugin`.

use std::path::PathBuf;

use clap::ValueEnum;
use clap::builder::PossibleValue;

use crate::discovery::{FakeProfile, MigStrategy, SourceSpec};

/// Discovery flags.
#[derive(Debug, Clone, clap::Args)]
pub struct DiscoveryArgs {
    /// Use a built-in fake node instead of NVML.
    #[arg(
        long,
        env = "TESSERA_FAKE_GPUS",
        value_enum,
        value_name = "PROFILE",
        conflicts_with = "fake_inventory"
    )]
    pub fake_gpus: Option<FakeProfile>,
    /// Use a YAML inventory file instead of NVML (re-read on every discovery pass).
    #[arg(long, env = "TESSERA_FAKE_INVENTORY", value_name = "FILE")]
    pub fake_inventory: Option<PathBuf>,
    /// What to advertise on real GPUs with MIG mode on: the MIG devices that exist (static),
    /// or every placement, created on prepare (dynamic). Refused with fake GPUs, whose profile
    /// or inventory file fixes the MIG mode (e.g. h100x8-mig-dynamic).
    #[arg(
        long,
        env = "TESSERA_MIG_STRATEGY",
        value_enum,
        default_value_t = MigStrategy::Static,
        conflicts_with_all = ["fake_gpus", "fake_inventory"]
    )]
    pub mig_strategy: MigStrategy,
}

impl DiscoveryArgs {
    /// The source these flags name; `seed` (the node name) varies fake UUIDs.
    pub fn spec(&self, seed: &str) -> SourceSpec {
        match (&self.fake_gpus, &self.fake_inventory) {
            (Some(profile), _) => SourceSpec::Profile {
                profile: *profile,
                seed: seed.to_owned(),
            },
            (None, Some(path)) => SourceSpec::File(path.clone()),
            (None, None) => SourceSpec::Nvml(self.mig_strategy),
        }
    }
}

impl ValueEnum for FakeProfile {
    fn value_variants<'a>() -> &'a [Self] {
        &FakeProfile::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.name()).help(self.about()))
    }
}

impl ValueEnum for MigStrategy {
    fn value_variants<'a>() -> &'a [Self] {
        &[MigStrategy::Static, MigStrategy::Dynamic]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            MigStrategy::Static => {
                PossibleValue::new("static").help("advertise existing MIG devices")
            }
            MigStrategy::Dynamic => {
                PossibleValue::new("dynamic").help("advertise every placement, create on prepare")
            }
        })
    }
}
