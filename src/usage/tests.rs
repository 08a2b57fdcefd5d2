//! Attribution end to end with the fake usage source, a fake `/proc` tree and a checkpoint:
//! whole GPU, static MIG, shared (time-sliced and MPS look alike), legacy share, processes
//! that exit mid-scrape, host processes, and more series than the cap.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::model::mig::Placement;
use crate::prepare::checkpoint::{
    CheckpointData, CheckpointStore, ClaimRecord, ClaimState, DeviceRecord,
};
use crate::prepare::device::{DeviceKind, GpuRef};

const GPU0: &str = "GPU-00000000-0000-0000-0000-000000000000";
const GPU1: &str = "GPU-11111111-1111-1111-1111-111111111111";
const GPU2: &str = "GPU-22222222-2222-2222-2222-222222222222";
const MIG: &str = "MIG-33333333-3333-3333-3333-333333333333";

fn uid(n: u32) -> String {
    format!("{n:08x}-0000-4000-8000-000000000000")
}

fn cid(n: u32) -> String {
    format!("{n:08x}{:056x}", 0xc0ffee)
}

fn device(name: &str, gpu: (u32, &str), kind: DeviceKind) -> DeviceRecord {
    DeviceRecord {
        request: "gpu".to_owned(),
        pool: "node-a".to_owned(),
        device: name.to_owned(),
        share_id: None,
        admin_access: false,
        gpu: GpuRef {
            index: gpu.0,
            uuid: gpu.1.to_owned(),
        },
        kind,
        sharing: None,
        visible_uuid: None,
        cdi_device_ids: vec![format!("gpu.tessera.dev/claim={name}")],
    }
}

fn claim(name: &str, state: ClaimState, devices: Vec<DeviceRecord>) -> ClaimRecord {
    ClaimRecord {
        namespace: "team-a".to_owned(),
        name: name.to_owned(),
        state,
        devices,
    }
}

/// Claims c1 (whole GPU 0), c2 (static MIG on GPU 1), c3 and c4 (shared GPU 2), c5 (legacy
/// share of GPU 0 — a test oddity, but it makes a whole-GPU holder and a share coexist), c6
/// half-prepared.
fn checkpoint() -> CheckpointData {
    let mut claims = BTreeMap::new();
    claims.insert(
        "c1".to_owned(),
        claim(
            "whole",
            ClaimState::PrepareCompleted,
            vec![device("gpu-0", (0, GPU0), DeviceKind::Whole)],
        ),
    );
    claims.insert(
        "c2".to_owned(),
        claim(
            "slice",
            ClaimState::PrepareCompleted,
            vec![device(
                "gpu-1-mig-1g10gb-0",
                (1, GPU1),
                DeviceKind::StaticMig {
                    uuid: MIG.to_owned(),
                    profile: "1g.10gb".to_owned(),
                    placement: Placement { start: 0, size: 1 },
                },
            )],
        ),
    );
    for (uid, name) in [("c3", "timesliced"), ("c4", "mps")] {
        claims.insert(
            uid.to_owned(),
            claim(
                name,
                ClaimState::PrepareCompleted,
                vec![device("gpu-2-shared", (2, GPU2), DeviceKind::Shared)],
            ),
        );
    }
    claims.insert(
        "c6".to_owned(),
        claim(
            "half",
            ClaimState::PrepareStarted,
            vec![device("gpu-2-shared", (2, GPU2), DeviceKind::Shared)],
        ),
    );
    CheckpointData {
        boot_id: "boot".to_owned(),
        claims,
    }
}

fn pods() -> PodDirectory {
    let mut dir = PodDirectory::new();
    for (n, pod, claims) in [
        (1, "trainer", vec!["c1"]),
        (2, "notebook", vec!["c2"]),
        (3, "infer-ts", vec!["c3"]),
        (4, "infer-mps", vec!["c4"]),
    ] {
        dir.insert(
            uid(n),
            PodNames {
                namespace: "team-a".to_owned(),
                name: pod.to_owned(),
                claim_uids: claims.into_iter().map(str::to_owned).collect(),
                containers: HashMap::from([(cid(n), "main".to_owned())]),
            },
        );
    }
    dir
}

/// Writes `/proc/<pid>/cgroup` for a container of pod `n`.
fn pod_pid(proc_dir: &Path, pid: u32, n: u32) {
    let pod = uid(n).replace('-', "_");
    write_cgroup(
        proc_dir,
        pid,
        &format!(
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{pod}.slice/cri-containerd-{}.scope\n",
            cid(n)
        ),
    );
}

fn write_cgroup(proc_dir: &Path, pid: u32, text: &str) {
    let dir = proc_dir.join(pid.to_string());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("cgroup"), text).unwrap();
}

fn process(pid: u32, mib: u64, sm: Option<u32>) -> ProcessSample {
    ProcessSample {
        pid,
        used_memory_bytes: Some(mib << 20),
        sm_percent: sm,
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    sampler: Sampler,
    source: Arc<FakeUsageSource>,
    proc_dir: std::path::PathBuf,
}

fn fixture(max_series: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let proc_dir = dir.path().join("proc");
    let state = dir.path().join("state");
    std::fs::create_dir_all(&proc_dir).unwrap();
    std::fs::create_dir_all(&state).unwrap();
    CheckpointStore::new(&state).save(&checkpoint()).unwrap();
    let source = Arc::new(FakeUsageSource::default());
    let sampler = Sampler::new(source.clone(), &proc_dir, &state, max_series);
    Fixture {
        _dir: dir,
        sampler,
        source,
        proc_dir,
    }
}

fn run(f: &Fixture) -> Attribution {
    let held = f.sampler.holdings().unwrap();
    f.sampler.attribute(&held, &pods()).unwrap()
}

fn row<'a>(a: &'a Attribution, pod: &str) -> &'a UsageRow {
    a.rows.iter().find(|r| r.pod == pod).unwrap()
}

#[test]
fn holdings_skip_half_prepared_claims() {
    let held = holdings(&checkpoint());
    assert_eq!(held.len(), 4);
    assert!(held.iter().all(|h| h.claim != "half"));
    let mig = held.iter().find(|h| h.claim == "slice").unwrap();
    assert_eq!((mig.uuid.as_str(), mig.device_type), (MIG, "mig"));
}

#[test]
fn whole_gpu_sums_processes_of_one_container() {
    let f = fixture(64);
    pod_pid(&f.proc_dir, 100, 1);
    pod_pid(&f.proc_dir, 101, 1);
    f.source.set(vec![DeviceSample {
        uuid: GPU0.to_owned(),
        parent_uuid: None,
        utilization_percent: Some(90),
        processes: vec![process(100, 1000, Some(30)), process(101, 24, Some(15))],
    }]);
    let a = run(&f);
    assert_eq!(a.rows.len(), 1);
    let r = row(&a, "trainer");
    assert_eq!(
        (
            r.container.as_str(),
            r.claim.as_str(),
            r.device.as_str(),
            r.device_type
        ),
        ("main", "whole", "gpu-0", "gpu")
    );
    assert_eq!(r.memory_bytes, 1024 << 20);
    assert_eq!(r.processes, 2);
    assert_eq!(r.utilization, Some((45, UtilizationSource::Process)));
    assert_eq!(a.attributed, 2);
}

#[test]
fn whole_gpu_without_process_samples_falls_back_to_the_gpu() {
    let f = fixture(64);
    pod_pid(&f.proc_dir, 100, 1);
    f.source.set(vec![DeviceSample {
        uuid: GPU0.to_owned(),
        parent_uuid: None,
        utilization_percent: Some(62),
        processes: vec![process(100, 10, None)],
    }]);
    let a = run(&f);
    assert_eq!(
        row(&a, "trainer").utilization,
        Some((62, UtilizationSource::Device))
    );
}

#[test]
fn mig_instance_uses_its_own_utilization_labelled_instance() {
    let f = fixture(64);
    pod_pid(&f.proc_dir, 200, 2);
    f.source.set(vec![DeviceSample {
        uuid: MIG.to_owned(),
        parent_uuid: Some(GPU1.to_owned()),
        utilization_percent: Some(40),
        // A per-process figure inside a MIG instance is not trusted even if a source gave one.
        processes: vec![process(200, 5000, Some(99))],
    }]);
    let a = run(&f);
    let r = row(&a, "notebook");
    assert_eq!(
        (r.device.as_str(), r.device_type),
        ("gpu-1-mig-1g10gb-0", "mig")
    );
    assert_eq!(r.memory_bytes, 5000 << 20);
    assert_eq!(r.utilization, Some((40, UtilizationSource::Instance)));
}

#[test]
fn shared_gpu_splits_time_sliced_and_mps_clients_by_pod() {
    let f = fixture(64);
    pod_pid(&f.proc_dir, 300, 3);
    pod_pid(&f.proc_dir, 400, 4);
    f.source.set(vec![DeviceSample {
        uuid: GPU2.to_owned(),
        parent_uuid: None,
        utilization_percent: Some(70),
        processes: vec![process(300, 2048, Some(50)), process(400, 4096, None)],
    }]);
    let a = run(&f);
    let ts = row(&a, "infer-ts");
    let mps = row(&a, "infer-mps");
    assert_eq!(
        (ts.claim.as_str(), ts.device_type),
        ("timesliced", "shared")
    );
    assert_eq!((mps.claim.as_str(), mps.memory_bytes), ("mps", 4096 << 20));
    assert_eq!(ts.utilization, Some((50, UtilizationSource::Process)));
    // No sample in the window for the MPS client: it ran no kernel (0 %), not "unknown".
    assert_eq!(mps.utilization, Some((0, UtilizationSource::Process)));
}

#[test]
fn shared_gpu_without_process_samples_reports_no_compute() {
    let f = fixture(64);
    pod_pid(&f.proc_dir, 300, 3);
    pod_pid(&f.proc_dir, 400, 4);
    f.source.set(vec![DeviceSample {
        uuid: GPU2.to_owned(),
        parent_uuid: None,
        utilization_percent: Some(70),
        processes: vec![process(300, 1, None), process(400, 1, None)],
    }]);
    let a = run(&f);
    assert_eq!(a.rows.len(), 2);
    assert!(a.rows.iter().all(|r| r.utilization.is_none()));
}

#[test]
fn legacy_share_is_attributed_like_a_shared_gpu() {
    let mut data = checkpoint();
    data.claims.insert(
        "c5".to_owned(),
        claim(
            "replica",
            ClaimState::PrepareCompleted,
            vec![device(
                "gpu-3-share-1",
                (3, "GPU-3"),
                DeviceKind::Share { replica: 1 },
            )],
        ),
    );
    let held = holdings(&data);
    let dir = tempfile::tempdir().unwrap();
    pod_pid(dir.path(), 500, 5);
    let mut names = pods();
    names.insert(
        uid(5),
        PodNames {
            namespace: "team-b".to_owned(),
            name: "batch".to_owned(),
            claim_uids: vec!["c5".to_owned()],
            containers: HashMap::new(),
        },
    );
    let samples = vec![DeviceSample {
        uuid: "GPU-3".to_owned(),
        parent_uuid: None,
        utilization_percent: Some(10),
        processes: vec![process(500, 300, None)],
    }];
    let a = attribute(
        &samples,
        &held,
        &names,
        |pid| cgroup::lookup(dir.path(), pid),
        64,
    );
    let r = row(&a, "batch");
    assert_eq!(
        (r.namespace.as_str(), r.device_type, r.claim.as_str()),
        ("team-b", "share", "replica")
    );
    // Container name unknown to the API yet: the short container ID stands in.
    assert_eq!(r.container, cid(5)[..12]);
    // A share is not exclusive: the GPU's utilization is not this pod's.
    assert_eq!(r.utilization, None);
}

#[test]
fn exited_host_and_unclaimed_processes_are_counted_not_attributed() {
    let f = fixture(64);
    pod_pid(&f.proc_dir, 100, 1);
    write_cgroup(
        &f.proc_dir,
        7,
        "0::/system.slice/nvidia-persistenced.service\n",
    );
    // Pod 3 holds a share of GPU 2, not GPU 0.
    pod_pid(&f.proc_dir, 300, 3);
    f.source.set(vec![DeviceSample {
        uuid: GPU0.to_owned(),
        parent_uuid: None,
        utilization_percent: Some(5),
        // 999 exited between the NVML read and the /proc read: no /proc entry.
        processes: vec![
            process(100, 1, Some(1)),
            process(999, 1, Some(1)),
            process(7, 1, None),
            process(300, 1, None),
        ],
    }]);
    let a = run(&f);
    assert_eq!(
        (a.attributed, a.exited, a.not_pod, a.unclaimed),
        (1, 1, 1, 1)
    );
    assert_eq!(a.rows.len(), 1);
    assert_eq!(row(&a, "trainer").memory_bytes, 1 << 20);
}

#[test]
fn unnamed_pod_on_an_exclusive_device_is_labelled_by_uid() {
    let held = holdings(&checkpoint());
    let dir = tempfile::tempdir().unwrap();
    pod_pid(dir.path(), 100, 1);
    pod_pid(dir.path(), 300, 3);
    let samples = vec![
        DeviceSample {
            uuid: GPU0.to_owned(),
            processes: vec![process(100, 1, None)],
            ..DeviceSample::default()
        },
        DeviceSample {
            uuid: GPU2.to_owned(),
            processes: vec![process(300, 1, None)],
            ..DeviceSample::default()
        },
    ];
    let empty = PodDirectory::new();
    let a = attribute(
        &samples,
        &held,
        &empty,
        |pid| cgroup::lookup(dir.path(), pid),
        64,
    );
    // The whole GPU has one holder; the shared one cannot be told apart without the pod.
    assert_eq!(a.rows.len(), 1);
    assert_eq!(
        (a.rows[0].pod.as_str(), a.rows[0].claim.as_str()),
        (uid(1).as_str(), "whole")
    );
    assert_eq!(a.unclaimed, 1);
}

#[test]
fn more_series_than_the_cap_are_dropped_and_counted() {
    let held = holdings(&checkpoint());
    let dir = tempfile::tempdir().unwrap();
    let mut names = PodDirectory::new();
    let mut processes = Vec::new();
    // 10 pods sharing GPU 2 through claim c3, each with its own container.
    for n in 10..20 {
        pod_pid(dir.path(), n, n);
        names.insert(
            uid(n),
            PodNames {
                namespace: "team-a".to_owned(),
                name: format!("pod-{n}"),
                claim_uids: vec!["c3".to_owned()],
                containers: HashMap::new(),
            },
        );
        processes.push(process(n, 1, Some(1)));
    }
    let samples = vec![DeviceSample {
        uuid: GPU2.to_owned(),
        processes,
        ..DeviceSample::default()
    }];
    let a = attribute(
        &samples,
        &held,
        &names,
        |pid| cgroup::lookup(dir.path(), pid),
        4,
    );
    assert_eq!(a.rows.len(), 4);
    assert_eq!(a.overflow, 6);
    assert_eq!(a.attributed, 10);
    // Deterministic: the first four by (namespace, pod, ...).
    let kept: Vec<&str> = a.rows.iter().map(|r| r.pod.as_str()).collect();
    assert_eq!(kept, ["pod-10", "pod-11", "pod-12", "pod-13"]);

    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = UsageMetrics::register(&mut registry);
    metrics.record(&a);
    let text = crate::metrics::encode(&registry).unwrap();
    assert_eq!(
        text.matches("tessera_plugin_gpu_memory_used_bytes{")
            .count(),
        4
    );
    assert!(text.contains("tessera_plugin_gpu_usage_series_overflow_total 6"));
    assert!(text.contains(
        "tessera_plugin_gpu_utilization_percent{namespace=\"team-a\",pod=\"pod-10\",container=\"0000000a0000\",claim=\"timesliced\",device=\"gpu-2-shared\",type=\"shared\",source=\"process\"} 1.0"
    ));
}

#[test]
fn a_later_sample_drops_series_of_exited_containers() {
    let f = fixture(64);
    pod_pid(&f.proc_dir, 100, 1);
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = UsageMetrics::register(&mut registry);
    f.source.set(vec![DeviceSample {
        uuid: GPU0.to_owned(),
        processes: vec![process(100, 1, None)],
        ..DeviceSample::default()
    }]);
    metrics.record(&run(&f));
    let text = crate::metrics::encode(&registry).unwrap();
    assert!(text.contains("pod=\"trainer\""));
    f.source.set(vec![DeviceSample {
        uuid: GPU0.to_owned(),
        ..DeviceSample::default()
    }]);
    metrics.record(&run(&f));
    let text = crate::metrics::encode(&registry).unwrap();
    assert!(!text.contains("pod=\"trainer\""));
}

#[test]
fn fake_source_bounds_devices() {
    let source = FakeUsageSource::new(vec![DeviceSample::default(); MAX_DEVICES + 1]);
    assert!(matches!(
        source.sample(),
        Err(UsageError::TooManyDevices { .. })
    ));
}

#[tokio::test]
async fn pod_namer_reads_reserved_for_and_drops_released_claims() {
    use k8s_openapi::api::resource::v1::{
        ResourceClaim, ResourceClaimConsumerReference, ResourceClaimStatus,
    };
    let claims = Arc::new(crate::prepare::MemoryClaimSource::new());
    let mut claim = ResourceClaim::default();
    claim.metadata.namespace = Some("team-a".to_owned());
    claim.metadata.name = Some("whole".to_owned());
    claim.status = Some(ResourceClaimStatus {
        reserved_for: Some(vec![ResourceClaimConsumerReference {
            resource: "pods".to_owned(),
            name: "trainer".to_owned(),
            uid: uid(1),
            ..Default::default()
        }]),
        ..Default::default()
    });
    claims.insert(claim);
    let mut namer = PodNamer::new(claims, None);
    let held = holdings(&checkpoint());
    let dir = namer.refresh(&held).await;
    let pod = dir.get(&uid(1)).unwrap();
    assert_eq!(
        (pod.name.as_str(), pod.claim_uids.as_slice()),
        ("trainer", ["c1".to_owned()].as_slice())
    );
    // c1 unprepared: its pod leaves the directory.
    let held: Vec<Holding> = held.into_iter().filter(|h| h.claim_uid != "c1").collect();
    assert!(namer.refresh(&held).await.is_empty());
}

fn gpu(index: u32, uuid: &str, product: &str, gib: u64) -> crate::model::Gpu {
    crate::model::Gpu {
        index,
        uuid: uuid.to_owned(),
        pci_bus_id: format!("0000:0{index}:00.0"),
        product_name: product.to_owned(),
        memory_bytes: gib << 30,
        architecture: "Hopper".to_owned(),
        cuda_compute_capability: "9.0".to_owned(),
        mig: crate::model::MigState::Disabled,
    }
}

#[test]
fn held_devices_are_listed_and_sized_even_without_processes() {
    let mut held = holdings(&checkpoint());
    let mps = held.iter_mut().find(|h| h.claim == "mps").unwrap();
    mps.mps = Some(crate::prepare::device::MpsLimits {
        active_thread_percentage: Some(25),
        pinned_memory_limit_bytes: Some(10 << 30),
    });
    let gpus = [
        gpu(0, GPU0, "NVIDIA H100 80GB HBM3", 80),
        gpu(1, GPU1, "NVIDIA L4", 24),
        gpu(2, GPU2, "NVIDIA L4", 24),
    ];
    // No usage sample at all: every held device is still listed.
    let rows = held_devices(&held, &pods(), &gpus, 512);
    let of = |pod: &str| rows.iter().find(|r| r.pod == pod).unwrap();
    let whole = of("trainer");
    assert_eq!(
        (
            whole.device_type,
            whole.gpu_model.as_str(),
            whole.memory_bytes,
            whole.compute_percent
        ),
        ("gpu", "NVIDIA H100 80GB HBM3", Some(80 << 30), Some(100))
    );
    let mig = of("notebook");
    // A profile the GPU's MIG table does not know (an L4 has none) gets no size rather than
    // a guess.
    assert_eq!((mig.profile.as_str(), mig.memory_bytes), ("1g.10gb", None));
    let mps = of("infer-mps");
    assert_eq!(
        (mps.memory_bytes, mps.compute_percent),
        (Some(10 << 30), Some(25))
    );
    assert_eq!(mps.gpu_memory_bytes, 24 << 30);
    let ts = of("infer-ts");
    assert_eq!((ts.memory_bytes, ts.compute_percent), (None, None));
    assert_eq!(rows.len(), 4);

    // A known profile is sized from the MIG table: H100 1g.10gb is 1/7 of the SMs.
    let gpus = [
        gpu(0, GPU0, "NVIDIA H100 80GB HBM3", 80),
        gpu(1, GPU1, "NVIDIA H100 80GB HBM3", 80),
    ];
    let rows = held_devices(&held, &pods(), &gpus, 512);
    let mig = rows.iter().find(|r| r.pod == "notebook").unwrap();
    assert_eq!(mig.compute_percent, Some(14));
    assert!(
        mig.memory_bytes
            .is_some_and(|b| b > 9 << 30 && b < 10 << 30)
    );

    // A claim no known pod is reserved for is listed with an empty pod; the cap holds.
    let rows = held_devices(&held, &PodDirectory::new(), &[], 2);
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.pod.is_empty()));

    // The metric carries them.
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = UsageMetrics::register(&mut registry);
    metrics.record_held(&held_devices(&held, &pods(), &gpus, 512));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains("tessera_plugin_claim_device_info{namespace=\"team-a\",pod=\"notebook\",claim=\"slice\",device=\"gpu-1-mig-1g10gb-0\",type=\"mig\",gpu_model=\"NVIDIA H100 80GB HBM3\""),
        "{text}"
    );
    assert!(
        text.contains("tessera_plugin_claim_device_memory_bytes{namespace=\"team-a\",pod=\"trainer\",claim=\"whole\",device=\"gpu-0\",type=\"gpu\"} 85899345920"),
        "{text}"
    );
}
