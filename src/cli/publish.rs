//! Flags that shape the published slices: driver name, share replicas, feature level.
//! `SliceShapeArgs` is shared by `tessera slices` and `tessera plugin`; `PublishArgs` adds
//! what only the running plugin needs.

use std::time::Duration;

use clap::ValueEnum;
use clap::builder::PossibleValue;

use crate::publish::slices::MAX_SHARE_REPLICAS;
use crate::publish::{DEFAULT_DRIVER_NAME, FeatureChoice, FeatureLevel, PublisherConfig};

/// Driver name and share replicas.
#[derive(Debug, Clone, clap::Args)]
pub struct SliceShapeArgs {
    /// DRA driver name: `spec.driver` of the slices and the domain of their attributes.
    #[arg(long, env = "TESSERA_DRIVER_NAME", default_value = DEFAULT_DRIVER_NAME)]
    pub driver_name: String,
    /// Legacy time-sliced replicas per MIG-off GPU (`gpu-<i>-share-<k>`), for clusters
    /// without consumable capacity; 0 for none. Without shared counters (`--features ga` or
    /// `partitionable`) a GPU with replicas is offered only as replicas.
    #[arg(long, env = "TESSERA_SHARE_REPLICAS", default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_SHARE_REPLICAS)))]
    pub share_replicas: u32,
}

/// Flags of the running publisher (`tessera plugin`).
#[derive(Debug, Clone, clap::Args)]
pub struct PublishArgs {
    /// Driver name and replicas.
    #[command(flatten)]
    pub shape: SliceShapeArgs,
    /// DRA features to use: auto reads the API server version (1.34 and 1.35: ga; 1.36+:
    /// consumable) and steps down if the server drops gated fields.
    #[arg(long, env = "TESSERA_FEATURES", value_enum, default_value_t = FeatureChoice::Auto)]
    pub features: FeatureChoice,
    /// Republish this often even when nothing changed (safety net behind the watch).
    #[arg(long, env = "TESSERA_RESYNC_SECONDS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(10..=86_400))]
    pub resync_seconds: u64,
}

impl PublishArgs {
    /// The publisher configuration for `node_name`.
    pub fn publisher_config(&self, node_name: &str) -> PublisherConfig {
        PublisherConfig {
            features: self.features,
            share_replicas: self.shape.share_replicas,
            resync_interval: Duration::from_secs(self.resync_seconds),
            ..PublisherConfig::new(node_name, self.shape.driver_name.clone())
        }
    }
}

impl ValueEnum for FeatureLevel {
    fn value_variants<'a>() -> &'a [Self] {
        &FeatureLevel::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.name()).help(level_help(*self)))
    }
}

impl ValueEnum for FeatureChoice {
    fn value_variants<'a>() -> &'a [Self] {
        &[
            FeatureChoice::Auto,
            FeatureChoice::Fixed(FeatureLevel::Ga),
            FeatureChoice::Fixed(FeatureLevel::Partitionable),
            FeatureChoice::Fixed(FeatureLevel::Consumable),
        ]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            FeatureChoice::Auto => PossibleValue::new("auto").help("from the API server version"),
            FeatureChoice::Fixed(level) => {
                PossibleValue::new(level.name()).help(level_help(*level))
            }
        })
    }
}

fn level_help(level: FeatureLevel) -> &'static str {
    match level {
        FeatureLevel::Ga => "1.34+: whole GPUs, static MIG, share replicas",
        FeatureLevel::Partitionable => {
            "adds dynamic MIG on shared counters (DRAPartitionableDevices)"
        }
        FeatureLevel::Consumable => {
            "adds shared GPUs with memory/compute capacity (DRAConsumableCapacity)"
        }
    }
}
