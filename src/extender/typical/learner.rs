//! Which pods of a cache snapshot are new, what shape each adds, and in what order.
//!
//! A pod is observed once, when it is first seen bound to a node whose GPUs the cache knows
//! and every claim it uses is cached: its shape is then measured on the GPUs it runs on
//! ([`typical_shape`]), with the requests the pod made (read from the claims' specs, so an
//! allocated claim still counts). Pods that ask no GPU of tessera's classes are not learned:
//! the cache keeps no CPU-only pods (`cluster::pod`), and for a CPU-only typical pod the
//! fragmentation term counts every idle GPU milli on every node alike, so it moves no node
//! against another. The prior's CPU-only shapes fade with the prior.
//!
//! Pods new in one scan are observed in creation order (then UID): a restarted extender
//! lists the pods still running and replays them in the order they were created, whatever
//! order the list returns, so two replicas or a restart rebuild the same window from the
//! same pods. What ran and finished before the restart is gone with it (nothing is persisted).
//!
//! The seen set holds the UIDs of pods still in the cache (a pod gone from the cache is
//! forgotten: a UID never comes back), at most `max_seen` of them.

use std::collections::HashMap;
use std::time::Duration;

use crate::cluster::{PodView, Snapshot, Uid};
use crate::extender::cluster_view::{pod_object, spec_requests};
use crate::extender::demand::DeviceClasses;
use crate::extender::evaluate::{GpuNode, typical_shape};
use crate::extender::pod::pod_demand;
use crate::model::{Demand, MILLI_PER_GPU, ModelId, ModelRegistry, ModelSet};
use crate::scoring::frag::typical::DEFAULT_POPULARITY_THRESHOLD_PCT;
use crate::scoring::{OnlineError, OnlineTypical, OnlineWindow, TesseraWeights, TypicalPods};

use super::{LearnedStats, TypicalKind, TypicalModel};

/// Default bound on the seen-UID set: above the pods any cluster the cache serves runs.
pub const DEFAULT_MAX_SEEN_PODS: usize = 1 << 20;

/// When the learner publishes a new model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refresh {
    /// After this many newly observed pods (`--typical-refresh-pods`).
    pub pods: u64,
    /// Or this long after the last model, if any pod was observed since
    /// (`--typical-refresh-seconds`).
    pub interval: Duration,
}

impl Default for Refresh {
    fn default() -> Self {
        // The simulator's refresh period (`sim::typical::REFRESH_EVERY_PODS`): the set barely
        // moves within 256 pods of a 1000-pod half-life.
        Refresh {
            pods: crate::sim::typical::REFRESH_EVERY_PODS,
            interval: Duration::from_secs(30),
        }
    }
}

/// What one scan did, for metrics and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanReport {
    /// Pods observed (counted into the tally).
    pub observed: u64,
    /// Pods not bound yet, on a node not cached, or with a claim not cached: looked at again
    /// next scan.
    pub waiting: u64,
    /// Pods that ask no GPU of tessera's classes (not learned).
    pub no_gpu: u64,
    /// Pods whose demand could not be read, or has no milli-GPU shape (shares of several
    /// GPUs, `All` devices): not learned.
    pub unshaped: u64,
    /// New pods left out because the seen set was full.
    pub over_bound: u64,
    /// UIDs forgotten because their pods left the cache.
    pub forgotten: u64,
}

/// Why a pod is not observed now.
enum Verdict {
    Wait,
    NoGpu,
    Unshaped,
    /// Its shape, and the GPU products its preferred alternatives pin (`model == "…"`).
    Observe(Demand, Vec<String>),
}

/// The extender's typical-pod learner: the simulator's decaying tally, fed from snapshots.
#[derive(Debug, Clone)]
pub struct TypicalLearner {
    online: OnlineTypical,
    weights: TesseraWeights,
    classes: DeviceClasses,
    /// UID → the scan that last found the pod in the cache.
    seen: HashMap<Uid, u64>,
    max_seen: usize,
    scans: u64,
    generation: u64,
    /// `observed` when the last model was built.
    published_at: u64,
    /// GPU products named by pins and by the cluster's GPUs; ids are never reused, so a
    /// tallied pin keeps meaning the same product.
    models: ModelRegistry,
}

impl TypicalLearner {
    /// A learner starting from `prior` (worth `window.prior_pods` pods), building models
    /// with tessera's fragmentation `weights`, reading claims against `classes`, remembering
    /// at most `max_seen` pod UIDs.
    pub fn new(
        prior: &TypicalPods,
        window: OnlineWindow,
        weights: TesseraWeights,
        classes: DeviceClasses,
        max_seen: usize,
    ) -> Result<Self, OnlineError> {
        Ok(TypicalLearner {
            online: OnlineTypical::new(prior, window)?,
            weights,
            classes,
            seen: HashMap::new(),
            max_seen: max_seen.max(1),
            scans: 0,
            generation: 0,
            published_at: 0,
            models: ModelRegistry::new(),
        })
    }

    /// Observes the pods of `snapshot` not seen before, in creation order, and forgets the
    /// UIDs of pods no longer in it.
    pub fn scan(&mut self, snapshot: &Snapshot) -> ScanReport {
        self.scans += 1;
        let scan = self.scans;
        let mut report = ScanReport::default();
        let mut fresh: Vec<(i64, Uid, Demand, Vec<String>)> = Vec::new();
        for pod in snapshot.pods() {
            if let Some(mark) = self.seen.get_mut(&pod.uid) {
                *mark = scan;
                continue;
            }
            let settled = match self.verdict(snapshot, pod) {
                Verdict::Wait => {
                    report.waiting += 1;
                    continue;
                }
                Verdict::Observe(demand, pins) => {
                    fresh.push((pod.created_unix_s, pod.uid.clone(), demand, pins));
                    continue;
                }
                Verdict::NoGpu => {
                    report.no_gpu += 1;
                    pod
                }
                Verdict::Unshaped => {
                    report.unshaped += 1;
                    pod
                }
            };
            // Remembered so that it is not read again every scan; the bound only costs that.
            if self.seen.len() < self.max_seen {
                self.seen.insert(settled.uid.clone(), scan);
            }
        }
        let before = self.seen.len();
        self.seen.retain(|_, mark| *mark == scan);
        report.forgotten = (before - self.seen.len()) as u64;

        fresh.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        for (_, uid, mut demand, pins) in fresh {
            if self.seen.len() >= self.max_seen {
                // Counting it without remembering it would count it again next scan.
                report.over_bound += 1;
                continue;
            }
            demand.models = self.pinned_set(&pins);
            self.online.observe(&demand);
            self.seen.insert(uid, scan);
            report.observed += 1;
        }
        report
    }

    fn verdict(&self, snapshot: &Snapshot, pod: &PodView) -> Verdict {
        let Some(node) = pod.node.as_deref().and_then(|n| snapshot.node(n)) else {
            return Verdict::Wait;
        };
        let demand = pod_demand(&pod_object(pod), |id| {
            let (namespace, name) = id.split_once('/')?;
            let claim = snapshot.claim(namespace, name)?;
            Some(spec_requests(claim, &self.classes))
        });
        if !demand.missing_claims.is_empty() {
            return Verdict::Wait;
        }
        if !demand.unreadable.is_empty() {
            return Verdict::Unshaped;
        }
        if demand.requests.is_empty() {
            return Verdict::NoGpu;
        }
        let pins: Vec<String> = demand
            .requests
            .iter()
            .filter_map(|r| r.alternatives.first()?.gpu_model.clone())
            .collect();
        match typical_shape(&demand, &node.node_gpus()) {
            Some(shape) => Verdict::Observe(shape, pins),
            None => Verdict::Unshaped,
        }
    }

    /// The products `pins` name as a set ([`ModelSet::ANY`] without pins). Past the
    /// registry's 64 products a new pin is dropped: the pod then counts as unpinned.
    fn pinned_set(&mut self, pins: &[String]) -> ModelSet {
        let ids: Vec<ModelId> = pins
            .iter()
            .filter_map(|p| self.models.intern(p).ok())
            .collect();
        if ids.is_empty() {
            return ModelSet::ANY;
        }
        ids.into_iter().fold(ModelSet::NONE, ModelSet::with)
    }

    /// GPU milli per product of the cluster in `snapshot` (index = the product's id), the
    /// products interned as met.
    fn capacity(&mut self, snapshot: &Snapshot) -> Vec<u64> {
        let mut capacity: Vec<u64> = Vec::new();
        for node in snapshot.nodes() {
            for gpu in node.partitions.iter() {
                let Ok(id) = self.models.intern(&gpu.model) else {
                    continue;
                };
                if capacity.len() <= id.index() {
                    capacity.resize(id.index() + 1, 0);
                }
                if let Some(c) = capacity.get_mut(id.index()) {
                    *c = c.saturating_add(u64::from(MILLI_PER_GPU));
                }
            }
        }
        capacity
    }

    /// Whether a new model is due, `since_last` after the last one: some pod was observed
    /// since, and either nothing was published yet (the first list after a start), or
    /// `refresh.pods` pods were observed, or `refresh.interval` has passed.
    pub fn publish_due(&self, since_last: Duration, refresh: Refresh) -> bool {
        let unpublished = self.online.observed() - self.published_at;
        unpublished > 0
            && (self.generation == 0
                || unpublished >= refresh.pods
                || since_last >= refresh.interval)
    }

    /// The model of the tally now, one generation past the last, with the GPU capacity per
    /// product of the cluster in `snapshot` for the model-pressure term (this solves the
    /// share prices: call it off the request path).
    pub fn model(&mut self, snapshot: &Snapshot) -> TypicalModel {
        self.generation += 1;
        self.published_at = self.online.observed();
        let capacity = self.capacity(snapshot);
        TypicalModel::with_models(
            TypicalKind::Online,
            self.generation,
            self.online.typical(DEFAULT_POPULARITY_THRESHOLD_PCT),
            self.weights,
            self.stats(),
            self.models.clone(),
            &capacity,
        )
    }

    /// The start-up model: the prior alone, generation 0.
    pub fn prior_model(&self) -> TypicalModel {
        TypicalModel::new(
            TypicalKind::Online,
            0,
            self.online.typical(DEFAULT_POPULARITY_THRESHOLD_PCT),
            self.weights,
            self.stats(),
        )
    }

    /// What the tally holds now.
    pub fn stats(&self) -> LearnedStats {
        LearnedStats {
            observed_pods: self.online.observed(),
            shapes: self.online.shapes(),
            prior_share: self.online.prior_share(),
        }
    }

    /// Pod UIDs remembered (at most the bound).
    pub fn seen(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests;
