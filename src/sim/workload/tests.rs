use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::sim::test_util::{tnode, tpod};

#[test]
fn workload_sorts_pods_by_name_and_shares_shapes() {
    let nodes = [tnode("n1", 2, "T4"), tnode("n0", 0, "")];
    let pods = [
        tpod("b", 1000, 1, 500),
        tpod("a", 1000, 1, 500),
        tpod("c", 2000, 0, 0),
    ];
    let w = Workload::from_trace(&nodes, &pods).unwrap();
    let names: Vec<&str> = w.pods.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!(w.shapes.len(), 2);
    assert_eq!(w.pods[0].shape, w.pods[1].shape);
    assert_eq!(w.capacity_milli, 2000);
    assert!(w.nodes[0].model.is_none(), "n0 sorts first");
}

#[test]
fn empty_inputs_are_errors() {
    let pods = [tpod("a", 1000, 1, 500)];
    assert!(matches!(
        Workload::from_trace(&[tnode("n", 0, "")], &pods),
        Err(SimError::Empty(_))
    ));
    assert!(matches!(
        Workload::from_trace(&[tnode("n", 1, "T4")], &[]),
        Err(SimError::Empty(_))
    ));
}

#[test]
fn inflation_stops_before_the_draw_that_would_pass_the_target() {
    let nodes = [tnode("n", 8, "G2")];
    let pods: Vec<TracePod> = (0..4)
        .map(|i| tpod(&format!("p{i}"), 1000, 1, 500))
        .collect();
    let w = Workload::from_trace(&nodes, &pods).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let order = arrival_order(&w, 1.3, &mut rng).unwrap();
    // 8 GPUs × 1.3 = 10,400 milli; 4 × 500 to start, then copies of 500 until 10,000
    // (the next one, 10,500, would pass).
    assert_eq!(order.len(), 20);
    let mut first: Vec<usize> = order[..4].to_vec();
    first.sort();
    assert_eq!(
        first,
        vec![0, 1, 2, 3],
        "the original pods come first, each once"
    );
}

#[test]
fn tuning_below_the_trace_removes_pods() {
    let nodes = [tnode("n", 1, "G2")];
    let pods: Vec<TracePod> = (0..4)
        .map(|i| tpod(&format!("p{i}"), 1000, 1, 500))
        .collect();
    let w = Workload::from_trace(&nodes, &pods).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    // 2,000 milli requested, target 1,000: two pods go.
    assert_eq!(arrival_order(&w, 1.0, &mut rng).unwrap().len(), 2);
    assert!(matches!(
        arrival_order(&w, 0.0, &mut rng),
        Err(SimError::BadTune(_))
    ));
    assert!(matches!(
        arrival_order(&w, f64::NAN, &mut rng),
        Err(SimError::BadTune(_))
    ));
}

#[test]
fn same_seed_same_order() {
    let nodes = [tnode("n", 8, "G2")];
    let pods: Vec<TracePod> = (0..50)
        .map(|i| tpod(&format!("p{i:02}"), 1000, 1, 100 + i))
        .collect();
    let w = Workload::from_trace(&nodes, &pods).unwrap();
    let a = arrival_order(&w, 1.3, &mut ChaCha8Rng::seed_from_u64(7)).unwrap();
    let b = arrival_order(&w, 1.3, &mut ChaCha8Rng::seed_from_u64(7)).unwrap();
    let c = arrival_order(&w, 1.3, &mut ChaCha8Rng::seed_from_u64(8)).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
}
