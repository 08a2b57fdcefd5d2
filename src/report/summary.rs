//! The headline table: every policy read at one arrival bin (100 % by default), as in the FGD
//! paper's Fig. 9(a) and `placement-benchmark.md` §4.

use std::fmt::Write as _;

use serde::Serialize;

use super::RunRecord;
use super::curves::{Spread, group_by_policy, median, policy_curves};

/// Policies read at one arrival bin.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// One row per policy, in input order.
    pub rows: Vec<SummaryRow>,
    /// The arrival bin read, % of cluster GPU capacity.
    pub arrived_pct: u32,
    /// Every seed seen in the input, ascending, without duplicates.
    pub seeds: Vec<u64>,
}

/// One policy at the summary's arrival bin.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SummaryRow {
    /// Policy name.
    pub policy: String,
    /// Unallocated GPU % across seeds; `None` when no run has a value at the bin.
    pub unalloc: Option<Spread>,
    /// Fragmentation % of capacity across seeds; `None` when no run has a value at the bin.
    pub frag: Option<Spread>,
    /// Runs with a value at the bin (the spreads are over these).
    pub runs: usize,
    /// Median over all runs of the pods that fitted nowhere.
    pub failed_pods_median: f64,
    /// Median over all runs of the pods that arrived.
    pub pods_median: f64,
}

/// Reads every policy at arrival bin `at_arrived_pct`.
pub fn summarize(records: &[RunRecord], at_arrived_pct: u32) -> Summary {
    let curves = policy_curves(records);
    let rows = group_by_policy(records)
        .into_iter()
        .zip(curves)
        .filter_map(|(group, curve)| {
            let counts = |count: fn(&RunRecord) -> u64| -> Vec<f64> {
                group.runs.iter().map(|r| count(r) as f64).collect()
            };
            // Every group holds at least one run, so both medians exist.
            let failed_pods_median = median(&counts(|r| r.failed_pods))?;
            let pods_median = median(&counts(|r| r.pods))?;
            let point = curve
                .points
                .iter()
                .find(|p| p.arrived_pct == at_arrived_pct);
            Some(SummaryRow {
                policy: curve.policy,
                unalloc: point.map(|p| p.unalloc),
                frag: point.map(|p| p.frag),
                runs: point.map_or(0, |p| p.runs),
                failed_pods_median,
                pods_median,
            })
        })
        .collect();
    let mut seeds: Vec<u64> = records.iter().map(|r| r.seed).collect();
    seeds.sort_unstable();
    seeds.dedup();
    Summary {
        rows,
        arrived_pct: at_arrived_pct,
        seeds,
    }
}

impl Summary {
    /// A one-line caption, then a Markdown table with one row per policy.
    pub fn to_markdown(&self) -> String {
        let seeds = if self.seeds.is_empty() {
            "none".to_owned()
        } else {
            let list: Vec<String> = self.seeds.iter().map(u64::to_string).collect();
            list.join(", ")
        };
        let mut out = format!(
            "Unallocated GPU % at arrived workload = {} % of cluster GPU capacity; \
             medians over seeds {seeds}.\n\n",
            self.arrived_pct
        );
        out.push_str(
            "| policy | median unallocated GPU % | spread (min–max) | p25–p75 \
             | median frag % (of capacity) | failed pods (median) |\n",
        );
        out.push_str("|---|---:|---:|---:|---:|---:|\n");
        for row in &self.rows {
            let (median, range, quartiles) = match row.unalloc {
                Some(s) => (
                    format!("{:.2}", s.median),
                    format!("{:.2}–{:.2}", s.min, s.max),
                    format!("{:.2}–{:.2}", s.p25, s.p75),
                ),
                None => ("n/a".to_owned(), "n/a".to_owned(), "n/a".to_owned()),
            };
            let frag = row
                .frag
                .map_or_else(|| "n/a".to_owned(), |s| format!("{:.2}", s.median));
            // Writing to a String cannot fail.
            let _ = writeln!(
                out,
                "| {} | {median} | {range} | {quartiles} | {frag} | {} |",
                escape_cell(&row.policy),
                count(row.failed_pods_median),
            );
        }
        out
    }

    /// The summary as pretty-printed JSON (a missing spread is `null`).
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }
}

/// A median of pod counts: a whole number, or halfway between two (an even number of runs).
pub(crate) fn count(median: f64) -> String {
    if median.fract() == 0.0 {
        format!("{median:.0}")
    } else {
        format!("{median:.1}")
    }
}

/// Policy names are user input; a `|` would split the cell.
fn escape_cell(text: &str) -> String {
    text.replace('|', "\\|")
}

#[cfg(test)]
mod tests;
