//! Fragmentation of a node's partitionable GPUs, after FGD: the idle GPU capacity the
//! workload's typical pods could not use, weighted by how popular each is.
//!
//! For each typical pod (a partition demand, its CPU and its popularity): if the node has
//! too little free CPU, or fewer GPUs that could each give it a partition than it asks for,
//! all the node's idle capacity counts; otherwise the idle capacity of the GPUs that could
//! not give it one counts. Idle capacity is `1 − used_fraction` per GPU (see
//! [`PartitionGpu::used_fraction`]), so a MIG GPU with a `3g` taken at `4:4` and nothing else
//! has 4/7 idle, all of it usable by a `4g` pod and none of it by a whole-GPU pod.
//!
//! Which GPU can host which demand is kept per GPU as a bitmask over the distinct demands of
//! the typical set, so the fragmentation after a change to a few GPUs costs a recheck of
//! those GPUs only.

use super::{PartitionDemand, PartitionGpu, can_host};

/// Most distinct demands a typical set may hold (one bit each in a GPU's host mask).
pub const MAX_TYPICAL_DEMANDS: usize = 32;

/// One typical pod: what it asks of the GPUs, its CPU, and its popularity.
#[derive(Debug, Clone, PartialEq)]
pub struct TypicalPartitionPod {
    /// CPU request, milli-cores.
    pub cpu_milli: u64,
    /// Index into [`PartitionTypicals::demands`].
    pub demand: usize,
    /// Popularity; the set sums to 1.
    pub freq: f64,
}

/// The typical pods of a workload, in partition terms.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PartitionTypicals {
    demands: Vec<PartitionDemand>,
    pods: Vec<TypicalPartitionPod>,
}

impl PartitionTypicals {
    /// A typical set from `(cpu_milli, demand, freq)` triples; demands beyond the first
    /// [`MAX_TYPICAL_DEMANDS`] distinct ones are dropped (with their pods), so callers pass
    /// the most popular first.
    pub fn new(pods: impl IntoIterator<Item = (u64, PartitionDemand, f64)>) -> Self {
        let mut out = PartitionTypicals::default();
        for (cpu_milli, demand, freq) in pods {
            let index = match out.demands.iter().position(|d| *d == demand) {
                Some(i) => i,
                None if out.demands.len() < MAX_TYPICAL_DEMANDS => {
                    out.demands.push(demand);
                    out.demands.len() - 1
                }
                None => continue,
            };
            out.pods.push(TypicalPartitionPod {
                cpu_milli,
                demand: index,
                freq,
            });
        }
        out
    }

    /// The distinct demands.
    pub fn demands(&self) -> &[PartitionDemand] {
        &self.demands
    }

    /// The typical pods.
    pub fn pods(&self) -> &[TypicalPartitionPod] {
        &self.pods
    }
}

/// Per GPU of one node: idle capacity and which typical demands it could host.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeFrag {
    idle: Vec<f64>,
    hosts: Vec<u32>,
}

impl NodeFrag {
    /// The terms of a node whose GPUs are `gpus`.
    pub fn new(gpus: &[PartitionGpu], typicals: &PartitionTypicals) -> Self {
        NodeFrag {
            idle: gpus.iter().map(idle).collect(),
            hosts: gpus.iter().map(|g| host_mask(g, typicals)).collect(),
        }
    }

    /// The terms after the GPUs at `changed` became what `gpus` now holds (the others as
    /// before).
    pub fn updated(
        &self,
        gpus: &[PartitionGpu],
        changed: impl IntoIterator<Item = usize>,
        typicals: &PartitionTypicals,
    ) -> Self {
        let mut next = self.clone();
        for i in changed {
            if let (Some(gpu), Some(idle_slot), Some(host_slot)) =
                (gpus.get(i), next.idle.get_mut(i), next.hosts.get_mut(i))
            {
                *idle_slot = idle(gpu);
                *host_slot = host_mask(gpu, typicals);
            }
        }
        next
    }

    /// Idle capacity of the node, in GPUs.
    pub fn idle(&self) -> f64 {
        self.idle.iter().sum()
    }

    /// Fragmentation in GPUs with `cpu_free` milli-CPU left on the node.
    pub fn frag(&self, typicals: &PartitionTypicals, cpu_free: u64) -> f64 {
        let total = self.idle();
        if total <= 0.0 {
            return 0.0;
        }
        typicals
            .pods
            .iter()
            .map(|t| {
                let bit = 1u32 << t.demand;
                let wanted = typicals
                    .demands
                    .get(t.demand)
                    .map_or(u32::MAX, |d| u32::from(d.count));
                let mut hosting = 0u32;
                let mut unusable = 0.0;
                for (idle, hosts) in self.idle.iter().zip(&self.hosts) {
                    if hosts & bit != 0 {
                        hosting += 1;
                    } else {
                        unusable += idle;
                    }
                }
                let counted = if cpu_free < t.cpu_milli || hosting < wanted {
                    total
                } else {
                    unusable
                };
                t.freq * counted
            })
            .sum()
    }
}

fn idle(gpu: &PartitionGpu) -> f64 {
    (1.0 - gpu.used_fraction()).max(0.0)
}

fn host_mask(gpu: &PartitionGpu, typicals: &PartitionTypicals) -> u32 {
    typicals
        .demands
        .iter()
        .enumerate()
        .filter(|(_, d)| can_host(d, gpu))
        .fold(0, |mask, (i, _)| mask | (1 << i))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::mig::{GpuProduct, Placement, profile};
    use crate::model::partition::{GpuPartitioning, PartitionKind};

    const H100: GpuProduct = GpuProduct::H100_80GB;

    fn h100() -> PartitionGpu {
        PartitionGpu::dynamic_mig("H100", 81_559, H100)
    }

    fn mig(milli: u16) -> PartitionDemand {
        PartitionDemand::new(1, 0, milli)
    }

    fn whole(count: u8) -> PartitionDemand {
        PartitionDemand {
            preference: vec![PartitionKind::Whole],
            ..PartitionDemand::new(count, 0, 1000)
        }
    }

    fn with(mut gpu: PartitionGpu, name: &str, start: u8, size: u8) -> PartitionGpu {
        if let GpuPartitioning::DynamicMig { layout, .. } = &mut gpu.state {
            layout
                .place(profile(H100, name).unwrap(), Placement::new(start, size))
                .unwrap();
        }
        gpu
    }

    #[test]
    fn idle_capacity_counts_where_a_typical_pod_cannot_use_it() {
        // A 4g pod and a whole-GPU pod, equally popular.
        let typicals = PartitionTypicals::new([(1000, mig(500), 0.5), (1000, whole(1), 0.5)]);
        // GPU 0 empty, GPU 1 with a 3g at 4 (4/7 idle, only a 4g or smaller fits).
        let gpus = [h100(), with(h100(), "3g.40gb", 4, 4)];
        let terms = NodeFrag::new(&gpus, &typicals);
        assert!((terms.idle() - (1.0 + 4.0 / 7.0)).abs() < 1e-12);
        // The 4g pod can use both GPUs; the whole-GPU pod only GPU 0, so GPU 1's 4/7 counts.
        let frag = terms.frag(&typicals, 10_000);
        assert!((frag - 0.5 * 4.0 / 7.0).abs() < 1e-12, "{frag}");
        // Without CPU every typical pod counts everything.
        assert!((terms.frag(&typicals, 999) - terms.idle()).abs() < 1e-12);
    }

    #[test]
    fn a_3g_at_0_fragments_more_than_at_4() {
        let typicals = PartitionTypicals::new([(0, mig(500), 1.0)]);
        let empty = [h100()];
        let base = NodeFrag::new(&empty, &typicals);
        let at0 = [with(h100(), "3g.40gb", 0, 4)];
        let at4 = [with(h100(), "3g.40gb", 4, 4)];
        let f0 = base.updated(&at0, [0], &typicals).frag(&typicals, 0);
        let f4 = base.updated(&at4, [0], &typicals).frag(&typicals, 0);
        assert_eq!(f4, 0.0, "a 4g still fits at 0:4");
        assert!((f0 - 4.0 / 7.0).abs() < 1e-12, "no 4g fits any more: {f0}");
        assert_eq!(
            base.updated(&at0, [0], &typicals),
            NodeFrag::new(&at0, &typicals)
        );
    }

    #[test]
    fn multi_gpu_pods_need_enough_hosting_gpus() {
        let typicals = PartitionTypicals::new([(0, whole(2), 1.0)]);
        let gpus = [h100(), with(h100(), "1g.10gb", 6, 1)];
        let terms = NodeFrag::new(&gpus, &typicals);
        assert!((terms.frag(&typicals, 0) - terms.idle()).abs() < 1e-12);
        let gpus = [h100(), h100(), with(h100(), "1g.10gb", 6, 1)];
        let terms = NodeFrag::new(&gpus, &typicals);
        assert!((terms.frag(&typicals, 0) - 6.0 / 7.0).abs() < 1e-12);
    }

    #[test]
    fn demands_beyond_the_bitmask_are_dropped() {
        let pods = (0..40u16).map(|i| (0, mig(i + 1), 1.0 / 40.0));
        let typicals = PartitionTypicals::new(pods);
        assert_eq!(typicals.demands().len(), MAX_TYPICAL_DEMANDS);
        assert_eq!(typicals.pods().len(), MAX_TYPICAL_DEMANDS);
    }
}
