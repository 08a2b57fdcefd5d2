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
