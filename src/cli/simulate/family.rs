//! `tessera simulate --workload NAME|all`: the bundled openb workloads by name, each with
//! its own report directory, and one table across them (with `--published`, next to the FGD
//! authors' figures).

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use rayon::prelude::*;
use tracing::{info, info_span};

use super::{DelayedBar, OutputFormat, SimulateArgs, mean_gpu_milli};
use crate::report::family::{Family, FamilyRow};
use crate::report::published::{MAX_PUBLISHED_BYTES, Published};
use crate::report::{self, Summary, summarize};
use crate::sim::oracle::unallocated_lower_bound_pct;
use crate::sim::{Experiment, Workload, run_all};
use crate::trace::{TraceNode, openb};

/// Runs every workload `--workload` names (flags already checked by the caller).
pub(super) fn run(
    args: &SimulateArgs,
    value: &str,
    experiment: &Experiment,
    published: Option<&Published>,
) -> anyhow::Result<()> {
    let names = openb::resolve(value)?;
    let nodes = args.node_list()?;
    let out_dir = args.out_dir();
    let started = Instant::now();
    let mut rows = Vec::with_capacity(names.len());
    for name in &names {
        let _span = info_span!("workload", workload = name).entered();
        // One directory per workload when there are several, the output directory itself
        // for one, as a plain run writes.
        let dir = if names.len() > 1 {
            out_dir.join(name)
        } else {
            out_dir.clone()
        };
        let (summary, lower_bound) = run_one(args, &nodes, name, experiment, &dir)?;
        rows.push(FamilyRow {
            workload: (*name).to_owned(),
            summary,
            lower_bound,
        });
    }
    info!(
        workloads = names.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "simulation done"
    );
    let family = Family::new(rows, args.at, args.tune, published);
    let text = match args.format {
        OutputFormat::Table => family.to_markdown(),
        OutputFormat::Json => family.to_json()? + "\n",
    };
    if names.len() > 1 {
        std::fs::create_dir_all(&out_dir)
            .with_context(|| format!("creating {}", out_dir.display()))?;
        let path = out_dir.join("workloads.md");
        std::fs::write(&path, family.to_markdown())
            .with_context(|| format!("writing {}", path.display()))?;
        let json = out_dir.join("workloads.json");
        std::fs::write(&json, family.to_json()? + "\n")
            .with_context(|| format!("writing {}", json.display()))?;
        eprintln!("wrote {}", path.display());
        eprintln!("wrote {}", json.display());
    }
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// One workload: every policy × seed, its report directory, its summary and the median of
/// the lower bound over the seeds.
fn run_one(
    args: &SimulateArgs,
    nodes: &[TraceNode],
    name: &str,
    experiment: &Experiment,
    dir: &Path,
) -> anyhow::Result<(Summary, Option<f64>)> {
    let pods = openb::pods(name)?;
    let workload = Workload::from_trace(nodes, &pods)?;
    let expected = experiment.configs().len() as u64
        * (args.tune * workload.capacity_milli as f64 / mean_gpu_milli(&workload)) as u64;
    let bar = DelayedBar::new(expected, args.no_progress);
    let records = run_all(&workload, experiment, &|n| bar.inc(n))?;
    bar.finish();
    let bounds: Vec<f64> = experiment
        .seeds
        .par_iter()
        .map(|seed| {
            unallocated_lower_bound_pct(
                &workload,
                *seed,
                experiment.tune,
                experiment.typical_threshold_pct,
                args.at,
            )
        })
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .collect();
    let written = report::write_all(&records, dir, args.at)
        .with_context(|| format!("writing the report to {}", dir.display()))?;
    for path in written.paths() {
        eprintln!("wrote {}", path.display());
    }
    Ok((
        summarize(&records, args.at),
        report::curves::median(&bounds),
    ))
}

/// Reads the published results at the run's arrival bin.
pub(super) fn read_published(path: &Path, at: u32) -> anyhow::Result<Published> {
    let text = super::cost::read_capped(path, MAX_PUBLISHED_BYTES as u64)?;
    Ok(Published::parse(
        text.as_bytes(),
        &path.display().to_string(),
        at,
    )?)
}
