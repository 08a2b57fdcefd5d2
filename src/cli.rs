//! Command-line interface: the `tessera` subcommands and their flags.
//!
//! Parsing only; each subcommand's wiring lives in its own file under `cli/`.

pub mod allocate;
pub mod discovery;
pub mod error_line;
pub mod extender;
pub mod kube;
pub mod plugin;
pub mod publish;
pub mod recommend;
pub mod seeds;
pub mod simulate;
pub mod slices;
pub mod usage;

use clap::{Parser, Subcommand, ValueEnum};

pub use error_line::error_line;
pub use plugin::PluginArgs;
pub use seeds::SeedList;
pub use simulate::SimulateArgs;
pub use slices::SlicesArgs;

/// tessera: cost-aware GPU partitioning and placement for Kubernetes.
#[derive(Debug, Parser)]
#[command(
    name = "tessera",
    version,
    about,
    long_about = None,
    propagate_version = true,
    arg_required_else_help = true
)]
pub struct Cli {
    /// Logging options.
    #[command(flatten)]
    pub log: LogArgs,
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay a GPU cluster trace through the placement policies and report allocation,
    /// fragmentation and cost (the FGD paper's protocol by default).
    Simulate(SimulateArgs),
    /// Run the DRA kubelet plugin on a GPU node: advertise its GPUs, MIG partitions and
    /// shares, and prepare what the scheduler allocates.
    Plugin(PluginArgs),
    /// Print the ResourceSlices the plugin would publish for a node (fake or real GPUs),
    /// without touching a cluster.
    Slices(SlicesArgs),
    /// Serve kube-scheduler's HTTP extender calls: filter nodes a pod must not use and rank
    /// the rest by the cost of the GPU partition it would get, spot risk and fragmentation.
    Extender(extender::ExtenderArgs),
    /// Show which device(s) kube-scheduler's DRA allocator may give a claim on each node,
    /// from ResourceSlice, DeviceClass and ResourceClaim YAML files, offline.
    Allocate(allocate::AllocateArgs),
    /// Right-size GPU allocations from the usage Prometheus recorded: per workload the
    /// smallest adequate partition, its cost now and after, the claim change as YAML, and the
    /// allocations that sit idle.
    Recommend(recommend::RecommendArgs),
}

/// Log output shared by every subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// Log filter, in `tracing` EnvFilter syntax (e.g. `info`, `tessera=debug`).
    #[arg(long, env = "RUST_LOG", default_value = "warn", global = true)]
    pub log_level: String,
    /// Log format on stderr.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Plain, global = true)]
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Plain,
    /// One JSON object per line.
    Json,
}

/// Where the admin server (`/healthz`, `/readyz`, `/metrics`) listens; plugin and extender.
#[derive(Debug, Clone, clap::Args)]
pub struct AdminArgs {
    /// Listen address of the admin server: /healthz, /readyz and /metrics.
    #[arg(long, env = "TESSERA_ADMIN_ADDR", default_value = "0.0.0.0:9090")]
    pub admin_addr: std::net::SocketAddr,
}

/// How to reach the Kubernetes API server; plugin and extender.
#[derive(Debug, Clone, clap::Args)]
pub struct KubeArgs {
    /// Kubeconfig file. Without it: $KUBECONFIG, ~/.kube/config, then the in-cluster
    /// service account, as kubectl does.
    #[arg(long, env = "TESSERA_KUBECONFIG")]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// Kubeconfig context to use instead of the file's current context.
    #[arg(long, env = "TESSERA_KUBE_CONTEXT")]
    pub kube_context: Option<String>,
}
