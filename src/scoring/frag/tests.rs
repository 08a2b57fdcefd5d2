use proptest::prelude::*;

use super::*;
use crate::model::{Demand, ModelRegistry, ModelSet, NodeState};

fn node(cpu_free: u64, free: &[u16]) -> NodeState {
    let mut n = NodeState::new(None, free.len() as u32, 64_000, 262_144).unwrap();
    n.gpu_free_milli[..free.len()].copy_from_slice(free);
    n.cpu_free = cpu_free;
    n
}

fn tp(cpu: u64, gpus: u8, milli: u16, freq: f64) -> TypicalPod {
    TypicalPod {
        cpu_milli: cpu,
        gpu_milli: milli,
        gpus,
        models: ModelSet::ANY,
        freq,
    }
}

#[test]
fn fragmentation_matches_hand_computed_cases() {
    // Two typical pods, equally popular: a half-GPU pod and a whole-GPU pod.
    let typical = TypicalPods::from_pods(vec![tp(4000, 1, 500, 0.5), tp(4000, 1, 1000, 0.5)]);

    // Free GPUs [1000, 300, 600]: total idle 1900.
    // Half-GPU pod fits (1000 and 600 qualify): its fragment is the 300 on GPU 1.
    // Whole-GPU pod fits (GPU 0): its fragment is 300 + 600 = 900.
    let n = node(16_000, &[1000, 300, 600]);
    assert_eq!(node_frag(&n, &typical), 0.5 * 300.0 + 0.5 * 900.0);

    // No CPU left for either: all idle milli is fragment for both.
    let starved = node(2000, &[1000, 300, 600]);
    assert_eq!(node_frag(&starved, &typical), 1900.0);

    // No whole GPU: the whole-GPU pod sees all 900 idle; the half pod sees 300.
    let no_whole = node(16_000, &[300, 600]);
    assert_eq!(node_frag(&no_whole, &typical), 0.5 * 300.0 + 0.5 * 900.0);

    // A full node has no fragment.
    assert_eq!(node_frag(&node(16_000, &[0, 0]), &typical), 0.0);
}

#[test]
fn cpu_only_and_inaccessible_typical_pods_count_all_idle_gpu() {
    let mut reg = ModelRegistry::new();
    let t4 = reg.intern("T4").unwrap();
    let v100 = reg.intern("V100").unwrap();
    let mut n = node(16_000, &[1000, 400]);
    n.model = Some(t4);
    let mut only_v100 = tp(1000, 1, 100, 0.25);
    only_v100.models = ModelSet::only(v100);
    let typical =
        TypicalPods::from_pods(vec![tp(1000, 0, 0, 0.25), only_v100, tp(1000, 1, 500, 0.5)]);
    // CPU-only and V100-only: all 1400; half-GPU pod: the 400 GPU is too small.
    assert_eq!(
        node_frag(&n, &typical),
        0.25 * 1400.0 + 0.25 * 1400.0 + 0.5 * 400.0
    );
}

#[test]
fn typical_pods_cover_the_threshold_by_popularity() {
    let d = |cpu, gpus, milli| Demand {
        cpu_milli: cpu,
        memory_mib: 1,
        gpus,
        gpu_milli: milli,
        models: ModelSet::ANY,
    };
    let mut pods = vec![d(1000, 1, 500); 6];
    pods.extend(vec![d(2000, 1, 1000); 3]);
    pods.push(d(3000, 0, 0));
    // 60% then 90% covered: at 80% the first two shapes are typical.
    let typical = TypicalPods::from_demands(&pods, 80.0);
    assert_eq!(typical.len(), 2);
    let freqs: Vec<f64> = typical.iter().map(|t| t.freq).collect();
    assert!((freqs[0] - 6.0 / 9.0).abs() < 1e-12);
    assert!((freqs[1] - 3.0 / 9.0).abs() < 1e-12);
    // At 95% all three are needed.
    assert_eq!(TypicalPods::from_demands(&pods, 95.0).len(), 3);
}

#[test]
fn equal_counts_put_the_larger_shape_first() {
    let d = |cpu| Demand {
        cpu_milli: cpu,
        memory_mib: 1,
        gpus: 1,
        gpu_milli: 500,
        models: ModelSet::ANY,
    };
    let typical = TypicalPods::from_demands(&[d(1000), d(2000)], 100.0);
    let cpus: Vec<u64> = typical.iter().map(|t| t.cpu_milli).collect();
    assert_eq!(cpus, vec![2000, 1000]);
}

fn arb_typical() -> impl Strategy<Value = TypicalPods> {
    prop::collection::vec(
        (
            0u64..20_000,
            prop::sample::select(vec![0u8, 1, 1, 1, 2, 4, 8]),
            1u16..=1000,
            1u32..100,
        ),
        1..12,
    )
    .prop_map(|raw| {
        let sum: u32 = raw.iter().map(|r| r.3).sum();
        TypicalPods::from_pods(
            raw.into_iter()
                .map(|(cpu, gpus, milli, w)| {
                    let (gpus, milli) = match gpus {
                        0 => (0, 0),
                        1 => (1, milli),
                        g => (g, 1000),
                    };
                    tp(cpu, gpus, milli, f64::from(w) / f64::from(sum))
                })
                .collect(),
        )
    })
}

proptest! {
    #[test]
    fn incremental_evaluation_agrees_with_the_definition(
        typical in arb_typical(),
        free in prop::collection::vec(0u16..=1000, 1..=8),
        cpu_free in 0u64..64_000,
        gpu in 0usize..8,
        take in 0u16..=1000,
        cpu_take in 0u64..8_000,
    ) {
        let n = node(cpu_free, &free);
        let eval = FragEval::new(&n, &typical);
        prop_assert!((eval.current() - node_frag(&n, &typical)).abs() < 1e-6);

        let g = gpu % free.len();
        let take = take.min(free[g]);
        let mut after = n;
        after.gpu_free_milli[g] -= take;
        after.cpu_free = after.cpu_free.saturating_sub(cpu_take);
        let fast = eval.after(&[(free[g], free[g] - take)], cpu_take);
        prop_assert!((fast - node_frag(&after, &typical)).abs() < 1e-6);
        prop_assert!(fast >= 0.0 && fast.is_finite());
    }
}
