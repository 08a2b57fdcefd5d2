//! `tessera allocate`: which device(s) kube-scheduler's allocator may give a claim on each
//! node, from YAML files, offline. Answers "why did my pod get that slice?".

mod input;
mod own_fit;
mod report;

use std::path::PathBuf;

use anyhow::Context;
use clap::ValueEnum;

use crate::allocator::{Features, Implementation, Release};

/// Flags of `tessera allocate`.
#[derive(Debug, Clone, clap::Args)]
pub struct AllocateArgs {
    /// ResourceSlices: `tessera slices` output or a `kubectl get resourceslices -o yaml`
    /// List. Repeat for several files.
    #[arg(long = "slices", required = true, value_name = "FILE")]
    pub slices: Vec<PathBuf>,
    /// The new claim: ResourceClaim(s) or ResourceClaimTemplate(s); several are one pod's
    /// claims, allocated together. Other kinds in the file (a Pod) are skipped.
    #[arg(long = "claim", required = true, value_name = "FILE")]
    pub claim: Vec<PathBuf>,
    /// DeviceClasses (`kubectl get deviceclasses -o yaml`). Without it: the four classes the
    /// chart installs for `--driver-name`.
    #[arg(long = "classes", value_name = "FILE")]
    pub classes: Vec<PathBuf>,
    /// ResourceClaims already allocated (`kubectl get resourceclaims -A -o yaml`): their
    /// devices, shares and counters are taken.
    #[arg(long = "allocated", value_name = "FILE")]
    pub allocated: Vec<PathBuf>,
    /// Driver of the built-in DeviceClasses (when `--classes` is not given).
    #[arg(long, default_value = "gpu.tessera.dev")]
    pub driver_name: String,
    /// Kubernetes release of the scheduler: 1.34, 1.35 or 1.36 (later releases behave as
    /// 1.36).
    #[arg(long, default_value = "1.36", value_parser = parse_release)]
    pub kube_version: Release,
    /// Which upstream allocator runs on 1.36+: `incubating` (the default gates) or `stable`
    /// (DRAConsumableCapacity and binding conditions off, slices in arbitrary order).
    #[arg(long, value_enum)]
    pub allocator: Option<AllocatorChoice>,
    /// Feature gates that differ from the release's defaults, as kube-scheduler takes them:
    /// `DRAPartitionableDevices=true,DRAConsumableCapacity=true`.
    #[arg(long, value_name = "GATES")]
    pub feature_gates: Option<String>,
    /// Only this node.
    #[arg(long)]
    pub node: Option<String>,
    /// Seed for the sample of slice orders when a node has more than 6 device slices.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `--allocator`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AllocatorChoice {
    /// `structured/internal/stable`.
    Stable,
    /// `structured/internal/incubating`.
    Incubating,
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One block per node.
    Table,
    /// One JSON document.
    Json,
}

fn parse_release(text: &str) -> Result<Release, String> {
    Release::parse(text)
        .ok_or_else(|| format!("{text:?} is not a supported release (1.34, 1.35, 1.36 or later)"))
}

/// The feature set the flags describe.
pub fn features(args: &AllocateArgs) -> anyhow::Result<Features> {
    let mut features = Features::defaults(args.kube_version);
    if let Some(gates) = &args.feature_gates {
        for item in gates.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, value) = item
                .split_once('=')
                .with_context(|| format!("feature gate {item:?} is not NAME=true|false"))?;
            let on: bool = value
                .parse()
                .with_context(|| format!("feature gate {name}: {value:?} is not true or false"))?;
            match name {
                "DRAAdminAccess" => features.admin_access = on,
                "DRAPrioritizedList" => features.prioritized_list = on,
                "DRAPartitionableDevices" => features.partitionable_devices = on,
                "DRADeviceTaints" => features.device_taints = on,
                "DRAConsumableCapacity" => features.consumable_capacity = on,
                "DRADeviceBindingConditions" | "DRAResourceClaimDeviceStatus" => {
                    features.binding_and_status = on
                }
                other => anyhow::bail!("feature gate {other} is not one the allocator model knows"),
            }
        }
    }
    match (args.allocator, args.kube_version) {
        (None, _) => {}
        (Some(_), Release::V1_34 | Release::V1_35) => {
            anyhow::bail!(
                "--allocator applies to 1.36 and later; on 1.34/1.35 slices are unordered either way"
            )
        }
        (Some(AllocatorChoice::Stable), Release::V1_36) => {
            features.consumable_capacity = false;
            features.binding_and_status = false;
        }
        (Some(AllocatorChoice::Incubating), Release::V1_36) => {
            if features.implementation(Release::V1_36) == Implementation::Stable {
                anyhow::bail!(
                    "--allocator incubating needs DRAConsumableCapacity or binding conditions on"
                );
            }
        }
    }
    Ok(features)
}

/// Reads the files, allocates per node and prints the report.
pub fn run(args: &AllocateArgs) -> anyhow::Result<()> {
    let features = features(args)?;
    let inputs = input::read(args, features)?;
    let nodes = report::evaluate(&inputs, args, features)?;
    let text = match args.format {
        Format::Table => report::table(&nodes),
        Format::Json => serde_json::to_string_pretty(&nodes)? + "\n",
    };
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
