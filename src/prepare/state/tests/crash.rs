//! Failures and crashes injected at every step of prepare and unprepare, then a restart;
//! and a property test over random histories of prepare, unprepare, faults and restarts.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;

use proptest::prelude::*;

use super::*;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Run `call` until it finishes or, for [`Fault::Crash`], until the plan crashes it (then the
/// future is dropped, as a killed process stops: no rollback, no further writes).
async fn until_crash<F: Future>(call: F, plan: &FaultPlan, fault: Fault) -> Option<F::Output> {
    if fault == Fault::Fail {
        return Some(call.await);
    }
    tokio::select! {
        biased;
        out = call => Some(out),
        () = plan.fired() => None,
    }
}

/// A claim whose prepare passes every step: MIG creation, two sharing applications on two
/// GPUs' worth of devices, CDI and both checkpoint writes.
fn rich_claim() -> Vec<AllocatedDevice> {
    vec![
        dev("gpu-1-mig-1g10gb-0"),
        dev("gpu-1-mig-2g20gb-2"),
        share("gpu-0-shared", "s", mps()),
    ]
}

#[test]
fn a_failure_or_crash_at_every_prepare_step_leaves_nothing_half_done() {
    let rt = rt();
    for fault in [Fault::Fail, Fault::Crash] {
        let mut at = 0;
        loop {
            let node = Node::new();
            let plan = Arc::new(FaultPlan::new(at, fault));
            let fired = rt.block_on(async {
                let state = node.start_with(plan.clone());
                let out = until_crash(
                    state.prepare(&claim("r"), &rich_claim(), &node.inventory),
                    &plan,
                    fault,
                )
                .await;
                if fault == Fault::Fail && plan.has_fired() {
                    assert!(out.unwrap().is_err());
                }
                if !plan.has_fired() {
                    return false;
                }
                // Restart: a new instance on the same disk and GPUs.
                let restarted = node.start();
                restarted.recover().await.unwrap();
                node.assert_consistent();
                assert!(
                    node.checkpoint().claims.is_empty(),
                    "{fault:?} at step {at}: {:?}",
                    plan.seen()
                );
                // The kubelet retries; it must work, then unprepare must clean up.
                restarted
                    .prepare(&claim("r"), &rich_claim(), &node.inventory)
                    .await
                    .unwrap();
                node.assert_consistent();
                restarted.unprepare(&claim("r")).await.unwrap();
                node.assert_consistent();
                assert!(node.checkpoint().claims.is_empty());
                true
            });
            if !fired {
                // The run without a fault passed every kind of prepare step.
                let seen: std::collections::HashSet<Step> = plan.seen().into_iter().collect();
                for step in [
                    Step::RecordPrepareStarted,
                    Step::CreateMig,
                    Step::ApplySharing,
                    Step::WriteCdi,
                    Step::RecordPrepareCompleted,
                ] {
                    assert!(
                        seen.contains(&step),
                        "{step:?} never reached: {:?}",
                        plan.seen()
                    );
                }
                assert_eq!(at, plan.seen().len());
                break;
            }
            at += 1;
        }
    }
}

#[test]
fn a_failure_or_crash_at_every_unprepare_step_is_finished_by_a_retry_or_restart() {
    let rt = rt();
    for fault in [Fault::Fail, Fault::Crash] {
        let mut at = 0;
        loop {
            let node = Node::new();
            let plan = Arc::new(FaultPlan::new(at, fault));
            let fired = rt.block_on(async {
                node.start()
                    .prepare(&claim("r"), &rich_claim(), &node.inventory)
                    .await
                    .unwrap();
                let state = node.start_with(plan.clone());
                let out = until_crash(state.unprepare(&claim("r")), &plan, fault).await;
                if !plan.has_fired() {
                    out.unwrap().unwrap();
                    return false;
                }
                let restarted = node.start();
                restarted.recover().await.unwrap();
                node.assert_consistent();
                // Either still fully prepared (the fault came before teardown was recorded)
                // or fully gone: the kubelet's retry finishes it either way.
                restarted.unprepare(&claim("r")).await.unwrap();
                node.assert_consistent();
                assert!(
                    node.checkpoint().claims.is_empty(),
                    "{fault:?} at step {at}"
                );
                true
            });
            if !fired {
                let seen: std::collections::HashSet<Step> = plan.seen().into_iter().collect();
                for step in [
                    Step::RecordUnprepareStarted,
                    Step::DeleteCdi,
                    Step::ClearSharing,
                    Step::DestroyMig,
                    Step::RemoveRecord,
                ] {
                    assert!(
                        seen.contains(&step),
                        "{step:?} never reached: {:?}",
                        plan.seen()
                    );
                }
                assert_eq!(at, plan.seen().len());
                break;
            }
            at += 1;
        }
    }
}

// === property: random histories ===

/// Claims that compete for the same hardware in every way the model allows.
fn pool(k: usize) -> Vec<AllocatedDevice> {
    match k {
        0 => vec![dev("gpu-1-mig-1g10gb-0")],
        1 => vec![dev("gpu-1-mig-2g20gb-0")],
        2 => vec![share("gpu-0-shared", "s2", mps())],
        3 => vec![share(
            "gpu-0-shared",
            "s3",
            Some(Sharing::TimeSlicing {
                interval: TimeSliceInterval::Long,
            }),
        )],
        4 => vec![
            share("gpu-0-share-1", "s4", None),
            dev("gpu-2-mig-1g10gb-4"),
        ],
        5 => vec![dev("gpu-0")],
        6 => vec![dev("gpu-1")],
        7 => vec![dev("gpu-2-mig-3g40gb-0"), dev("gpu-1-mig-1g10gb-6")],
        8 => vec![share("gpu-1-shared", "s8", None)],
        _ => vec![
            share("gpu-1-shared", "s9", None),
            share("gpu-1-shared", "s9b", None),
        ],
    }
}

#[derive(Debug, Clone)]
enum Op {
    Prepare(usize, Option<(usize, Fault)>),
    Unprepare(usize, Option<(usize, Fault)>),
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    let fault = proptest::option::weighted(
        0.3,
        (
            0usize..8,
            prop_oneof![Just(Fault::Fail), Just(Fault::Crash)],
        ),
    );
    prop_oneof![
        4 => (0usize..10, fault.clone()).prop_map(|(k, f)| Op::Prepare(k, f)),
        3 => (0usize..10, fault).prop_map(|(k, f)| Op::Unprepare(k, f)),
        1 => Just(Op::Restart),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_histories_never_lose_double_prepare_or_half_prepare(ops in proptest::collection::vec(op(), 1..14)) {
        let rt = rt();
        let node = Node::new();
        rt.block_on(async {
            // What the kubelet was told: claims whose last answer was "prepared", and claims
            // whose unprepare failed or crashed (the kubelet retries those and never uses
            // them again, so either outcome is correct until it does).
            let mut prepared: BTreeSet<usize> = BTreeSet::new();
            let mut unpreparing: BTreeSet<usize> = BTreeSet::new();
            let mut state = node.start();
            state.recover().await.unwrap();
            for op in ops {
                let mut crashed = false;
                match op {
                    Op::Prepare(k, fault) => {
                        let c = claim(&format!("c{k}"));
                        let devices = pool(k);
                        let result = match fault {
                            Some((at, f)) => {
                                let plan = Arc::new(FaultPlan::new(at, f));
                                let s = node.start_with(plan.clone());
                                let out = until_crash(s.prepare(&c, &devices, &node.inventory), &plan, f).await;
                                crashed = out.is_none();
                                out
                            }
                            None => Some(state.prepare(&c, &devices, &node.inventory).await),
                        };
                        if let Some(Ok(answer)) = result {
                            prepared.insert(k);
                            unpreparing.remove(&k);
                            prop_assert_eq!(answer.len(), devices.len());
                        }
                    }
                    Op::Unprepare(k, fault) => {
                        let c = claim(&format!("c{k}"));
                        let result = match fault {
                            Some((at, f)) => {
                                let plan = Arc::new(FaultPlan::new(at, f));
                                let s = node.start_with(plan.clone());
                                let out = until_crash(s.unprepare(&c), &plan, f).await;
                                crashed = out.is_none();
                                out
                            }
                            None => Some(state.unprepare(&c).await),
                        };
                        prepared.remove(&k);
                        if let Some(Ok(())) = result {
                            unpreparing.remove(&k);
                        } else {
                            unpreparing.insert(k);
                        }
                    }
                    Op::Restart => crashed = true,
                }
                if crashed {
                    state = node.start();
                }
                // Recovery (at start and periodically) is what guarantees the invariants
                // after a failed or crashed call.
                state.recover().await.unwrap();
                node.assert_consistent();
                let recorded: BTreeSet<usize> = node
                    .checkpoint()
                    .claims
                    .keys()
                    .map(|uid| uid[1..].parse().unwrap())
                    .collect();
                // No claim the kubelet was told is prepared is lost, and nothing is recorded
                // that the kubelet was not told about.
                prop_assert!(prepared.is_subset(&recorded), "lost: {:?} vs {:?}", prepared, recorded);
                let allowed: BTreeSet<usize> = prepared.union(&unpreparing).copied().collect();
                prop_assert!(recorded.is_subset(&allowed), "unexpected: {:?} vs {:?}", recorded, allowed);
            }
            Ok(())
        })?;
    }
}
