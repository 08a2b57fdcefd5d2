//! What the openb pods ask of a MIG cluster.
//!
//! openb has no GPU memory column, only a share of a GPU (`gpu_milli`), so a sharing pod
//! (one GPU, under 1000 milli) asks for compute: `s = ⌈milli × 7 / 1000⌉` compute slices
//! (sevenths, the slices of both products), and gets the smallest profile with at least `s`
//! slices, its memory following the profile: 50–142 milli → `1g`, 143–285 → `2g`, 286–428
//! → `3g`, 429–571 → `4g`, above → `7g` (there is no `5g` or `6g`). If no instance is
//! possible on a node it may take a whole GPU there (`firstAvailable`: MIG, then whole).
//! Whole-GPU pods take whole GPUs only: a GPU with any MIG instance is not whole-free.
//! CPU-only pods take CPU only. `gpu_spec` constraints name openb's models, none of which
//! this cluster has, so they are dropped.

use super::super::Workload;
use crate::model::partition::{PartitionDemand, PartitionKind};
use crate::model::{Demand, MILLI_PER_GPU};
use crate::scoring::frag::typical::TypicalPods;
use crate::scoring::partition::frag::PartitionTypicals;

/// Compute slices of the cluster's products (both are 7-slice GPUs).
const SLICES: u32 = 7;

/// One pod in MIG terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigPod {
    /// CPU, milli-cores.
    pub cpu_milli: u64,
    /// Host memory, MiB.
    pub memory_mib: u64,
    /// Index into [`MigWorkload::demands`]; `None` for a CPU-only pod.
    pub demand: Option<usize>,
}

/// The workload's pods in MIG terms, their distinct GPU demands and typical pods.
#[derive(Debug, Clone)]
pub struct MigWorkload {
    /// Distinct GPU demands.
    pub demands: Vec<PartitionDemand>,
    /// One per pod of the openb [`Workload`], same index.
    pub pods: Vec<MigPod>,
    /// The typical pods for fragmentation.
    pub typicals: PartitionTypicals,
    /// Share of the trace's GPU demand (in GPUs held) that MIG instances smaller than a
    /// whole GPU serve: what static layouts are sized by.
    pub static_share: f64,
}

/// The partition demand of a pod's GPU request (`None` for CPU-only pods).
pub fn gpu_demand(demand: &Demand) -> Option<PartitionDemand> {
    if demand.is_cpu_only() {
        return None;
    }
    if demand.is_sharing() {
        let slices = u32::from(demand.gpu_milli) * SLICES;
        let slices = slices.div_ceil(u32::from(MILLI_PER_GPU)).clamp(1, SLICES);
        // No profile has 5 or 6 slices: such pods need the whole-GPU 7g.
        let slices = if slices > 4 { SLICES } else { slices };
        // The largest milli that still needs exactly `slices` sevenths, so the demand is
        // the same for every pod of one class.
        let compute = u16::try_from(slices * u32::from(MILLI_PER_GPU) / SLICES).unwrap_or(1000);
        return Some(PartitionDemand {
            preference: vec![PartitionKind::Mig, PartitionKind::Whole],
            ..PartitionDemand::new(1, 0, compute)
        });
    }
    Some(PartitionDemand {
        allow_mig: false,
        preference: vec![PartitionKind::Whole],
        ..PartitionDemand::new(demand.gpus, 0, MILLI_PER_GPU)
    })
}

/// GPUs a demand holds once placed: compute slices over 7 for an instance, 1 per whole GPU.
fn held_gpus(demand: &PartitionDemand) -> f64 {
    if demand.preference.first() == Some(&PartitionKind::Mig) {
        let slices = (u32::from(demand.compute_milli) * SLICES).div_ceil(u32::from(MILLI_PER_GPU));
        f64::from(slices.max(1)) / f64::from(SLICES)
    } else {
        f64::from(demand.count)
    }
}

impl MigWorkload {
    /// Maps every pod of `workload`; typical pods cover `threshold_pct` % of the pods.
    pub fn new(workload: &Workload, threshold_pct: f64) -> Self {
        let mut demands: Vec<PartitionDemand> = Vec::new();
        let mut pods = Vec::with_capacity(workload.pods.len());
        let (mut small, mut large) = (0.0, 0.0);
        for pod in &workload.pods {
            let demand = gpu_demand(&pod.demand).map(|d| {
                let held = held_gpus(&d);
                // Static layouts have no 7g: those pods, like whole-GPU pods, need whole GPUs.
                if held < 1.0 {
                    small += held;
                } else {
                    large += held;
                }
                match demands.iter().position(|x| *x == d) {
                    Some(i) => i,
                    None => {
                        demands.push(d);
                        demands.len() - 1
                    }
                }
            });
            pods.push(MigPod {
                cpu_milli: pod.demand.cpu_milli,
                memory_mib: pod.demand.memory_mib,
                demand,
            });
        }
        let static_share = if small + large > 0.0 {
            small / (small + large)
        } else {
            0.0
        };
        // FGD's typical pods over the original trace (CPU-only shapes count toward the
        // coverage but add nothing: no GPU demand to be fragmented for).
        let typical =
            TypicalPods::from_demands(workload.pods.iter().map(|p| &p.demand), threshold_pct);
        let typicals = PartitionTypicals::new(typical.iter().filter_map(|t| {
            let shape = Demand {
                cpu_milli: t.cpu_milli,
                memory_mib: 0,
                gpus: t.gpus,
                gpu_milli: t.gpu_milli,
                models: t.models,
            };
            gpu_demand(&shape).map(|d| (t.cpu_milli, d, t.freq))
        }));
        MigWorkload {
            demands,
            pods,
            typicals,
            static_share,
        }
    }
}
