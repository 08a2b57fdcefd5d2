use proptest::prelude::*;

use super::*;
use crate::model::ModelSet;
use crate::scoring::frag::TypicalPod;

fn share(milli: u16, freq: f64) -> TypicalPod {
    TypicalPod {
        cpu_milli: 4000,
        gpu_milli: milli,
        gpus: 1,
        models: ModelSet::ANY,
        freq,
    }
}

/// The sharing sizes of the openb default trace's typical pods, with their popularity
/// (`TypicalPods::from_demands` at 95 %, summed over CPU and model), plus a whole-GPU and a
/// CPU-only shape that must not be priced.
fn openb_like() -> TypicalPods {
    let mut pods: Vec<TypicalPod> = [
        (810, 0.13881),
        (650, 0.03052),
        (590, 0.00966),
        (550, 0.00927),
        (470, 0.09632),
        (460, 0.01545),
        (370, 0.00579),
        (320, 0.03915),
        (230, 0.01571),
        (220, 0.00554),
        (160, 0.00695),
    ]
    .into_iter()
    .map(|(m, f)| share(m, f))
    .collect();
    pods.push(TypicalPod {
        gpus: 1,
        gpu_milli: 1000,
        ..share(1000, 0.5)
    });
    pods.push(TypicalPod {
        gpus: 0,
        gpu_milli: 0,
        ..share(0, 0.1)
    });
    TypicalPods::from_pods(pods)
}

#[test]
fn openb_prices_follow_the_optimal_packing() {
    let p = SharePrices::from_typical(&openb_like());
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
    // One 810 per GPU, and only the 160s can join it: the 810 takes the whole GPU.
    assert!(close(p.price(810), 1.0), "{}", p.price(810));
    assert!(close(p.price(160), 0.0));
    // Two 470s per GPU; a 650 and a 320 per GPU, three 320s per GPU.
    assert!(close(p.price(470), 0.5));
    assert!(close(p.price(650) + p.price(320), 1.0));
    assert!(close(p.price(320), 1.0 / 3.0));
    assert!(close(p.worth(1000), 1.0));
    // A 320 into a 470's leftover strands 210 milli nothing priced fits: 1/2 − 1/3 − 0.
    assert!(
        close(p.loss(530, 320), 1000.0 / 6.0),
        "{}",
        p.loss(530, 320)
    );
    // Along an optimal pattern nothing is lost.
    assert!(close(p.loss(1000, 320), 0.0));
    assert!(close(p.loss(350, 320), 0.0), "next to a 650");
    assert!(close(p.loss(530, 470), 0.0), "next to a 470");
    assert!(close(p.loss(190, 160), 0.0), "into an 810's leftover");
    assert!(close(p.loss(1000, 810), 0.0));
    // A 160 on a fresh GPU leaves room for an 810: nothing lost either.
    assert!(close(p.loss(1000, 160), 0.0));
    assert!(close(p.price(230), 0.25), "four per GPU");
    // A 230 into a 650's leftover takes the place of a 320 and strands 120 milli.
    assert!(p.loss(350, 230) > 0.0);
}

#[test]
fn unpriced_sizes_are_worth_their_space_and_bad_input_is_harmless() {
    let p = SharePrices::from_typical(&openb_like());
    // 480 is not typical: it is worth what priced sizes make of 480 milli (one 470).
    assert!((p.price(480) - p.worth(480)).abs() < 1e-12);
    assert_eq!(p.loss(100, 200), 0.0, "does not fit");
    assert_eq!(p.loss(2000, 100), 0.0, "out of range");
    let none = SharePrices::from_typical(&TypicalPods::from_pods(vec![]));
    assert_eq!(none, SharePrices::default());
    assert_eq!(none.loss(1000, 300), 0.0);
    let junk = TypicalPods::from_pods(vec![share(300, f64::NAN), share(0, 1.0)]);
    assert_eq!(SharePrices::from_typical(&junk), SharePrices::default());
}

proptest! {
    #[test]
    fn prices_are_a_feasible_dual_and_losses_are_never_negative(
        raw in prop::collection::vec((1u16..1000, 1u32..100), 1..12),
        free in 0u16..=1000,
        milli in 1u16..1000,
    ) {
        let pods: Vec<TypicalPod> =
            raw.iter().map(|(m, w)| share(*m, f64::from(*w))).collect();
        let p = SharePrices::from_typical(&TypicalPods::from_pods(pods));
        // No GPU can hold more than one GPU's worth of priced pods.
        prop_assert!(p.worth(1000) <= 1.0 + 1e-6, "{}", p.worth(1000));
        for (m, _) in &raw {
            prop_assert!(p.price(*m) >= 0.0 && p.price(*m) <= p.worth(*m) + 1e-9);
        }
        let loss = p.loss(free, milli);
        prop_assert!(loss >= 0.0 && loss.is_finite());
    }
}
