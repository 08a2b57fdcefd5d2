//! `tessera simulate`: read the trace, run every policy × seed, write the report.

mod cost;
mod family;

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::ValueEnum;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing::info;

use super::SeedList;
use crate::model::device_order::Layout;
use crate::report::{self, summarize};
use crate::scoring::OnlineWindow;
use crate::scoring::Policy;
use crate::scoring::frag::online::DEFAULT_HALF_LIFE_PODS;
use crate::scoring::frag::typical::DEFAULT_POPULARITY_THRESHOLD_PCT;
use crate::sim::placement::Release;
use crate::sim::{Experiment, Placement, TypicalSource, Workload, bundled_prior, run_all};
use crate::trace;

mod mig;

/// Flags of `tessera simulate`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    /// Node list CSV (`sn,cpu_milli,memory_mib,gpu,model`); default: the bundled openb node list.
    #[arg(long, value_name = "CSV")]
    pub nodes: Option<PathBuf>,
    /// Pod list CSV (`name,cpu_milli,memory_mib,num_gpu,gpu_milli[,gpu_spec,…]`); default: the
    /// bundled openb default pod list.
    #[arg(long, value_name = "CSV", conflicts_with = "workload")]
    pub pods: Option<PathBuf>,
    /// A bundled openb workload by name (`default`, `gpushare40`…`100`, `gpuspec10/20/25`,
    /// `cpu050/100/200`, `multigpu20`…`50`), or `all` for the 15 of them: each gets its own
    /// report directory under --out, and one table compares them.
    #[arg(long, value_name = "NAME|all")]
    pub workload: Option<String>,
    /// The FGD authors' published per-seed results (`analysis_allo_discrete.csv`, bundled in
    /// benches/traces/alibaba-openb/fgd-published/): print each policy next to its published
    /// median (100 − the `--at` column) and the difference.
    #[arg(long, value_name = "FILE")]
    pub published: Option<PathBuf>,
    /// Policy to run; repeat for several. Default: all seven
    /// (random, dotprod, clustering, packing, bestfit, fgd, tessera).
    #[arg(long = "policy", value_name = "POLICY")]
    pub policies: Vec<Policy>,
    /// Seeds: a range `42..51` (inclusive), a list `42,43` or one seed.
    #[arg(long, default_value = "42..51", value_name = "SEEDS")]
    pub seeds: SeedList,
    /// Inflate the workload to this multiple of the cluster's GPU capacity.
    #[arg(
        long,
        default_value_t = 1.3,
        value_name = "RATIO",
        allow_negative_numbers = true
    )]
    pub tune: f64,
    /// Arrived-workload percentage the summary table reads.
    #[arg(long, default_value_t = 100, value_name = "PERCENT")]
    pub at: u32,
    /// Output directory for summary.md, summary.json, curves.csv, curves_median.csv and
    /// unallocated.svg [default: target/tessera-sim, target/tessera-sim-cost with --cost,
    /// target/tessera-sim-mig with --cluster mig, so the three reports never overwrite
    /// each other].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// What to print on stdout.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    /// Share of pods the typical pods (fragmentation measure) must cover, percent.
    #[arg(long, default_value_t = DEFAULT_POPULARITY_THRESHOLD_PCT, value_name = "PERCENT")]
    pub typical_threshold: f64,
    /// Where the policies' typical pods come from: `known` (FGD's protocol: the workload's
    /// own distribution, known in advance) or `online` (learned from the pods that have
    /// arrived so far, starting from the bundled openb default trace; docs/simulation.md).
    #[arg(long, value_enum, default_value_t = TypicalKind::Known)]
    pub typical: TypicalKind,
    /// With `--typical online`: pods after which an arrived pod's weight has halved.
    #[arg(long, default_value_t = DEFAULT_HALF_LIFE_PODS, value_name = "PODS")]
    pub typical_half_life: f64,
    /// Never draw a progress bar.
    #[arg(long)]
    pub no_progress: bool,
    // --- cost experiment (docs/cost-model.md) ---
    /// Price the nodes, put a seeded share on spot, give pods interruption tolerances, and
    /// compare tessera's cost-weighted score with FGD, BestFit and LeastAllocated.
    #[arg(long)]
    pub cost: bool,
    /// Share of nodes bought as spot, 0 to 1 (with --cost) [default: 0.3].
    #[arg(long, value_name = "SHARE")]
    pub spot_share: Option<f64>,
    /// tessera's weights (YAML, see docs/cost-model.md); default: built-in weights.
    #[arg(long, value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// Price override CSV with the catalog's columns, merged over the built-in catalog
    /// (with --cost).
    #[arg(long, value_name = "CSV")]
    pub prices: Option<PathBuf>,

    // --- MIG experiment (`--cluster mig`): keep this block together ---
    /// Cluster to replay the pods on: `openb` (the node list as given) or `mig` (as many
    /// GPUs as the node list, on H100-80GB and A100-40GB nodes; static MIG layouts against
    /// MIG instances made on demand, placed first-fit or by tessera).
    #[arg(long, value_enum, default_value_t = ClusterKind::Openb)]
    pub cluster: ClusterKind,

    // --- deployment modes (`--placement`, docs/simulation.md): keep this block together ---
    /// Who chooses node and device: `tessera` (tessera picks both: the ideal), `extender`
    /// (tessera's node score of what kube-scheduler's allocator will give there, then the
    /// allocator's first fit: what an installed tessera does), `kube` (kube-scheduler alone:
    /// its default scoring, then the allocator's first fit).
    #[arg(long, value_enum, default_value_t = PlacementArg::Tessera)]
    pub placement: PlacementArg,
    /// Kubernetes release the allocator follows with `--placement kube|extender`: 1.34 or
    /// 1.35 (a node's slices in an arbitrary order, drawn per pod from the run's seed) or 1.36+
    /// (slices by name).
    #[arg(long, default_value = "1.36", value_name = "MAJOR.MINOR", value_parser = parse_release)]
    pub kube_version: Release,
    /// How the plugin cuts a node's devices into ResourceSlices, for the allocator's first fit
    /// in the MIG experiment: `kind-major` (one order across the node, cut every 64 devices)
    /// or `per-mig-gpu` (each dynamic-MIG GPU's placements in a slice of their own, after the
    /// node's other devices). Default: what the plugin publishes, `per-mig-gpu`
    /// (docs/device-model.md).
    #[arg(long, value_enum, value_name = "LAYOUT")]
    pub publish_layout: Option<LayoutArg>,
}

/// `--publish-layout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LayoutArg {
    /// One order across the node, cut every 64 devices.
    KindMajor,
    /// Each dynamic-MIG GPU's devices in their own slice.
    PerMigGpu,
}

impl From<LayoutArg> for Layout {
    fn from(l: LayoutArg) -> Layout {
        match l {
            LayoutArg::KindMajor => Layout::KindMajor,
            LayoutArg::PerMigGpu => Layout::PerMigGpu,
        }
    }
}

/// `--placement`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlacementArg {
    /// kube-scheduler alone: default scoring, the allocator's first fit.
    Kube,
    /// tessera's node score of the allocator's outcome, the allocator's first fit.
    Extender,
    /// tessera chooses node and device.
    Tessera,
}

impl From<PlacementArg> for Placement {
    fn from(p: PlacementArg) -> Placement {
        match p {
            PlacementArg::Kube => Placement::Kube,
            PlacementArg::Extender => Placement::Extender,
            PlacementArg::Tessera => Placement::Tessera,
        }
    }
}

fn parse_release(text: &str) -> Result<Release, String> {
    Release::from_version(text).ok_or_else(|| {
        format!("{text:?} is not a Kubernetes release tessera supports; expected 1.34, 1.35, 1.36 or later")
    })
}

/// Which cluster `tessera simulate` replays the pods on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClusterKind {
    /// The node list itself, GPUs shared by milli (the FGD protocol).
    Openb,
    /// MIG-capable nodes with the node list's GPU count.
    Mig,
}

/// Where `tessera simulate`'s policies get their typical pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TypicalKind {
    /// The workload's own distribution, known in advance (FGD's protocol).
    Known,
    /// Learned from the pods that have arrived so far, the bundled trace as the prior.
    Online,
}

/// Output on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A Markdown table.
    Table,
    /// The summary as JSON.
    Json,
}

impl SimulateArgs {
    /// Where the report goes: `--out`, else a default per experiment.
    pub fn out_dir(&self) -> PathBuf {
        if let Some(out) = &self.out {
            return out.clone();
        }
        PathBuf::from(match (self.cluster, self.cost) {
            (ClusterKind::Mig, _) => "target/tessera-sim-mig",
            (ClusterKind::Openb, true) => "target/tessera-sim-cost",
            (ClusterKind::Openb, false) => "target/tessera-sim",
        })
    }

    /// The node list: `--nodes`, else the bundled openb one.
    fn node_list(&self) -> Result<Vec<trace::TraceNode>, trace::TraceError> {
        match &self.nodes {
            Some(path) => trace::read_nodes(path),
            None => trace::bundled_nodes(),
        }
    }

    /// The pod list: `--pods`, else the bundled openb one.
    fn pod_list(&self) -> Result<Vec<trace::TracePod>, trace::TraceError> {
        match &self.pods {
            Some(path) => trace::read_pods(path),
            None => trace::bundled_pods(),
        }
    }
}

/// The typical-pod source `--typical` names; `online` is refused where the experiment does
/// not use it (the cost and MIG experiments keep the protocol's known distribution).
fn typical_source(args: &SimulateArgs) -> anyhow::Result<TypicalSource> {
    if args.typical == TypicalKind::Known {
        if args.typical_half_life != DEFAULT_HALF_LIFE_PODS {
            anyhow::bail!("--typical-half-life applies to --typical online");
        }
        return Ok(TypicalSource::Known);
    }
    if args.cost || args.cluster == ClusterKind::Mig {
        anyhow::bail!(
            "--typical online applies to the plain openb experiment, not --cost or --cluster mig"
        );
    }
    let window = OnlineWindow {
        half_life_pods: args.typical_half_life,
        prior_pods: args.typical_half_life,
        ..OnlineWindow::default()
    }
    .validated()
    .map_err(|e| anyhow::anyhow!("--typical-half-life: {e}"))?;
    let prior = bundled_prior().context("bundled openb trace (the online prior)")?;
    Ok(TypicalSource::Online { prior, window })
}

/// Run the simulation the flags describe; errors are for the user (bad files, bad values).
pub fn run(args: &SimulateArgs) -> anyhow::Result<()> {
    if !(args.tune.is_finite() && args.tune > 0.0 && args.tune <= 100.0) {
        anyhow::bail!("--tune must be a number in (0, 100], got {}", args.tune);
    }
    if !(0.0..=100.0).contains(&args.typical_threshold) || args.typical_threshold == 0.0 {
        anyhow::bail!(
            "--typical-threshold must be in (0, 100], got {}",
            args.typical_threshold
        );
    }
    check_at(args)?;
    let typical = typical_source(args)?;
    if args.cluster == ClusterKind::Mig {
        if args.workload.is_some() || args.published.is_some() {
            anyhow::bail!("--workload and --published apply to --cluster openb");
        }
        if args.cost {
            anyhow::bail!(
                "--cost prices the openb cluster; it cannot be combined with --cluster mig"
            );
        }
        cost::refuse_cost_flags(args)?;
        return mig::run(args);
    }
    if args.cost && (args.workload.is_some() || args.published.is_some()) {
        anyhow::bail!("--workload and --published cannot be combined with --cost");
    }
    let policies = if args.policies.is_empty() {
        Policy::ALL.to_vec()
    } else {
        dedup(&args.policies)
    };
    let published = match &args.published {
        Some(path) => Some(family::read_published(path, args.at)?),
        None => None,
    };
    if !args.cost {
        cost::refuse_cost_flags(args)?;
    }
    let experiment = Experiment {
        policies,
        seeds: args.seeds.0.clone(),
        tune: args.tune,
        weights: cost::weights(args.weights.as_deref())?.fragmentation,
        typical_threshold_pct: args.typical_threshold,
        placement: args.placement.into(),
        typical,
    };
    // --published on a plain run compares against the default workload (the bundled pod
    // list). A --pods file may be anything, so it is never matched to a published row.
    let workload_name = match (&args.workload, &args.pods) {
        (Some(name), _) => Some(name.clone()),
        (None, None) => published.as_ref().map(|_| "default".to_owned()),
        (None, Some(_)) => None,
    };
    if let Some(name) = workload_name {
        return family::run(args, &name, &experiment, published.as_ref());
    }
    if args.published.is_some() {
        anyhow::bail!(
            "--published compares bundled workloads with the FGD authors' results; pass \
             --workload NAME instead of --pods"
        );
    }
    let nodes = args.node_list()?;
    let pods = args.pod_list()?;
    let workload = Workload::from_trace(&nodes, &pods)?;
    if args.cost {
        return cost::run(args, &nodes, &pods, &workload);
    }
    info!(
        nodes = workload.nodes.len(),
        pods = workload.pods.len(),
        gpus = workload.capacity_milli / 1000,
        runs = experiment.configs().len(),
        "simulating"
    );

    let expected = experiment.configs().len() as u64
        * (args.tune * workload.capacity_milli as f64 / mean_gpu_milli(&workload)) as u64;
    let bar = DelayedBar::new(expected, args.no_progress);
    let started = Instant::now();
    let records = run_all(&workload, &experiment, &|n| bar.inc(n))?;
    bar.finish();
    info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "simulation done"
    );

    let written = report::write_all(&records, &args.out_dir(), args.at)
        .with_context(|| format!("writing the report to {}", args.out_dir().display()))?;
    let summary = summarize(&records, args.at);
    let text = match args.format {
        OutputFormat::Table => summary.to_markdown(),
        OutputFormat::Json => summary.to_json()? + "\n",
    };
    // A closed pipe (`| head`) is the reader's choice, not an error worth a panic.
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
        _ => {}
    }
    for path in written.paths() {
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// Refuses an `--at` the curve cannot reach: the arrived workload stops at `tune` × capacity
/// (the protocol's inflation never passes it), so a later bin has no value for any policy.
fn check_at(args: &SimulateArgs) -> anyhow::Result<()> {
    let last = (args.tune * 100.0).floor();
    if f64::from(args.at) > last {
        anyhow::bail!(
            "--at {} is beyond the curve: with --tune {} the arrived workload reaches at most \
             {last} % of capacity; pass --at between 0 and {last}",
            args.at,
            args.tune
        );
    }
    Ok(())
}

fn dedup(policies: &[Policy]) -> Vec<Policy> {
    let mut out = Vec::with_capacity(policies.len());
    for p in policies {
        if !out.contains(p) {
            out.push(*p);
        }
    }
    out
}

/// Mean GPU milli per pod: turns the tune target into an expected pod count for the bar.
fn mean_gpu_milli(workload: &Workload) -> f64 {
    (workload.requested_milli() as f64 / workload.pods.len().max(1) as f64).max(1.0)
}

/// A progress bar on stderr that appears only once a run has taken longer than a second,
/// so quick runs and CI logs stay clean.
struct DelayedBar {
    bar: ProgressBar,
    started: Instant,
    /// Set once the bar has been given its stderr target (or must never get one).
    settled: AtomicBool,
}

impl DelayedBar {
    const DELAY: Duration = Duration::from_secs(1);

    fn new(len: u64, disabled: bool) -> Self {
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden());
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} simulating [{bar:40}] {percent}% eta {eta}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        DelayedBar {
            bar,
            started: Instant::now(),
            settled: AtomicBool::new(disabled),
        }
    }

    fn inc(&self, n: u64) {
        self.bar.inc(n);
        if !self.settled.load(Ordering::Relaxed)
            && self.started.elapsed() > Self::DELAY
            && !self.settled.swap(true, Ordering::Relaxed)
        {
            // stderr() draws nothing when stderr is not a terminal, so CI logs stay clean.
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
