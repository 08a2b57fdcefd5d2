//! Calls with several claims: two checkpoint writes per call whatever the claim count, one
//! claim's failure kept to that claim, and a failed write failing the whole call cleanly.

use std::sync::Arc;

use super::*;

/// A call of several claims; `t` shares GPU 0's MPS mode with `r`, `x` wants a MIG
/// placement `r` takes in the same call.
pub(super) fn call() -> Vec<(ClaimRef, Vec<AllocatedDevice>)> {
    vec![
        (
            claim("r"),
            vec![
                dev("gpu-1-mig-1g10gb-0"),
                dev("gpu-1-mig-2g20gb-2"),
                share("gpu-0-shared", "s", mps()),
            ],
        ),
        (claim("t"), vec![share("gpu-0-shared", "t", mps())]),
        (claim("x"), vec![dev("gpu-1-mig-1g10gb-0")]),
        (claim("w"), vec![dev("gpu-2-mig-3g40gb-0")]),
        (claim("q"), vec![dev("gpu-1-mig-1g10gb-6")]),
    ]
}

pub(super) fn refs(call: &[(ClaimRef, Vec<AllocatedDevice>)]) -> Vec<ClaimRef> {
    call.iter().map(|(c, _)| c.clone()).collect()
}

/// A plan that never fires: it only records the steps passed.
fn counting() -> Arc<FaultPlan> {
    Arc::new(FaultPlan::new(usize::MAX, Fault::Fail))
}

fn writes(plan: &FaultPlan) -> Vec<Step> {
    plan.seen()
        .into_iter()
        .filter(|s| {
            matches!(
                s,
                Step::RecordPrepareStarted
                    | Step::RecordPrepareCompleted
                    | Step::RecordUnprepareStarted
                    | Step::RemoveRecord
            )
        })
        .collect()
}

#[tokio::test(flavor = "current_thread")]
async fn a_call_writes_the_checkpoint_twice_whatever_its_claim_count() {
    let node = Node::new();
    let call = call();
    let plan = counting();
    let state = node.start_with(plan.clone());
    let out = state.prepare_all(&call, &node.inventory).await;
    assert_eq!(
        writes(&plan),
        [Step::RecordPrepareStarted, Step::RecordPrepareCompleted]
    );
    let ok: Vec<bool> = out.iter().map(Result::is_ok).collect();
    assert_eq!(ok, [true, true, false, true, true], "{out:?}");
    let err = out[2].as_ref().unwrap_err();
    assert!(matches!(err, PrepareError::DeviceInUse { .. }), "{err}");
    assert!(err.to_string().contains("default/claim-r (r)"), "{err}");
    assert_eq!(out[0].as_ref().unwrap().len(), 3);
    node.assert_consistent();
    let recorded: Vec<String> = node.checkpoint().claims.into_keys().collect();
    assert_eq!(recorded, ["q", "r", "t", "w"]);
    assert_eq!(state.prepared_claims(), 4);

    // The kubelet repeats the call: the prepared claims answer from the checkpoint and
    // nothing is written; only the refused claim is planned (and refused) again.
    let ops = node.control.operations();
    let before = plan.seen().len();
    let again = state.prepare_all(&call, &node.inventory).await;
    assert_eq!(node.control.operations(), ops);
    assert_eq!(writes(&plan).len(), 2, "{:?}", &plan.seen()[before..]);
    for (i, (first, second)) in out.iter().zip(&again).enumerate() {
        match (first, second) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (Err(_), Err(_)) => {}
            other => panic!("claim {i} answered differently: {other:?}"),
        }
    }

    let unprepared = state.unprepare_all(&refs(&call)).await;
    assert!(unprepared.iter().all(Result::is_ok), "{unprepared:?}");
    assert_eq!(
        &writes(&plan)[2..],
        [Step::RecordUnprepareStarted, Step::RemoveRecord]
    );
    assert!(node.checkpoint().claims.is_empty());
    node.assert_consistent();
    // Unknown claims only: nothing to write.
    let before = writes(&plan).len();
    assert!(
        state
            .unprepare_all(&refs(&call))
            .await
            .iter()
            .all(Result::is_ok)
    );
    assert_eq!(writes(&plan).len(), before);
}

#[tokio::test(flavor = "current_thread")]
async fn a_claim_failing_mid_call_is_rolled_back_alone_and_the_others_proceed() {
    let node = Node::new();
    let state = node.start();
    let gpu0 = node.inventory.gpus[0].uuid.clone();
    // `r` creates its two MIG instances, then applying MPS to GPU 0 fails: `r` is undone,
    // and `t`, next in the call, must then set GPU 0 up itself.
    node.control.fail_next(FakeOp::ApplySharing, 1);
    let call = call();
    let out = state.prepare_all(&call, &node.inventory).await;
    let err = out[0].as_ref().unwrap_err();
    assert!(matches!(err, PrepareError::Control(_)), "{err}");
    assert!(
        out[1].is_ok() && out[3].is_ok() && out[4].is_ok(),
        "{out:?}"
    );
    // `x` was planned against `r`'s record, so it is refused even though `r` failed later.
    assert!(matches!(out[2], Err(PrepareError::DeviceInUse { .. })));
    node.assert_consistent();
    let recorded: Vec<String> = node.checkpoint().claims.into_keys().collect();
    assert_eq!(recorded, ["q", "t", "w"]);
    let hw = node.control.snapshot();
    assert_eq!(
        hw[&gpu0].sharing,
        Some(crate::prepare::device::GpuSharing::Mps)
    );
    assert_eq!(
        hw[&node.inventory.gpus[1].uuid].mig.len(),
        1,
        "only q's instance"
    );

    // The kubelet retries the failed claims: they prepare now.
    let retry: Vec<_> = call.iter().take(3).cloned().collect();
    let out = state.prepare_all(&retry, &node.inventory).await;
    assert!(out[0].is_ok() && out[1].is_ok(), "{out:?}");
    node.assert_consistent();
}

#[tokio::test(flavor = "current_thread")]
async fn a_claim_twice_in_one_call_is_refused_the_second_time() {
    let node = Node::new();
    let state = node.start();
    let twice = vec![
        (claim("a"), vec![dev("gpu-0")]),
        (claim("a"), vec![dev("gpu-0")]),
    ];
    let out = state.prepare_all(&twice, &node.inventory).await;
    assert!(out[0].is_ok(), "{out:?}");
    let err = out[1].as_ref().unwrap_err();
    assert!(
        err.to_string().contains("appears twice in one call"),
        "{err}"
    );
    let out = state.unprepare_all(&[claim("a"), claim("a")]).await;
    assert!(out[0].is_ok() && out[1].is_err(), "{out:?}");
    assert!(node.checkpoint().claims.is_empty());
    node.assert_consistent();
}

/// A directory where the checkpoint's temp file goes: every write fails, even for root.
fn break_checkpoint_writes(node: &Node) -> PathBuf {
    let blocker = node.state_dir.join(".checkpoint.json.tmp");
    std::fs::create_dir(&blocker).unwrap();
    blocker
}

#[tokio::test(flavor = "current_thread")]
async fn a_failed_first_write_fails_every_claim_before_any_device_changes() {
    let node = Node::new();
    let state = node.start();
    let blocker = break_checkpoint_writes(&node);
    let call = call();
    let out = state.prepare_all(&call, &node.inventory).await;
    for (i, outcome) in out.iter().enumerate() {
        let err = outcome.as_ref().unwrap_err();
        if i == 2 {
            assert!(matches!(err, PrepareError::DeviceInUse { .. }), "{err}");
            continue;
        }
        assert!(matches!(err, PrepareError::Call(_)), "{err:?}");
        assert_eq!(err.metric_label(), "checkpoint");
        assert!(err.to_string().contains("checkpoint.json"), "{err}");
    }
    assert_eq!(node.control.operations(), 0, "no device touched");
    assert!(node.cdi_specs().is_empty());
    assert!(node.checkpoint().claims.is_empty());

    std::fs::remove_dir(&blocker).unwrap();
    let out = state.prepare_all(&call, &node.inventory).await;
    assert_eq!(out.iter().filter(|o| o.is_ok()).count(), 4);

    // Unprepare's first write fails the same way: nothing is torn down.
    let blocker = break_checkpoint_writes(&node);
    let ops = node.control.operations();
    let out = state.unprepare_all(&refs(&call)).await;
    assert!(out[2].is_ok(), "x was never prepared: {out:?}");
    for i in [0, 1, 3, 4] {
        let err = out[i].as_ref().unwrap_err();
        assert!(err.to_string().contains("checkpoint.json"), "{err}");
    }
    assert_eq!(node.control.operations(), ops);
    assert_eq!(node.cdi_specs().len(), 4);
    std::fs::remove_dir(&blocker).unwrap();
    node.assert_consistent();
}

#[tokio::test(flavor = "current_thread")]
async fn a_failed_second_write_fails_every_claim_and_undoes_the_whole_call() {
    let node = Node::new();
    let call = call();
    // Where the second write of this call comes, counted on a twin node.
    let twin = Node::new();
    let plan = counting();
    twin.start_with(plan.clone())
        .prepare_all(&call, &twin.inventory)
        .await;
    let at = plan
        .seen()
        .iter()
        .position(|s| *s == Step::RecordPrepareCompleted)
        .unwrap();

    let state = node.start_with(Arc::new(FaultPlan::new(at, Fault::Fail)));
    let out = state.prepare_all(&call, &node.inventory).await;
    for (i, outcome) in out.iter().enumerate() {
        let err = outcome.as_ref().unwrap_err();
        if i != 2 {
            assert_eq!(err.metric_label(), "injected", "{err}");
        }
    }
    // Undone at once, not left for recovery.
    for (uuid, gpu) in node.control.snapshot() {
        assert!(
            gpu.mig.is_empty() && gpu.sharing.is_none(),
            "{uuid}: {gpu:?}"
        );
    }
    assert!(node.cdi_specs().is_empty());
    assert!(node.checkpoint().claims.is_empty());
    node.assert_consistent();
}
