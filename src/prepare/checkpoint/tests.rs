use super::*;
use crate::model::mig::Placement;

fn sample() -> CheckpointData {
    let mut data = CheckpointData {
        boot_id: "boot-1".to_owned(),
        ..CheckpointData::default()
    };
    data.claims.insert(
        "uid-1".to_owned(),
        ClaimRecord {
            namespace: "default".to_owned(),
            name: "c1".to_owned(),
            state: ClaimState::PrepareCompleted,
            devices: vec![DeviceRecord {
                request: "gpu/mig".to_owned(),
                pool: "node-a".to_owned(),
                device: "gpu-1-mig-1g10gb-0".to_owned(),
                share_id: None,
                admin_access: false,
                gpu: GpuRef {
                    index: 1,
                    uuid: "GPU-1".to_owned(),
                },
                kind: DeviceKind::DynamicMig {
                    profile: "1g.10gb".to_owned(),
                    placement: Placement::new(0, 1),
                },
                sharing: None,
                visible_uuid: Some("MIG-1".to_owned()),
                cdi_device_ids: vec![
                    "k8s.gpu.tessera.dev/claim=uid-1-gpu-1-mig-1g10gb-0".to_owned(),
                ],
            }],
        },
    );
    data
}

#[test]
fn round_trips_and_a_missing_file_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let store = CheckpointStore::new(dir.path());
    assert_eq!(store.load().unwrap(), CheckpointData::default());
    store.save(&sample()).unwrap();
    assert_eq!(store.load().unwrap(), sample());
    let prepared = store.load().unwrap().claims["uid-1"].prepared_devices();
    assert_eq!(
        prepared[0].request_names,
        vec!["gpu".to_owned()],
        "subrequest stripped"
    );
}

#[test]
fn the_file_is_versioned_checksummed_json() {
    let dir = tempfile::tempdir().unwrap();
    let store = CheckpointStore::new(dir.path());
    store.save(&sample()).unwrap();
    let raw: serde_json::Value = serde_json::from_slice(&fs::read(store.path()).unwrap()).unwrap();
    assert_eq!(raw["version"], 1);
    let data: CheckpointData = serde_json::from_value(raw["data"].clone()).unwrap();
    let data_bytes = serde_json::to_vec(&data).unwrap();
    assert_eq!(raw["checksum"], u64::from(crc32fast::hash(&data_bytes)));
    assert_ne!(raw["checksum"], u64::from(crc32fast::hash(b"{}")));
    assert_eq!(raw["data"]["claims"]["uid-1"]["state"], "PrepareCompleted");
}

fn assert_corrupt(store: &CheckpointStore, contains: &str) {
    match store.load() {
        Err(CheckpointError::Corrupt { reason, .. }) => {
            assert!(reason.contains(contains), "{reason}")
        }
        other => panic!("expected corrupt, got {other:?}"),
    }
}

#[test]
fn tampering_truncation_and_garbage_are_corrupt_and_the_file_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = CheckpointStore::new(dir.path());
    store.save(&sample()).unwrap();
    let good = fs::read_to_string(store.path()).unwrap();

    fs::write(store.path(), good.replace("MIG-1", "MIG-2")).unwrap();
    assert_corrupt(&store, "checksum mismatch");

    fs::write(store.path(), &good[..good.len() / 2]).unwrap();
    assert_corrupt(&store, "EOF");

    fs::write(store.path(), "\u{0}\u{1}garbage").unwrap();
    assert_corrupt(&store, "");

    fs::write(store.path(), r#"{"checksum": 1, "data": {}}"#).unwrap();
    assert_corrupt(&store, "no version");

    let extra = good.replacen("\"bootId\"", "\"surprise\":1,\"bootId\"", 1);
    fs::write(store.path(), &extra).unwrap();
    assert_corrupt(&store, "surprise");

    assert_eq!(
        fs::read_to_string(store.path()).unwrap(),
        extra,
        "load never rewrites"
    );
}

#[test]
fn another_version_is_refused_by_number() {
    let dir = tempfile::tempdir().unwrap();
    let store = CheckpointStore::new(dir.path());
    fs::write(
        store.path(),
        r#"{"version": 2, "checksum": 0, "data": {"future": true}}"#,
    )
    .unwrap();
    let err = store.load().unwrap_err();
    assert!(
        matches!(err, CheckpointError::WrongVersion { found: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("version 2"), "{err}");
}

#[test]
fn a_directory_that_cannot_hold_the_file_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_dir = dir.path().join("file");
    fs::write(&not_a_dir, b"x").unwrap();
    let store = CheckpointStore::new(&not_a_dir);
    assert!(matches!(
        store.save(&sample()),
        Err(CheckpointError::Io { .. })
    ));
}

// === compatibility with the previous release ===

/// A checkpoint with every device kind, claim state and optional field the format has.
fn every_kind() -> CheckpointData {
    use crate::prepare::config::TimeSliceInterval;
    use crate::prepare::device::{GpuSharing, MpsLimits};
    let gpu = |index: u32| GpuRef {
        index,
        uuid: format!("GPU-1a2b3c4d-0000-0000-0000-00000000000{index}"),
    };
    let device = |device: &str, gpu: GpuRef, kind: DeviceKind| DeviceRecord {
        request: "gpu".to_owned(),
        pool: "node-a".to_owned(),
        device: device.to_owned(),
        share_id: None,
        admin_access: false,
        gpu,
        kind,
        sharing: None,
        visible_uuid: None,
        cdi_device_ids: vec![format!("k8s.gpu.tessera.dev/claim=uid-x-{device}")],
    };
    let mut data = sample();
    let mut mps = device("gpu-0-shared", gpu(0), DeviceKind::Shared);
    mps.request = "gpu/shared".to_owned();
    mps.share_id = Some("3c1e9f0a-0000-4000-8000-000000000001".to_owned());
    mps.sharing = Some(SharingPlan {
        gpu: GpuSharing::Mps,
        mps: Some(MpsLimits {
            active_thread_percentage: Some(30),
            pinned_memory_limit_bytes: Some(21_474_836_480),
        }),
    });
    mps.visible_uuid = Some(gpu(0).uuid);
    let mut admin = device(
        "gpu-1-mig-1g10gb-0",
        gpu(1),
        DeviceKind::DynamicMig {
            profile: "1g.10gb".to_owned(),
            placement: Placement::new(0, 1),
        },
    );
    admin.admin_access = true;
    admin.visible_uuid = Some("MIG-1".to_owned());
    let mut whole = device("gpu-3", gpu(3), DeviceKind::Whole);
    whole.visible_uuid = Some(gpu(3).uuid);
    data.claims.insert(
        "uid-completed".to_owned(),
        ClaimRecord {
            namespace: "team-a".to_owned(),
            name: "infer".to_owned(),
            state: ClaimState::PrepareCompleted,
            devices: vec![mps, admin, whole],
        },
    );
    let mut shared_mig = device(
        "gpu-2-shared",
        gpu(2),
        DeviceKind::SharedMig {
            profile: "7g.80gb".to_owned(),
            placement: Placement::new(0, 8),
        },
    );
    shared_mig.share_id = Some("3c1e9f0a-0000-4000-8000-000000000002".to_owned());
    shared_mig.sharing = Some(SharingPlan {
        gpu: GpuSharing::TimeSlicing {
            interval: TimeSliceInterval::Long,
        },
        mps: None,
    });
    let mut replica = device("gpu-4-share-1", gpu(4), DeviceKind::Share { replica: 1 });
    replica.sharing = Some(SharingPlan {
        gpu: GpuSharing::TimeSlicing {
            interval: TimeSliceInterval::Default,
        },
        mps: None,
    });
    data.claims.insert(
        "uid-started".to_owned(),
        ClaimRecord {
            namespace: "team-b".to_owned(),
            name: "train.v2".to_owned(),
            state: ClaimState::PrepareStarted,
            devices: vec![shared_mig, replica],
        },
    );
    let mut static_mig = device(
        "gpu-5-mig-3g40gb-4",
        gpu(5),
        DeviceKind::StaticMig {
            uuid: "MIG-static-5-4".to_owned(),
            profile: "3g.40gb".to_owned(),
            placement: Placement::new(4, 4),
        },
    );
    static_mig.visible_uuid = Some("MIG-static-5-4".to_owned());
    data.claims.insert(
        "uid-unpreparing".to_owned(),
        ClaimRecord {
            namespace: "team-c".to_owned(),
            name: "eval".to_owned(),
            state: ClaimState::UnprepareStarted,
            devices: vec![static_mig],
        },
    );
    data
}

/// The file the previous release wrote for [`every_kind`] (checked in, not regenerated).
const PREVIOUS_RELEASE_FILE: &str = include_str!("testdata/checkpoint-v1.json");

#[test]
fn the_previous_release_reads_what_this_build_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = CheckpointStore::new(dir.path());
    for data in [CheckpointData::default(), sample(), every_kind()] {
        store.save(&data).unwrap();
        let bytes = fs::read(store.path()).unwrap();
        let old = super::previous_release::load(&bytes)
            .unwrap_or_else(|e| panic!("a rollback could not read this build's checkpoint: {e}"));
        // Same content, field for field, as the old types see it.
        assert_eq!(
            serde_json::to_value(&old).unwrap(),
            serde_json::to_value(&data).unwrap()
        );
    }
}

#[test]
fn this_build_reads_the_previous_release_s_file_and_writes_it_back_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let store = CheckpointStore::new(dir.path());
    fs::write(store.path(), PREVIOUS_RELEASE_FILE.trim_end()).unwrap();
    let data = store.load().unwrap();
    assert_eq!(data, every_kind());
    // Written back byte for byte: the format (and so the checksum) has not drifted, which
    // is what lets the previous release read this build's files.
    store.save(&data).unwrap();
    assert_eq!(
        fs::read_to_string(store.path()).unwrap(),
        PREVIOUS_RELEASE_FILE.trim_end()
    );
}

#[test]
fn the_previous_release_reader_is_as_strict_as_it_was() {
    // The copy must refuse what that release refused, or the tests above prove nothing.
    let good = PREVIOUS_RELEASE_FILE.trim_end();
    super::previous_release::load(good.as_bytes()).unwrap();
    for (bad, why) in [
        (
            good.replacen("\"version\":1", "\"version\":2", 1),
            "version 2",
        ),
        (
            good.replacen("\"bootId\"", "\"newField\":1,\"bootId\"", 1),
            "unknown field",
        ),
        (good.replace("team-a", "team-z"), "checksum mismatch"),
    ] {
        let err = super::previous_release::load(bad.as_bytes()).unwrap_err();
        assert!(err.contains(why), "{why}: {err}");
    }
}

#[test]
fn a_later_build_s_sections_beside_data_are_ignored_and_anything_else_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let store = CheckpointStore::new(dir.path());
    store.save(&every_kind()).unwrap();
    let good = fs::read_to_string(store.path()).unwrap();
    // What a later build writes to stay readable here: `data` as version 1 has it, and its
    // own richer section beside it, with its own checksum.
    let later = good.replacen(
        "{\"version\":1,",
        "{\"v2\":{\"checksum\":7,\"claims\":{\"x\":{\"new\":true}}},\"v10\":[],\"version\":1,",
        1,
    );
    fs::write(store.path(), &later).unwrap();
    assert_eq!(store.load().unwrap(), every_kind());
    for bad in ["v1", "v0", "v02", "v", "vx", "surprise"] {
        let text = good.replacen(
            "{\"version\":1,",
            &format!("{{\"{bad}\":1,\"version\":1,"),
            1,
        );
        fs::write(store.path(), &text).unwrap();
        assert_corrupt(&store, &format!("unknown field `{bad}`"));
    }
}
