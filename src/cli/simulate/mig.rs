//! `tessera simulate --cluster mig`: the openb pods on a MIG cluster, four policies.

use std::io::Write;
use std::time::Instant;

use anyhow::Context;
use tracing::info;

use super::{DelayedBar, OutputFormat, SimulateArgs, mean_gpu_milli};
use crate::model::device_order::Layout;
use crate::report;
use crate::report::mig::summarize_mig;
use crate::sim::Workload;
use crate::sim::mig::{MigPolicy, MigWorkload, cluster_shape, run_all};

/// Runs the MIG experiment the flags describe (flags already checked by the caller).
pub(super) fn run(args: &SimulateArgs) -> anyhow::Result<()> {
    if !args.policies.is_empty() {
        anyhow::bail!(
            "--policy applies to --cluster openb; --cluster mig always runs {}",
            MigPolicy::ALL.map(MigPolicy::name).join(", ")
        );
    }
    let nodes = args.node_list()?;
    let pods = args.pod_list()?;
    let workload = Workload::from_trace(&nodes, &pods)?;
    let mig = MigWorkload::new(&workload, args.typical_threshold);
    let shape = cluster_shape(workload.capacity_milli / 1000)?;
    let policies = match args.placement {
        super::PlacementArg::Tessera => MigPolicy::ALL.len(),
        // The allocator's modes run dynamic MIG only: one run per seed.
        _ => 1,
    };
    let runs = policies * args.seeds.0.len();
    info!(
        nodes = shape.len(),
        gpus = workload.capacity_milli / 1000,
        pods = workload.pods.len(),
        static_share = mig.static_share,
        runs,
        "simulating the MIG cluster"
    );

    let expected = runs as u64
        * (args.tune * workload.capacity_milli as f64 / mean_gpu_milli(&workload)) as u64;
    let bar = DelayedBar::new(expected, args.no_progress);
    let started = Instant::now();
    let records = run_all(
        &workload,
        &mig,
        &MigPolicy::ALL,
        &args.seeds.0,
        args.tune,
        args.placement.into(),
        args.kube_version,
        args.publish_layout.map_or(Layout::PUBLISHED, Into::into),
        &|n| bar.inc(n),
    )?;
    bar.finish();
    info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "simulation done"
    );

    let plain: Vec<_> = records.iter().map(|r| r.record.clone()).collect();
    let written = report::write_all(&plain, &args.out_dir(), args.at)
        .with_context(|| format!("writing the report to {}", args.out_dir().display()))?;
    // The MIG table adds the failures at the read-out bin to the openb summary's columns.
    let summary = summarize_mig(&records, args.at);
    summary
        .write(&args.out_dir())
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
    Ok(())
}
