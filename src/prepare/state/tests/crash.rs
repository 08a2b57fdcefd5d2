//! Failures and crashes injected at every step of prepare and unprepare, then a restart;
//! and a property test over random histories of prepare, unprepare, faults and restarts.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;

use proptest::prelude::*;

use super::batch::{call, refs};
use super::*;

pub(super) fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Run `call` until it finishes or, for [`Fault::Crash`], until the plan crashes it (then the
/// future is dropped, as a killed process stops: no rollback, no further writes).
pub(super) async fn until_crash<F: Future>(
    call: F,
    plan: &FaultPlan,
    fault: Fault,
) -> Option<F::Output> {
    if fault == Fault::Fail {
        return Some(call.await);
    }
    // The fault first: a crash inside a GPU operation returns from its blocking thread at
    // once, and the call must never see that return.
    tokio::select! {
        biased;
        () = plan.fired() => None,
        out = call => Some(out),
    }
}

/// A claim whose prepare passes every step: MIG creation, two sharing applications on two
/// GPUs' worth of devices, CDI and both checkpoint writes.
pub(super) fn rich_claim() -> Vec<AllocatedDevice> {
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
                let restarted = node.restart_recovered().await;
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
                    Step::CreateComputeInstance,
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
                let restarted = node.restart_recovered().await;
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
                    Step::DestroyGpuInstance,
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

/// The claims of [`call`] a first attempt may leave prepared: with a crash none are (the
/// second write never happens); with a failure, exactly those answered as prepared.
fn recorded_uids(node: &Node) -> BTreeSet<String> {
    node.checkpoint().claims.into_keys().collect()
}

#[test]
fn a_failure_or_crash_at_every_step_of_a_multi_claim_prepare_keeps_claims_apart() {
    let rt = rt();
    let call = call();
    for fault in [Fault::Fail, Fault::Crash] {
        let mut at = 0;
        loop {
            let node = Node::new();
            let plan = Arc::new(FaultPlan::new(at, fault));
            let fired = rt.block_on(async {
                let state = node.start_with(plan.clone());
                let out =
                    until_crash(state.prepare_all(&call, &node.inventory), &plan, fault).await;
                if !plan.has_fired() {
                    return false;
                }
                let told: BTreeSet<String> = match &out {
                    Some(outcomes) => call
                        .iter()
                        .zip(outcomes)
                        .filter(|(_, o)| o.is_ok())
                        .map(|((c, _), _)| c.uid.clone())
                        .collect(),
                    None => BTreeSet::new(),
                };
                if let Some(outcomes) = &out {
                    assert!(
                        outcomes.iter().any(Result::is_err),
                        "{fault:?} at step {at} failed no claim"
                    );
                }
                let restarted = node.restart_recovered().await;
                assert_eq!(
                    recorded_uids(&node),
                    told,
                    "{fault:?} at step {at}: {:?}",
                    plan.seen()
                );
                // The kubelet retries the whole call: every claim but the refused one
                // prepares; then unprepare cleans up.
                let again = restarted.prepare_all(&call, &node.inventory).await;
                let ok: Vec<bool> = again.iter().map(Result::is_ok).collect();
                assert_eq!(ok, [true, true, false, true, true], "{again:?}");
                node.assert_consistent();
                let gone = restarted.unprepare_all(&refs(&call)).await;
                assert!(gone.iter().all(Result::is_ok), "{gone:?}");
                node.assert_consistent();
                assert!(node.checkpoint().claims.is_empty());
                true
            });
            if !fired {
                let seen = plan.seen();
                let count = |step| seen.iter().filter(|s| **s == step).count();
                assert_eq!(count(Step::RecordPrepareStarted), 1, "{seen:?}");
                assert_eq!(count(Step::RecordPrepareCompleted), 1, "{seen:?}");
                assert_eq!(count(Step::WriteCdi), 4, "{seen:?}");
                assert!(count(Step::CreateMig) >= 3 && count(Step::ApplySharing) == 1);
                assert_eq!(at, seen.len());
                break;
            }
            at += 1;
        }
    }
}

#[test]
fn a_failure_or_crash_at_every_step_of_a_multi_claim_unprepare_is_finished_by_a_retry() {
    let rt = rt();
    let call = call();
    for fault in [Fault::Fail, Fault::Crash] {
        let mut at = 0;
        loop {
            let node = Node::new();
            let plan = Arc::new(FaultPlan::new(at, fault));
            let fired = rt.block_on(async {
                let prepared = node.start().prepare_all(&call, &node.inventory).await;
                assert_eq!(prepared.iter().filter(|o| o.is_ok()).count(), 4);
                let state = node.start_with(plan.clone());
                let out = until_crash(state.unprepare_all(&refs(&call)), &plan, fault).await;
                if !plan.has_fired() {
                    assert!(out.unwrap().iter().all(Result::is_ok));
                    return false;
                }
                let restarted = node.restart_recovered().await;
                // Each claim is still fully prepared or fully gone; the retry finishes it.
                let gone = restarted.unprepare_all(&refs(&call)).await;
                assert!(gone.iter().all(Result::is_ok), "{gone:?}");
                node.assert_consistent();
                assert!(
                    node.checkpoint().claims.is_empty(),
                    "{fault:?} at step {at}"
                );
                true
            });
            if !fired {
                let seen = plan.seen();
                let count = |step| seen.iter().filter(|s| **s == step).count();
                assert_eq!(count(Step::RecordUnprepareStarted), 1, "{seen:?}");
                assert_eq!(count(Step::RemoveRecord), 1, "{seen:?}");
                assert_eq!(count(Step::DeleteCdi), 4, "{seen:?}");
                assert_eq!(at, seen.len());
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

/// One kubelet call naming 1 to 3 distinct claims of [`pool`] (in any order), maybe with
/// a fault at one of its steps.
#[derive(Debug, Clone)]
enum Op {
    Prepare(Vec<usize>, Option<(usize, Fault)>),
    Unprepare(Vec<usize>, Option<(usize, Fault)>),
    Restart,
}

fn claims_of_a_call() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(0usize..10, 1..=3).prop_map(|mut ks| {
        let mut seen = BTreeSet::new();
        ks.retain(|k| seen.insert(*k));
        ks
    })
}

fn op() -> impl Strategy<Value = Op> {
    let fault = proptest::option::weighted(
        0.3,
        (
            0usize..14,
            prop_oneof![Just(Fault::Fail), Just(Fault::Crash)],
        ),
    );
    prop_oneof![
        4 => (claims_of_a_call(), fault.clone()).prop_map(|(ks, f)| Op::Prepare(ks, f)),
        3 => (claims_of_a_call(), fault).prop_map(|(ks, f)| Op::Unprepare(ks, f)),
        1 => Just(Op::Restart),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

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
            node.recover_clean(&state).await;
            for op in ops {
                let mut crashed = false;
                match op {
                    Op::Prepare(ks, fault) => {
                        let call: Vec<(ClaimRef, Vec<AllocatedDevice>)> =
                            ks.iter().map(|&k| (claim(&format!("c{k}")), pool(k))).collect();
                        let result = match fault {
                            Some((at, f)) => {
                                let plan = Arc::new(FaultPlan::new(at, f));
                                let s = node.start_with(plan.clone());
                                let out = until_crash(s.prepare_all(&call, &node.inventory), &plan, f).await;
                                crashed = out.is_none();
                                out
                            }
                            None => Some(state.prepare_all(&call, &node.inventory).await),
                        };
                        for (i, outcome) in result.iter().flatten().enumerate() {
                            if let Ok(answer) = outcome {
                                prepared.insert(ks[i]);
                                unpreparing.remove(&ks[i]);
                                prop_assert_eq!(answer.len(), call[i].1.len());
                            }
                        }
                    }
                    Op::Unprepare(ks, fault) => {
                        let call: Vec<ClaimRef> = ks.iter().map(|k| claim(&format!("c{k}"))).collect();
                        let result = match fault {
                            Some((at, f)) => {
                                let plan = Arc::new(FaultPlan::new(at, f));
                                let s = node.start_with(plan.clone());
                                let out = until_crash(s.unprepare_all(&call), &plan, f).await;
                                crashed = out.is_none();
                                out
                            }
                            None => Some(state.unprepare_all(&call).await),
                        };
                        for (i, &k) in ks.iter().enumerate() {
                            prepared.remove(&k);
                            match result.as_ref().and_then(|r| r.get(i)) {
                                Some(Ok(())) => unpreparing.remove(&k),
                                _ => unpreparing.insert(k),
                            };
                        }
                    }
                    Op::Restart => crashed = true,
                }
                if crashed {
                    state = node.start();
                }
                // Recovery (at start and periodically) is what guarantees the invariants
                // after a failed or crashed call.
                node.recover_clean(&state).await;
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
