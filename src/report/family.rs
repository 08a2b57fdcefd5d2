//! The workload-family table: one row per workload, one column per policy (median
//! unallocated GPU % at the read-out bin), the offline oracle, and — when the FGD authors'
//! published results are given — the published figures and the differences.

use std::fmt::Write as _;

use serde::Serialize;

use super::published::Published;
use super::summary::Summary;

/// One workload's results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FamilyRow {
    /// Workload name (`default`, `gpuspec25`, …).
    pub workload: String,
    /// The policies read at the bin.
    pub summary: Summary,
    /// Median over seeds of the lower bound on the unallocated GPU % at the bin
    /// (`sim::oracle::unallocated_lower_bound_pct`): no placement of the arrived pods does
    /// better.
    pub lower_bound: Option<f64>,
}

/// Every workload's results at one bin, with the published figures when known.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Family {
    /// Rows in run order.
    pub rows: Vec<FamilyRow>,
    /// Arrival bin read, % of capacity.
    pub arrived_pct: u32,
    /// Tune ratio of the runs (the published rows are matched on it).
    pub tune: f64,
    /// `(workload, policy) → published median`, for the pairs the file has.
    pub published: Vec<PublishedCell>,
}

/// A published median next to ours.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PublishedCell {
    /// Workload.
    pub workload: String,
    /// Policy (tessera's name).
    pub policy: String,
    /// Published median unallocated GPU %.
    pub published: f64,
    /// Ours, median over our seeds.
    pub ours: Option<f64>,
}

impl Family {
    /// Gathers the rows and, with `published`, every published median that matches a
    /// workload, policy and tune of the runs.
    pub fn new(
        rows: Vec<FamilyRow>,
        arrived_pct: u32,
        tune: f64,
        published: Option<&Published>,
    ) -> Self {
        let mut cells = Vec::new();
        if let Some(published) = published {
            for row in &rows {
                // Published FGD is the benchmark's reference: shown even when FGD did not run.
                let mut names: Vec<&str> =
                    row.summary.rows.iter().map(|p| p.policy.as_str()).collect();
                if !names.contains(&"fgd") {
                    names.push("fgd");
                }
                for name in names {
                    if let Some(p) = published.median(&row.workload, name, tune) {
                        let ours = row
                            .summary
                            .rows
                            .iter()
                            .find(|r| r.policy == name)
                            .and_then(|r| r.unalloc)
                            .map(|s| s.median);
                        cells.push(PublishedCell {
                            workload: row.workload.clone(),
                            policy: name.to_owned(),
                            published: p,
                            ours,
                        });
                    }
                }
            }
        }
        Family {
            rows,
            arrived_pct,
            tune,
            published: cells,
        }
    }

    fn published(&self, workload: &str, policy: &str) -> Option<&PublishedCell> {
        self.published
            .iter()
            .find(|c| c.workload == workload && c.policy == policy)
    }

    /// Policies in the order of the first row.
    fn policies(&self) -> Vec<String> {
        self.rows
            .first()
            .map(|r| r.summary.rows.iter().map(|p| p.policy.clone()).collect())
            .unwrap_or_default()
    }

    /// tessera's median against published FGD's, per workload that has both.
    pub fn tessera_vs_published_fgd(&self) -> Vec<(String, f64, f64)> {
        self.rows
            .iter()
            .filter_map(|row| {
                let ours = row
                    .summary
                    .rows
                    .iter()
                    .find(|p| p.policy == "tessera")?
                    .unalloc?
                    .median;
                let fgd = self.published(&row.workload, "fgd")?.published;
                Some((row.workload.clone(), ours, fgd))
            })
            .collect()
    }

    /// The family table in Markdown: medians per workload and policy, the lower bound, and with
    /// published results the published FGD figure, tessera's difference to it, then a second
    /// table of every policy's difference to its published figure.
    pub fn to_markdown(&self) -> String {
        let policies = self.policies();
        let seeds = self
            .rows
            .first()
            .map(|r| {
                r.summary
                    .seeds
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        let mut out = format!(
            "Median unallocated GPU % at arrived workload = {} % of cluster GPU capacity \
             (seeds {seeds}, tune {}); lower bound: the idle GPU no placement of the pods \
             arrived by then can avoid (gaps beside shares above 500 milli that too few \
             small pods can fill).\n\n",
            self.arrived_pct, self.tune
        );
        let with_published = !self.published.is_empty();
        out.push_str("| workload |");
        for p in &policies {
            let _ = write!(out, " {p} |");
        }
        out.push_str(" lower bound |");
        if with_published {
            out.push_str(" fgd published | tessera − fgd published | tessera vs fgd published |");
        }
        out.push_str("\n|---|");
        let columns = policies.len() + 1 + if with_published { 3 } else { 0 };
        out.push_str(&"---:|".repeat(columns));
        out.push('\n');
        let fmt = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.2}"));
        let mut gains = Vec::new();
        for row in &self.rows {
            let _ = write!(out, "| {} |", row.workload);
            for p in &policies {
                let v = row
                    .summary
                    .rows
                    .iter()
                    .find(|r| &r.policy == p)
                    .and_then(|r| r.unalloc)
                    .map(|s| s.median);
                let _ = write!(out, " {} |", fmt(v));
            }
            let _ = write!(out, " {} |", fmt(row.lower_bound));
            if with_published {
                let fgd = self.published(&row.workload, "fgd").map(|c| c.published);
                let ours = row
                    .summary
                    .rows
                    .iter()
                    .find(|r| r.policy == "tessera")
                    .and_then(|r| r.unalloc)
                    .map(|s| s.median);
                let (diff, gain) = match (ours, fgd) {
                    (Some(o), Some(f)) if f > 0.0 => {
                        gains.push((f - o) / f);
                        (
                            format!("{:+.2}", o - f),
                            format!("{:+.1} %", (o - f) / f * 100.0),
                        )
                    }
                    _ => ("n/a".to_owned(), "n/a".to_owned()),
                };
                let _ = write!(out, " {} | {diff} | {gain} |", fmt(fgd));
            }
            out.push('\n');
        }
        if !gains.is_empty() {
            let mean = gains.iter().sum::<f64>() / gains.len() as f64 * 100.0;
            let worse = gains.iter().filter(|g| **g < 0.0).count();
            let _ = write!(
                out,
                "\ntessera against published FGD: {mean:.1} % fewer unallocated GPUs on \
                 average over {} workloads; worse on {worse}.\n",
                gains.len()
            );
        }
        if with_published {
            out.push_str("\nEach policy against its published figure (ours − published, points):\n\n| workload |");
            let published_policies: Vec<&String> = policies
                .iter()
                .filter(|p| self.published.iter().any(|c| &c.policy == *p))
                .collect();
            for p in &published_policies {
                let _ = write!(out, " {p} |");
            }
            out.push_str("\n|---|");
            out.push_str(&"---:|".repeat(published_policies.len()));
            out.push('\n');
            for row in &self.rows {
                let _ = write!(out, "| {} |", row.workload);
                for p in &published_policies {
                    let cell = self.published(&row.workload, p).map_or_else(
                        || "n/a".to_owned(),
                        |c| {
                            c.ours.map_or_else(
                                || format!("n/a / {:.2}", c.published),
                                |o| {
                                    format!("{:+.2} ({o:.2} / {:.2})", o - c.published, c.published)
                                },
                            )
                        },
                    );
                    let _ = write!(out, " {cell} |");
                }
                out.push('\n');
            }
        }
        out
    }

    /// The family as pretty-printed JSON.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }
}
