use rand::SeedableRng;

use super::*;
use crate::model::ModelSet;

fn node(free: &[u16]) -> NodeState {
    let mut n = NodeState::new(None, free.len() as u32, 32_000, 65_536).unwrap();
    n.gpu_free_milli[..free.len()].copy_from_slice(free);
    n
}

fn pod(cpu: u64, gpus: u8, milli: u16) -> Demand {
    Demand {
        cpu_milli: cpu,
        memory_mib: 1024,
        gpus,
        gpu_milli: milli,
        models: ModelSet::ANY,
    }
}

#[test]
fn first_fit_takes_shares_from_gpu_0_up_and_whole_gpus_from_the_top_down() {
    let n = node(&[300, 1000, 800, 1000]);
    // GPU 0 has 300: too little for 500, so GPU 1 (untouched) — not the tighter GPU 2.
    assert_eq!(first_fit(&n, &pod(1, 1, 500)), Some(GpuPick::single(1)));
    assert_eq!(first_fit(&n, &pod(1, 1, 200)), Some(GpuPick::single(0)));
    assert_eq!(first_fit(&n, &pod(1, 1, 1000)), Some(GpuPick::single(3)));
    assert_eq!(
        first_fit(&n, &pod(1, 2, 1000)),
        Some(GpuPick::single(3).with(1))
    );
    assert_eq!(first_fit(&n, &pod(1, 3, 1000)), None, "GPU 2 has a share");
    assert_eq!(first_fit(&n, &pod(1, 0, 0)), Some(GpuPick::NONE));
}

#[test]
fn kube_score_spreads_by_cpu_and_memory_and_rewards_balance() {
    let empty = node(&[1000; 2]);
    let mut busy = empty;
    busy.cpu_free = 16_000;
    let small = pod(1000, 1, 500);
    assert!(kube_score(&empty, &small) > kube_score(&busy, &small));
    // LeastAllocated on an empty node for 1 of 32 cores and 1 of 64 GiB: (96 + 98) / 2 = 97;
    // balance: |1/32 − 1/64| / 2 off 100 → 99.
    assert_eq!(kube_score(&empty, &small), 97 + 99);
}

#[test]
fn kube_samples_nodes_like_the_scheduler() {
    assert_eq!(nodes_to_find(50), 50);
    assert_eq!(nodes_to_find(1213), 1213 * 41 / 100);
    assert_eq!(nodes_to_find(5000), 5000 * 10 / 100);
    assert_eq!(nodes_to_find(200), 100, "49 % of 200 is 98: at least 100");
}

#[test]
fn kube_node_rotates_its_start_and_breaks_ties_at_random() {
    let nodes = vec![node(&[1000; 2]); 150];
    let order: Vec<usize> = (0..150).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut start = 0;
    let mut chosen = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let (index, pick) = kube_node(
            &nodes,
            &order,
            &mut start,
            &pod(1, 1, 1000),
            &mut rng,
            |_, _| true,
        )
        .unwrap();
        assert_eq!(pick, GpuPick::single(1));
        chosen.insert(index);
    }
    assert_eq!(
        start,
        20 * 100 % 150,
        "each search looks at 100 feasible nodes"
    );
    assert!(
        chosen.len() > 5,
        "equal nodes are chosen at random: {chosen:?}"
    );
    let full = vec![node(&[0; 2]); 3];
    assert_eq!(
        kube_node(
            &full,
            &[0, 1, 2],
            &mut 0,
            &pod(1, 1, 10),
            &mut rng,
            |_, _| true
        ),
        None
    );
    let open = vec![node(&[1000; 2]); 3];
    let only_2 = kube_node(
        &open,
        &[0, 1, 2],
        &mut 0,
        &pod(1, 1, 10),
        &mut rng,
        |i, _| i == 2,
    );
    assert_eq!(only_2.map(|(i, _)| i), Some(2), "other filters apply");
}

#[test]
fn releases_parse_into_their_slice_order() {
    assert_eq!(Release::from_version("1.35"), Some(Release::Arbitrary));
    assert_eq!(Release::from_version("v1.34.2"), Some(Release::Arbitrary));
    assert_eq!(Release::from_version("1.36"), Some(Release::NameOrder));
    assert_eq!(Release::from_version("1.37.0"), Some(Release::NameOrder));
    assert_eq!(Release::from_version("1.33"), None);
    assert_eq!(Release::from_version("latest"), None);
}
