//! Spot interruptions over the simulated horizon, and the GPU-hours of work they throw away
//! (`docs/cost-model.md` §7).
//!
//! The placement protocol has no clock: pods arrive and stay. To count lost work, the
//! placement read at an arrival point is held for [`HORIZON_HOURS`]; each spot node is
//! interrupted at the times of a Poisson process whose rate matches its hourly interruption
//! probability, is replaced at once by the same kind of node, and its pods restart there.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::scoring::{LossAssumptions, Tolerance};

/// Hours the placement is held to count interruptions: the 30-day month the Spot Advisor's
/// bands refer to.
pub const HORIZON_HOURS: f64 = 720.0;
/// Most interruptions drawn for one node; only a probability close to 1 per hour comes near.
const MAX_EVENTS_PER_NODE: usize = 10_000;
/// Stream of the run's seed the interruption times are drawn from.
const INTERRUPTION_STREAM: u64 = 3;

/// Interruption times (hours from the start of the horizon, increasing) of each node:
/// `probabilities[i]` is node `i`'s hourly interruption probability (0 for nodes that are not
/// spot, which get no events). Drawn from `seed` alone, so every policy of one seed faces the
/// same interruptions.
pub fn draw_interruptions(probabilities: &[f64], seed: u64) -> Vec<Vec<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(INTERRUPTION_STREAM);
    probabilities
        .iter()
        .map(|&p| node_interruptions(p, &mut rng))
        .collect()
}

/// One node's interruption times. A constant hourly probability `p` is a Poisson process of
/// rate `λ = −ln(1 − p)` per hour (surviving an hour has probability `e^−λ = 1 − p`), so the
/// gaps are exponential with mean `1/λ`.
fn node_interruptions(p: f64, rng: &mut ChaCha8Rng) -> Vec<f64> {
    // NaN and non-positive probabilities mean "never interrupted".
    if p.is_nan() || p <= 0.0 {
        return Vec::new();
    }
    // p = 1 would make the rate infinite; an interruption every ~3.6 ms is "always" enough.
    let rate = -(-p.min(1.0 - 1e-9)).ln_1p();
    let mut times = Vec::new();
    let mut t = 0.0;
    while times.len() < MAX_EVENTS_PER_NODE {
        // 1 − u lies in (0, 1], so its logarithm is finite.
        let u: f64 = rng.random();
        t += -(1.0 - u).ln() / rate;
        if t > HORIZON_HOURS {
            break;
        }
        times.push(t);
    }
    times
}

/// Hours of work a pod of `tolerance` loses when interrupted `elapsed` hours after it
/// (re)started: everything for an intolerant pod, the time since the last checkpoint for a
/// checkpointed one, the notice window (at most) for a tolerant one.
pub fn lost_hours(tolerance: Tolerance, elapsed: f64, loss: &LossAssumptions) -> f64 {
    match tolerance {
        Tolerance::Intolerant => elapsed,
        Tolerance::Checkpointed => {
            if loss.checkpoint_interval_hours > 0.0 {
                elapsed % loss.checkpoint_interval_hours
            } else {
                0.0
            }
        }
        Tolerance::Tolerant => elapsed.min(loss.tolerant_loss_hours),
    }
}

/// GPU-hours lost on one node over the horizon: at each interruption, every pod loses its
/// [`lost_hours`] times its GPUs. `milli_by_tolerance[t.index()]` is the GPU milli the node's
/// pods of tolerance `t` hold.
pub fn lost_gpu_hours(
    interruptions: &[f64],
    milli_by_tolerance: &[u64; 3],
    loss: &LossAssumptions,
) -> f64 {
    let mut lost = 0.0;
    let mut restarted = 0.0;
    for &t in interruptions {
        let elapsed = t - restarted;
        for tolerance in Tolerance::ALL {
            let gpus = milli_by_tolerance[tolerance.index()] as f64 / 1000.0;
            lost += gpus * lost_hours(tolerance, elapsed, loss);
        }
        restarted = t;
    }
    lost
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::InterruptionBand;

    const LOSS: LossAssumptions = LossAssumptions {
        checkpoint_interval_hours: 1.0,
        tolerant_loss_hours: 2.0 / 60.0,
    };

    #[test]
    fn only_spot_nodes_are_interrupted_and_draws_repeat_per_seed() {
        let p = InterruptionBand::Over20.hourly_interruption_probability();
        let events = draw_interruptions(&[0.0, p, p], 7);
        assert!(events[0].is_empty());
        assert_eq!(draw_interruptions(&[0.0, p, p], 7), events);
        for times in &events {
            assert!(times.windows(2).all(|w| w[0] < w[1]));
            assert!(times.iter().all(|t| *t > 0.0 && *t <= HORIZON_HOURS));
        }
    }

    #[test]
    fn the_monthly_interruption_rate_matches_the_band() {
        // 4,000 nodes of the >20 % band: about 30 % are interrupted within the month.
        let p = InterruptionBand::Over20.hourly_interruption_probability();
        let events = draw_interruptions(&vec![p; 4000], 1);
        let hit = events.iter().filter(|e| !e.is_empty()).count() as f64 / 4000.0;
        assert!((hit - 0.30).abs() < 0.03, "{hit}");
    }

    #[test]
    fn certain_interruption_stays_bounded() {
        let events = draw_interruptions(&[1.0, f64::NAN, -1.0], 3);
        assert!(!events[0].is_empty() && events[0].len() <= MAX_EVENTS_PER_NODE);
        assert!(events[1].is_empty() && events[2].is_empty());
    }

    #[test]
    fn lost_work_follows_each_tolerance() {
        assert_eq!(lost_hours(Tolerance::Intolerant, 5.25, &LOSS), 5.25);
        assert_eq!(lost_hours(Tolerance::Checkpointed, 5.25, &LOSS), 0.25);
        assert_eq!(lost_hours(Tolerance::Tolerant, 5.25, &LOSS), 2.0 / 60.0);
        assert_eq!(lost_hours(Tolerance::Tolerant, 0.01, &LOSS), 0.01);
        // Two interruptions at 10.5 h and 12.25 h: 1.5 GPUs checkpointed lose
        // 1.5 × (0.5 + 0.75); 2 tolerant GPUs lose 2 × 2 × 2/60.
        let lost = lost_gpu_hours(&[10.5, 12.25], &[0, 1500, 2000], &LOSS);
        let want = 1.5 * 1.25 + 2.0 * 2.0 * 2.0 / 60.0;
        assert!((lost - want).abs() < 1e-12, "{lost}");
    }
}
