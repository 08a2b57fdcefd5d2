//! The MIG experiment's table: the openb summary's columns plus the pods that had failed by
//! the read-out bin (the openb table's failure count covers the whole run, to 130 %).

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::curves::{Spread, group_by_policy};
use super::summary::summarize;
use super::{ReportError, RunRecord};

/// One run of the MIG experiment: the openb record plus, after each sample, how many pods
/// had failed so far.
#[derive(Debug, Clone, PartialEq)]
pub struct MigRunRecord {
    /// What every run records.
    pub record: RunRecord,
    /// Pods failed so far, one entry per sample of `record`.
    pub failed_after: Vec<u32>,
}

impl MigRunRecord {
    /// Pods that failed while the arrived workload was at most `at_pct` % of capacity: the
    /// count at the last sample whose arrival bin (rounded half to even, as the curves bin
    /// it) is `at_pct` or less; 0 if no sample is.
    pub fn failed_by(&self, at_pct: u32) -> u32 {
        let gpus = self.record.capacity_milli as f64 / 1000.0;
        if gpus <= 0.0 {
            return 0;
        }
        self.record
            .samples
            .iter()
            .zip(&self.failed_after)
            .take_while(|(s, _)| {
                (s.arrived_milli as f64 / gpus / 10.0).round_ties_even() <= f64::from(at_pct)
            })
            .last()
            .map_or(0, |(_, failed)| *failed)
    }
}

/// One policy of the MIG table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MigRow {
    /// Policy name.
    pub policy: String,
    /// Unallocated GPU % at the bin, across seeds.
    pub unalloc: Option<Spread>,
    /// Fragmentation % of capacity at the bin, across seeds.
    pub frag: Option<Spread>,
    /// Pods failed by the bin, across seeds.
    pub failed: Option<Spread>,
    /// Median over runs of the pods that failed in the whole run.
    pub failed_whole_run_median: f64,
}

/// The MIG table at one arrival bin.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MigSummary {
    /// One row per policy, in input order.
    pub rows: Vec<MigRow>,
    /// The arrival bin read, % of cluster GPU capacity.
    pub arrived_pct: u32,
    /// Every seed, ascending.
    pub seeds: Vec<u64>,
}

/// Reads every policy of `runs` at arrival bin `at_pct`.
pub fn summarize_mig(runs: &[MigRunRecord], at_pct: u32) -> MigSummary {
    let records: Vec<RunRecord> = runs.iter().map(|r| r.record.clone()).collect();
    let base = summarize(&records, at_pct);
    let failed: Vec<Option<Spread>> = group_by_policy(&records)
        .iter()
        .map(|group| {
            let counts: Vec<f64> = runs
                .iter()
                .filter(|r| r.record.policy == group.policy)
                .map(|r| f64::from(r.failed_by(at_pct)))
                .collect();
            Spread::of(&counts)
        })
        .collect();
    let rows = base
        .rows
        .into_iter()
        .zip(failed)
        .map(|(row, failed)| MigRow {
            policy: row.policy,
            unalloc: row.unalloc,
            frag: row.frag,
            failed,
            failed_whole_run_median: row.failed_pods_median,
        })
        .collect();
    MigSummary {
        rows,
        arrived_pct: at_pct,
        seeds: base.seeds,
    }
}

/// Median and range cells with these decimals (a count's range is whole, its median may be
/// a half).
fn spread_cells(spread: Option<Spread>, median: usize, range: usize) -> (String, String) {
    spread.map_or_else(
        || ("n/a".to_owned(), "n/a".to_owned()),
        |s| {
            (
                format!("{:.*}", median, s.median),
                format!("{:.*}–{:.*}", range, s.min, range, s.max),
            )
        },
    )
}

impl MigSummary {
    /// A caption, then a Markdown table with one row per policy.
    pub fn to_markdown(&self) -> String {
        let seeds: Vec<String> = self.seeds.iter().map(u64::to_string).collect();
        let mut out = format!(
            "MIG cluster: unallocated GPU % and failed pods at arrived workload = {} % of \
             cluster GPU capacity; medians over seeds {}.\n\n",
            self.arrived_pct,
            if seeds.is_empty() {
                "none".to_owned()
            } else {
                seeds.join(", ")
            }
        );
        let _ = writeln!(
            out,
            "| policy | median unallocated GPU % | spread (min–max) | median frag % (of capacity) \
             | failed pods at {at} % (median) | spread (min–max) | failed pods, whole run (median) |",
            at = self.arrived_pct
        );
        out.push_str("|---|---:|---:|---:|---:|---:|---:|\n");
        for row in &self.rows {
            let (unalloc, unalloc_range) = spread_cells(row.unalloc, 2, 2);
            let (failed, failed_range) = spread_cells(row.failed, 1, 0);
            let frag = row
                .frag
                .map_or_else(|| "n/a".to_owned(), |s| format!("{:.2}", s.median));
            let _ = writeln!(
                out,
                "| {} | {unalloc} | {unalloc_range} | {frag} | {failed} | {failed_range} | {:.1} |",
                row.policy.replace('|', "\\|"),
                row.failed_whole_run_median,
            );
        }
        out
    }

    /// The summary as pretty-printed JSON.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }

    /// Writes `summary.md` and `summary.json` into `dir` (replacing the openb summary that
    /// [`super::write_all`] put there); returns their paths.
    pub fn write(&self, dir: &Path) -> Result<[PathBuf; 2], ReportError> {
        let md = dir.join("summary.md");
        let json = dir.join("summary.json");
        let encoded = self.to_json().map_err(|source| ReportError::Json {
            path: json.clone(),
            source,
        })?;
        for (path, contents) in [(&md, self.to_markdown()), (&json, encoded + "\n")] {
            fs::write(path, contents).map_err(|source| ReportError::Io {
                path: path.clone(),
                source,
            })?;
        }
        Ok([md, json])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Sample;

    fn run(policy: &str, seed: u64, failed_at: &[(u64, u32)]) -> MigRunRecord {
        // 10 GPUs: 100 milli arrived = 1 %.
        let samples = failed_at
            .iter()
            .map(|(arrived, _)| Sample {
                arrived_milli: *arrived,
                used_milli: *arrived / 2,
                frag_milli: 0.0,
            })
            .collect();
        MigRunRecord {
            record: RunRecord {
                policy: policy.into(),
                seed,
                capacity_milli: 10_000,
                pods: failed_at.len() as u64,
                failed_pods: u64::from(failed_at.last().map_or(0, |f| f.1)),
                samples,
            },
            failed_after: failed_at.iter().map(|f| f.1).collect(),
        }
    }

    #[test]
    fn failures_are_read_at_the_last_sample_of_the_bin() {
        // Arrival 99.4 % → bin 99, 100.4 % → 100, 100.5 % → 100 (ties to even), 100.6 → 101.
        let r = run("p", 1, &[(9_940, 1), (10_040, 2), (10_050, 3), (10_060, 7)]);
        assert_eq!(r.failed_by(99), 1);
        assert_eq!(r.failed_by(100), 3);
        assert_eq!(r.failed_by(130), 7);
        assert_eq!(r.failed_by(50), 0);
    }

    #[test]
    fn table_has_a_row_per_policy_with_failure_spreads() {
        let runs = [
            run("a", 1, &[(9_000, 0), (10_000, 4), (13_000, 9)]),
            run("a", 2, &[(9_000, 1), (10_000, 6), (13_000, 9)]),
            run("b", 1, &[(10_000, 2), (13_000, 3)]),
        ];
        let s = summarize_mig(&runs, 100);
        assert_eq!(s.seeds, [1, 2]);
        let a = &s.rows[0];
        assert_eq!(a.policy, "a");
        let failed = a.failed.unwrap();
        assert_eq!((failed.median, failed.min, failed.max), (5.0, 4.0, 6.0));
        assert_eq!(a.failed_whole_run_median, 9.0);
        let md = s.to_markdown();
        assert!(md.contains("failed pods at 100 % (median)"), "{md}");
        assert!(
            md.contains("| a | 50.00 | 50.00–50.00 | 0.00 | 5.0 | 4–6 | 9.0 |"),
            "{md}"
        );
        assert!(md.contains("| b |"), "{md}");
        let dir = tempfile::TempDir::new().unwrap();
        let [md_path, json_path] = s.write(dir.path()).unwrap();
        assert_eq!(fs::read_to_string(md_path).unwrap(), md);
        assert!(
            fs::read_to_string(json_path)
                .unwrap()
                .contains("\"failed\"")
        );
    }
}
