use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;

use super::*;

fn fake() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fake-mps-control")
}

fn daemons(dir: &Path, binary: PathBuf) -> MpsDaemons {
    MpsDaemons::new(
        MpsConfig {
            root: dir.join("mps"),
            control_binary: binary,
        },
        dir,
    )
}

fn limits(threads: Option<u32>, mib: Option<u64>) -> MpsLimits {
    MpsLimits {
        active_thread_percentage: threads,
        pinned_memory_limit_bytes: mib.map(|m| m << 20),
    }
}

#[test]
fn defaults_are_the_largest_limits_and_none_where_a_client_has_none() {
    let a = limits(Some(30), Some(2048));
    let b = limits(Some(50), Some(1024));
    assert_eq!(defaults_for([a, b].iter()), limits(Some(50), Some(2048)));
    let uncapped = limits(None, Some(4096));
    assert_eq!(defaults_for([a, uncapped].iter()), limits(None, Some(4096)));
    assert_eq!(defaults_for([].iter()), MpsLimits::default());
}

#[test]
fn device_ids_that_are_not_uuids_name_no_directory() {
    let dir = tempfile::tempdir().unwrap();
    let mps = daemons(dir.path(), fake());
    let ok = mps
        .dirs("MIG-6c0e1f2a-0000-4000-8000-000000000001")
        .unwrap();
    assert_eq!(
        ok.pipe,
        dir.path()
            .join("mps/MIG-6c0e1f2a-0000-4000-8000-000000000001/pipe")
    );
    for bad in ["", "..", "../x", "a/b", "shm", "-rf", &"G".repeat(65)] {
        assert!(
            matches!(mps.dirs(bad), Err(MpsError::BadDevice(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn a_binary_that_is_missing_or_not_executable_is_named_with_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("nvidia-cuda-mps-control");
    std::fs::write(&plain, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
    for (binary, why) in [
        (plain.clone(), "is not executable"),
        (dir.path().join("absent"), "cannot be read"),
        (dir.path().to_owned(), "is not a file"),
        (PathBuf::from("tessera-no-such-binary"), "is not on PATH"),
    ] {
        let err = daemons(dir.path(), binary.clone())
            .check_binary()
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains(&binary.display().to_string()), "{text}");
        assert!(text.contains(why), "{text}");
        assert!(text.contains("--mps-control-binary"), "{text}");
    }
    // `sh` is on PATH everywhere the tests run.
    assert!(
        daemons(dir.path(), PathBuf::from("sh"))
            .check_binary()
            .unwrap()
            .is_absolute()
    );
    assert_eq!(daemons(dir.path(), fake()).check_binary().unwrap(), fake());
}

#[test]
fn the_record_round_trips_and_tampering_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let mps = daemons(dir.path(), fake());
    assert_eq!(mps.load().unwrap(), DaemonsData::default());
    let mut data = DaemonsData::default();
    data.daemons.insert(
        "GPU-1".to_owned(),
        DaemonRecord {
            device: "GPU-1".to_owned(),
            pid: 4242,
            start_time: 987_654,
            pid_namespace: Some("pid:[4026531836]".to_owned()),
            pipe_dir: dir.path().join("mps/GPU-1/pipe"),
            log_dir: dir.path().join("mps/GPU-1/log"),
            clients: BTreeSet::from(["uid-a".to_owned()]),
            defaults: Some(limits(Some(30), Some(1024))),
            restarts: 2,
        },
    );
    mps.save(&data).unwrap();
    assert_eq!(mps.load().unwrap(), data);
    let path = dir.path().join(MPS_RECORD_FILE);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("{\"version\":1,\"checksum\":"), "{text}");
    std::fs::write(&path, text.replace("4242", "4243")).unwrap();
    assert!(matches!(mps.load(), Err(MpsError::Corrupt { .. })));
    std::fs::write(&path, "{").unwrap();
    assert!(matches!(mps.load(), Err(MpsError::Corrupt { .. })));
}

#[test]
fn start_configure_and_stop_speak_the_control_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let mps = daemons(dir.path(), fake());
    let device = "GPU-aaaa";
    let mut daemon = mps.start(device).unwrap();
    assert!(mps.alive(&daemon));
    assert!(mps.shm_dir().is_dir());
    let clients = BTreeMap::from([
        ("a".to_owned(), limits(Some(40), Some(512))),
        ("b".to_owned(), limits(Some(20), Some(1024))),
    ]);
    mps.configure(&mut daemon, &clients).unwrap();
    assert_eq!(daemon.defaults, Some(limits(Some(40), Some(1024))));
    // Unchanged defaults send nothing.
    mps.configure(&mut daemon, &clients).unwrap();
    let log = daemon.log_dir.join("commands.log");
    let lines: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| l.split(" CUDA_VISIBLE_DEVICES=").next().unwrap().to_owned())
        .collect();
    assert_eq!(
        lines,
        [
            "start -d",
            "command set_default_active_thread_percentage 40",
            "command set_default_device_pinned_mem_limit 0 1024M",
        ]
    );
    // A second `-d` on a live daemon is refused by the binary, as the real one does.
    match process::start(&fake(), device, &mps.dirs(device).unwrap()) {
        Err(MpsError::Start { reason, .. }) => {
            assert!(reason.contains("already running"), "{reason}");
        }
        other => panic!("expected a refused start, got {other:?}"),
    }

    mps.stop(device, Some(&daemon)).unwrap();
    assert!(!mps.alive(&daemon));
    assert!(!dir.path().join("mps").join(device).exists());
    // Stopping again (a retried unprepare) is fine.
    mps.stop(device, Some(&daemon)).unwrap();
}

#[test]
fn a_pid_file_naming_another_process_is_never_killed() {
    let dir = tempfile::tempdir().unwrap();
    let mps = daemons(dir.path(), fake());
    let device = "GPU-bbbb";
    let pipe = mps.dirs(device).unwrap().pipe;
    std::fs::create_dir_all(&pipe).unwrap();
    // A stale PID file whose PID now belongs to an unrelated process (this test).
    std::fs::write(
        pipe.join("nvidia-cuda-mps-control.pid"),
        std::process::id().to_string(),
    )
    .unwrap();
    assert_eq!(
        mps.unknown_dirs(&BTreeSet::new()).unwrap(),
        vec![device.to_owned()]
    );
    mps.stop(device, None).unwrap();
    assert!(!pipe.exists());
    assert_eq!(
        mps.unknown_dirs(&BTreeSet::new()).unwrap(),
        Vec::<String>::new()
    );
}

#[test]
fn a_daemon_from_another_pid_namespace_is_judged_by_whether_it_answers() {
    // What a second plugin container (a rolling update) finds in the shared record: a PID
    // from its old namespace, meaningless here.
    let dir = tempfile::tempdir().unwrap();
    let mps = daemons(dir.path(), fake());
    let device = "GPU-cccc";
    let mut daemon = mps.start(device).unwrap();
    daemon.pid_namespace = Some("pid:[1]".to_owned());
    let real_pid = daemon.pid;
    daemon.pid = u32::MAX - 7; // no such process here
    assert!(mps.alive(&daemon), "it answers on its pipe directory");
    // A front end that exits 0 without answering is not taken for a live daemon.
    // (`true`, not a script written here: exec of a file just written races other test
    // threads' forks, ETXTBSY.)
    assert!(!daemons(dir.path(), PathBuf::from("true")).alive(&daemon));
    mps.stop(device, Some(&daemon)).unwrap();
    assert!(!mps.alive(&daemon));
    assert!(process::identity(real_pid).is_none(), "quit reached it");
    assert!(!dir.path().join("mps").join(device).exists());
}
