//! The sequencer against fake GPUs in a temp dir: happy paths, refusals, failures and
//! restarts; `crash` injects faults at every step and runs random histories.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use super::*;
use crate::model::mig::Placement;
use crate::prepare::checkpoint::CheckpointStore;
use crate::prepare::config::{DeviceConfig, Sharing, TimeSliceInterval};
use crate::prepare::control::{FakeGpuControl, FakeOp};
use crate::prepare::fault::{Fault, Step};
use crate::prepare::test_inventory::mixed;

// === harness ===

/// One node: its directories and its (fake) GPUs, which outlive plugin restarts.
struct Node {
    _dir: tempfile::TempDir,
    state_dir: PathBuf,
    cdi_dir: PathBuf,
    mps_root: PathBuf,
    control: Arc<FakeGpuControl>,
    inventory: Inventory,
}

impl Node {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let state_dir = dir.path().join("state");
        let cdi_dir = dir.path().join("cdi");
        std::fs::create_dir_all(&state_dir).unwrap();
        std::fs::create_dir_all(&cdi_dir).unwrap();
        Node {
            mps_root: dir.path().join("mps"),
            _dir: dir,
            state_dir,
            cdi_dir,
            control: Arc::new(FakeGpuControl::with_device_nodes()),
            inventory: mixed(),
        }
    }

    fn mps_config(&self) -> MpsConfig {
        MpsConfig {
            root: self.mps_root.clone(),
            control_binary: PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/fake-mps-control"),
        }
    }

    fn daemons(&self) -> crate::prepare::mps::DaemonsData {
        MpsDaemons::new(self.mps_config(), &self.state_dir)
            .load()
            .unwrap()
    }

    fn config(&self, boot_id: &str) -> StateConfig {
        StateConfig {
            driver: "gpu.tessera.dev".to_owned(),
            state_dir: self.state_dir.clone(),
            cdi_dir: self.cdi_dir.clone(),
            share_replicas: 4,
            boot_id: boot_id.to_owned(),
            mps: self.mps_config(),
        }
    }

    /// A freshly started plugin instance (any fault plan on the GPUs is gone with the
    /// instance that had it).
    fn start(&self) -> DeviceState {
        self.control.set_faults(None);
        DeviceState::new(self.config("boot-1"), self.control.clone())
    }

    /// An instance whose steps, and the GPUs' steps inside MIG creation and destruction,
    /// go through `plan`.
    fn start_with(&self, plan: Arc<FaultPlan>) -> DeviceState {
        let state = self.start().with_faults(plan.clone());
        self.control.set_faults(Some(plan));
        state
    }

    /// Recovery on a readable checkpoint: the records alone account for everything, so it
    /// finds no orphan to remove (one would mean the record-first protocol leaked).
    async fn recover_clean(&self, state: &DeviceState) -> RecoveryReport {
        let report = state.recover(&self.inventory).await.unwrap();
        assert!(
            report.orphan_instances_removed.is_empty()
                && report.orphan_specs_removed.is_empty()
                && report.orphans_left.is_empty()
                && report.corrupt_moved_to.is_none(),
            "{report:?}"
        );
        report
    }

    /// A new instance on the same disk and GPUs (a plugin restart), recovered cleanly, with
    /// the node consistent after it.
    async fn restart_recovered(&self) -> DeviceState {
        let state = self.start();
        self.recover_clean(&state).await;
        self.assert_consistent();
        state
    }

    fn checkpoint(&self) -> CheckpointData {
        CheckpointStore::new(&self.state_dir).load().unwrap()
    }

    fn cdi_specs(&self) -> BTreeSet<String> {
        std::fs::read_dir(&self.cdi_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    fn spec(&self, uid: &str) -> serde_json::Value {
        let path = CdiDir::new(&self.cdi_dir, "gpu.tessera.dev").spec_path(uid);
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    /// The invariants that must hold whenever no call is in flight and recovery has run:
    /// every recorded claim is complete, the hardware is exactly what the records account
    /// for, every complete claim has its CDI spec and nothing else has one, and no two
    /// claims hold overlapping hardware.
    fn assert_consistent(&self) {
        let data = self.checkpoint();
        for (uid, record) in &data.claims {
            assert_eq!(
                record.state,
                ClaimState::PrepareCompleted,
                "{uid} left half-done"
            );
        }
        let mut want_mig: BTreeMap<(String, Placement), String> = BTreeMap::new();
        let mut want_sharing: BTreeMap<String, crate::prepare::device::GpuSharing> =
            BTreeMap::new();
        for record in data.claims.values() {
            for d in record.devices.iter().filter(|d| !d.admin_access) {
                if let DeviceKind::DynamicMig { placement, .. } = &d.kind {
                    let uuid = d.visible_uuid.clone().expect("created MIG has a UUID");
                    assert!(
                        want_mig
                            .insert((d.gpu.uuid.clone(), *placement), uuid)
                            .is_none(),
                        "MIG placement prepared twice"
                    );
                }
                if let DeviceKind::SharedMig { placement, .. } = &d.kind {
                    // Every share of the GPU uses the one full-size instance.
                    let uuid = d.visible_uuid.clone().expect("shared MIG has a UUID");
                    let before = want_mig.insert((d.gpu.uuid.clone(), *placement), uuid.clone());
                    assert!(
                        before.is_none() || before == Some(uuid),
                        "two full-size instances"
                    );
                }
                if let Some(plan) = d.sharing {
                    let before = want_sharing.insert(d.gpu.uuid.clone(), plan.gpu);
                    assert!(
                        before.is_none() || before == Some(plan.gpu),
                        "two sharing modes on one GPU"
                    );
                }
            }
        }
        let mut have_mig = BTreeMap::new();
        let mut have_sharing = BTreeMap::new();
        for (uuid, gpu) in self.control.snapshot() {
            assert!(
                gpu.bare.is_empty(),
                "half-made MIG instances on {uuid}: {:?}",
                gpu.bare
            );
            for (placement, (_, mig_uuid)) in gpu.mig {
                have_mig.insert((uuid.clone(), placement), mig_uuid);
            }
            if let Some(s) = gpu.sharing {
                have_sharing.insert(uuid, s);
            }
        }
        assert_eq!(
            have_mig, want_mig,
            "MIG instances differ from the checkpoint"
        );
        assert_eq!(
            have_sharing, want_sharing,
            "sharing settings differ from the checkpoint"
        );

        // One live MPS daemon per device with MPS shares, recorded; no other daemon and no
        // other daemon directory.
        let want_daemons: BTreeSet<String> = data
            .claims
            .values()
            .flat_map(|r| r.devices.iter())
            .filter_map(|d| super::mps::serves(d).map(|(device, _)| device))
            .collect();
        let daemons = self.daemons();
        let mps = MpsDaemons::new(self.mps_config(), &self.state_dir);
        let recorded: BTreeSet<String> = daemons.daemons.keys().cloned().collect();
        assert_eq!(
            recorded, want_daemons,
            "MPS daemons differ from the checkpoint"
        );
        for daemon in daemons.daemons.values() {
            assert!(
                mps.alive(daemon),
                "the MPS daemon of {} is dead",
                daemon.device
            );
        }
        assert_eq!(
            mps.unknown_dirs(&recorded).unwrap(),
            Vec::<String>::new(),
            "MPS directories nothing records"
        );

        let cdi = CdiDir::new(&self.cdi_dir, "gpu.tessera.dev");
        let want_specs: BTreeSet<String> = data
            .claims
            .keys()
            .map(|uid| {
                cdi.spec_path(uid)
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(
            self.cdi_specs(),
            want_specs,
            "CDI specs differ from the checkpoint"
        );

        let all: Vec<(&String, &DeviceRecord)> = data
            .claims
            .iter()
            .flat_map(|(uid, r)| r.devices.iter().map(move |d| (uid, d)))
            .filter(|(_, d)| !d.admin_access)
            .collect();
        for (i, (ua, a)) in all.iter().enumerate() {
            for (ub, b) in &all[i + 1..] {
                if ua != ub && a.gpu.uuid == b.gpu.uuid {
                    assert!(
                        !a.kind
                            .footprint(a.share_id.as_deref())
                            .conflicts_with(&b.kind.footprint(b.share_id.as_deref())),
                        "{} ({ua}) and {} ({ub}) overlap",
                        a.device,
                        b.device
                    );
                }
            }
        }
    }
}

fn claim(uid: &str) -> ClaimRef {
    ClaimRef::new("default", format!("claim-{uid}"), uid)
}

fn dev(device: &str) -> AllocatedDevice {
    AllocatedDevice {
        request: "gpu".to_owned(),
        pool: "node-a".to_owned(),
        device: device.to_owned(),
        share_id: None,
        admin_access: false,
        consumed_capacity: BTreeMap::new(),
        config: DeviceConfig::default(),
    }
}

fn share(device: &str, share_id: &str, sharing: Option<Sharing>) -> AllocatedDevice {
    AllocatedDevice {
        share_id: Some(share_id.to_owned()),
        consumed_capacity: [
            ("memory".to_owned(), "20Gi".to_owned()),
            ("compute".to_owned(), "25".to_owned()),
        ]
        .into_iter()
        .collect(),
        config: DeviceConfig { sharing },
        ..dev(device)
    }
}

fn mps() -> Option<Sharing> {
    Some(Sharing::Mps {
        active_thread_percentage: None,
        pinned_memory_limit_bytes: None,
    })
}

// === happy paths ===

#[tokio::test(flavor = "current_thread")]
async fn a_whole_gpu_is_recorded_described_in_cdi_and_prepared_once() {
    let node = Node::new();
    let state = node.start();
    let c = claim("u1");
    let out = state
        .prepare(&c, &[dev("gpu-0")], &node.inventory)
        .await
        .unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].device, "gpu-0");
    assert_eq!(out[0].pool, "node-a");
    assert_eq!(out[0].request_names, vec!["gpu".to_owned()]);
    assert_eq!(
        out[0].cdi_device_ids,
        vec!["k8s.gpu.tessera.dev/claim=u1-gpu-0".to_owned()]
    );
    assert_eq!(out[0].share_id, None);

    let data = node.checkpoint();
    assert_eq!(data.boot_id, "boot-1");
    assert_eq!(data.claims["u1"].state, ClaimState::PrepareCompleted);
    let spec = node.spec("u1");
    assert_eq!(spec["kind"], "k8s.gpu.tessera.dev/claim");
    assert_eq!(spec["devices"][0]["name"], "u1-gpu-0");
    assert_eq!(
        spec["containerEdits"]["env"][0],
        format!("NVIDIA_VISIBLE_DEVICES={}", node.inventory.gpus[0].uuid)
    );
    assert_eq!(
        spec["devices"][0]["containerEdits"]["deviceNodes"][2]["path"],
        "/dev/nvidia0"
    );

    // The kubelet asks again (e.g. after its restart): same answer, nothing new done.
    let ops = node.control.operations();
    assert_eq!(
        state
            .prepare(&c, &[dev("gpu-0")], &node.inventory)
            .await
            .unwrap(),
        out
    );
    assert_eq!(node.control.operations(), ops);
    assert_eq!(state.prepared_claims(), 1);

    state.unprepare(&c).await.unwrap();
    state.unprepare(&c).await.unwrap();
    assert!(node.checkpoint().claims.is_empty());
    assert!(node.cdi_specs().is_empty());
    node.assert_consistent();
}

#[tokio::test(flavor = "current_thread")]
async fn a_dynamic_mig_device_is_created_on_prepare_and_destroyed_on_unprepare() {
    let node = Node::new();
    let state = node.start();
    state
        .prepare(&claim("m1"), &[dev("gpu-1-mig-1g10gb-0")], &node.inventory)
        .await
        .unwrap();
    let gpu1 = &node.inventory.gpus[1].uuid;
    let hw = node.control.snapshot();
    let (profile, mig_uuid) = &hw[gpu1].mig[&Placement::new(0, 1)];
    assert_eq!(profile, "1g.10gb");
    let env = node.spec("m1")["containerEdits"]["env"][0]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(env, format!("NVIDIA_VISIBLE_DEVICES={mig_uuid}"));
    assert_eq!(
        node.checkpoint().claims["m1"].devices[0]
            .visible_uuid
            .as_ref(),
        Some(mig_uuid)
    );
    node.assert_consistent();

    state.unprepare(&claim("m1")).await.unwrap();
    assert!(node.control.snapshot()[gpu1].mig.is_empty());
    node.assert_consistent();
}

#[tokio::test(flavor = "current_thread")]
async fn a_shared_gpu_is_set_up_by_its_first_share_and_reset_by_its_last() {
    let node = Node::new();
    let state = node.start();
    let gpu0 = node.inventory.gpus[0].uuid.clone();
    let a = state
        .prepare(
            &claim("s1"),
            &[share("gpu-0-shared", "share-a", mps())],
            &node.inventory,
        )
        .await
        .unwrap();
    assert_eq!(a[0].share_id.as_deref(), Some("share-a"));
    assert_eq!(
        a[0].cdi_device_ids,
        vec!["k8s.gpu.tessera.dev/claim=s1-gpu-0-shared-share-a".to_owned()]
    );
    let env = node.spec("s1")["containerEdits"]["env"].clone();
    assert_eq!(env[1], "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=25", "{env}");
    assert_eq!(env[2], "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT=0=20480M", "{env}");

    let ops = node.control.operations();
    state
        .prepare(
            &claim("s2"),
            &[share("gpu-0-shared", "share-b", mps())],
            &node.inventory,
        )
        .await
        .unwrap();
    assert_eq!(
        node.control.operations(),
        ops,
        "the GPU is already in MPS mode"
    );
    assert_eq!(
        node.control.snapshot()[&gpu0].sharing,
        Some(crate::prepare::device::GpuSharing::Mps)
    );

    state.unprepare(&claim("s1")).await.unwrap();
    assert!(
        node.control.snapshot()[&gpu0].sharing.is_some(),
        "s2 still shares it"
    );
    state.unprepare(&claim("s2")).await.unwrap();
    assert_eq!(node.control.snapshot()[&gpu0].sharing, None);
    node.assert_consistent();
}

#[tokio::test(flavor = "current_thread")]
async fn shares_of_a_dynamic_mig_gpu_run_on_one_full_size_instance() {
    let node = Node::new();
    let state = node.start();
    let gpu1 = node.inventory.gpus[1].uuid.clone();
    state
        .prepare(
            &claim("a"),
            &[share("gpu-1-shared", "a", None)],
            &node.inventory,
        )
        .await
        .unwrap();
    let instances = node.control.snapshot()[&gpu1].mig.clone();
    assert_eq!(instances.len(), 1);
    let (profile, uuid) = &instances[&Placement::new(0, 8)];
    assert_eq!(profile, "7g.80gb");
    state
        .prepare(
            &claim("b"),
            &[share("gpu-1-shared", "b", None)],
            &node.inventory,
        )
        .await
        .unwrap();
    assert_eq!(
        node.control.snapshot()[&gpu1].mig,
        instances,
        "the second share reuses it"
    );
    assert_eq!(
        node.spec("b")["containerEdits"]["env"][0],
        format!("NVIDIA_VISIBLE_DEVICES={uuid}")
    );
    // A MIG partition cannot join while shares hold the GPU.
    let err = state
        .prepare(&claim("m"), &[dev("gpu-1-mig-1g10gb-6")], &node.inventory)
        .await
        .unwrap_err();
    assert!(matches!(err, PrepareError::DeviceInUse { .. }), "{err}");
    node.assert_consistent();

    state.unprepare(&claim("a")).await.unwrap();
    assert_eq!(
        node.control.snapshot()[&gpu1].mig,
        instances,
        "b still runs on it"
    );
    state.unprepare(&claim("b")).await.unwrap();
    assert!(
        node.control.snapshot()[&gpu1].mig.is_empty(),
        "the last share destroyed it"
    );
    node.assert_consistent();
}

#[tokio::test(flavor = "current_thread")]
async fn admin_access_overlaps_without_touching_hardware() {
    let node = Node::new();
    let state = node.start();
    state
        .prepare(&claim("m1"), &[dev("gpu-1-mig-1g10gb-0")], &node.inventory)
        .await
        .unwrap();
    let mut admin = dev("gpu-1-mig-1g10gb-0");
    admin.admin_access = true;
    let ops = node.control.operations();
    state
        .prepare(&claim("watch"), &[admin], &node.inventory)
        .await
        .unwrap();
    assert_eq!(node.control.operations(), ops);
    let mig = node.checkpoint().claims["m1"].devices[0]
        .visible_uuid
        .clone()
        .unwrap();
    assert_eq!(
        node.spec("watch")["containerEdits"]["env"][0],
        format!("NVIDIA_VISIBLE_DEVICES={mig}")
    );
    state.unprepare(&claim("watch")).await.unwrap();
    assert_eq!(
        node.control.snapshot()[&node.inventory.gpus[1].uuid]
            .mig
            .len(),
        1
    );
    node.assert_consistent();
}

// === refusals ===

#[tokio::test(flavor = "current_thread")]
async fn a_device_held_by_another_claim_is_refused_naming_the_holder() {
    let node = Node::new();
    let state = node.start();
    state
        .prepare(&claim("first"), &[dev("gpu-0")], &node.inventory)
        .await
        .unwrap();
    let err = state
        .prepare(&claim("second"), &[dev("gpu-0")], &node.inventory)
        .await
        .unwrap_err();
    assert!(matches!(err, PrepareError::DeviceInUse { .. }), "{err}");
    assert!(
        err.to_string().contains("default/claim-first (first)"),
        "{err}"
    );

    let err = state
        .prepare(
            &claim("third"),
            &[share("gpu-0-share-1", "x", None)],
            &node.inventory,
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("overlapping device gpu-0"),
        "{err}"
    );

    state
        .prepare(&claim("m1"), &[dev("gpu-1-mig-2g20gb-0")], &node.inventory)
        .await
        .unwrap();
    let err = state
        .prepare(&claim("m2"), &[dev("gpu-1-mig-1g10gb-1")], &node.inventory)
        .await
        .unwrap_err();
    assert!(matches!(err, PrepareError::DeviceInUse { .. }), "{err}");
    let err = state
        .prepare(&claim("w1"), &[dev("gpu-1")], &node.inventory)
        .await
        .unwrap_err();
    assert!(
        matches!(err, PrepareError::DeviceInUse { .. }),
        "whole dynamic GPU vs its MIG: {err}"
    );
    // A disjoint placement is fine.
    state
        .prepare(&claim("m3"), &[dev("gpu-1-mig-1g10gb-2")], &node.inventory)
        .await
        .unwrap();

    // The same share ID in two claims is one share prepared twice.
    state
        .prepare(
            &claim("s1"),
            &[share("gpu-3-shared", "dup", None)],
            &node.inventory,
        )
        .await
        .unwrap_err();
    node.assert_consistent();
    assert!(!node.checkpoint().claims.contains_key("second"));
}

#[tokio::test(flavor = "current_thread")]
async fn two_sharing_modes_on_one_gpu_are_refused() {
    let node = Node::new();
    let state = node.start();
    state
        .prepare(
            &claim("a"),
            &[share("gpu-0-shared", "a", mps())],
            &node.inventory,
        )
        .await
        .unwrap();
    let long = Some(Sharing::TimeSlicing {
        interval: TimeSliceInterval::Long,
    });
    let err = state
        .prepare(
            &claim("b"),
            &[share("gpu-0-share-0", "b", long)],
            &node.inventory,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, PrepareError::SharingConflict { .. }), "{err}");
    assert!(err.to_string().contains("MPS"), "{err}");
    node.assert_consistent();
}

#[tokio::test(flavor = "current_thread")]
async fn unknown_devices_fail_before_anything_is_recorded() {
    let node = Node::new();
    let state = node.start();
    let err = state
        .prepare(&claim("x"), &[dev("gpu-7")], &node.inventory)
        .await
        .unwrap_err();
    assert!(matches!(err, PrepareError::UnknownDevice { .. }), "{err}");
    assert!(node.checkpoint().claims.is_empty());
    assert_eq!(node.control.operations(), 0);
}

#[tokio::test(flavor = "current_thread")]
async fn unpreparing_an_unknown_claim_succeeds() {
    let node = Node::new();
    node.start().unprepare(&claim("never")).await.unwrap();
}

// === failures ===

#[tokio::test(flavor = "current_thread")]
async fn a_hardware_failure_rolls_everything_back() {
    let node = Node::new();
    let state = node.start();
    node.control.fail_next(FakeOp::ApplySharing, 1);
    let devices = [dev("gpu-1-mig-1g10gb-0"), share("gpu-0-shared", "s", None)];
    let err = state
        .prepare(&claim("f"), &devices, &node.inventory)
        .await
        .unwrap_err();
    assert!(matches!(err, PrepareError::Control(_)), "{err}");
    node.assert_consistent();
    assert!(node.checkpoint().claims.is_empty());
    // The kubelet retries and it works.
    state
        .prepare(&claim("f"), &devices, &node.inventory)
        .await
        .unwrap();
    node.assert_consistent();
}

#[tokio::test(flavor = "current_thread")]
async fn a_share_after_a_half_finished_teardown_sets_the_sharing_mode_again() {
    let node = Node::new();
    let state = node.start();
    let gpu1 = node.inventory.gpus[1].uuid.clone();
    let gpu = |node: &Node| node.control.snapshot()[&gpu1].clone();
    state
        .prepare(
            &claim("a"),
            &[share("gpu-1-shared", "a", mps())],
            &node.inventory,
        )
        .await
        .unwrap();
    assert!(gpu(&node).sharing.is_some());
    // Teardown clears the sharing mode, then destroying the instance fails: a's record
    // stays (UnprepareStarted) with its sharing plan, though the GPU no longer shares.
    node.control.fail_next(FakeOp::DestroyMig, 1);
    state.unprepare(&claim("a")).await.unwrap_err();
    assert!(gpu(&node).sharing.is_none());
    assert!(node.checkpoint().claims.contains_key("a"));

    // A new share must set the mode again rather than trust the leftover record.
    state
        .prepare(
            &claim("b"),
            &[share("gpu-1-shared", "b", mps())],
            &node.inventory,
        )
        .await
        .unwrap();
    assert!(
        gpu(&node).sharing.is_some(),
        "b runs on a GPU in its sharing mode"
    );
    assert_eq!(gpu(&node).mig.len(), 1, "b reuses a's full-size instance");

    // The retry finishes a's teardown without taking b's mode or instance away.
    state.unprepare(&claim("a")).await.unwrap();
    assert!(gpu(&node).sharing.is_some());
    assert_eq!(gpu(&node).mig.len(), 1);
    state.unprepare(&claim("b")).await.unwrap();
    assert!(gpu(&node).sharing.is_none());
    assert!(gpu(&node).mig.is_empty());
    node.assert_consistent();
}

#[tokio::test(flavor = "current_thread")]
async fn a_cdi_dir_that_is_not_writable_is_a_per_claim_error_and_nothing_stays() {
    let node = Node::new();
    std::fs::remove_dir(&node.cdi_dir).unwrap();
    // A file where the directory should be: not writable even for root.
    std::fs::write(&node.cdi_dir, b"").unwrap();
    let state = node.start();
    let err = state
        .prepare(&claim("c"), &[dev("gpu-1-mig-1g10gb-0")], &node.inventory)
        .await
        .unwrap_err();
    assert!(matches!(err, PrepareError::Cdi(_)), "{err}");
    assert!(err.to_string().contains("CDI spec"), "{err}");
    assert!(node.checkpoint().claims.is_empty());
    assert!(
        node.control.snapshot()[&node.inventory.gpus[1].uuid]
            .mig
            .is_empty()
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_corrupt_checkpoint_fails_calls_until_recovery_moves_it_aside_and_removes_orphans() {
    let node = Node::new();
    let state = node.start();
    state
        .prepare(&claim("m"), &[dev("gpu-1-mig-1g10gb-0")], &node.inventory)
        .await
        .unwrap();
    state
        .prepare(&claim("w"), &[dev("gpu-0")], &node.inventory)
        .await
        .unwrap();
    let path = node.state_dir.join("checkpoint.json");
    let tampered = std::fs::read_to_string(&path)
        .unwrap()
        .replace("claim-m", "claim-x");
    std::fs::write(&path, &tampered).unwrap();
    // Calls fail with the reason and never write over the file.
    for result in [
        state
            .prepare(&claim("b"), &[dev("gpu-3")], &node.inventory)
            .await
            .map(|_| ()),
        state.unprepare(&claim("m")).await,
    ] {
        let err = result.unwrap_err();
        assert!(
            err.to_string().contains("is corrupt (checksum mismatch"),
            "{err}"
        );
        assert!(
            err.to_string().contains("the next recovery moves it aside"),
            "{err}"
        );
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap(), tampered);

    // Recovery (a restart here; the periodic one does the same) moves it aside, starts
    // empty and removes what nothing accounts for any more: the MIG instance and both specs.
    let restarted = node.start();
    let report = restarted.recover(&node.inventory).await.unwrap();
    let kept = node.state_dir.join("checkpoint.json.corrupt-1");
    assert_eq!(report.corrupt_moved_to.as_ref(), Some(&kept));
    assert_eq!(report.corrupt_kept, vec![kept.clone()]);
    assert_eq!(
        std::fs::read_to_string(&kept).unwrap(),
        tampered,
        "kept as found"
    );
    assert_eq!(report.orphan_instances_removed.len(), 1, "{report:?}");
    assert!(report.orphan_instances_removed[0].contains("1g.10gb at 0:1"));
    assert_eq!(
        report.orphan_specs_removed,
        vec!["m".to_owned(), "w".to_owned()]
    );
    assert!(report.orphans_left.is_empty());
    assert!(node.checkpoint().claims.is_empty());
    node.assert_consistent();

    // The kubelet prepares the claims again: the placement is free, so it works (moving
    // the file away by hand used to leave the instance and fail with insufficient
    // resources here).
    restarted
        .prepare(&claim("m"), &[dev("gpu-1-mig-1g10gb-0")], &node.inventory)
        .await
        .unwrap();
    restarted
        .prepare(&claim("w"), &[dev("gpu-0")], &node.inventory)
        .await
        .unwrap();
    node.assert_consistent();
    // Later recoveries find nothing to do but still report the kept file.
    let again = restarted.recover(&node.inventory).await.unwrap();
    assert_eq!(again.corrupt_moved_to, None);
    assert_eq!(again.corrupt_kept, vec![kept]);
    assert!(again.orphan_instances_removed.is_empty() && again.orphan_specs_removed.is_empty());
}

#[tokio::test(flavor = "current_thread")]
async fn corrupt_checkpoints_kept_are_bounded_and_another_version_is_left_alone() {
    let node = Node::new();
    let path = node.state_dir.join("checkpoint.json");
    for n in 1..=crate::prepare::checkpoint::MAX_CORRUPT_KEPT {
        std::fs::write(
            node.state_dir.join(format!("checkpoint.json.corrupt-{n}")),
            b"x",
        )
        .unwrap();
    }
    std::fs::write(&path, b"{\"version\":1,").unwrap();
    let err = node.start().recover(&node.inventory).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("8 corrupt checkpoints are already kept"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        b"{\"version\":1,",
        "nothing lost"
    );

    // Another version is not corrupt: it is refused by number and never moved or written.
    std::fs::write(&path, r#"{"version":7,"checksum":0,"data":{}}"#).unwrap();
    let err = node.start().unprepare(&claim("a")).await.unwrap_err();
    assert!(err.to_string().contains("version 7"), "{err}");
    let err = node.start().recover(&node.inventory).await.unwrap_err();
    assert!(err.to_string().contains("version 7"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        r#"{"version":7,"checksum":0,"data":{}}"#
    );
}

// === restarts ===

#[tokio::test(flavor = "current_thread")]
async fn after_a_reboot_old_claims_are_dropped_with_their_specs() {
    let node = Node::new();
    node.start()
        .prepare(&claim("a"), &[dev("gpu-0")], &node.inventory)
        .await
        .unwrap();
    let rebooted = DeviceState::new(node.config("boot-2"), node.control.clone());
    let report = rebooted.recover(&node.inventory).await.unwrap();
    assert_eq!(report.dropped_after_reboot, vec!["a".to_owned()]);
    assert!(node.checkpoint().claims.is_empty());
    assert_eq!(node.checkpoint().boot_id, "boot-2");
    assert!(node.cdi_specs().is_empty());
}

#[tokio::test(flavor = "current_thread")]
async fn recovery_removes_temp_files_a_crash_left() {
    let node = Node::new();
    std::fs::write(node.state_dir.join(".checkpoint.json.tmp"), b"half").unwrap();
    std::fs::write(
        node.cdi_dir.join(".k8s.gpu.tessera.dev-claim_x.json.tmp"),
        b"half",
    )
    .unwrap();
    let report = node.start().recover(&node.inventory).await.unwrap();
    assert_eq!(report.temps_removed, 2);
    assert!(node.cdi_specs().is_empty());
}

mod batch;
mod crash;
mod mps;
mod recovery;
