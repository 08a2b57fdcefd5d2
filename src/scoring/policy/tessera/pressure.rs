//! Model pressure: how much the pods that may run on only some GPU models will want each
//! model, against how much of it the cluster has.
//!
//! When a quarter of the GPU pods are pinned to GPU models (the openb `gpuspec25` workload),
//! the T4 pods alone ask for about as many GPUs as the cluster's T4 nodes hold. A pod that may
//! run anywhere and lands on a T4 takes a GPU that a pinned pod will need and cannot find
//! elsewhere; it then fails while G2 GPUs stay idle. FGD's gradient sees a little of this
//! (idle GPUs of other models count as fragmentation for the pinned typical pods); tessera's
//! stranding term pushed the other way, because the CPU-rich T4 nodes never strand a GPU, so
//! CPU-heavy pods that could go anywhere were drawn onto the GPUs the pinned pods need.
//!
//! The pressure of model `m` adds up, over the typical pods restricted to a set `S` of models
//! containing `m`, their share of the typical GPU demand divided by `S`'s share of the
//! cluster's GPU capacity: 1 means the pods restricted to `S` alone would load `S` as heavily
//! as the whole workload loads the whole cluster. Placing `g` GPU milli on a node of model `m`
//! costs `pressure(m) × g`; among the nodes a pod may use, it prefers the models fewest other
//! pods depend on. A workload with no pinned pods has zero pressure everywhere, so the term
//! changes nothing there. Built from the typical pods and the cluster's GPUs per model: what a
//! running extender knows as well as the simulator.

use crate::model::ModelId;
use crate::model::gpu_model::MAX_MODELS;
use crate::scoring::frag::TypicalPods;

/// Pressure per GPU model (index = [`ModelId::index`]); all zero when nothing is pinned.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelPressure {
    by_model: Vec<f64>,
}

impl ModelPressure {
    /// The pressure `typical` puts on a cluster with `capacity_milli[m]` GPU milli of model
    /// `m` (index = [`ModelId::index`]; missing entries are models the cluster lacks).
    pub fn new(typical: &TypicalPods, capacity_milli: &[u64]) -> Self {
        let capacity: Vec<f64> = capacity_milli
            .iter()
            .take(MAX_MODELS)
            .map(|c| *c as f64)
            .collect();
        let total_capacity: f64 = capacity.iter().sum();
        let demand = |gpus: u8, milli: u16| f64::from(gpus) * f64::from(milli);
        let total_demand: f64 = typical
            .iter()
            .map(|t| t.freq * demand(t.gpus, t.gpu_milli))
            .sum();
        let mut by_model = vec![0.0; capacity.len()];
        if total_capacity <= 0.0 || total_demand <= 0.0 {
            return ModelPressure::default();
        }
        for t in typical.iter() {
            if t.gpus == 0 || t.gpu_milli == 0 || t.models.is_any() {
                continue;
            }
            let allowed = |m: usize| t.models.allows_index(m);
            let set_capacity: f64 = capacity
                .iter()
                .enumerate()
                .filter(|(m, _)| allowed(*m))
                .map(|(_, c)| *c)
                .sum();
            if set_capacity <= 0.0 {
                continue;
            }
            let share = t.freq * demand(t.gpus, t.gpu_milli) / total_demand;
            let pressure = share / (set_capacity / total_capacity);
            for (m, p) in by_model.iter_mut().enumerate() {
                if allowed(m) && capacity.get(m).is_some_and(|c| *c > 0.0) {
                    *p += pressure;
                }
            }
        }
        ModelPressure { by_model }
    }

    /// The pressure on `model` (0 for a node without GPUs or a model nobody is pinned to).
    pub fn of(&self, model: Option<ModelId>) -> f64 {
        model
            .and_then(|m| self.by_model.get(m.index()))
            .copied()
            .unwrap_or(0.0)
    }

    /// Whether every model's pressure is zero (no pinned typical pod).
    pub fn is_zero(&self) -> bool {
        self.by_model.iter().all(|p| *p == 0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ModelRegistry, ModelSet};
    use crate::scoring::frag::TypicalPod;

    fn pod(gpu_milli: u16, models: ModelSet, freq: f64) -> TypicalPod {
        TypicalPod {
            cpu_milli: 1000,
            gpu_milli,
            gpus: 1,
            models,
            freq,
        }
    }

    #[test]
    fn pinned_demand_against_its_models_share_of_capacity() {
        let mut reg = ModelRegistry::new();
        let big = reg.intern("G2").unwrap();
        let small = reg.intern("T4").unwrap();
        // 90 % of capacity is G2, 10 % T4; a tenth of the demand must run on T4.
        let typical = TypicalPods::from_pods(vec![
            pod(1000, ModelSet::ANY, 0.9),
            pod(1000, ModelSet::only(small), 0.1),
        ]);
        let p = ModelPressure::new(&typical, &[9000, 1000]);
        assert!((p.of(Some(small)) - 1.0).abs() < 1e-12, "{p:?}");
        assert_eq!(p.of(Some(big)), 0.0);
        assert_eq!(p.of(None), 0.0);
        // Pods allowed on both models press on both, by their share over the pair's share.
        let both = ModelSet::only(small).with(big);
        let typical = TypicalPods::from_pods(vec![pod(500, both, 1.0)]);
        let p = ModelPressure::new(&typical, &[9000, 1000]);
        assert!((p.of(Some(small)) - 1.0).abs() < 1e-12);
        assert!((p.of(Some(big)) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn nothing_pinned_or_no_capacity_is_no_pressure() {
        let typical = TypicalPods::from_pods(vec![pod(1000, ModelSet::ANY, 1.0)]);
        assert!(ModelPressure::new(&typical, &[1000, 1000]).is_zero());
        let mut reg = ModelRegistry::new();
        let t4 = reg.intern("T4").unwrap();
        let typical = TypicalPods::from_pods(vec![pod(1000, ModelSet::only(t4), 1.0)]);
        assert!(ModelPressure::new(&typical, &[]).is_zero());
        assert!(ModelPressure::new(&typical, &[0]).is_zero());
    }
}
