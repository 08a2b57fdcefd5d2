use super::*;
use crate::model::Demand;
use crate::model::ModelSet;
use crate::model::mig::GpuProduct;
use crate::model::partition::{GpuPartitioning, Partition, PartitionGpu};
use crate::sim::mig::cluster::{H100_NODE, build_nodes};
use crate::sim::mig::demand::gpu_demand;

/// Two H100 nodes of 2 GPUs; demands 0..4 are a 4g, a 3g, a 1g and a whole GPU; typical
/// pods `(cpu, milli, gpus, freq)`.
fn state_with(typical: &[(u64, u16, u8, f64)]) -> (MigWorkload, Vec<MigNode>) {
    let demand = |gpus: u8, milli: u16| Demand {
        cpu_milli: 0,
        memory_mib: 0,
        gpus,
        gpu_milli: milli,
        models: ModelSet::ANY,
    };
    let demands: Vec<_> = [(1, 500), (1, 300), (1, 100), (1, 1000)]
        .iter()
        .filter_map(|(g, m)| gpu_demand(&demand(*g, *m)))
        .collect();
    let typicals = PartitionTypicals::new(
        typical
            .iter()
            .filter_map(|(cpu, m, g, f)| gpu_demand(&demand(*g, *m)).map(|d| (*cpu, d, *f))),
    );
    let mig = MigWorkload {
        demands,
        pods: Vec::new(),
        typicals,
        static_share: 0.0,
    };
    let nodes = build_nodes(
        &[(H100_NODE, 2), (H100_NODE, 2)],
        MigPolicy::DynamicTessera,
        0.0,
    )
    .unwrap();
    (mig, nodes)
}

fn pod(demand: usize) -> MigPod {
    MigPod {
        cpu_milli: 1000,
        memory_mib: 1024,
        demand: Some(demand),
    }
}

fn mig_at(fit: &PartitionFit) -> (usize, &'static str, u8) {
    match fit.assignments[0].partition {
        Partition::Mig { profile, placement } => {
            (fit.assignments[0].gpu, profile.name, placement.start)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn tessera_puts_a_3g_beside_a_4g_and_first_fit_takes_the_first_placement() {
    // Typical pods: 4g and whole GPUs.
    let (mig, nodes) = state_with(&[(0, 500, 1, 0.5), (0, 1000, 1, 0.5)]);
    let rank = [0, 1];
    let mut state = State::new(
        nodes.clone(),
        &mig.typicals,
        mig.demands.len(),
        false,
        Layout::KindMajor,
    );
    // A 4g goes on node 0 (lowest rank among equals), GPU 0 at 0:4.
    let (i, fit) =
        choose_scored(&mut state, &mig, &pod(0), &rank, Inside::Scored, &mut rng()).unwrap();
    let fit = fit.unwrap();
    assert_eq!((i, mig_at(&fit)), (0, (0, "4g.40gb", 0)));
    assert!(state.place(i, &pod(0), Some(&fit)));
    // The 3g joins it at 4:4: that fills the GPU and fragments nothing new.
    let (i, fit) =
        choose_scored(&mut state, &mig, &pod(1), &rank, Inside::Scored, &mut rng()).unwrap();
    assert_eq!((i, mig_at(&fit.unwrap())), (0, (0, "3g.40gb", 4)));

    // First-fit puts a 1g at slot 0 of the first node's first GPU (where it rules out a 4g;
    // tessera puts it at 6), and a 3g after it on the same GPU at 4:4.
    let mut state = State::new(
        nodes,
        &mig.typicals,
        mig.demands.len(),
        false,
        Layout::KindMajor,
    );
    let (i, one) = choose_first(&mut state, &mig, &pod(2), &[0, 1]).unwrap();
    let one = one.unwrap();
    assert_eq!(
        mig_at(&one),
        (0, "1g.10gb", 0),
        "first placement, not the least fragmenting"
    );
    assert!(state.place(i, &pod(2), Some(&one)));
    let (_, three) = choose_first(&mut state, &mig, &pod(1), &[0, 1]).unwrap();
    assert_eq!(mig_at(&three.unwrap()), (0, "3g.40gb", 4));
}

#[test]
fn placing_updates_held_capacity_fragmentation_and_the_cache() {
    let (mig, nodes) = state_with(&[(0, 1000, 1, 1.0)]);
    let mut state = State::new(
        nodes,
        &mig.typicals,
        mig.demands.len(),
        false,
        Layout::KindMajor,
    );
    assert_eq!(
        state.frag.iter().sum::<f64>(),
        0.0,
        "empty GPUs host whole pods"
    );
    let (i, fit) = choose_scored(
        &mut state,
        &mig,
        &pod(2),
        &[1, 0],
        Inside::Scored,
        &mut rng(),
    )
    .unwrap();
    assert_eq!(i, 1, "rank decides between equal nodes");
    let fit = fit.unwrap();
    assert!(state.place(i, &pod(2), Some(&fit)));
    assert!((state.held - 1.0 / 7.0).abs() < 1e-12);
    // The GPU with the 1g can no longer take a whole pod: its 6/7 idle is fragmented.
    assert!(
        (state.frag[1] - 6.0 / 7.0).abs() < 1e-12,
        "{}",
        state.frag[1]
    );
    assert_eq!(state.gpu_generation, [0, 1]);
    let GpuPartitioning::DynamicMig { layout, .. } = &state.nodes[1].gpus[0].state else {
        panic!()
    };
    assert_eq!(layout.instances().len(), 1);
    // A pod that does not fit the node's CPU is refused and nothing changes.
    let greedy = MigPod {
        cpu_milli: u64::MAX,
        ..pod(2)
    };
    let before = state.nodes.clone();
    assert!(!state.place(0, &greedy, Some(&fit)));
    assert_eq!(state.nodes, before);
    assert_eq!(
        state.nodes[1].gpus[1],
        PartitionGpu::dynamic_mig(
            H100_NODE.model,
            H100_NODE.gpu_memory_mib,
            GpuProduct::H100_80GB
        )
    );
}

fn rng() -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(1)
}
