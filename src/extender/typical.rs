//! The typical pods the extender measures fragmentation against, and how they change.
//!
//! FGD's fragmentation is measured against a workload's typical pods. A running cluster's
//! workload is not the bundled openb trace, so the extender learns it from the cluster's own
//! pods ([`learner`]): the simulator's learner ([`OnlineTypical`](crate::scoring::OnlineTypical),
//! the same one `tessera simulate --typical online` uses), started from the bundled trace as
//! its prior and fed from the cluster cache's pods and claims ([`feed`]).
//!
//! Scoring never waits for the learner: every so often the learner publishes an immutable
//! [`TypicalModel`] (the typical pods and the fragmentation scorer built from them, share
//! prices solved) through a [`TypicalHandle`], swapped atomically. A request loads the model
//! once, so every node of one request is scored by one generation, and the score memo keys
//! its entries by that generation.

pub mod feed;
pub mod learner;

use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::Serialize;

use crate::model::{ModelId, ModelRegistry};
use crate::scoring::{Policy, Scorer, TesseraWeights, TypicalPods};

/// Where the typical pods come from (`--typical`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TypicalKind {
    /// The bundled openb default trace's typical pods, fixed for the life of the process.
    Bundled,
    /// Learned from the cluster's recent pods, the bundled trace as the prior.
    Online,
}

impl TypicalKind {
    /// The flag value and metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            TypicalKind::Bundled => "bundled",
            TypicalKind::Online => "online",
        }
    }

    /// Reads a `--typical` value.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "bundled" => Some(TypicalKind::Bundled),
            "online" => Some(TypicalKind::Online),
            _ => None,
        }
    }
}

/// What the learner had seen when a model was published.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LearnedStats {
    /// Pods observed since the start (the prior not counted).
    pub observed_pods: u64,
    /// Shapes in the tally (at most `--typical-max-shapes`).
    pub shapes: usize,
    /// The prior's share of the tally, 0..1 (1 before any pod).
    pub prior_share: f64,
}

/// One published typical distribution and the fragmentation scorer built from it.
#[derive(Debug, Clone)]
pub struct TypicalModel {
    kind: TypicalKind,
    generation: u64,
    stats: LearnedStats,
    scorer: Scorer,
    /// The GPU products the typical pods' model pins and the capacity refer to.
    models: ModelRegistry,
}

impl TypicalModel {
    /// The model of `typical` (no pod pinned to a GPU model), scored by tessera's
    /// fragmentation policy with `weights` (this solves the share-price LP: milliseconds,
    /// never on a request's path).
    pub fn new(
        kind: TypicalKind,
        generation: u64,
        typical: TypicalPods,
        weights: TesseraWeights,
        stats: LearnedStats,
    ) -> Self {
        Self::with_models(
            kind,
            generation,
            typical,
            weights,
            stats,
            ModelRegistry::new(),
            &[],
        )
    }

    /// [`TypicalModel::new`] for typical pods that may be pinned to the GPU products of
    /// `models`, on a cluster with `capacity_milli[m]` GPU milli of product `m`: tessera's
    /// model-pressure term then steers pods that run anywhere off the products pinned pods
    /// depend on, as `--placement tessera` does in the simulator.
    pub fn with_models(
        kind: TypicalKind,
        generation: u64,
        typical: TypicalPods,
        weights: TesseraWeights,
        stats: LearnedStats,
        models: ModelRegistry,
        capacity_milli: &[u64],
    ) -> Self {
        TypicalModel {
            kind,
            generation,
            stats,
            scorer: Scorer::new(Policy::Tessera, typical, weights)
                .with_model_capacity(capacity_milli),
            models,
        }
    }

    /// The GPU products its pins and capacity refer to.
    pub fn models(&self) -> &ModelRegistry {
        &self.models
    }

    /// The id of GPU product `name` in this model's registry; `None` for a product no typical
    /// pod or capacity names (every unpinned typical pod allows it all the same).
    pub fn model_id(&self, name: &str) -> Option<ModelId> {
        self.models.get(name)
    }

    /// Where its typical pods come from.
    pub fn kind(&self) -> TypicalKind {
        self.kind
    }

    /// Grows by one with every model the learner publishes; 0 for the start-up model.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// What the learner had seen.
    pub fn stats(&self) -> LearnedStats {
        self.stats
    }

    /// The fragmentation scorer.
    pub fn scorer(&self) -> &Scorer {
        &self.scorer
    }

    /// The typical pods.
    pub fn typical(&self) -> &TypicalPods {
        self.scorer.typical()
    }

    /// What `/explain` says of it.
    pub fn note(&self) -> TypicalNote {
        TypicalNote {
            source: self.kind,
            generation: self.generation,
            shapes_in_set: self.typical().len(),
            learned: self.stats,
        }
    }
}

/// Which typical pods scored a request (`/explain`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TypicalNote {
    /// `bundled` or `online`.
    pub source: TypicalKind,
    /// The model's generation.
    pub generation: u64,
    /// Shapes in the typical set (those covering 95 % of the tally).
    pub shapes_in_set: usize,
    /// What the learner had seen when the model was published.
    pub learned: LearnedStats,
}

/// The current [`TypicalModel`], shared by scoring (readers) and the learner (the one
/// writer); clones share it. A load is a few atomic operations and never blocks.
#[derive(Debug, Clone)]
pub struct TypicalHandle(Arc<ArcSwap<TypicalModel>>);

impl TypicalHandle {
    /// A handle holding `model`.
    pub fn new(model: TypicalModel) -> Self {
        TypicalHandle(Arc::new(ArcSwap::from_pointee(model)))
    }

    /// The current model; hold it for the whole request.
    pub fn load(&self) -> Arc<TypicalModel> {
        self.0.load_full()
    }

    /// `f` on `given`, the model a request loaded once for all its nodes, or on the current
    /// model where the caller loaded none.
    pub fn with_model<R>(
        &self,
        given: Option<&TypicalModel>,
        f: impl FnOnce(&TypicalModel) -> R,
    ) -> R {
        match given {
            Some(model) => f(model),
            None => f(&self.load()),
        }
    }

    /// Makes `model` current for every later load.
    pub fn publish(&self, model: TypicalModel) {
        self.0.store(Arc::new(model));
    }
}
