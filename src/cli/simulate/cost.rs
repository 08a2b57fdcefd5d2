//! `tessera simulate --cost`: the priced replay, its table and report files.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use tracing::info;

use super::{DelayedBar, OutputFormat, SimulateArgs, dedup, mean_gpu_milli};
use crate::market::{PriceCatalog, SpotAdvisor};
use crate::report::cost::{summarize_cost, write_cost};
use crate::scoring::Weights;
use crate::scoring::weights::MAX_WEIGHTS_FILE_BYTES;
use crate::sim::Workload;
use crate::sim::cost::interruptions::HORIZON_HOURS;
use crate::sim::cost::{CostExperiment, CostPolicy, PricedWorkload, run_cost_all};
use crate::trace::{TraceNode, TracePod};

/// Largest price override file read (the built-in catalog is 20 KiB).
const MAX_PRICES_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Share of nodes bought as spot when `--spot-share` is not given.
pub(super) const DEFAULT_SPOT_SHARE: f64 = 0.3;

/// Refuses the flags that only mean something with `--cost`.
pub(super) fn refuse_cost_flags(args: &SimulateArgs) -> anyhow::Result<()> {
    for (given, flag) in [
        (args.spot_share.is_some(), "--spot-share"),
        (args.prices.is_some(), "--prices"),
    ] {
        if given {
            anyhow::bail!("{flag} needs --cost");
        }
    }
    Ok(())
}

/// The weights `--weights` names, or the defaults.
pub(super) fn weights(path: Option<&Path>) -> anyhow::Result<Weights> {
    let Some(path) = path else {
        return Ok(Weights::default());
    };
    let text = read_capped(path, MAX_WEIGHTS_FILE_BYTES as u64)?;
    Ok(Weights::from_yaml(&text, &path.display().to_string())?)
}

/// The built-in catalog, with the rows of `--prices` over it.
fn catalog(path: Option<&Path>) -> anyhow::Result<PriceCatalog> {
    let builtin = PriceCatalog::builtin()?;
    let Some(path) = path else {
        return Ok(builtin);
    };
    let text = read_capped(path, MAX_PRICES_FILE_BYTES)?;
    let overrides = PriceCatalog::from_csv_reader(text.as_bytes(), &path.display().to_string())?;
    Ok(builtin.merged_with(overrides))
}

/// The whole file as text, refusing files over `limit` bytes.
pub(super) fn read_capped(path: &Path, limit: u64) -> anyhow::Result<String> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut text = String::new();
    file.take(limit.saturating_add(1))
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if text.len() as u64 > limit {
        anyhow::bail!("{}: larger than the limit of {limit} bytes", path.display());
    }
    Ok(text)
}

/// Runs the cost experiment on the loaded trace and writes its report.
pub(super) fn run(
    args: &SimulateArgs,
    nodes: &[TraceNode],
    pods: &[TracePod],
    workload: &Workload,
) -> anyhow::Result<()> {
    let spot_share = args.spot_share.unwrap_or(DEFAULT_SPOT_SHARE);
    if !(0.0..=1.0).contains(&spot_share) {
        anyhow::bail!("--spot-share must be a number in [0, 1], got {spot_share}");
    }
    let weights = weights(args.weights.as_deref())?;
    let catalog = catalog(args.prices.as_deref())?;
    let advisor = SpotAdvisor::builtin()?;
    let priced = PricedWorkload::new(workload, nodes, pods, &catalog, &advisor)?;
    let policies = if args.policies.is_empty() {
        CostPolicy::DEFAULT.to_vec()
    } else {
        let chosen = dedup(&args.policies);
        if let Some(p) = chosen
            .iter()
            .find(|p| **p == crate::scoring::Policy::Random)
        {
            anyhow::bail!("--policy {p} is not supported with --cost");
        }
        chosen.into_iter().map(CostPolicy::from_policy).collect()
    };
    let experiment = CostExperiment {
        policies,
        seeds: args.seeds.0.clone(),
        tune: args.tune,
        weights,
        spot_share,
        typical_threshold_pct: args.typical_threshold,
        placement: args.placement.into(),
    };
    let runs = experiment.configs().len();
    info!(
        nodes = workload.nodes.len(),
        pods = workload.pods.len(),
        runs,
        spot_share,
        "simulating with prices"
    );
    let expected = runs as u64
        * (args.tune * workload.capacity_milli as f64 / mean_gpu_milli(workload)) as u64;
    let bar = DelayedBar::new(expected, args.no_progress);
    let started = Instant::now();
    let records = run_cost_all(&priced, &experiment, &|n| bar.inc(n))?;
    bar.finish();
    info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "simulation done"
    );

    let summary = summarize_cost(&records, HORIZON_HOURS);
    let written = write_cost(&records, &summary, &args.out_dir())
        .with_context(|| format!("writing the report to {}", args.out_dir().display()))?;
    let text = match args.format {
        OutputFormat::Table => summary.to_markdown(),
        OutputFormat::Json => summary.to_json()? + "\n",
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
        _ => {}
    }
    for path in written.paths() {
        eprintln!("wrote {}", path.display());
    }
    // The filter makes this impossible; if it ever happens the numbers above are wrong.
    let misplaced: u64 = summary.rows.iter().map(|r| r.intolerant_on_spot).sum();
    if misplaced > 0 {
        anyhow::bail!("{misplaced} interruption-intolerant pods were placed on spot nodes");
    }
    Ok(())
}
