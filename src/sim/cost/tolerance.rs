//! The seeded rule that gives trace pods an interruption tolerance (`docs/cost-model.md` §7).
//!
//! The openb trace says nothing about interruptions, only a QoS class per pod. The rule reads
//! that class the way its names suggest and decides what the trace cannot tell with a seeded
//! coin:
//!
//! | pod | tolerance |
//! |---|---|
//! | 2 or more GPUs (distributed training) | `checkpointed` |
//! | `BE` (best effort: evictable by contract) | `tolerant` |
//! | `LS` (latency-sensitive service) | `intolerant` with probability [`LS_INTOLERANT_SHARE`], else `checkpointed` |
//! | `Burstable`, `Guaranteed`, no class | `checkpointed` |

use std::collections::HashMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::super::Workload;
use crate::scoring::Tolerance;
use crate::trace::{Qos, TracePod};

/// Share of latency-sensitive pods declared intolerant. The trace does not say which services
/// keep state they cannot lose; an even split keeps both outcomes well represented.
pub const LS_INTOLERANT_SHARE: f64 = 0.5;

/// Stream of the run's seed the coin flips are drawn from (the arrival order uses stream 0).
const TOLERANCE_STREAM: u64 = 2;

/// The tolerance of each pod of `workload` (same order as `workload.pods`), drawn with `seed`.
/// `trace_pods` supplies the QoS classes, matched by pod name.
///
/// Depends only on the seed and the trace, never on the policy, so every policy of one seed
/// sees the same pods.
pub fn assign_tolerances(
    workload: &Workload,
    trace_pods: &[TracePod],
    seed: u64,
) -> Vec<Tolerance> {
    let qos: HashMap<&str, Option<Qos>> = trace_pods
        .iter()
        .map(|p| (p.name.as_str(), p.qos))
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(TOLERANCE_STREAM);
    workload
        .pods
        .iter()
        .map(|pod| {
            // One draw per pod whatever its class, so a pod's coin does not depend on the
            // classes of the pods before it.
            let coin: f64 = rng.random();
            let class = qos.get(pod.name.as_str()).copied().flatten();
            if pod.demand.gpus >= 2 {
                Tolerance::Checkpointed
            } else {
                match class {
                    Some(Qos::Be) => Tolerance::Tolerant,
                    Some(Qos::Ls) if coin < LS_INTOLERANT_SHARE => Tolerance::Intolerant,
                    _ => Tolerance::Checkpointed,
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::test_util::{tnode, tpod};

    fn with_qos(name: &str, gpus: u32, milli: u32, qos: Qos) -> TracePod {
        TracePod {
            qos: Some(qos),
            ..tpod(name, 1000, gpus, milli)
        }
    }

    #[test]
    fn classes_map_as_documented_and_the_seed_decides_ls_pods() {
        let mut pods = vec![
            with_qos("a-be", 1, 500, Qos::Be),
            with_qos("b-train", 4, 1000, Qos::Ls),
            with_qos("c-burst", 1, 1000, Qos::Burstable),
            tpod("d-none", 1000, 1, 1000),
        ];
        for i in 0..400 {
            pods.push(with_qos(&format!("ls-{i:03}"), 1, 300, Qos::Ls));
        }
        let workload = Workload::from_trace(&[tnode("n", 8, "G2")], &pods).unwrap();
        let tolerances = assign_tolerances(&workload, &pods, 42);
        let of = |name: &str| {
            let i = workload.pods.iter().position(|p| p.name == name).unwrap();
            tolerances[i]
        };
        assert_eq!(of("a-be"), Tolerance::Tolerant);
        assert_eq!(of("b-train"), Tolerance::Checkpointed);
        assert_eq!(of("c-burst"), Tolerance::Checkpointed);
        assert_eq!(of("d-none"), Tolerance::Checkpointed);
        let intolerant = tolerances
            .iter()
            .filter(|t| **t == Tolerance::Intolerant)
            .count();
        assert!((160..240).contains(&intolerant), "{intolerant} of 400");
        assert_eq!(assign_tolerances(&workload, &pods, 42), tolerances);
        assert_ne!(assign_tolerances(&workload, &pods, 43), tolerances);
    }
}
