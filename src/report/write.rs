//! Writes a report directory: the summary (Markdown and JSON), the binned curves (CSV) and the
//! unallocated-GPU chart (SVG). Everything is rendered in memory first, so the only I/O is one
//! `fs::write` per file and identical input gives byte-identical files.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::RunRecord;
use super::curves::{PolicyCurve, group_by_policy, policy_curves, run_curve};
use super::summary::summarize;

pub(crate) mod chart;

pub use chart::ChartError;

/// Errors while writing a report directory.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The output directory could not be created (or is a file).
    #[error("cannot create report directory {path}")]
    CreateDir {
        /// The directory asked for.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
    /// A report file could not be written.
    #[error("cannot write report file {path}")]
    Io {
        /// The file being written.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
    /// A CSV table could not be encoded.
    #[error("cannot encode CSV for {path}")]
    Csv {
        /// The file the table was meant for.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: csv::Error,
    },
    /// The summary could not be encoded as JSON.
    #[error("cannot encode JSON for {path}")]
    Json {
        /// The file the summary was meant for.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: serde_json::Error,
    },
    /// The chart could not be drawn.
    #[error("cannot draw chart {path}")]
    Chart {
        /// The file the chart was meant for.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: chart::ChartError,
    },
}

/// The files a call to [`write_all`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// `summary.md`: the Markdown table.
    pub summary_md: PathBuf,
    /// `summary.json`: the same summary as JSON.
    pub summary_json: PathBuf,
    /// `curves.csv`: every run's binned curve.
    pub curves_csv: PathBuf,
    /// `curves_median.csv`: per policy and bin, the spread across seeds.
    pub curves_median_csv: PathBuf,
    /// `unallocated.svg`: median unallocated GPU % against arrived workload.
    pub unallocated_svg: PathBuf,
}

impl Written {
    /// Every path written, in writing order.
    pub fn paths(&self) -> [&Path; 5] {
        [
            &self.summary_md,
            &self.summary_json,
            &self.curves_csv,
            &self.curves_median_csv,
            &self.unallocated_svg,
        ]
    }
}

/// Creates `out_dir` and writes the report files into it, the summary read at arrival bin
/// `at_arrived_pct`.
pub fn write_all(
    records: &[RunRecord],
    out_dir: &Path,
    at_arrived_pct: u32,
) -> Result<Written, ReportError> {
    fs::create_dir_all(out_dir).map_err(|source| ReportError::CreateDir {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let written = Written {
        summary_md: out_dir.join("summary.md"),
        summary_json: out_dir.join("summary.json"),
        curves_csv: out_dir.join("curves.csv"),
        curves_median_csv: out_dir.join("curves_median.csv"),
        unallocated_svg: out_dir.join("unallocated.svg"),
    };

    let summary = summarize(records, at_arrived_pct);
    write_file(&written.summary_md, summary.to_markdown())?;
    let json = summary.to_json().map_err(|source| ReportError::Json {
        path: written.summary_json.clone(),
        source,
    })?;
    write_file(&written.summary_json, json + "\n")?;

    let runs = curves_csv(records).map_err(|source| ReportError::Csv {
        path: written.curves_csv.clone(),
        source,
    })?;
    write_file(&written.curves_csv, runs)?;

    let curves = policy_curves(records);
    let medians = curves_median_csv(&curves).map_err(|source| ReportError::Csv {
        path: written.curves_median_csv.clone(),
        source,
    })?;
    write_file(&written.curves_median_csv, medians)?;

    let svg =
        chart::unallocated_svg(&curves, at_arrived_pct).map_err(|source| ReportError::Chart {
            path: written.unallocated_svg.clone(),
            source,
        })?;
    write_file(&written.unallocated_svg, svg)?;

    Ok(written)
}

fn write_file(path: &Path, contents: impl AsRef<[u8]>) -> Result<(), ReportError> {
    fs::write(path, contents).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Fixed 4-decimal formatting, so the files do not depend on float printing heuristics.
fn fixed(x: f64) -> String {
    format!("{x:.4}")
}

/// `curves.csv`: `policy,seed,arrived_pct,alloc_pct,unalloc_pct,frag_pct`, ordered by policy
/// (input order), seed, bin.
pub fn curves_csv(records: &[RunRecord]) -> Result<Vec<u8>, csv::Error> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record([
        "policy",
        "seed",
        "arrived_pct",
        "alloc_pct",
        "unalloc_pct",
        "frag_pct",
    ])?;
    for group in group_by_policy(records) {
        for record in group.runs {
            let curve = run_curve(record);
            let seed = curve.seed.to_string();
            for p in &curve.points {
                out.write_record([
                    curve.policy.as_str(),
                    seed.as_str(),
                    &p.arrived_pct.to_string(),
                    &fixed(p.alloc_pct),
                    &fixed(p.unalloc_pct),
                    &fixed(p.frag_pct),
                ])?;
            }
        }
    }
    into_bytes(out)
}

/// `curves_median.csv`: per policy (input order) and bin, the number of runs, the median,
/// quartiles and extremes of unallocated GPU %, and the median fragmentation %.
pub fn curves_median_csv(curves: &[PolicyCurve]) -> Result<Vec<u8>, csv::Error> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record([
        "policy",
        "arrived_pct",
        "runs",
        "unalloc_median",
        "unalloc_p25",
        "unalloc_p75",
        "unalloc_min",
        "unalloc_max",
        "frag_median",
    ])?;
    for curve in curves {
        for p in &curve.points {
            out.write_record([
                curve.policy.as_str(),
                &p.arrived_pct.to_string(),
                &p.runs.to_string(),
                &fixed(p.unalloc.median),
                &fixed(p.unalloc.p25),
                &fixed(p.unalloc.p75),
                &fixed(p.unalloc.min),
                &fixed(p.unalloc.max),
                &fixed(p.frag.median),
            ])?;
        }
    }
    into_bytes(out)
}

fn into_bytes(out: csv::Writer<Vec<u8>>) -> Result<Vec<u8>, csv::Error> {
    out.into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))
}

#[cfg(test)]
mod tests;
