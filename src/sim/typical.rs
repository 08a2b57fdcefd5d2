//! Where a run's policies get their typical pods: the protocol's known distribution, or
//! learned online from the pods that have arrived so far.

use crate::model::{Demand, MILLI_PER_GPU, ModelSet};
use crate::scoring::frag::typical::DEFAULT_POPULARITY_THRESHOLD_PCT;
use crate::scoring::{OnlineWindow, TypicalPods};
use crate::trace::TraceError;

/// Pods between two refreshes of the learned typical set once the run is under way (and at
/// every power of two before that, so the first pods are not scored by the prior alone for
/// long). A refresh re-solves the share prices and drops the score cache, so every pod would
/// cost the run its cache; the set barely moves within 256 pods of a 1000-pod half-life.
pub const REFRESH_EVERY_PODS: u64 = 256;

/// The typical pods the policies score with. Fragmentation *recorded* in the run is always
/// measured against the workload's own distribution, so that both sources are read by the
/// same yardstick.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum TypicalSource {
    /// FGD's protocol: the workload's own distribution, known in advance.
    #[default]
    Known,
    /// Learned from the pods that have arrived so far, starting from `prior`.
    Online {
        /// What the learner believes before any pod arrived.
        prior: TypicalPods,
        /// How fast it forgets and how many shapes it holds.
        window: OnlineWindow,
    },
}

/// Whether the learned set is refreshed after `observed` pods.
pub fn refresh_due(observed: u64) -> bool {
    observed > 0 && (observed.is_power_of_two() || observed.is_multiple_of(REFRESH_EVERY_PODS))
}

/// The typical pods of the bundled openb default trace with model constraints dropped: the
/// prior of both the simulator's `--typical online` and the extender (a cluster's models are
/// not the trace's model codes, so the prior pins none).
pub fn bundled_prior() -> Result<TypicalPods, TraceError> {
    let pods = crate::trace::bundled_pods()?;
    let demands: Vec<Demand> = pods
        .iter()
        .map(|p| Demand {
            cpu_milli: p.cpu_milli,
            memory_mib: p.memory_mib,
            gpus: u8::try_from(p.num_gpu).unwrap_or(u8::MAX),
            gpu_milli: u16::try_from(p.gpu_milli).unwrap_or(MILLI_PER_GPU),
            models: ModelSet::ANY,
        })
        .collect();
    Ok(TypicalPods::from_demands(
        &demands,
        DEFAULT_POPULARITY_THRESHOLD_PCT,
    ))
}
