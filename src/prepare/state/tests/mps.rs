//! The MPS control daemon's lifecycle, driven through prepare, unprepare, recovery and
//! supervision against the fake control binary (`tests/fixtures/fake-mps-control`), which
//! records every start and command with its environment in the daemon's log directory.

use super::*;
use crate::prepare::mps::{DEFAULT_CONTROL_BINARY, MpsError};

const GPU0: &str = "GPU-00000000-0000-0000-0000-000000000000";

fn mps_limits(threads: u32, gib: u64) -> Option<Sharing> {
    Some(Sharing::Mps {
        active_thread_percentage: Some(threads),
        pinned_memory_limit_bytes: Some(gib << 30),
    })
}

impl Node {
    fn pipe_dir(&self, device: &str) -> PathBuf {
        self.mps_root.join(device).join("pipe")
    }

    /// What the fake binary recorded for `device`'s daemon, one entry a line.
    fn commands(&self, device: &str) -> Vec<String> {
        let log = self.mps_root.join(device).join("log").join("commands.log");
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn daemon(&self, device: &str) -> crate::prepare::mps::DaemonRecord {
        self.daemons().daemons[device].clone()
    }

    /// Prepare claim `uid` with one MPS share (id `uid`) of `device` with these limits.
    async fn prepare_mps(
        &self,
        state: &DeviceState,
        uid: &str,
        device: &str,
        threads: u32,
        gib: u64,
    ) {
        state
            .prepare(
                &claim(uid),
                &[share(device, uid, mps_limits(threads, gib))],
                &self.inventory,
            )
            .await
            .unwrap();
    }

    fn start_with_binary(&self, binary: &str) -> DeviceState {
        let mut config = self.config("boot-1");
        config.mps.control_binary = PathBuf::from(binary);
        DeviceState::new(config, self.control.clone())
    }
}

/// The environment the fake binary saw, as it writes it after the command.
fn env_of(node: &Node, device: &str) -> String {
    let pipe = node.pipe_dir(device);
    let log = node.mps_root.join(device).join("log");
    format!(
        "CUDA_VISIBLE_DEVICES={device} CUDA_MPS_PIPE_DIRECTORY={} CUDA_MPS_LOG_DIRECTORY={}",
        pipe.display(),
        log.display()
    )
}

fn starts(lines: &[String]) -> usize {
    lines.iter().filter(|l| l.starts_with("start -d ")).count()
}

/// Whether `pid` runs (a zombie does not).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let rest = stat[stat.rfind(')')? + 1..].trim_start().to_owned();
            Some(!rest.starts_with('Z') && !rest.starts_with('X'))
        })
        .unwrap_or(false)
}

fn kill(pid: u32) {
    let pid = rustix::process::Pid::from_raw(i32::try_from(pid).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
}

async fn wait_dead(state: &DeviceState, daemon: &crate::prepare::mps::DaemonRecord) {
    for _ in 0..500 {
        if !state.mps().alive(daemon) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("daemon {} did not die", daemon.pid);
}

#[tokio::test(flavor = "current_thread")]
async fn the_first_mps_share_starts_the_daemon_a_second_reuses_it_the_last_stops_it() {
    let node = Node::new();
    let state = node.start();

    // First share: the daemon starts with the GPU's UUID and its own directories, then
    // gets its defaults (the share's limits).
    node.prepare_mps(&state, "a", "gpu-0-shared", 30, 20).await;
    let env = env_of(&node, GPU0);
    assert_eq!(
        node.commands(GPU0),
        vec![
            format!("start -d {env}"),
            format!("command set_default_active_thread_percentage 30 {env}"),
            format!("command set_default_device_pinned_mem_limit 0 20480M {env}"),
        ]
    );
    let first = node.daemon(GPU0);
    assert!(state.mps().alive(&first));
    // The daemon lives in its own record: a rollback to the previous release still reads
    // the checkpoint.
    let bytes = std::fs::read(node.state_dir.join("checkpoint.json")).unwrap();
    crate::prepare::checkpoint::previous_release::load(&bytes).unwrap();
    assert_eq!(
        first.clients,
        BTreeSet::from(["a".to_owned()]),
        "recorded with its client"
    );
    assert_eq!(
        std::fs::read_to_string(node.pipe_dir(GPU0).join("nvidia-cuda-mps-control.pid"))
            .unwrap()
            .trim(),
        first.pid.to_string()
    );
    node.assert_consistent();

    // Second share on the same GPU: no second daemon; the defaults follow the largest
    // limits among the clients.
    node.prepare_mps(&state, "b", "gpu-0-shared", 50, 10).await;
    let lines = node.commands(GPU0);
    assert_eq!(starts(&lines), 1, "{lines:?}");
    assert_eq!(
        lines[3..],
        [
            format!("command set_default_active_thread_percentage 50 {env}"),
            format!("command set_default_device_pinned_mem_limit 0 20480M {env}"),
        ]
    );
    let both = node.daemon(GPU0);
    assert_eq!(both.pid, first.pid);
    assert_eq!(both.clients.len(), 2);

    // The first share goes: the daemon stays for the second, whose limits are the defaults.
    state.unprepare(&claim("a")).await.unwrap();
    let one = node.daemon(GPU0);
    assert!(state.mps().alive(&one));
    assert_eq!(one.clients, BTreeSet::from(["b".to_owned()]));
    assert!(
        node.commands(GPU0)
            .last()
            .unwrap()
            .starts_with("command set_default_device_pinned_mem_limit 0 10240M")
    );
    node.assert_consistent();

    // The last share goes: `quit`, the process is gone, and so are record and directories.
    state.unprepare(&claim("b")).await.unwrap();
    wait_dead(&state, &one).await;
    assert!(node.daemons().daemons.is_empty());
    assert!(!node.mps_root.join(GPU0).exists());
    node.assert_consistent();
}

#[tokio::test(flavor = "current_thread")]
async fn every_mps_client_spec_carries_the_pipe_directory_shared_memory_and_its_limits() {
    let node = Node::new();
    let state = node.start();
    for (uid, threads, gib) in [("a", 30, 20), ("b", 50, 10)] {
        node.prepare_mps(&state, uid, "gpu-0-shared", threads, gib)
            .await;
    }
    // Without explicit limits, the allocation's capacity is the limit (share(): 25 %, 20 GiB).
    state
        .prepare(
            &claim("c"),
            &[share("gpu-0-shared", "c", mps())],
            &node.inventory,
        )
        .await
        .unwrap();
    let pipe = node.pipe_dir(GPU0).display().to_string();
    let shm = node.mps_root.join("shm").display().to_string();
    for (uid, threads, mib) in [("a", 30, 20480), ("b", 50, 10240), ("c", 25, 20480)] {
        let spec = node.spec(uid);
        let edits = &spec["containerEdits"];
        let env: Vec<&str> = edits["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(
            env,
            vec![
                format!("NVIDIA_VISIBLE_DEVICES={GPU0}").as_str(),
                &format!("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE={threads}"),
                &format!("CUDA_MPS_PINNED_DEVICE_MEM_LIMIT=0={mib}M"),
                "CUDA_MPS_PIPE_DIRECTORY=/tmp/nvidia-mps",
            ],
            "{uid}"
        );
        assert_eq!(
            edits["mounts"],
            serde_json::json!([
                {"hostPath": pipe, "containerPath": "/tmp/nvidia-mps",
                 "options": ["rbind", "rw", "nosuid", "nodev"]},
                {"hostPath": shm, "containerPath": "/dev/shm",
                 "options": ["rbind", "rw", "nosuid", "nodev"]},
            ]),
            "{uid}"
        );
    }
    // Not MPS, no daemon mounts.
    state
        .prepare(&claim("w"), &[dev("gpu-2-mig-3g40gb-0")], &node.inventory)
        .await
        .unwrap();
    assert!(node.spec("w")["containerEdits"].get("mounts").is_none());
    node.assert_consistent();
}

#[tokio::test(flavor = "current_thread")]
async fn a_restarted_plugin_adopts_a_live_daemon_and_restarts_a_dead_one() {
    let node = Node::new();
    let state = node.start();
    node.prepare_mps(&state, "a", "gpu-0-shared", 30, 20).await;
    let before = node.daemon(GPU0);
    drop(state);

    // A new instance (the daemon outlived the old one): adopted, not started again.
    let restarted = node.start();
    let report = node.recover_clean(&restarted).await;
    assert_eq!(report.mps.running, vec![GPU0.to_owned()]);
    assert!(report.mps.restarted.is_empty() && report.mps.down.is_empty());
    assert_eq!(node.daemon(GPU0), before);
    assert_eq!(starts(&node.commands(GPU0)), 1);

    // The daemon died with the old instance (a container restart): started again in the
    // same pipe directory, which running clients have mounted.
    let pipe_inode =
        std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(node.pipe_dir(GPU0)).unwrap());
    kill(before.pid);
    wait_dead(&restarted, &before).await;
    drop(restarted);
    let again = node.start();
    let report = node.recover_clean(&again).await;
    assert_eq!(report.mps.restarted, vec![GPU0.to_owned()]);
    let after = node.daemon(GPU0);
    assert_ne!(after.pid, before.pid);
    assert_eq!(after.restarts, 1);
    assert_eq!(after.clients, before.clients);
    assert_eq!(starts(&node.commands(GPU0)), 2);
    assert_eq!(
        std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(node.pipe_dir(GPU0)).unwrap()),
        pipe_inode,
        "the clients' mount still points at the pipe directory"
    );
    node.assert_consistent();
}

#[tokio::test(flavor = "current_thread")]
async fn supervision_restarts_a_daemon_that_died_and_says_so() {
    let node = Node::new();
    let state = node.start();
    node.prepare_mps(&state, "a", "gpu-0-shared", 30, 20).await;
    let report = state.supervise_mps().await.unwrap();
    assert_eq!(report.running, vec![GPU0.to_owned()]);
    assert!(report.restarted.is_empty());

    let first = node.daemon(GPU0);
    kill(first.pid);
    wait_dead(&state, &first).await;
    let report = state.supervise_mps().await.unwrap();
    assert_eq!(report.restarted, vec![GPU0.to_owned()]);
    assert!(report.down.is_empty());
    let second = node.daemon(GPU0);
    assert!(state.mps().alive(&second));
    assert_eq!(second.restarts, 1);
    // Started again with the clients' defaults.
    let lines = node.commands(GPU0);
    let env = env_of(&node, GPU0);
    assert_eq!(
        lines[lines.len() - 3..],
        [
            format!("start -d {env}"),
            format!("command set_default_active_thread_percentage 30 {env}"),
            format!("command set_default_device_pinned_mem_limit 0 20480M {env}"),
        ]
    );

    // Metrics and readiness follow the report.
    let metrics = crate::prepare::PrepareMetrics::unregistered();
    metrics.observe_mps(&report);
    let readiness = crate::admin::Readiness::new(&[crate::plugin::READY_MPS]);
    crate::plugin::runtime::mps_readiness(&readiness, &report);
    assert!(readiness.is_ready(), "a restarted daemon is running");

    // A daemon that cannot be started again is down, with backoff, and readiness says so.
    kill(second.pid);
    wait_dead(&state, &second).await;
    std::fs::remove_dir_all(node.mps_root.join(GPU0)).unwrap();
    std::fs::create_dir_all(&node.mps_root).unwrap();
    // A file where the device directory goes: the start fails.
    std::fs::write(node.mps_root.join(GPU0), b"in the way").unwrap();
    let report = state.supervise_mps().await.unwrap();
    assert_eq!(report.down.len(), 1, "{report:?}");
    assert!(report.down[0].starts_with(GPU0), "{report:?}");
    crate::plugin::runtime::mps_readiness(&readiness, &report);
    assert!(!readiness.is_ready());
    // The next pass waits for the backoff instead of trying at once.
    let report = state.supervise_mps().await.unwrap();
    assert!(report.down[0].contains("next start attempt"), "{report:?}");
    std::fs::remove_file(node.mps_root.join(GPU0)).unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn a_missing_binary_fails_mps_claims_naming_it_and_leaves_other_claims_alone() {
    let node = Node::new();
    let missing = "/nonexistent/nvidia-cuda-mps-control";
    let state = node.start_with_binary(missing);
    let err = state
        .prepare(
            &claim("a"),
            &[share("gpu-0-shared", "a", mps())],
            &node.inventory,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PrepareError::Mps(MpsError::BinaryMissing { .. })),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains(missing) && text.contains("--mps-control-binary"),
        "{text}"
    );
    assert_eq!(err.metric_label(), "mps_binary_missing");
    assert!(node.checkpoint().claims.is_empty(), "nothing recorded");
    assert_eq!(node.control.operations(), 0, "nothing changed");

    // A name not on PATH is the same refusal; time-sliced shares and whole GPUs work.
    let unnamed = node.start_with_binary("tessera-no-such-mps-control");
    assert!(matches!(
        unnamed
            .prepare(
                &claim("b"),
                &[share("gpu-0-shared", "b", mps())],
                &node.inventory
            )
            .await,
        Err(PrepareError::Mps(MpsError::BinaryMissing { .. }))
    ));
    let time_sliced = Some(Sharing::TimeSlicing {
        interval: TimeSliceInterval::Long,
    });
    state
        .prepare(
            &claim("t"),
            &[share("gpu-0-shared", "t", time_sliced)],
            &node.inventory,
        )
        .await
        .unwrap();
    state
        .prepare(&claim("w"), &[dev("gpu-2-mig-3g40gb-0")], &node.inventory)
        .await
        .unwrap();
    assert!(node.daemons().daemons.is_empty());
    assert_eq!(DEFAULT_CONTROL_BINARY, "nvidia-cuda-mps-control");
    node.assert_consistent();
}

#[tokio::test(flavor = "current_thread")]
async fn mps_shares_on_two_gpus_in_one_claim_are_refused() {
    let node = Node::new();
    let state = node.start();
    let err = state
        .prepare(
            &claim("a"),
            &[
                share("gpu-0-shared", "a", mps()),
                share("gpu-1-shared", "b", mps()),
            ],
            &node.inventory,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("one MPS control daemon"), "{err}");
    assert!(node.daemons().daemons.is_empty());
}

#[tokio::test(flavor = "current_thread")]
async fn recovery_stops_a_daemon_started_by_a_call_that_crashed_before_recording_it() {
    let node = Node::new();
    // Steps of a first MPS prepare: RecordPrepareStarted, ApplySharing, StartMps,
    // RecordMpsDaemons (crash here: the daemon runs, no record names it).
    let plan = Arc::new(FaultPlan::new(3, Fault::Crash));
    let state = node.start_with(plan.clone());
    let out = crash::until_crash(
        state.prepare(
            &claim("a"),
            &[share("gpu-0-shared", "a", mps())],
            &node.inventory,
        ),
        &plan,
        Fault::Crash,
    )
    .await;
    assert!(out.is_none());
    assert_eq!(
        plan.seen(),
        vec![
            Step::RecordPrepareStarted,
            Step::ApplySharing,
            Step::StartMps,
            Step::RecordMpsDaemons
        ]
    );
    let pid: u32 = std::fs::read_to_string(node.pipe_dir(GPU0).join("nvidia-cuda-mps-control.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(node.daemons().daemons.is_empty(), "not recorded");
    drop(state);

    let restarted = node.start();
    let report = restarted.recover(&node.inventory).await.unwrap();
    assert_eq!(report.rolled_back, vec!["a".to_owned()]);
    assert!(node.commands(GPU0).is_empty(), "directories removed");
    assert!(!running(pid), "the unrecorded daemon is stopped");
    node.assert_consistent();
}

#[tokio::test(flavor = "current_thread")]
async fn on_a_dynamic_mig_gpu_the_daemon_serves_the_full_size_instance_and_goes_before_it() {
    let node = Node::new();
    let state = node.start();
    let gpu1 = node.inventory.gpus[1].uuid.clone();
    for uid in ["a", "b"] {
        node.prepare_mps(&state, uid, "gpu-1-shared", 40, 8).await;
    }
    let instances = node.control.snapshot()[&gpu1].mig.clone();
    let (_, mig) = &instances[&Placement::new(0, 8)];
    // Keyed by the instance the clients see, started with it as its only device.
    let daemon = node.daemon(mig);
    assert_eq!(daemon.clients.len(), 2);
    assert_eq!(starts(&node.commands(mig)), 1);
    assert_eq!(
        node.commands(mig)[0],
        format!("start -d {}", env_of(&node, mig))
    );
    assert_eq!(
        node.spec("a")["containerEdits"]["mounts"][0]["hostPath"],
        node.pipe_dir(mig).display().to_string()
    );
    node.assert_consistent();

    state.unprepare(&claim("a")).await.unwrap();
    state.unprepare(&claim("b")).await.unwrap();
    wait_dead(&state, &daemon).await;
    assert!(node.control.snapshot()[&gpu1].mig.is_empty());
    assert!(node.daemons().daemons.is_empty());
    node.assert_consistent();
}

#[tokio::test(flavor = "current_thread")]
async fn a_daemon_a_corrupt_record_lost_is_adopted_not_started_twice() {
    let node = Node::new();
    let state = node.start();
    node.prepare_mps(&state, "a", "gpu-0-shared", 30, 20).await;
    let before = node.daemon(GPU0);
    std::fs::write(node.state_dir.join("mps-daemons.json"), b"{\"version\":1").unwrap();
    let report = state.supervise_mps().await.unwrap();
    assert_eq!(report.running, vec![GPU0.to_owned()], "{report:?}");
    let after = node.daemon(GPU0);
    assert_eq!(
        (after.pid, after.start_time),
        (before.pid, before.start_time)
    );
    assert_eq!(after.clients, before.clients);
    assert_eq!(starts(&node.commands(GPU0)), 1);
    node.assert_consistent();
}
