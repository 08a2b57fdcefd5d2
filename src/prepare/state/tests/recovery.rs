//! Faults where the crash tests stop short: during recovery itself, and a disk on which
//! every write fails for as long as the test says.

use std::sync::Arc;

use super::crash::{rich_claim, rt, until_crash};
use super::*;

/// The node's hardware is covered by the checkpoint: every MIG instance sits where a
/// recorded claim (of any state) put it, and every CDI spec belongs to a recorded claim.
/// What must hold even while a write is failing, when records cannot be dropped yet.
fn nothing_unrecorded(node: &Node) {
    let data = node.checkpoint();
    let recorded: BTreeSet<(String, Placement)> =
        data.claims
            .values()
            .flat_map(|r| r.devices.iter())
            .filter_map(|d| match &d.kind {
                DeviceKind::DynamicMig { placement, .. }
                | DeviceKind::SharedMig { placement, .. } => Some((d.gpu.uuid.clone(), *placement)),
                _ => None,
            })
            .collect();
    for (uuid, gpu) in node.control.snapshot() {
        for placement in gpu.mig.keys().chain(gpu.bare.keys()) {
            assert!(
                recorded.contains(&(uuid.clone(), *placement)),
                "instance {uuid} {placement:?} is not recorded"
            );
        }
    }
    let cdi = CdiDir::new(&node.cdi_dir, "gpu.tessera.dev");
    for uid in cdi.claims_with_specs().unwrap() {
        assert!(data.claims.contains_key(&uid), "spec of unrecorded {uid}");
    }
}

#[test]
fn a_failure_or_crash_at_every_step_of_recovery_after_a_crashed_prepare_is_finished_by_the_next() {
    let rt = rt();
    let mut outer = 0;
    loop {
        let node = Node::new();
        let crash = Arc::new(FaultPlan::new(outer, Fault::Crash));
        let crashed = rt.block_on(async {
            let state = node.start_with(crash.clone());
            let out = until_crash(
                state.prepare(&claim("r"), &rich_claim(), &node.inventory),
                &crash,
                Fault::Crash,
            )
            .await;
            out.is_none()
        });
        if !crashed {
            break;
        }
        let mut inner_steps = 0;
        for fault in [Fault::Fail, Fault::Crash] {
            let mut inner = 0;
            loop {
                // The same crash, then a recovery with a fault at its `inner`-th step.
                let node = Node::new();
                let fired = rt.block_on(async {
                    let crash = Arc::new(FaultPlan::new(outer, Fault::Crash));
                    let state = node.start_with(crash.clone());
                    let first = until_crash(
                        state.prepare(&claim("r"), &rich_claim(), &node.inventory),
                        &crash,
                        Fault::Crash,
                    )
                    .await;
                    assert!(first.is_none());
                    let plan = Arc::new(FaultPlan::new(inner, fault));
                    let recovering = node.start_with(plan.clone());
                    let _ = until_crash(recovering.recover(&node.inventory), &plan, fault).await;
                    if !plan.has_fired() {
                        inner_steps = inner_steps.max(plan.seen().len());
                        return false;
                    }
                    nothing_unrecorded(&node);
                    // The next recovery (periodic, or after another restart) finishes it.
                    let restarted = node.restart_recovered().await;
                    assert!(
                        node.checkpoint().claims.is_empty(),
                        "crash at {outer}, {fault:?} at recovery step {inner}: {:?}",
                        plan.seen()
                    );
                    restarted
                        .prepare(&claim("r"), &rich_claim(), &node.inventory)
                        .await
                        .unwrap();
                    node.assert_consistent();
                    true
                });
                if !fired {
                    break;
                }
                inner += 1;
            }
        }
        // Recovery after a crash past the first write had something to undo, with steps.
        if outer > 0 {
            assert!(
                inner_steps > 0,
                "recovery after a crash at {outer} took no step"
            );
        }
        outer += 1;
    }
    assert!(outer > 5, "the prepare crashed at only {outer} steps");
}

#[test]
fn a_failure_or_crash_at_every_step_of_recovering_a_corrupt_checkpoint_is_finished_by_the_next() {
    let rt = rt();
    for fault in [Fault::Fail, Fault::Crash] {
        let mut at = 0;
        loop {
            let node = Node::new();
            let fired = rt.block_on(async {
                let state = node.start();
                state
                    .prepare(&claim("r"), &rich_claim(), &node.inventory)
                    .await
                    .unwrap();
                let path = node.state_dir.join("checkpoint.json");
                std::fs::write(&path, b"{\"version\":1,\"checksum\":").unwrap();
                let plan = Arc::new(FaultPlan::new(at, fault));
                let recovering = node.start_with(plan.clone());
                let _ = until_crash(recovering.recover(&node.inventory), &plan, fault).await;
                if !plan.has_fired() {
                    let seen = plan.seen();
                    for step in [
                        Step::MoveCorrupt,
                        Step::RecordRecovery,
                        Step::DestroyMig,
                        Step::DestroyGpuInstance,
                        Step::RemoveOrphanCdi,
                        Step::ClearSharing,
                    ] {
                        assert!(seen.contains(&step), "{step:?} never reached: {seen:?}");
                    }
                    return false;
                }
                // Whatever the fault left, the next recovery ends with nothing the
                // checkpoint does not account for, and the claim prepares again.
                let restarted = node.start();
                let report = restarted.recover(&node.inventory).await.unwrap();
                assert!(report.orphans_left.is_empty(), "{report:?}");
                node.assert_consistent();
                assert!(node.checkpoint().claims.is_empty());
                assert_eq!(
                    std::fs::read(node.state_dir.join("checkpoint.json.corrupt-1")).unwrap(),
                    b"{\"version\":1,\"checksum\":",
                    "kept, once"
                );
                assert!(!node.state_dir.join("checkpoint.json.corrupt-2").exists());
                restarted
                    .prepare(&claim("r"), &rich_claim(), &node.inventory)
                    .await
                    .unwrap();
                node.assert_consistent();
                true
            });
            if !fired {
                break;
            }
            at += 1;
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn with_every_write_failing_nothing_is_lost_and_the_node_stays_covered_by_its_checkpoint() {
    let node = Node::new();
    let state = node.start();
    state
        .prepare(&claim("a"), &[dev("gpu-1-mig-1g10gb-0")], &node.inventory)
        .await
        .unwrap();
    // A prepare that dies inside MIG creation, for recovery to finish on the broken disk.
    let crash = Arc::new(FaultPlan::new(2, Fault::Crash));
    let crashing = node.start_with(crash.clone());
    let out = until_crash(
        crashing.prepare(&claim("c"), &[dev("gpu-1-mig-1g10gb-2")], &node.inventory),
        &crash,
        Fault::Crash,
    )
    .await;
    assert!(out.is_none());
    assert_eq!(crash.seen()[2], Step::CreateComputeInstance);

    // The disk now refuses every write: a directory where each temp file must go (real
    // I/O errors, from open(2)), so neither the checkpoint nor any claim's spec can be
    // written. Reads still work, as on a disk that went read-only.
    let blocked: Vec<PathBuf> = [".checkpoint.json.tmp"]
        .iter()
        .map(|name| node.state_dir.join(name))
        .chain(["a", "b", "c"].iter().map(|uid| {
            node.cdi_dir
                .join(format!(".k8s.gpu.tessera.dev-claim_{uid}.json.tmp"))
        }))
        .collect();
    for path in &blocked {
        std::fs::create_dir(path).unwrap();
    }
    let before = std::fs::read(node.state_dir.join("checkpoint.json")).unwrap();

    let state = node.start();
    // Recovery undoes the crashed claim's half-made instance but cannot record that.
    let err = state.recover(&node.inventory).await.unwrap_err();
    assert!(matches!(err, PrepareError::Checkpoint(_)), "{err}");
    assert!(err.to_string().contains("checkpoint.json"), "{err}");
    nothing_unrecorded(&node);
    for _ in 0..3 {
        let err = state
            .prepare(&claim("b"), &[dev("gpu-1-mig-1g10gb-4")], &node.inventory)
            .await
            .unwrap_err();
        assert!(matches!(err, PrepareError::Checkpoint(_)), "{err}");
        let err = state.unprepare(&claim("a")).await.unwrap_err();
        assert!(matches!(err, PrepareError::Checkpoint(_)), "{err}");
        assert!(state.recover(&node.inventory).await.is_err());
        nothing_unrecorded(&node);
    }
    // Nothing was lost: the checkpoint is the one before the failure, a still prepared
    // with its instance and spec.
    assert_eq!(
        std::fs::read(node.state_dir.join("checkpoint.json")).unwrap(),
        before
    );
    assert!(
        node.cdi_dir
            .join("k8s.gpu.tessera.dev-claim_a.json")
            .exists()
    );

    // The disk recovers: the next recovery finishes c's rollback, and the kubelet's
    // retries go through.
    for path in &blocked {
        std::fs::remove_dir(path).unwrap();
    }
    node.recover_clean(&state).await;
    node.assert_consistent();
    assert_eq!(
        node.checkpoint().claims.keys().collect::<Vec<_>>(),
        vec!["a"]
    );
    state
        .prepare(&claim("b"), &[dev("gpu-1-mig-1g10gb-4")], &node.inventory)
        .await
        .unwrap();
    state.unprepare(&claim("a")).await.unwrap();
    node.assert_consistent();
    assert_eq!(
        node.checkpoint().claims.keys().collect::<Vec<_>>(),
        vec!["b"]
    );
}

/// The index of the first `step` a fault-free prepare of `devices` reaches.
fn first_index_of(node: &Node, devices: &[AllocatedDevice], step: Step) -> usize {
    let rt = rt();
    let probe = Arc::new(FaultPlan::new(usize::MAX, Fault::Fail));
    rt.block_on(async {
        node.start_with(probe.clone())
            .prepare(&claim("probe"), devices, &node.inventory)
            .await
            .unwrap();
        node.start().unprepare(&claim("probe")).await.unwrap();
    });
    probe
        .seen()
        .iter()
        .position(|s| *s == step)
        .unwrap_or_else(|| panic!("{step:?} not reached: {:?}", probe.seen()))
}

#[test]
fn the_named_intermediate_states_are_reached_and_undone() {
    // (a) GPU instance created, compute instance not; (b) sharing mode set, CDI spec not
    // written. Each: crash there, see the state, restart, recover, retry.
    let mig = [dev("gpu-1-mig-3g40gb-0")];
    let shared = [share("gpu-0-shared", "s", mps())];
    for (devices, step) in [
        (&mig[..], Step::CreateComputeInstance),
        (&shared[..], Step::WriteCdi),
    ] {
        let node = Node::new();
        let at = first_index_of(&node, devices, step);
        let rt = rt();
        rt.block_on(async {
            let plan = Arc::new(FaultPlan::new(at, Fault::Crash));
            let state = node.start_with(plan.clone());
            let out = until_crash(
                state.prepare(&claim("x"), devices, &node.inventory),
                &plan,
                Fault::Crash,
            )
            .await;
            assert!(out.is_none());
            let gpus = node.control.snapshot();
            match step {
                Step::CreateComputeInstance => {
                    let gpu1 = &gpus[&node.inventory.gpus[1].uuid];
                    assert_eq!(gpu1.bare.len(), 1, "{gpu1:?}");
                    assert!(gpu1.mig.is_empty());
                }
                _ => {
                    let gpu0 = &gpus[&node.inventory.gpus[0].uuid];
                    assert!(gpu0.sharing.is_some());
                    assert!(node.cdi_specs().is_empty());
                }
            }
            assert_eq!(
                node.checkpoint().claims["x"].state,
                ClaimState::PrepareStarted
            );
            let restarted = node.start();
            let report = node.recover_clean(&restarted).await;
            assert_eq!(report.rolled_back, vec!["x".to_owned()]);
            node.assert_consistent();
            assert!(node.checkpoint().claims.is_empty());
            restarted
                .prepare(&claim("x"), devices, &node.inventory)
                .await
                .unwrap();
            node.assert_consistent();
        });
    }
}
