//! The cost table: per policy, medians over seeds at each arrival point, and how much cheaper
//! tessera is than each baseline.

use std::fmt::Write as _;

use serde::Serialize;

use super::{COST_POINTS_PCT, CostRunRecord, CostSnapshot};
use crate::report::RunRecord;
use crate::report::curves::{median, policy_curves};

/// One policy at one arrival point, medians over the runs that reached it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PointStats {
    /// Arrived workload, % of cluster GPU capacity.
    pub arrived_pct: u32,
    /// Dollars per hour of occupied nodes per allocated GPU.
    pub usd_per_allocated_gpu_hour: Option<f64>,
    /// GPU-hours of work lost to interruptions over the horizon.
    pub lost_gpu_hours: Option<f64>,
    /// Unallocated GPU %, read from the binned curve as the placement benchmark reads it.
    pub unalloc_pct: Option<f64>,
    /// Occupied nodes.
    pub occupied_nodes: Option<f64>,
    /// Share of the allocated GPUs that sit on spot nodes, %.
    pub spot_allocated_pct: Option<f64>,
}

/// One policy's row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostRow {
    /// Policy name.
    pub policy: String,
    /// One entry per point of [`COST_POINTS_PCT`].
    pub points: Vec<PointStats>,
    /// Intolerant pods found on spot nodes, summed over every run and point (must be 0).
    pub intolerant_on_spot: u64,
    /// Runs of the policy.
    pub runs: usize,
}

impl CostRow {
    /// The stats at `arrived_pct`.
    pub fn at(&self, arrived_pct: u32) -> Option<&PointStats> {
        self.points.iter().find(|p| p.arrived_pct == arrived_pct)
    }
}

/// The cost experiment's summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostSummary {
    /// One row per policy, in input order.
    pub rows: Vec<CostRow>,
    /// Every seed seen, ascending.
    pub seeds: Vec<u64>,
    /// Hours over which lost work is counted.
    pub horizon_hours: f64,
}

/// Summarizes cost runs; `horizon_hours` is what their lost work was counted over.
pub fn summarize_cost(records: &[CostRunRecord], horizon_hours: f64) -> CostSummary {
    let mut policies: Vec<&str> = Vec::new();
    for r in records {
        if !policies.contains(&r.run.policy.as_str()) {
            policies.push(&r.run.policy);
        }
    }
    let runs: Vec<RunRecord> = records.iter().map(|r| r.run.clone()).collect();
    let curves = policy_curves(&runs);
    let rows = policies
        .into_iter()
        .map(|policy| {
            let group: Vec<&CostRunRecord> =
                records.iter().filter(|r| r.run.policy == policy).collect();
            let unalloc_at = |pct: u32| {
                curves
                    .iter()
                    .find(|c| c.policy == policy)?
                    .points
                    .iter()
                    .find(|p| p.arrived_pct == pct)
                    .map(|p| p.unalloc.median)
            };
            let points = COST_POINTS_PCT
                .iter()
                .map(|&pct| {
                    let snaps: Vec<&CostSnapshot> =
                        group.iter().filter_map(|r| r.snapshot(pct)).collect();
                    let med = |f: fn(&CostSnapshot) -> Option<f64>| {
                        median(&snaps.iter().filter_map(|s| f(s)).collect::<Vec<_>>())
                    };
                    PointStats {
                        arrived_pct: pct,
                        usd_per_allocated_gpu_hour: med(CostSnapshot::usd_per_allocated_gpu_hour),
                        lost_gpu_hours: med(|s| Some(s.lost_gpu_hours)),
                        unalloc_pct: unalloc_at(pct),
                        occupied_nodes: med(|s| Some(s.occupied_nodes as f64)),
                        spot_allocated_pct: med(|s| {
                            (s.allocated_milli > 0).then(|| {
                                100.0 * s.spot_allocated_milli as f64 / s.allocated_milli as f64
                            })
                        }),
                    }
                })
                .collect();
            CostRow {
                policy: policy.to_owned(),
                points,
                intolerant_on_spot: group
                    .iter()
                    .flat_map(|r| &r.snapshots)
                    .map(|s| s.intolerant_on_spot)
                    .sum(),
                runs: group.len(),
            }
        })
        .collect();
    let mut seeds: Vec<u64> = records.iter().map(|r| r.run.seed).collect();
    seeds.sort_unstable();
    seeds.dedup();
    CostSummary {
        rows,
        seeds,
        horizon_hours,
    }
}

impl CostSummary {
    /// The row of `policy`.
    pub fn row(&self, policy: &str) -> Option<&CostRow> {
        self.rows.iter().find(|r| r.policy == policy)
    }

    /// How much cheaper per allocated GPU-hour `policy` is than `baseline` at `arrived_pct`,
    /// in percent of the baseline (positive: cheaper).
    pub fn saving_pct(&self, policy: &str, baseline: &str, arrived_pct: u32) -> Option<f64> {
        let cost = |p: &str| {
            self.row(p)?
                .at(arrived_pct)?
                .usd_per_allocated_gpu_hour
                .filter(|c| *c > 0.0)
        };
        Some(100.0 * (1.0 - cost(policy)? / cost(baseline)?))
    }

    /// A caption, the table, and tessera's saving against each other policy.
    pub fn to_markdown(&self) -> String {
        let seeds: Vec<String> = self.seeds.iter().map(u64::to_string).collect();
        let mut out = format!(
            "Cost per allocated GPU-hour ($/h of occupied nodes ÷ allocated GPUs; empty nodes \
             scaled away), GPU-hours lost to spot interruptions over {:.0} h, and unallocated \
             GPU %, at arrived workload 50 / 80 / 100 % of cluster GPU capacity; medians over \
             seeds {}.\n\n",
            self.horizon_hours,
            if seeds.is_empty() {
                "none".to_owned()
            } else {
                seeds.join(", ")
            }
        );
        out.push_str(
            "| policy | $/GPU-h @50 | $/GPU-h @80 | lost GPU-h @50 | lost GPU-h @80 \
             | spot GPU % @80 | nodes @80 | unalloc % @50 | unalloc % @80 | unalloc % @100 \
             | intolerant on spot |\n",
        );
        out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for row in &self.rows {
            let get = |pct: u32, f: fn(&PointStats) -> Option<f64>, digits: usize| {
                row.at(pct)
                    .and_then(f)
                    .map_or_else(|| "n/a".to_owned(), |v| format!("{v:.digits$}"))
            };
            // Writing to a String cannot fail.
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                row.policy.replace('|', "\\|"),
                get(50, |p| p.usd_per_allocated_gpu_hour, 3),
                get(80, |p| p.usd_per_allocated_gpu_hour, 3),
                get(50, |p| p.lost_gpu_hours, 1),
                get(80, |p| p.lost_gpu_hours, 1),
                get(80, |p| p.spot_allocated_pct, 1),
                get(80, |p| p.occupied_nodes, 0),
                get(50, |p| p.unalloc_pct, 2),
                get(80, |p| p.unalloc_pct, 2),
                get(100, |p| p.unalloc_pct, 2),
                row.intolerant_on_spot,
            );
        }
        let others: Vec<&str> = self
            .rows
            .iter()
            .map(|r| r.policy.as_str())
            .filter(|p| *p != "tessera")
            .collect();
        if self.row("tessera").is_some() && !others.is_empty() {
            out.push_str("\ntessera's saving per allocated GPU-hour:\n\n");
            for other in others {
                let at = |pct| {
                    self.saving_pct("tessera", other, pct)
                        .map_or_else(|| "n/a".to_owned(), |s| format!("{s:.1} %"))
                };
                let _ = writeln!(out, "- vs {other}: {} @50, {} @80", at(50), at(80));
            }
        }
        out
    }

    /// The summary as pretty-printed JSON.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }
}

#[cfg(test)]
mod tests;
