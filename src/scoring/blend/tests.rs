use proptest::prelude::*;

use super::*;
use crate::scoring::extender_range::{MAX_EXTENDER_PRIORITY, to_extender_range};

fn on_demand(price_per_gpu_hour: f64, gpus: f64) -> NodeInputs {
    NodeInputs {
        price_per_gpu_hour,
        node_hourly_price: price_per_gpu_hour * gpus,
        in_use: true,
        capacity: CapacityType::OnDemand,
        hourly_interruption_probability: 0.0,
        interruption_notice: false,
    }
}

fn spot(price_per_gpu_hour: f64, gpus: f64, probability: f64) -> NodeInputs {
    NodeInputs {
        capacity: CapacityType::Spot,
        hourly_interruption_probability: probability,
        ..on_demand(price_per_gpu_hour, gpus)
    }
}

fn pod(tolerance: Tolerance, partition_gpus: f64) -> PodInputs {
    PodInputs {
        tolerance,
        partition_gpus,
        frag_gpus: 0.0,
    }
}

#[test]
fn the_cheaper_partition_scores_higher() {
    let w = Weights::default();
    let p = pod(Tolerance::Checkpointed, 0.5);
    let cheap = score_node(&on_demand(1.0, 8.0), &p, &w);
    let dear = score_node(&on_demand(3.0, 8.0), &p, &w);
    assert_eq!(cheap.hourly_cost, 0.5);
    assert_eq!(dear.hourly_cost, 1.5);
    assert!(cheap.score > dear.score);
    assert_eq!(cheap.risk_cost, 0.0, "on-demand nodes carry no risk");
}

#[test]
fn risk_is_probability_times_cost_times_lost_hours() {
    let w = Weights::default();
    let node = spot(0.4125, 1.0, 4.9526e-4);
    let checkpointed = score_node(&node, &pod(Tolerance::Checkpointed, 1.0), &w);
    assert!((checkpointed.risk_cost - 4.9526e-4 * 0.4125 * 0.5).abs() < 1e-12);
    let tolerant = score_node(&node, &pod(Tolerance::Tolerant, 1.0), &w);
    assert!((tolerant.risk_cost - 4.9526e-4 * 0.4125 * 2.0 / 60.0).abs() < 1e-12);
    assert!(tolerant.score > checkpointed.score);
    assert!(checkpointed.is_feasible() && tolerant.is_feasible());
}

#[test]
fn intolerant_pods_are_filtered_off_spot_and_interruptible_nodes() {
    let w = Weights::default();
    let intolerant = pod(Tolerance::Intolerant, 1.0);
    let on_spot = score_node(&spot(1.0, 1.0, 0.0), &intolerant, &w);
    assert_eq!(
        on_spot.filtered,
        Some(FilterReason::IntolerantOnInterruptible),
        "spot even with an unknown (zero) probability"
    );
    let risky = NodeInputs {
        hourly_interruption_probability: 1e-4,
        ..on_demand(1.0, 1.0)
    };
    assert!(!score_node(&risky, &intolerant, &w).is_feasible());
    assert!(score_node(&on_demand(1.0, 1.0), &intolerant, &w).is_feasible());
    assert_eq!(on_spot.risk_cost, 0.0);
}

#[test]
fn an_interruption_notice_filters_every_pod() {
    let w = Weights::default();
    for tolerance in Tolerance::ALL {
        let node = NodeInputs {
            interruption_notice: true,
            ..spot(1.0, 1.0, 1e-4)
        };
        let decision = score_node(&node, &pod(tolerance, 1.0), &w);
        assert_eq!(
            decision.filtered,
            Some(FilterReason::InterruptionImminent),
            "{tolerance}"
        );
    }
}

#[test]
fn starting_an_idle_node_costs_its_whole_price() {
    let w = Weights::default();
    let p = pod(Tolerance::Checkpointed, 0.5);
    let busy = score_node(&on_demand(1.0, 8.0), &p, &w);
    let idle = score_node(
        &NodeInputs {
            in_use: false,
            ..on_demand(1.0, 8.0)
        },
        &p,
        &w,
    );
    assert_eq!(busy.pack_term, 0.0);
    assert_eq!(idle.pack_term, 8.0);
    assert!((busy.score - idle.score - w.pack * 8.0).abs() < 1e-12);
}

#[test]
fn fragmentation_is_charged_per_gpu_at_the_frag_weight() {
    let w = Weights::default();
    let mut p = pod(Tolerance::Checkpointed, 0.5);
    p.frag_gpus = 0.12;
    let d = score_node(&on_demand(1.0, 8.0), &p, &w);
    assert!((d.frag_term - w.frag * 0.12).abs() < 1e-12);
    assert!((d.score + d.hourly_cost * w.cost + d.frag_term).abs() < 1e-12);
}

#[test]
fn without_cost_weights_only_fragmentation_orders_nodes() {
    let w = Weights::default().without_cost();
    let mut p = pod(Tolerance::Tolerant, 0.5);
    p.frag_gpus = 0.06;
    let dear = score_node(&on_demand(5.0, 8.0), &p, &w);
    let cheap = score_node(&spot(0.5, 8.0, 5e-4), &p, &w);
    assert_eq!(dear.score, cheap.score);
    assert_eq!(dear.score, -w.frag * 0.06);
}

#[test]
fn unknown_prices_fall_back_and_nan_probability_is_cautious() {
    let w = Weights::default();
    let p = pod(Tolerance::Checkpointed, 1.0);
    for bad in [f64::NAN, -1.0, f64::INFINITY, f64::NEG_INFINITY] {
        let d = score_node(&on_demand(bad, 1.0), &p, &w);
        assert_eq!(d.hourly_cost, FALLBACK_USD_PER_GPU_HOUR, "{bad}");
        assert!(d.score.is_finite());
    }
    let d = score_node(&spot(1.0, 1.0, f64::NAN), &p, &w);
    assert_eq!(
        d.risk_cost, 0.5,
        "NaN probability counts as certain interruption"
    );
}

fn any_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::MAX),
        Just(f64::MIN),
        Just(0.0),
        Just(-0.0),
        -1e3..1e3f64,
        any::<f64>(),
    ]
}

fn any_capacity() -> impl Strategy<Value = CapacityType> {
    prop_oneof![
        Just(CapacityType::OnDemand),
        Just(CapacityType::Spot),
        Just(CapacityType::Reserved),
    ]
}

fn any_tolerance() -> impl Strategy<Value = Tolerance> {
    prop_oneof![
        Just(Tolerance::Intolerant),
        Just(Tolerance::Checkpointed),
        Just(Tolerance::Tolerant),
    ]
}

fn valid_weight() -> impl Strategy<Value = f64> {
    prop_oneof![Just(0.0), Just(MAX_WEIGHT), 0.0..=MAX_WEIGHT]
}

fn any_weights() -> impl Strategy<Value = Weights> {
    (
        valid_weight(),
        valid_weight(),
        valid_weight(),
        valid_weight(),
        1e-3..=10_080.0f64,
        0.0..=1440.0f64,
    )
        .prop_map(|(cost, risk, frag, pack, interval, tolerant)| Weights {
            cost,
            risk,
            frag,
            pack,
            checkpoint_interval_minutes: interval,
            tolerant_loss_minutes: tolerant,
            ..Weights::default()
        })
}

use crate::scoring::weights::MAX_WEIGHT;

proptest! {
    #[test]
    fn every_term_and_the_score_are_finite_and_prices_never_negative(
        price in any_f64(),
        node_price in any_f64(),
        probability in any_f64(),
        partition in any_f64(),
        frag in any_f64(),
        in_use in any::<bool>(),
        notice in any::<bool>(),
        capacity in any_capacity(),
        tolerance in any_tolerance(),
        weights in any_weights(),
    ) {
        prop_assert!(weights.validate("generated").is_ok());
        let node = NodeInputs {
            price_per_gpu_hour: price,
            node_hourly_price: node_price,
            in_use,
            capacity,
            hourly_interruption_probability: probability,
            interruption_notice: notice,
        };
        let pod = PodInputs { tolerance, partition_gpus: partition, frag_gpus: frag };
        let d = score_node(&node, &pod, &weights);
        for term in [d.hourly_cost, d.risk_cost, d.pack_term] {
            prop_assert!(term.is_finite() && term >= 0.0, "{d:?}");
        }
        prop_assert!(d.frag_term.is_finite(), "{d:?}");
        prop_assert!(d.score.is_finite(), "{d:?}");
        prop_assert!(d.score > f64::MIN, "no clamping needed with valid weights: {d:?}");
    }

    #[test]
    fn extender_priorities_stay_in_range_and_respect_order(
        scores in proptest::collection::vec(any_f64(), 0..40),
    ) {
        let mapped = to_extender_range(&scores);
        prop_assert_eq!(mapped.len(), scores.len());
        for (s, m) in scores.iter().zip(&mapped) {
            prop_assert!((0..=MAX_EXTENDER_PRIORITY).contains(m));
            if !s.is_finite() {
                prop_assert_eq!(*m, 0);
            }
        }
        for (i, a) in scores.iter().enumerate() {
            for (j, b) in scores.iter().enumerate() {
                if a.is_finite() && b.is_finite() {
                    if a == b {
                        prop_assert_eq!(mapped[i], mapped[j]);
                    } else if a < b {
                        prop_assert!(mapped[i] <= mapped[j]);
                    }
                }
            }
        }
    }
}
