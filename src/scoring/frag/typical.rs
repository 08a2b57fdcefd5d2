//! Typical pods: the most frequent pod shapes of a workload, as FGD computes them.

use std::collections::HashMap;

use serde::Serialize;

use crate::model::{Demand, ModelSet};

/// Share of pods the typical set must cover, in percent (FGD's `podPopularityThreshold`).
pub const DEFAULT_POPULARITY_THRESHOLD_PCT: f64 = 95.0;

/// One typical pod shape and its popularity.
///
/// Memory is not part of the shape: FGD's fragmentation looks at CPU and GPU only.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TypicalPod {
    /// CPU request in milli-cores.
    pub cpu_milli: u64,
    /// Share of each GPU in thousandths.
    pub gpu_milli: u16,
    /// Number of GPUs.
    pub gpus: u8,
    /// Accepted GPU models.
    pub models: ModelSet,
    /// Popularity within the typical set; the set sums to 1.
    pub freq: f64,
}

/// The typical pods of a workload.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TypicalPods {
    pods: Vec<TypicalPod>,
}

/// A pod shape as the typical set tells shapes apart: CPU, GPU share, GPU count, models.
pub(crate) type ShapeKey = (u64, u16, u8, ModelSet);

/// The shape `d` counts as: CPU-only pods are one shape per CPU request, whatever their share.
pub(crate) fn shape_key(d: &Demand) -> ShapeKey {
    if d.is_cpu_only() {
        (d.cpu_milli, 0, 0, d.models)
    } else {
        (d.cpu_milli, d.gpu_milli, d.gpus, d.models)
    }
}

impl TypicalPods {
    /// The most frequent shapes of `demands`, taken in decreasing frequency until they cover
    /// `threshold_pct` percent of the pods (CPU-only pods included), popularity renormalised
    /// over the chosen set. Ties in frequency go to the larger shape first, as FGD's sort does.
    pub fn from_demands<'d>(
        demands: impl IntoIterator<Item = &'d Demand>,
        threshold_pct: f64,
    ) -> Self {
        let mut counts: HashMap<ShapeKey, u64> = HashMap::new();
        let mut total = 0u64;
        for d in demands {
            *counts.entry(shape_key(d)).or_insert(0) += 1;
            total += 1;
        }
        Self::from_weights(
            counts.into_iter().map(|(k, c)| (k, c as f64)),
            total as f64,
            threshold_pct,
        )
    }

    /// The heaviest shapes of a weighted tally (weights of `total`), taken in decreasing
    /// weight until they cover `threshold_pct` percent of `total`, popularity renormalised over
    /// the chosen set. [`Self::from_demands`] with counts, and the online learner with decayed
    /// weights, both choose here so that the two can never disagree on the rule.
    pub(crate) fn from_weights(
        weights: impl IntoIterator<Item = (ShapeKey, f64)>,
        total: f64,
        threshold_pct: f64,
    ) -> Self {
        let mut shapes: Vec<(ShapeKey, f64)> = weights
            .into_iter()
            .filter(|(_, w)| w.is_finite() && *w > 0.0)
            .collect();
        // Descending weight, then descending shape: FGD sorts with sort.Reverse over
        // (count, cpu, gpu milli, gpu count, model).
        shapes.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| b.0.cmp(&a.0)));

        let needed = threshold_pct.clamp(0.0, 100.0) / 100.0 * total;
        let mut covered = 0.0;
        let mut chosen = Vec::new();
        for (key, weight) in shapes {
            if covered >= needed && !chosen.is_empty() {
                break;
            }
            covered += weight;
            chosen.push((key, weight));
        }
        let pods = chosen
            .into_iter()
            .map(
                |((cpu_milli, gpu_milli, gpus, models), weight)| TypicalPod {
                    cpu_milli,
                    gpu_milli,
                    gpus,
                    models,
                    freq: weight / covered,
                },
            )
            .collect();
        TypicalPods { pods }
    }

    /// A typical set given directly (tests, hand-made workloads); frequencies are used as given.
    pub fn from_pods(pods: Vec<TypicalPod>) -> Self {
        TypicalPods { pods }
    }

    /// The typical pods, most popular first.
    pub fn iter(&self) -> std::slice::Iter<'_, TypicalPod> {
        self.pods.iter()
    }

    /// Number of typical shapes.
    pub fn len(&self) -> usize {
        self.pods.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }
}
