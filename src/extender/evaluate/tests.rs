use super::*;
use crate::market::{CapacityType, PriceSource, RiskSource};
use crate::model::mig::GpuProduct;
use crate::scoring::{Policy, Scorer};

const H100: &str = "NVIDIA H100 80GB HBM3";

fn alt(kind: DeviceKind) -> Alternative {
    Alternative {
        subrequest: None,
        kind,
        count: Count::Exact(1),
        memory_bytes: None,
        compute_percent: None,
        mig_profile: None,
        gpu_model: None,
    }
}

fn request(alternatives: Vec<Alternative>) -> GpuRequest {
    GpuRequest {
        source: "ns/c/gpu".into(),
        alternatives,
    }
}

/// A node of `gpus` for `place`, its milli view unused there.
fn gpus_of(gpus: &[PartitionGpu]) -> NodeGpus<'_> {
    NodeGpus {
        gpus,
        milli: milli_view(gpus, 1, 1, 1, 1),
        in_use: true,
        layout: &ByPosition,
    }
}

fn market(price: f64, gpus: f64) -> NodeMarket {
    NodeMarket {
        hourly_price_usd: price,
        gpus,
        capacity: CapacityType::OnDemand,
        band: None,
        hourly_interruption_probability: 0.0,
        source: PriceSource::Annotation,
        risk_source: RiskSource::NotSpot,
    }
}

fn demand_of(requests: Vec<GpuRequest>) -> PodDemand {
    PodDemand {
        requests,
        cpu_milli: 4000,
        memory_mib: 16_384,
        ..PodDemand::default()
    }
}

#[test]
fn alternatives_become_partition_demands() {
    let mig_gpus = vec![PartitionGpu::dynamic_mig(
        H100,
        81_559,
        GpuProduct::H100_80GB,
    )];
    let whole = partition_demand(&alt(DeviceKind::Whole), &mig_gpus, &ByPosition).unwrap();
    assert_eq!(whole.preference, [PartitionKind::Whole]);
    assert_eq!((whole.count, whole.compute_milli), (1, 1000));

    let mut share = alt(DeviceKind::Shared);
    share.memory_bytes = Some(10 * 1024 * MIB + 1);
    share.compute_percent = Some(25.5);
    let shared = partition_demand(&share, &mig_gpus, &ByPosition).unwrap();
    assert_eq!(shared.preference, [PartitionKind::Shared]);
    assert_eq!(shared.memory_mib, 10 * 1024 + 1, "bytes round up to MiB");
    assert_eq!(shared.compute_milli, 255);

    let mut pinned = alt(DeviceKind::Mig);
    pinned.mig_profile = Some("3g.40gb".into());
    let mig = partition_demand(&pinned, &mig_gpus, &ByPosition).unwrap();
    assert_eq!(mig.preference, [PartitionKind::Mig]);
    assert_eq!(
        mig.compute_milli, 428,
        "3 of 7 compute slices, rounded down"
    );
    assert!(mig.memory_mib > 20 * 1024);
    pinned.mig_profile = Some("9g.900gb".into());
    assert_eq!(partition_demand(&pinned, &mig_gpus, &ByPosition), None);

    let mut all = alt(DeviceKind::Whole);
    all.count = Count::All;
    let four = vec![PartitionGpu::whole(H100, 81_559); 4];
    assert_eq!(partition_demand(&all, &four, &ByPosition).unwrap().count, 4);
}

#[test]
fn first_available_takes_the_first_alternative_that_fits_here() {
    let chain = request(vec![
        Alternative {
            subrequest: Some("mig".into()),
            ..alt(DeviceKind::Mig)
        },
        Alternative {
            subrequest: Some("whole".into()),
            ..alt(DeviceKind::Whole)
        },
    ]);
    let mig_node = vec![PartitionGpu::dynamic_mig(
        H100,
        81_559,
        GpuProduct::H100_80GB,
    )];
    let placed = place(
        &gpus_of(&mig_node),
        std::slice::from_ref(&chain),
        Detail::Explain,
    )
    .unwrap();
    let (choices, assignments) = (placed.choices, placed.assignments);
    assert_eq!(choices[0].alternative.as_deref(), Some("mig"));
    assert_eq!(choices[0].kind, "mig");
    assert_eq!(choices[0].partition, "gpu-0-mig-1g10gb-6", "{choices:?}");
    assert!((assignments[0].fraction - 1.0 / 7.0).abs() < 1e-12);

    let plain_node = vec![PartitionGpu::whole(H100, 81_559)];
    let placed = place(
        &gpus_of(&plain_node),
        std::slice::from_ref(&chain),
        Detail::Explain,
    )
    .unwrap();
    let choices = placed.choices;
    assert!(
        (placed.needed_gpus - 1.0 / 7.0).abs() < 1e-12,
        "needs what its first choice asks"
    );
    assert_eq!(choices[0].alternative.as_deref(), Some("whole"));
    assert_eq!(choices[0].partition, "gpu-0");
}

#[test]
fn several_requests_take_different_devices_or_do_not_fit() {
    let two = vec![request(vec![alt(DeviceKind::Whole)]); 2];
    let node = vec![PartitionGpu::whole(H100, 81_559); 2];
    let choices = place(&gpus_of(&node), &two, Detail::Explain)
        .unwrap()
        .choices;
    let names: Vec<_> = choices.iter().map(|c| c.partition.as_str()).collect();
    assert_eq!(names, ["gpu-0", "gpu-1"]);
    assert!(place(&gpus_of(&node[..1]), &two, Detail::Scores).is_none());
}

#[test]
fn milli_view_rounds_each_gpus_unheld_share() {
    let mut gpus = vec![
        PartitionGpu::whole(H100, 81_559),
        PartitionGpu::dynamic_mig(H100, 81_559, GpuProduct::H100_80GB),
    ];
    gpus[0].state = crate::model::partition::GpuPartitioning::Whole { taken: true };
    let one_slice = request(vec![alt(DeviceKind::Mig)]);
    let assignments = place(
        &gpus_of(&gpus),
        std::slice::from_ref(&one_slice),
        Detail::Scores,
    )
    .unwrap()
    .assignments;
    apply(
        &crate::model::partition::PartitionFit { assignments },
        &mut gpus,
    )
    .unwrap();
    let state = milli_view(&gpus, 96_000, 90_000, 393_216, 300_000);
    assert_eq!(state.gpu_free(), &[0, 857]);
    assert_eq!((state.cpu_free, state.memory_free), (90_000, 300_000));
}

#[test]
fn scores_are_the_blend_of_the_simulators_terms() {
    let typical = default_typical_pods().unwrap();
    let scoring = Scoring::new(Weights::default(), typical.clone());
    let gpus = vec![PartitionGpu::whole(H100, 81_559); 8];
    let milli = milli_view(&gpus, 96_000, 96_000, 393_216, 393_216);
    let node = NodeGpus {
        gpus: &gpus,
        milli,
        layout: &ByPosition,
        in_use: true,
    };
    let demand = demand_of(vec![request(vec![alt(DeviceKind::Whole)])]);
    let got = scoring
        .evaluate(
            &node,
            &market(16.0, 8.0),
            false,
            &demand,
            Tolerance::Checkpointed,
            Detail::Explain,
        )
        .unwrap();

    // What the simulator's cost experiment computes for the same node and pod.
    let shape = Demand {
        cpu_milli: 4000,
        memory_mib: 16_384,
        gpus: 1,
        gpu_milli: 1000,
        models: ModelSet::ANY,
    };
    let frag = Scorer::new(Policy::Tessera, typical, Weights::default().fragmentation)
        .score(&milli, &shape)
        .unwrap();
    let want = score_node(
        &NodeInputs {
            price_per_gpu_hour: 2.0,
            node_hourly_price: 16.0,
            in_use: true,
            capacity: CapacityType::OnDemand,
            hourly_interruption_probability: 0.0,
            interruption_notice: false,
        },
        &PodInputs {
            tolerance: Tolerance::Checkpointed,
            partition_gpus: 1.0,
            frag_gpus: -frag.score / 1000.0,
        },
        &Weights::default(),
    );
    assert_eq!(got.raw_score, want.score);
    assert_eq!(got.hourly_cost_usd, 2.0);
    assert_eq!(got.fragmentation, want.frag_term);
    assert_eq!(got.refused, None);
}

#[test]
fn refused_nodes_rank_below_every_usable_one() {
    let scoring = Scoring::new(Weights::default(), default_typical_pods().unwrap());
    let gpus = vec![PartitionGpu::whole(H100, 81_559)];
    let milli = milli_view(&gpus, 8000, 8000, 65_536, 65_536);
    let node = NodeGpus {
        gpus: &gpus,
        milli,
        layout: &ByPosition,
        in_use: false,
    };
    let demand = demand_of(vec![request(vec![alt(DeviceKind::Whole)])]);
    let got = scoring
        .evaluate(
            &node,
            &market(2.0, 1.0),
            true,
            &demand,
            Tolerance::Tolerant,
            Detail::Scores,
        )
        .unwrap();
    assert_eq!(got.raw_score, f64::NEG_INFINITY);
    assert!(got.refused.is_some());
}

#[test]
fn a_mig_slice_beats_a_whole_gpu_the_pod_does_not_need() {
    let scoring = Scoring::new(Weights::default(), default_typical_pods().unwrap());
    let mig = vec![PartitionGpu::dynamic_mig(H100, 81_559, GpuProduct::H100_80GB); 8];
    let whole = vec![PartitionGpu::whole(H100, 81_559); 8];
    let chain = request(vec![alt(DeviceKind::Mig), alt(DeviceKind::Whole)]);
    let demand = demand_of(vec![chain]);
    let score = |gpus: &Vec<PartitionGpu>| {
        let milli = milli_view(gpus, 96_000, 96_000, 393_216, 393_216);
        let node = NodeGpus {
            gpus,
            milli,
            layout: &ByPosition,
            in_use: true,
        };
        scoring
            .evaluate(
                &node,
                &market(16.0, 8.0),
                false,
                &demand,
                Tolerance::Checkpointed,
                Detail::Explain,
            )
            .unwrap()
    };
    let (on_mig, on_whole) = (score(&mig), score(&whole));
    assert!(
        on_mig.raw_score > on_whole.raw_score,
        "{on_mig:?}\n{on_whole:?}"
    );
    // The whole GPU's surplus (6/7 of a GPU) is charged as fragmentation.
    assert!(on_whole.fragmentation > on_mig.fragmentation);
}

#[test]
fn a_replica_is_its_nodes_fixed_share_of_a_gpu() {
    let sliced = vec![PartitionGpu::shared("NVIDIA L40S", 46_068); 2];
    let replica = request(vec![alt(DeviceKind::Share)]);
    let mut node = gpus_of(&sliced);
    assert!(
        place(&node, std::slice::from_ref(&replica), Detail::Scores).is_none(),
        "no replicas on this node"
    );
    struct Quarters;
    impl GpuLayout for Quarters {
        fn replica_fraction(&self) -> Option<f64> {
            Some(0.25)
        }
    }
    node.layout = &Quarters;
    let placed = place(&node, std::slice::from_ref(&replica), Detail::Explain).unwrap();
    assert_eq!(placed.assignments[0].fraction, 0.25);
    assert_eq!(placed.needed_gpus, 0.25);
    assert_eq!(placed.choices[0].kind, "shared");
}

#[test]
fn typical_shapes_are_the_preferred_alternatives_in_milli_gpu() {
    let gpus = vec![
        PartitionGpu::dynamic_mig(H100, 81_559, GpuProduct::H100_80GB),
        PartitionGpu::whole(H100, 81_559),
    ];
    let node = gpus_of(&gpus);
    let shape = |requests: Vec<GpuRequest>| {
        typical_shape(&demand_of(requests), &node).map(|d| (d.gpus, d.gpu_milli, d.cpu_milli))
    };
    let whole = |n: u32| Alternative {
        count: Count::Exact(n),
        ..alt(DeviceKind::Whole)
    };
    assert_eq!(shape(vec![request(vec![whole(2)])]), Some((2, 1000, 4000)));
    // Two requests of whole GPUs fold into one shape of three.
    assert_eq!(
        shape(vec![request(vec![whole(1)]), request(vec![whole(2)])]),
        Some((3, 1000, 4000))
    );
    // A share: the larger of its compute and memory parts (25 % compute, 10 GiB of ~80).
    let share = Alternative {
        compute_percent: Some(25.0),
        memory_bytes: Some(10 * 1024 * 1024 * 1024),
        ..alt(DeviceKind::Shared)
    };
    assert_eq!(
        shape(vec![request(vec![share.clone()])]),
        Some((1, 250, 4000))
    );
    // Only the first alternative counts: a MIG slice first, then a whole GPU.
    let slice = Alternative {
        mig_profile: Some("1g.10gb".into()),
        ..alt(DeviceKind::Mig)
    };
    assert_eq!(
        shape(vec![request(vec![slice, whole(1)])]),
        Some((1, 142, 4000))
    );
    // No milli shape: shares of two GPUs, every device, or no GPU at all.
    assert_eq!(
        shape(vec![request(vec![share.clone()]), request(vec![share])]),
        None
    );
    let all = Alternative {
        count: Count::All,
        ..alt(DeviceKind::Whole)
    };
    assert_eq!(shape(vec![request(vec![all])]), None);
    assert_eq!(shape(vec![]), None);
    // A replica needs a node that has them.
    assert_eq!(shape(vec![request(vec![alt(DeviceKind::Share)])]), None);
}
