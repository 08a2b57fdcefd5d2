//! Writes the cost experiment's report directory: the table (Markdown and JSON), every run's
//! snapshots (CSV), the standard unallocated-GPU curves, and two charts.

use std::fs;
use std::path::{Path, PathBuf};

use super::summary::CostSummary;
use super::{COST_POINTS_PCT, CostRunRecord};
use crate::report::RunRecord;
use crate::report::curves::{median, policy_curves};
use crate::report::write::chart::{self, Axes, Series};
use crate::report::write::{ReportError, curves_csv, curves_median_csv};

/// The files [`write_cost`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostWritten {
    /// `summary.md`: the cost table.
    pub summary_md: PathBuf,
    /// `summary.json`: the same as JSON.
    pub summary_json: PathBuf,
    /// `cost.csv`: every run's snapshots.
    pub cost_csv: PathBuf,
    /// `curves.csv`: every run's binned unallocated-GPU curve.
    pub curves_csv: PathBuf,
    /// `curves_median.csv`: the curves' spread across seeds.
    pub curves_median_csv: PathBuf,
    /// `cost.svg`: median $ per allocated GPU-hour against arrived workload.
    pub cost_svg: PathBuf,
    /// `unallocated.svg`: median unallocated GPU % against arrived workload.
    pub unallocated_svg: PathBuf,
}

impl CostWritten {
    /// Every path written, in writing order.
    pub fn paths(&self) -> [&Path; 7] {
        [
            &self.summary_md,
            &self.summary_json,
            &self.cost_csv,
            &self.curves_csv,
            &self.curves_median_csv,
            &self.cost_svg,
            &self.unallocated_svg,
        ]
    }
}

/// Creates `out_dir` and writes the cost report into it.
pub fn write_cost(
    records: &[CostRunRecord],
    summary: &CostSummary,
    out_dir: &Path,
) -> Result<CostWritten, ReportError> {
    fs::create_dir_all(out_dir).map_err(|source| ReportError::CreateDir {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let written = CostWritten {
        summary_md: out_dir.join("summary.md"),
        summary_json: out_dir.join("summary.json"),
        cost_csv: out_dir.join("cost.csv"),
        curves_csv: out_dir.join("curves.csv"),
        curves_median_csv: out_dir.join("curves_median.csv"),
        cost_svg: out_dir.join("cost.svg"),
        unallocated_svg: out_dir.join("unallocated.svg"),
    };
    write_file(&written.summary_md, summary.to_markdown())?;
    let json = summary.to_json().map_err(|source| ReportError::Json {
        path: written.summary_json.clone(),
        source,
    })?;
    write_file(&written.summary_json, json + "\n")?;
    let csv_error = |path: &PathBuf| {
        let path = path.clone();
        move |source| ReportError::Csv { path, source }
    };
    write_file(
        &written.cost_csv,
        cost_csv(records).map_err(csv_error(&written.cost_csv))?,
    )?;

    let runs: Vec<RunRecord> = records.iter().map(|r| r.run.clone()).collect();
    write_file(
        &written.curves_csv,
        curves_csv(&runs).map_err(csv_error(&written.curves_csv))?,
    )?;
    let curves = policy_curves(&runs);
    write_file(
        &written.curves_median_csv,
        curves_median_csv(&curves).map_err(csv_error(&written.curves_median_csv))?,
    )?;

    let chart_error = |path: &PathBuf| {
        let path = path.clone();
        move |source| ReportError::Chart { path, source }
    };
    let series = cost_series(records);
    let y_max = series
        .iter()
        .flat_map(|(_, points)| points.iter().map(|p| p.1))
        .fold(0.0, f64::max);
    let named: Vec<Series<'_>> = series
        .iter()
        .map(|(name, points)| Series {
            name,
            points: points.clone(),
        })
        .collect();
    let svg = chart::line_chart(
        &Axes {
            title: "Cost per allocated GPU-hour vs. arrived workload (median over seeds)",
            y_desc: "$/h of occupied nodes per allocated GPU",
            y_max: (y_max * 1.1).max(1.0),
        },
        &named,
    )
    .map_err(chart_error(&written.cost_svg))?;
    write_file(&written.cost_svg, svg)?;
    let svg =
        chart::unallocated_svg(&curves, 100).map_err(chart_error(&written.unallocated_svg))?;
    write_file(&written.unallocated_svg, svg)?;
    Ok(written)
}

fn write_file(path: &Path, contents: impl AsRef<[u8]>) -> Result<(), ReportError> {
    fs::write(path, contents).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// `cost.csv`: one row per run and arrival point.
pub fn cost_csv(records: &[CostRunRecord]) -> Result<Vec<u8>, csv::Error> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record([
        "policy",
        "seed",
        "arrived_pct",
        "occupied_nodes",
        "occupied_usd_per_hour",
        "allocated_gpus",
        "usd_per_allocated_gpu_hour",
        "spot_allocated_gpus",
        "lost_gpu_hours",
        "intolerant_on_spot",
    ])?;
    for record in records {
        for s in &record.snapshots {
            out.write_record([
                record.run.policy.as_str(),
                &record.run.seed.to_string(),
                &s.arrived_pct.to_string(),
                &s.occupied_nodes.to_string(),
                &format!("{:.4}", s.occupied_usd_per_hour),
                &format!("{:.3}", s.allocated_milli as f64 / 1000.0),
                &s.usd_per_allocated_gpu_hour()
                    .map_or_else(String::new, |v| format!("{v:.4}")),
                &format!("{:.3}", s.spot_allocated_milli as f64 / 1000.0),
                &format!("{:.4}", s.lost_gpu_hours),
                &s.intolerant_on_spot.to_string(),
            ])?;
        }
    }
    out.into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))
}

/// First arrival % the cost chart shows: below it a handful of pods on many nodes makes the
/// spread policy's cost per GPU so large that the rest of the chart would be flat.
const CHART_FIRST_PCT: u32 = 20;

/// Per policy, the median over seeds of $ per allocated GPU-hour at each whole arrival % from
/// [`CHART_FIRST_PCT`], read at the first pod that brings the arrived workload to that %.
fn cost_series(records: &[CostRunRecord]) -> Vec<(String, Vec<(f64, f64)>)> {
    let last = COST_POINTS_PCT.iter().copied().max().unwrap_or(100);
    let mut policies: Vec<&str> = Vec::new();
    for r in records {
        if !policies.contains(&r.run.policy.as_str()) {
            policies.push(&r.run.policy);
        }
    }
    policies
        .into_iter()
        .map(|policy| {
            let per_run: Vec<Vec<Option<f64>>> = records
                .iter()
                .filter(|r| r.run.policy == policy)
                .map(|r| per_pct(r, last))
                .collect();
            let points = (CHART_FIRST_PCT..=last)
                .filter_map(|pct| {
                    let values: Vec<f64> = per_run
                        .iter()
                        .filter_map(|v| v.get(pct as usize).copied().flatten())
                        .collect();
                    median(&values).map(|m| (f64::from(pct), m))
                })
                .collect();
            (policy.to_owned(), points)
        })
        .collect()
}

/// One run's $ per allocated GPU-hour at arrival 0..=`last` %.
fn per_pct(record: &CostRunRecord, last: u32) -> Vec<Option<f64>> {
    let mut out = vec![None; last as usize + 1];
    let capacity = record.run.capacity_milli;
    let mut pct = 0usize;
    for (sample, occupied) in record.run.samples.iter().zip(&record.occupied_usd_per_hour) {
        while pct < out.len() && sample.arrived_milli * 100 >= pct as u64 * capacity {
            if let Some(slot) = out.get_mut(pct) {
                *slot =
                    (sample.used_milli > 0).then(|| occupied / (sample.used_milli as f64 / 1000.0));
            }
            pct += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Sample;

    #[test]
    fn each_arrival_percent_reads_the_first_pod_that_reaches_it() {
        // 10 GPUs; pods bring arrival to 25 %, 55 % and 100 %.
        let record = CostRunRecord {
            run: RunRecord {
                policy: "p".into(),
                seed: 1,
                capacity_milli: 10_000,
                pods: 3,
                failed_pods: 0,
                samples: [(2500, 2000), (5500, 5000), (10_000, 8000)]
                    .iter()
                    .map(|&(arrived_milli, used_milli)| Sample {
                        arrived_milli,
                        used_milli,
                        frag_milli: 0.0,
                    })
                    .collect(),
            },
            occupied_usd_per_hour: vec![10.0, 20.0, 40.0],
            snapshots: Vec::new(),
        };
        let by_pct = per_pct(&record, 100);
        assert_eq!(by_pct[0], Some(5.0), "0 % is reached by the first pod");
        assert_eq!(by_pct[25], Some(5.0));
        assert_eq!(by_pct[26], Some(4.0));
        assert_eq!(by_pct[55], Some(4.0));
        assert_eq!(by_pct[56], Some(5.0));
        assert_eq!(by_pct[100], Some(5.0));
        let series = cost_series(&[record]);
        assert_eq!(series[0].1.first(), Some(&(20.0, 5.0)));
        assert_eq!(series[0].1.len(), 81);
    }
}
