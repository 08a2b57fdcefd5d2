//! Share prices: what each sharing-pod size is worth in GPUs when the workload's sharing pods
//! are packed as well as possible, and what a GPU's free space is worth at those prices.
//!
//! Packing the typical sharing pods into GPUs is a cutting-stock problem: pods of a few sizes
//! (810, 650, 470, 320 … milli), in known proportions, into bins of 1000. The dual of its LP
//! relaxation gives each size a price `y_s` (the share of a GPU that size uses up in an
//! optimal packing): on the openb trace 810 → 1, 650 → 2/3, 470 → 1/2, 320 → 1/3,
//! 230 → 1/4, 160 → 0 (the pods that can only fill 810's leftovers are free). The worth of
//! `g` free milli is the most the priced sizes fitting in `g` can be worth (a knapsack),
//! `V(g)`, with `V(1000)` = 1 for the openb mix.
//!
//! Putting a pod of size `s` into a GPU with `f` free then *loses* `V(f) − y_s − V(f − s)`
//! GPUs of packing value: zero when the placement follows some optimal pattern (a 320 next
//! to a 650, a 470 next to a 470, a 320 into a fresh GPU), positive when it spoils one (a 320
//! into a 470's leftover leaves 210 milli that nothing priced can use: 1/2 − 1/3 − 0 = 1/6).
//! The prices look only at the workload's typical pods, never at the arrival order.

use super::simplex::maximise_under_unit_rows;
use crate::model::MILLI_PER_GPU;
use crate::scoring::frag::TypicalPods;

/// GPU capacity in milli, as an index bound for the tables.
const CAPACITY: usize = MILLI_PER_GPU as usize;
/// Most distinct share sizes priced by the LP; rarer sizes take the worth of their space.
pub const MAX_PRICED_SIZES: usize = 64;
/// Most cutting patterns the LP may generate before it settles for the prices it has.
const MAX_PATTERNS: usize = 512;
/// Pivot limit of one LP solve (Bland's rule needs few on these small problems).
const MAX_PIVOTS: usize = 20_000;
/// A pattern must be worth more than one GPU by this much to be a violated constraint.
const EPS: f64 = 1e-9;

/// Share prices and the worth of free space, both in GPUs, indexed by milli (0..=1000).
#[derive(Debug, Clone, PartialEq)]
pub struct SharePrices {
    /// Price of a sharing pod of each size.
    price: Vec<f64>,
    /// Worth of each amount of free space on one GPU.
    worth: Vec<f64>,
}

impl Default for SharePrices {
    /// No prices: every loss is zero.
    fn default() -> Self {
        SharePrices {
            price: vec![0.0; CAPACITY + 1],
            worth: vec![0.0; CAPACITY + 1],
        }
    }
}

impl SharePrices {
    /// Prices of the sharing pods among `typical` (one GPU, less than all of it), weighted by
    /// popularity; model and CPU are not part of a size.
    pub fn from_typical(typical: &TypicalPods) -> Self {
        let mut demand: Vec<(u16, f64)> = Vec::new();
        for t in typical.iter() {
            let sharing = t.gpus == 1 && t.gpu_milli > 0 && t.gpu_milli < MILLI_PER_GPU;
            if !(sharing && t.freq.is_finite() && t.freq > 0.0) {
                continue;
            }
            match demand.iter_mut().find(|(size, _)| *size == t.gpu_milli) {
                Some((_, freq)) => *freq += t.freq,
                None => demand.push((t.gpu_milli, t.freq)),
            }
        }
        // The most popular sizes, largest first among equals, so the LP stays small.
        demand.sort_by(|a, b| b.1.total_cmp(&a.1).then(b.0.cmp(&a.0)));
        demand.truncate(MAX_PRICED_SIZES);
        if demand.is_empty() {
            return SharePrices::default();
        }
        let sizes: Vec<u16> = demand.iter().map(|(s, _)| *s).collect();
        let weights: Vec<f64> = demand.iter().map(|(_, f)| *f).collect();
        let y = dual_prices(&sizes, &weights);
        let (worth, _) = knapsack(&sizes, &y);
        // Sizes outside the LP are worth what the priced sizes could make of their space.
        let mut price = worth.clone();
        for (size, value) in sizes.iter().zip(&y) {
            if let Some(p) = price.get_mut(usize::from(*size)) {
                *p = *value;
            }
        }
        SharePrices { price, worth }
    }

    /// Packing value lost, in milli-GPU, by putting a sharing pod of `milli` on a GPU with
    /// `free` milli free (0 when `milli > free` or out of range: such a placement is not
    /// this function's to judge).
    pub fn loss(&self, free: u16, milli: u16) -> f64 {
        let Some(left) = free.checked_sub(milli) else {
            return 0.0;
        };
        let at = |table: &[f64], i: u16| table.get(usize::from(i)).copied().unwrap_or(0.0);
        let lost = at(&self.worth, free) - at(&self.price, milli) - at(&self.worth, left);
        f64::from(MILLI_PER_GPU) * lost.max(0.0)
    }

    /// Price of a sharing pod of `milli`, in GPUs.
    pub fn price(&self, milli: u16) -> f64 {
        self.price.get(usize::from(milli)).copied().unwrap_or(0.0)
    }

    /// Worth of `free` milli of free space on one GPU, in GPUs.
    pub fn worth(&self, free: u16) -> f64 {
        self.worth.get(usize::from(free)).copied().unwrap_or(0.0)
    }
}

/// Dual prices of the cutting-stock LP `min Σ x_p s.t. Σ_p a_sp x_p ≥ d_s`, by row generation
/// on its dual `max d·y s.t. a_p·y ≤ 1 for every pattern p`: solve over the patterns known so
/// far, add the pattern the prices undervalue most (a knapsack), repeat until none is worth
/// more than one GPU. If the limits are hit first, the last prices are scaled down until no
/// pattern is worth more than one GPU, which keeps them a valid (if not optimal) price list.
fn dual_prices(sizes: &[u16], weights: &[f64]) -> Vec<f64> {
    // Start with one pattern per size: as many of it as fit. This bounds every price.
    let mut patterns: Vec<Vec<f64>> = sizes
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut row = vec![0.0; sizes.len()];
            if let Some(cell) = row.get_mut(i) {
                *cell = f64::from(MILLI_PER_GPU / (*s).max(1));
            }
            row
        })
        .collect();
    // Proportional prices: what a size is worth if nothing packed better than its volume.
    let mut y: Vec<f64> = sizes
        .iter()
        .map(|s| f64::from(*s) / f64::from(MILLI_PER_GPU))
        .collect();
    while patterns.len() <= MAX_PATTERNS {
        let Some(solved) = maximise_under_unit_rows(weights, &patterns, MAX_PIVOTS) else {
            break;
        };
        y = solved;
        let (best, pattern) = knapsack(sizes, &y);
        let top = best.last().copied().unwrap_or(0.0);
        if top <= 1.0 + EPS {
            return y;
        }
        patterns.push(pattern);
    }
    let (best, _) = knapsack(sizes, &y);
    let top = best.last().copied().unwrap_or(0.0);
    if top > 1.0 {
        for v in &mut y {
            *v /= top;
        }
    }
    y
}

/// Unbounded knapsack over one GPU: `best[g]` is the most the sizes fitting in `g` milli are
/// worth at prices `y`, for every `g` in 0..=1000; also the counts of the pattern reaching
/// `best[1000]`.
fn knapsack(sizes: &[u16], y: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let mut best = vec![0.0_f64; CAPACITY + 1];
    // The size index added last to reach `best[g]`, or none when `best[g] = best[g − 1]`.
    let mut last: Vec<Option<usize>> = vec![None; CAPACITY + 1];
    for g in 1..=CAPACITY {
        let mut top = best.get(g - 1).copied().unwrap_or(0.0);
        let mut pick = None;
        for (i, (size, value)) in sizes.iter().zip(y).enumerate() {
            let size = usize::from(*size);
            if size == 0 || size > g {
                continue;
            }
            let with = best.get(g - size).copied().unwrap_or(0.0) + value;
            if with > top + EPS {
                top = with;
                pick = Some(i);
            }
        }
        if let (Some(b), Some(l)) = (best.get_mut(g), last.get_mut(g)) {
            *b = top;
            *l = pick;
        }
    }
    let mut pattern = vec![0.0; sizes.len()];
    let mut g = CAPACITY;
    while g > 0 {
        match last.get(g).copied().flatten() {
            Some(i) => {
                if let Some(count) = pattern.get_mut(i) {
                    *count += 1.0;
                }
                g -= sizes.get(i).map_or(g, |s| usize::from(*s));
            }
            None => g -= 1,
        }
    }
    (best, pattern)
}

#[cfg(test)]
mod tests;
