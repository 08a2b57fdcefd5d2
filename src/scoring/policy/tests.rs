use super::*;
use crate::model::{ModelSet, NodeState};
use crate::scoring::frag::TypicalPod;
use crate::scoring::test_util::demand;

fn node(gpus: u32, cpu_free: u64, free: &[u16]) -> NodeState {
    let mut n = NodeState::new(None, gpus, 96_000, 393_216).unwrap();
    n.gpu_free_milli[..free.len()].copy_from_slice(free);
    n.cpu_free = cpu_free;
    n
}

fn typical() -> TypicalPods {
    TypicalPods::from_pods(vec![
        TypicalPod {
            cpu_milli: 4000,
            gpu_milli: 500,
            gpus: 1,
            models: ModelSet::ANY,
            freq: 0.5,
        },
        TypicalPod {
            cpu_milli: 8000,
            gpu_milli: 1000,
            gpus: 1,
            models: ModelSet::ANY,
            freq: 0.5,
        },
    ])
}

fn scorer(p: Policy) -> Scorer {
    Scorer::new(p, typical(), TesseraWeights::default())
}

fn best_of(p: Policy, nodes: &[NodeState], d: &Demand) -> Vec<usize> {
    let s = scorer(p);
    let scores: Vec<Option<NodeScore>> = nodes.iter().map(|n| s.score(n, d)).collect();
    let max = scores
        .iter()
        .flatten()
        .map(|s| s.score)
        .fold(f64::NEG_INFINITY, f64::max);
    scores
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_some_and(|s| s.score == max))
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn names_round_trip_and_unknown_names_are_refused() {
    for p in Policy::KNOWN {
        assert_eq!(p.name().parse::<Policy>().unwrap(), p);
    }
    assert_eq!("FGD".parse::<Policy>().unwrap(), Policy::Fgd);
    assert!(matches!(
        "best".parse::<Policy>(),
        Err(PolicyError::Unknown { .. })
    ));
}

#[test]
fn infeasible_nodes_get_no_score() {
    let full = node(2, 96_000, &[0, 0]);
    for p in Policy::KNOWN {
        assert!(
            scorer(p).score(&full, &demand(1000, 1, 100)).is_none(),
            "{p}"
        );
    }
}

// A small cluster: an idle node, a node with one half-used GPU, a nearly full node.
fn small_cluster() -> Vec<NodeState> {
    vec![
        node(4, 96_000, &[1000, 1000, 1000, 1000]),
        node(4, 80_000, &[500, 1000, 1000, 1000]),
        node(4, 20_000, &[0, 0, 300, 1000]),
    ]
}

#[test]
fn dot_product_prefers_the_node_with_least_free_resources() {
    // Free vectors: (96k, 4000), (80k, 3500), (20k, 1300) → smallest dot with the request.
    assert_eq!(
        best_of(Policy::DotProd, &small_cluster(), &demand(4000, 1, 500)),
        vec![2]
    );
}

#[test]
fn best_fit_prefers_least_leftover() {
    assert_eq!(
        best_of(Policy::BestFit, &small_cluster(), &demand(4000, 1, 200)),
        vec![2]
    );
}

#[test]
fn packing_prefers_partially_used_gpus_then_used_nodes() {
    let c = small_cluster();
    // 200 milli fits the 300-free GPU on node 2 (score 100 − 30/10 = 97) and the 500-free
    // GPU on node 1 (100 − 50/10 = 95).
    assert_eq!(
        best_of(Policy::GpuPacking, &c, &demand(4000, 1, 200)),
        vec![2]
    );
    // A whole GPU: used nodes (50 − 1) beat the idle node (33 − 4).
    assert_eq!(
        best_of(Policy::GpuPacking, &c, &demand(4000, 1, 1000)),
        vec![1, 2]
    );
    let s = scorer(Policy::GpuPacking);
    assert_eq!(s.score(&c[0], &demand(1, 1, 1000)).unwrap().score, 29.0);
    assert_eq!(s.score(&c[1], &demand(1, 1, 1000)).unwrap().score, 49.0);
}

#[test]
fn clustering_prefers_nodes_with_the_same_class() {
    let mut c = small_cluster();
    c[1].pods_by_class[0] = 1; // a sharing pod on node 1
    c[2].pods_by_class[1] = 2; // two whole-GPU pods on node 2
    assert_eq!(
        best_of(Policy::GpuClustering, &c, &demand(4000, 1, 200)),
        vec![1]
    );
    assert_eq!(
        best_of(Policy::GpuClustering, &c, &demand(4000, 1, 1000)),
        vec![2]
    );
    // Node 1: only sharing pods; 3500 milli free against the 8000 reference:
    // 25 × (8000 − 3500) / 8000 = 14 (integer), in the 75–100 band.
    let s = scorer(Policy::GpuClustering);
    assert_eq!(s.score(&c[1], &demand(1, 1, 200)).unwrap().score, 89.0);
}

#[test]
fn fgd_fills_the_half_gpu_rather_than_breaking_a_whole_one() {
    let c = small_cluster();
    // A 500-milli pod on node 1's half-used GPU removes 500 idle milli that the half-GPU
    // typical pod could have used but leaves every whole GPU intact.
    let s = scorer(Policy::Fgd);
    let on_half = s.score(&c[1], &demand(4000, 1, 500)).unwrap();
    assert_eq!(on_half.choice, GpuChoice::Pick(GpuPick::single(0)));
    let on_idle = s.score(&c[0], &demand(4000, 1, 500)).unwrap();
    assert!(on_half.score > on_idle.score);
}

#[test]
fn tessera_picks_the_gpu_that_fragments_least() {
    let n = node(4, 96_000, &[1000, 600, 1000, 500]);
    let s = scorer(Policy::Tessera);
    // 500 milli: on GPU 3 it leaves 0 (no new fragment); on GPU 1 it leaves 100 useless milli.
    let got = s.score(&n, &demand(4000, 1, 500)).unwrap();
    assert_eq!(got.choice, GpuChoice::Pick(GpuPick::single(3)));
}

/// Sharing pods of 650, 470 and 320 milli plus whole-GPU pods: 470s pack in pairs, a 320 goes
/// next to a 650 or with two more 320s.
fn sharing_mix() -> TypicalPods {
    let pod = |gpu_milli, freq| TypicalPod {
        cpu_milli: 4000,
        gpu_milli,
        gpus: 1,
        models: ModelSet::ANY,
        freq,
    };
    TypicalPods::from_pods(vec![
        pod(470, 0.3),
        pod(320, 0.3),
        pod(650, 0.1),
        pod(1000, 0.3),
    ])
}

#[test]
fn tessera_keeps_the_packing_the_share_prices_call_for() {
    // GPU 0 holds a 470 (530 free), GPU 1 a 320 (680 free). A 320 in GPU 0 leaves 210 milli
    // nothing typical fits (FGD's measure likes the smaller leftover); in GPU 1 it makes
    // room for a third 320, a pattern of the optimal packing.
    let n = node(2, 96_000, &[530, 680]);
    let pod = demand(4000, 1, 320);
    let tessera = Scorer::new(Policy::Tessera, sharing_mix(), TesseraWeights::default());
    let got = tessera.score(&n, &pod).unwrap();
    assert_eq!(got.choice, GpuChoice::Pick(GpuPick::single(1)));
    assert!((tessera.prices().loss(530, 320) - 1000.0 / 6.0).abs() < 1e-9);
    assert_eq!(tessera.prices().loss(680, 320), 0.0);

    let frag_only = TesseraWeights {
        share_loss: 0.0,
        ..TesseraWeights::default()
    };
    let without = Scorer::new(Policy::Tessera, sharing_mix(), frag_only);
    let got = without.score(&n, &pod).unwrap();
    assert_eq!(got.choice, GpuChoice::Pick(GpuPick::single(0)));

    // Across nodes the same: the node whose GPU the 320 completes a pattern on wins.
    let with_470 = node(2, 96_000, &[530, 0]);
    let with_320 = node(2, 96_000, &[680, 0]);
    let a = tessera.score(&with_470, &pod).unwrap().score;
    let b = tessera.score(&with_320, &pod).unwrap().score;
    assert!(b > a, "{b} vs {a}");
    // The baselines have no prices.
    assert_eq!(scorer(Policy::Fgd).prices(), &SharePrices::default());
}

#[test]
fn random_lets_the_caller_pick_a_gpu_for_sharing_pods_only() {
    let n = node(2, 96_000, &[1000, 1000]);
    let s = scorer(Policy::Random);
    assert_eq!(
        s.score(&n, &demand(1, 1, 100)).unwrap().choice,
        GpuChoice::AnyFitting
    );
    assert_eq!(
        s.score(&n, &demand(1, 2, 1000)).unwrap().choice,
        GpuChoice::Pick(GpuPick::single(0).with(1))
    );
}

#[test]
fn tessera_keeps_cpu_heavy_pods_off_cpu_poor_nodes() {
    // Same GPUs free; one node has CPU to spare, the other barely feeds its idle GPUs.
    let rich = node(2, 96_000, &[1000, 1000]);
    let poor = node(2, 24_000, &[1000, 1000]);
    let cpu_heavy = demand(16_000, 1, 1000);
    let s = scorer(Policy::Tessera);
    let on_rich = s.score(&rich, &cpu_heavy).unwrap().score;
    let on_poor = s.score(&poor, &cpu_heavy).unwrap().score;
    assert!(on_rich > on_poor, "rich {on_rich} vs poor {on_poor}");
}

#[test]
fn least_allocated_spreads_to_the_emptiest_node() {
    let nodes = small_cluster();
    let s = scorer(Policy::LeastAllocated);
    assert_eq!(
        best_of(Policy::LeastAllocated, &nodes, &demand(1000, 1, 500)),
        vec![0]
    );
    // Node 0 after a 500-milli, 1-core pod: CPU 98, memory (1 GiB of 384) 99, GPU 87 → 94.
    let score = s.score(&nodes[0], &demand(1000, 1, 500)).unwrap().score;
    assert_eq!(score, 94.0);
    assert!(
        !Policy::ALL.contains(&Policy::LeastAllocated),
        "not in the FGD set"
    );
    assert_eq!("spread".parse::<Policy>().unwrap(), Policy::LeastAllocated);
}

#[test]
fn a_pick_made_elsewhere_is_scored_as_it_is_and_the_own_pick_scores_the_same() {
    let n = node(4, 60_000, &[1000, 500, 1000, 300]);
    let share = demand(4000, 1, 500);
    for p in [Policy::Tessera, Policy::Fgd, Policy::BestFit] {
        let s = scorer(p);
        let own = s.score(&n, &share).unwrap();
        let GpuChoice::Pick(pick) = own.choice else {
            panic!("{p:?} picks its GPU")
        };
        assert_eq!(s.score_pick(&n, &share, pick), Some(own), "{p:?}");
        // The allocator's first fit (GPU 0) breaks an idle GPU where the policy fills GPU 1.
        let taken = s.score_pick(&n, &share, GpuPick::single(0)).unwrap();
        assert_eq!(taken.choice, GpuChoice::Pick(GpuPick::single(0)));
        if p != Policy::BestFit {
            assert!(
                taken.score < own.score,
                "{p:?}: {} vs {}",
                taken.score,
                own.score
            );
        }
    }
    let s = scorer(Policy::Tessera);
    assert_eq!(
        s.score_pick(&n, &share, GpuPick::single(3)),
        None,
        "no room"
    );
    assert_eq!(
        s.score_pick(&n, &share, GpuPick::single(0).with(2)),
        None,
        "two GPUs"
    );
}
