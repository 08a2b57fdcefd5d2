//! Binned curves: the FGD protocol's read-out (`placement-benchmark.md` §3.4).
//!
//! Each sample is placed in the bin of its arrived workload % (rounded half to even, as
//! Python's `round`); a run's value at a bin is the mean of its samples there, falling back to
//! the samples of the two neighbouring bins (`merge_alloc_discrete.py`); a policy's value is
//! the median across seeds.

use std::collections::BTreeMap;

use serde::Serialize;

use super::RunRecord;

mod spread;

pub use spread::{Spread, median};

/// Bins always reported: arrived workload 0 % ..= 130 % (the trace is inflated to 130 %).
const LAST_PROTOCOL_BIN: u32 = 130;

/// One run's binned curve.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunCurve {
    /// Policy of the run.
    pub policy: String,
    /// Seed of the run.
    pub seed: u64,
    /// Bins that have a value, in increasing arrival order.
    pub points: Vec<CurvePoint>,
}

/// One run's value at one arrival bin.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CurvePoint {
    /// Arrived workload bin, % of cluster GPU capacity.
    pub arrived_pct: u32,
    /// Mean GPU allocation ratio %, each sample rounded to 2 decimals first.
    pub alloc_pct: f64,
    /// Unallocated GPU %: `100 − alloc_pct`.
    pub unalloc_pct: f64,
    /// Mean fragmentation amount, % of cluster GPU capacity.
    pub frag_pct: f64,
}

/// A policy's curve across seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyCurve {
    /// Policy name.
    pub policy: String,
    /// Bins where at least one run has a value, in increasing arrival order.
    pub points: Vec<PolicyPoint>,
}

/// A policy's spread across seeds at one arrival bin.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PolicyPoint {
    /// Arrived workload bin, % of cluster GPU capacity.
    pub arrived_pct: u32,
    /// Unallocated GPU % across runs.
    pub unalloc: Spread,
    /// Fragmentation % of capacity across runs.
    pub frag: Spread,
    /// Runs that have a value at this bin.
    pub runs: usize,
}

/// The runs of one policy, seeds ascending.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyRuns<'a> {
    /// Policy name.
    pub policy: &'a str,
    /// Its runs, sorted by seed (stable, so duplicates keep input order).
    pub runs: Vec<&'a RunRecord>,
}

/// Groups runs by policy, policies in order of first appearance (the user's order).
pub fn group_by_policy(records: &[RunRecord]) -> Vec<PolicyRuns<'_>> {
    let mut groups: Vec<PolicyRuns<'_>> = Vec::new();
    for record in records {
        match groups.iter_mut().find(|g| g.policy == record.policy) {
            Some(group) => group.runs.push(record),
            None => groups.push(PolicyRuns {
                policy: &record.policy,
                runs: vec![record],
            }),
        }
    }
    for group in &mut groups {
        group.runs.sort_by_key(|r| r.seed);
    }
    groups
}

/// Running sums of one bin's samples.
#[derive(Debug, Clone, Copy, Default)]
struct Bin {
    alloc_sum: f64,
    frag_sum: f64,
    count: u32,
}

impl Bin {
    fn add(&mut self, other: &Bin) {
        self.alloc_sum += other.alloc_sum;
        self.frag_sum += other.frag_sum;
        self.count += other.count;
    }

    fn point(&self, arrived_pct: u32) -> Option<CurvePoint> {
        if self.count == 0 {
            return None;
        }
        let n = f64::from(self.count);
        let alloc_pct = self.alloc_sum / n;
        Some(CurvePoint {
            arrived_pct,
            alloc_pct,
            unalloc_pct: 100.0 - alloc_pct,
            frag_pct: self.frag_sum / n,
        })
    }
}

/// Bins one run's samples. A run with zero capacity has no points.
pub fn run_curve(record: &RunRecord) -> RunCurve {
    let points = if record.capacity_milli == 0 {
        Vec::new()
    } else {
        binned_points(record)
    };
    RunCurve {
        policy: record.policy.clone(),
        seed: record.seed,
        points,
    }
}

fn binned_points(record: &RunRecord) -> Vec<CurvePoint> {
    // The artifact divides milli by the GPU count and then by 10 (`x / total_gpus / 10`);
    // keeping that order keeps float ties identical to its Python output.
    let gpus = record.capacity_milli as f64 / 1000.0;
    let mut bins: BTreeMap<u32, Bin> = BTreeMap::new();
    for sample in &record.samples {
        let arrived = arrived_bin(sample.arrived_milli as f64 / gpus / 10.0);
        let bin = bins.entry(arrived).or_default();
        bin.alloc_sum += round_2(sample.used_milli as f64 / gpus / 10.0);
        bin.frag_sum += sample.frag_milli / gpus / 10.0;
        bin.count += 1;
    }
    let last = bins
        .keys()
        .next_back()
        .map_or(LAST_PROTOCOL_BIN, |&max| max.max(LAST_PROTOCOL_BIN));
    (0..=last)
        .filter_map(|b| {
            if let Some(bin) = bins.get(&b) {
                return bin.point(b);
            }
            // No sample landed exactly here: pool the samples of b − 1 and b + 1.
            let mut pooled = Bin::default();
            for neighbour in [b.checked_sub(1), b.checked_add(1)].into_iter().flatten() {
                if let Some(bin) = bins.get(&neighbour) {
                    pooled.add(bin);
                }
            }
            pooled.point(b)
        })
        .collect()
}

/// Python's `round(x)`: nearest integer, ties to even. Negative or NaN inputs give bin 0.
fn arrived_bin(pct: f64) -> u32 {
    // `as` saturates; arrival is never negative.
    pct.round_ties_even() as u32
}

/// Python's `round(x, 2)`: correctly rounded on the exact binary value, ties to even.
///
/// Rust's `{:.2}` formatting rounds the same way (so `2.675` → `2.67`, `0.125` → `0.12`), and
/// parsing back gives the same double Python returns.
fn round_2(x: f64) -> f64 {
    format!("{x:.2}").parse().unwrap_or(x)
}

/// Every policy's curve across seeds, policies in input order.
pub fn policy_curves(records: &[RunRecord]) -> Vec<PolicyCurve> {
    group_by_policy(records)
        .into_iter()
        .map(|group| {
            let curves: Vec<RunCurve> = group.runs.iter().map(|r| run_curve(r)).collect();
            PolicyCurve {
                policy: group.policy.to_owned(),
                points: across_runs(&curves),
            }
        })
        .collect()
}

/// Per bin, the spread of the runs that have a value there.
fn across_runs(curves: &[RunCurve]) -> Vec<PolicyPoint> {
    let mut by_bin: BTreeMap<u32, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    for point in curves.iter().flat_map(|c| &c.points) {
        let (unalloc, frag) = by_bin.entry(point.arrived_pct).or_default();
        unalloc.push(point.unalloc_pct);
        frag.push(point.frag_pct);
    }
    by_bin
        .into_iter()
        .filter_map(|(arrived_pct, (unalloc, frag))| {
            Some(PolicyPoint {
                arrived_pct,
                unalloc: Spread::of(&unalloc)?,
                frag: Spread::of(&frag)?,
                runs: unalloc.len(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
