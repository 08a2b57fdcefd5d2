use super::*;
use crate::model::ModelSet;
use crate::scoring::frag::TypicalPod;

fn demand(gpu_milli: u16) -> Demand {
    Demand {
        cpu_milli: 4000,
        memory_mib: 0,
        gpus: 1,
        gpu_milli,
        models: ModelSet::ANY,
    }
}

fn prior_of(gpu_milli: u16) -> TypicalPods {
    TypicalPods::from_pods(vec![TypicalPod {
        cpu_milli: 4000,
        gpu_milli,
        gpus: 1,
        models: ModelSet::ANY,
        freq: 1.0,
    }])
}

fn freq_of(t: &TypicalPods, gpu_milli: u16) -> f64 {
    t.iter()
        .filter(|p| p.gpu_milli == gpu_milli)
        .map(|p| p.freq)
        .sum()
}

fn window(half_life_pods: f64, max_shapes: usize, prior_pods: f64) -> OnlineWindow {
    OnlineWindow {
        half_life_pods,
        max_shapes,
        prior_pods,
    }
}

#[test]
fn before_any_pod_the_prior_is_the_typical_set() {
    let learner = OnlineTypical::new(&prior_of(500), OnlineWindow::default()).unwrap();
    let t = learner.typical(100.0);
    assert_eq!(t.len(), 1);
    assert!((freq_of(&t, 500) - 1.0).abs() < 1e-12);
}

#[test]
fn arrived_pods_outweigh_the_decayed_prior_as_the_half_life_says() {
    let mut learner = OnlineTypical::new(&prior_of(500), window(10.0, 64, 10.0)).unwrap();
    for _ in 0..10 {
        learner.observe(&demand(250));
    }
    // The prior decayed to 10 × ½ = 5 pods; the ten new pods, each one step older than the
    // next, weigh Σ ½^(j/10), j = 1..10 (the newest has decayed once, like the prior has).
    let new: f64 = (1..=10).map(|j| 0.5f64.powf(f64::from(j) / 10.0)).sum();
    let expected = new / (new + 5.0);
    let t = learner.typical(100.0);
    assert!((freq_of(&t, 250) - expected).abs() < 1e-9, "{t:?}");
    assert!((freq_of(&t, 500) - (1.0 - expected)).abs() < 1e-9);
    // Many half-lives later the prior is below the 95 % coverage cut and drops out.
    for _ in 0..100 {
        learner.observe(&demand(250));
    }
    let t = learner.typical(95.0);
    assert_eq!(t.len(), 1);
    assert_eq!(freq_of(&t, 250), 1.0);
    assert_eq!(learner.observed(), 110);
}

#[test]
fn recent_shapes_win_over_older_equally_common_ones() {
    let mut learner = OnlineTypical::new(&TypicalPods::default(), window(50.0, 64, 0.0)).unwrap();
    for _ in 0..100 {
        learner.observe(&demand(300));
    }
    for _ in 0..100 {
        learner.observe(&demand(700));
    }
    let t = learner.typical(100.0);
    assert!(freq_of(&t, 700) > 0.7, "{t:?}");
    assert_eq!(t.iter().next().map(|p| p.gpu_milli), Some(700));
}

#[test]
fn the_tally_never_holds_more_shapes_than_its_bound() {
    let mut learner = OnlineTypical::new(&prior_of(500), window(20.0, 4, 5.0)).unwrap();
    for milli in 1..=200u16 {
        learner.observe(&demand(milli));
        assert!(learner.shapes() <= 4);
    }
    // The newest shape is the heaviest and is kept.
    let t = learner.typical(100.0);
    assert!(freq_of(&t, 200) > 0.0);
    assert!((t.iter().map(|p| p.freq).sum::<f64>() - 1.0).abs() < 1e-9);
}

#[test]
fn long_streams_rescale_instead_of_overflowing() {
    // Half-life 1: the increment doubles per pod and passes 1e100 after ~333 pods.
    let mut learner = OnlineTypical::new(&prior_of(500), window(1.0, 8, 1.0)).unwrap();
    for i in 0..5000u32 {
        learner.observe(&demand(if i % 2 == 0 { 100 } else { 900 }));
    }
    let t = learner.typical(100.0);
    let sum: f64 = t.iter().map(|p| p.freq).sum();
    assert!((sum - 1.0).abs() < 1e-9, "{t:?}");
    // Last pod was 900, weight 1 against ½ for the 100 before it and ¼ for the 900 before…
    // so 900 holds 1 + ¼ + … = 4/3 of a total of 2: two thirds.
    assert!((freq_of(&t, 900) - 2.0 / 3.0).abs() < 1e-6, "{t:?}");
}

#[test]
fn settings_out_of_range_are_refused() {
    let prior = prior_of(500);
    assert_eq!(
        OnlineTypical::new(&prior, window(0.5, 8, 1.0)).err(),
        Some(OnlineError::HalfLife(0.5))
    );
    assert_eq!(
        OnlineTypical::new(&prior, window(f64::NAN, 8, 1.0))
            .err()
            .map(|e| matches!(e, OnlineError::HalfLife(_))),
        Some(true)
    );
    assert_eq!(
        OnlineTypical::new(&prior, window(10.0, 0, 1.0)).err(),
        Some(OnlineError::MaxShapes(0))
    );
    assert_eq!(
        OnlineTypical::new(&prior, window(10.0, 8, -1.0)).err(),
        Some(OnlineError::PriorWeight(-1.0))
    );
}

#[test]
fn prior_share_starts_whole_and_fades_as_pods_arrive() {
    let mut learner = OnlineTypical::new(&prior_of(500), window(100.0, 16, 100.0)).unwrap();
    assert_eq!(learner.prior_share(), 1.0);
    for _ in 0..100 {
        learner.observe(&demand(1000));
    }
    // The prior decayed to 50 pods' worth; the 100 pods weigh sum 0.5^(k/100), about 72.
    let share = learner.prior_share();
    assert!((0.35..0.45).contains(&share), "{share}");
    for _ in 0..2000 {
        learner.observe(&demand(1000));
    }
    assert!(learner.prior_share() < 1e-4, "{}", learner.prior_share());
}
