//! Typical pods learned online: an exponentially decaying tally of the pods seen so far,
//! started from a prior (normally the bundled openb trace's typical pods).
//!
//! FGD's protocol knows the workload's whole pod distribution in advance; a running cluster
//! does not. This learner is what both the simulator's `--typical online` and the extender
//! use, so the simulator measures exactly what the extender would do. It is pure: time is the
//! number of pods observed, never the wall clock.
//!
//! Bounds: at most `max_shapes` shapes are tallied (the lightest is dropped to make room, so a
//! stream of one-off shapes cannot grow memory), and each pod's weight halves every
//! `half_life_pods` later pods, so the window is effectively the last few half-lives.

use std::collections::BTreeMap;

use super::typical::{ShapeKey, TypicalPods, shape_key};
use crate::model::Demand;

/// Longest half-life accepted, in pods: longer would never forget anything a cluster sees.
pub const MAX_HALF_LIFE_PODS: f64 = 1.0e7;
/// Most shapes a tally may hold.
pub const MAX_SHAPES_LIMIT: usize = 65_536;
/// Default half-life, in pods: about an eighth of the openb default trace.
pub const DEFAULT_HALF_LIFE_PODS: f64 = 1000.0;
/// Default bound on tallied shapes (the openb traces have a few hundred distinct shapes).
pub const DEFAULT_MAX_SHAPES: usize = 1024;

/// The learner's settings were out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OnlineError {
    /// Half-life not in `[1, MAX_HALF_LIFE_PODS]`.
    #[error("typical-pod half-life must be in [1, {MAX_HALF_LIFE_PODS}] pods, got {0}")]
    HalfLife(f64),
    /// Shape bound not in `[1, MAX_SHAPES_LIMIT]`.
    #[error("typical-pod shape bound must be in [1, {MAX_SHAPES_LIMIT}], got {0}")]
    MaxShapes(usize),
    /// Prior weight negative or not finite.
    #[error("typical-pod prior weight must be a finite number of pods >= 0, got {0}")]
    PriorWeight(f64),
}

/// How fast the learner forgets and how much it may hold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OnlineWindow {
    /// Pods after which a pod's weight has halved.
    pub half_life_pods: f64,
    /// Most distinct shapes tallied.
    pub max_shapes: usize,
    /// How many pods the prior is worth at the start (it decays like any pod).
    pub prior_pods: f64,
}

impl Default for OnlineWindow {
    fn default() -> Self {
        OnlineWindow {
            half_life_pods: DEFAULT_HALF_LIFE_PODS,
            max_shapes: DEFAULT_MAX_SHAPES,
            // One half-life's worth: after one half-life of real pods, they outweigh it 1:1
            // at most (decayed pods weigh less), after a few the prior is gone.
            prior_pods: DEFAULT_HALF_LIFE_PODS,
        }
    }
}

impl OnlineWindow {
    /// `self` if every setting is in range.
    pub fn validated(self) -> Result<Self, OnlineError> {
        if !(1.0..=MAX_HALF_LIFE_PODS).contains(&self.half_life_pods) {
            return Err(OnlineError::HalfLife(self.half_life_pods));
        }
        if !(1..=MAX_SHAPES_LIMIT).contains(&self.max_shapes) {
            return Err(OnlineError::MaxShapes(self.max_shapes));
        }
        if !self.prior_pods.is_finite() || self.prior_pods < 0.0 {
            return Err(OnlineError::PriorWeight(self.prior_pods));
        }
        Ok(self)
    }
}

/// Rescale when the running increment passes this, long before f64 overflows.
const RESCALE_AT: f64 = 1.0e100;

/// A decaying tally of pod shapes.
///
/// Instead of multiplying every weight by the decay after each pod (O(shapes) per pod), each
/// new pod is added with a weight that grows by `1 / decay` per pod; only ratios matter, and
/// everything is rescaled once the increment gets large.
#[derive(Debug, Clone)]
pub struct OnlineTypical {
    window: OnlineWindow,
    /// Per pod: the factor by which older weights shrink, `0.5^(1 / half_life)`.
    decay: f64,
    /// Weight the next observed pod is added with.
    increment: f64,
    /// Sum of `weights`.
    total: f64,
    weights: BTreeMap<ShapeKey, f64>,
    observed: u64,
    /// The prior's weight in the tally's current scale (it decays like any pod).
    prior: f64,
}

impl OnlineTypical {
    /// A learner starting from `prior` (its popularity spread over `window.prior_pods` pods).
    pub fn new(prior: &TypicalPods, window: OnlineWindow) -> Result<Self, OnlineError> {
        let window = window.validated()?;
        let mut learner = OnlineTypical {
            window,
            decay: 0.5f64.powf(1.0 / window.half_life_pods),
            increment: 1.0,
            total: 0.0,
            weights: BTreeMap::new(),
            observed: 0,
            prior: 0.0,
        };
        for t in prior.iter() {
            let weight = t.freq * window.prior_pods;
            if weight > 0.0 && weight.is_finite() {
                learner.add((t.cpu_milli, t.gpu_milli, t.gpus, t.models), weight);
            }
        }
        learner.prior = learner.total;
        Ok(learner)
    }

    /// The settings.
    pub fn window(&self) -> OnlineWindow {
        self.window
    }

    /// Pods observed since the start (the prior not counted).
    pub fn observed(&self) -> u64 {
        self.observed
    }

    /// Shapes tallied now (at most `max_shapes`).
    pub fn shapes(&self) -> usize {
        self.weights.len()
    }

    /// The prior's share of the tally now, in `[0, 1]`: 1 before any pod, falling as pods
    /// arrive. Shapes dropped for room are not traced back to the prior, so once the shape
    /// bound bites this is an upper bound.
    pub fn prior_share(&self) -> f64 {
        if self.total > 0.0 {
            (self.prior / self.total).clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    /// Count one arrived pod.
    pub fn observe(&mut self, demand: &Demand) {
        self.add(shape_key(demand), self.increment);
        self.observed = self.observed.saturating_add(1);
        self.increment /= self.decay;
        if self.increment > RESCALE_AT {
            self.rescale();
        }
    }

    /// The typical pods of the tally now, chosen as [`TypicalPods::from_demands`] chooses.
    pub fn typical(&self, threshold_pct: f64) -> TypicalPods {
        TypicalPods::from_weights(
            self.weights.iter().map(|(k, w)| (*k, *w)),
            self.total,
            threshold_pct,
        )
    }

    fn add(&mut self, key: ShapeKey, weight: f64) {
        if !self.weights.contains_key(&key) && self.weights.len() >= self.window.max_shapes {
            // Drop the lightest shape (ties: the smallest key, so runs are reproducible).
            let lightest = self
                .weights
                .iter()
                .min_by(|a, b| a.1.total_cmp(b.1).then_with(|| a.0.cmp(b.0)))
                .map(|(k, w)| (*k, *w));
            if let Some((k, w)) = lightest {
                self.weights.remove(&k);
                self.total -= w;
            }
        }
        *self.weights.entry(key).or_insert(0.0) += weight;
        self.total += weight;
    }

    fn rescale(&mut self) {
        let factor = 1.0 / self.increment;
        for w in self.weights.values_mut() {
            *w *= factor;
        }
        self.prior *= factor;
        // Recomputed rather than scaled: keeps the sum free of accumulated rounding.
        self.total = self.weights.values().sum();
        self.increment = 1.0;
    }
}

#[cfg(test)]
mod tests;
