//! `tessera slices`: print the ResourceSlices the plugin would publish for a node, without
//! touching a cluster. For admins checking what a node will advertise, and for docs.

use std::io::Write;

use anyhow::Context;
use clap::ValueEnum;

use super::discovery::DiscoveryArgs;
use super::publish::SliceShapeArgs;
use crate::discovery;
use crate::publish::{FeatureLevel, SliceOptions, render, slices, validate};

/// Flags of `tessera slices`.
#[derive(Debug, Clone, clap::Args)]
pub struct SlicesArgs {
    /// The node the slices are for (`spec.nodeName`, pool name).
    #[arg(long, env = "NODE_NAME")]
    pub node_name: String,
    /// Where the GPUs come from.
    #[command(flatten)]
    pub discovery: DiscoveryArgs,
    /// Driver name and replicas.
    #[command(flatten)]
    pub shape: SliceShapeArgs,
    /// DRA features the slices use.
    #[arg(long, value_enum, default_value_t = FeatureLevel::Consumable)]
    pub features: FeatureLevel,
    /// Pool generation to print.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i64).range(0..))]
    pub generation: i64,
    /// Output format; both can be piped to `kubectl apply -f -`.
    #[arg(long, short, value_enum, default_value_t = Output::Yaml)]
    pub output: Output,
}

/// How the slices are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// One YAML document per slice.
    Yaml,
    /// A `v1` `List` in JSON.
    Json,
}

/// Discovers, renders, validates and prints.
pub fn run(args: &SlicesArgs) -> anyhow::Result<()> {
    let source = discovery::open(&args.discovery.spec(&args.node_name))?;
    let inventory = source
        .inventory()
        .with_context(|| format!("discovering GPUs from {}", source.describe()))?;
    let options = SliceOptions {
        node_name: args.node_name.clone(),
        driver_name: args.shape.driver_name.clone(),
        level: args.features,
        share_replicas: args.shape.share_replicas,
        generation: args.generation,
    };
    let rendered = render(&inventory, &options)?;
    validate(&rendered)?;
    let text = match args.output {
        Output::Yaml => slices::to_yaml(&rendered)?,
        Output::Json => slices::to_json(&rendered)?,
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        // A reader that stopped early (`| head`) is not an error.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
