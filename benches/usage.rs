//! One per-pod usage scrape on a busy node: 8 GPUs × 48 compute processes each (384 PIDs),
//! 8 shared claims per GPU, a fake `/proc` tree with a cgroup file per PID, and the
//! checkpoint on disk. The scrape is what the sampler does every interval: load the
//! checkpoint, sample the (fake) GPUs, read every PID's cgroup, attribute, and replace the
//! metric series. Target: ≤ 5 ms.
//!
//! Run with `cargo bench --bench usage`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use prometheus_client::registry::Registry;
use tessera::prepare::checkpoint::{
    CheckpointData, CheckpointStore, ClaimRecord, ClaimState, DeviceRecord,
};
use tessera::prepare::device::{DeviceKind, GpuRef};
use tessera::usage::{
    DeviceSample, FakeUsageSource, PodDirectory, PodNames, ProcessSample, Sampler, UsageMetrics,
};

const GPUS: u32 = 8;
const PROCESSES: u32 = 48;
const CLAIMS_PER_GPU: u32 = 8;

fn gpu_uuid(g: u32) -> String {
    format!("GPU-{g:08x}-0000-4000-8000-000000000000")
}

fn pod_uid(n: u32) -> String {
    format!("{n:08x}-0000-4000-8000-00000000beef")
}

fn container(n: u32) -> String {
    format!("{n:08x}{:056x}", 0xc0ffee)
}

fn scrape(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let proc_dir = dir.path().join("proc");
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let mut claims = BTreeMap::new();
    let mut pods = PodDirectory::new();
    let mut samples = Vec::new();
    for g in 0..GPUS {
        for k in 0..CLAIMS_PER_GPU {
            let n = g * CLAIMS_PER_GPU + k;
            let uid = format!("claim-{n}");
            claims.insert(
                uid.clone(),
                ClaimRecord {
                    namespace: "team".to_owned(),
                    name: format!("infer-{n}"),
                    state: ClaimState::PrepareCompleted,
                    devices: vec![DeviceRecord {
                        request: "gpu".to_owned(),
                        pool: "node".to_owned(),
                        device: format!("gpu-{g}-shared"),
                        share_id: Some(format!("{n:08x}-0000-4000-8000-000000000001")),
                        admin_access: false,
                        gpu: GpuRef {
                            index: g,
                            uuid: gpu_uuid(g),
                        },
                        kind: DeviceKind::Shared,
                        sharing: None,
                        visible_uuid: None,
                        cdi_device_ids: vec![format!("gpu.tessera.dev/claim={uid}")],
                    }],
                },
            );
            pods.insert(
                pod_uid(n),
                PodNames {
                    namespace: "team".to_owned(),
                    name: format!("infer-{n}-7d9c"),
                    claim_uids: vec![uid],
                    containers: HashMap::from([(container(n), "server".to_owned())]),
                },
            );
        }
        let mut processes = Vec::new();
        for p in 0..PROCESSES {
            let pid = 10_000 + g * PROCESSES + p;
            let n = g * CLAIMS_PER_GPU + p % CLAIMS_PER_GPU;
            let pid_dir = proc_dir.join(pid.to_string());
            std::fs::create_dir_all(&pid_dir).unwrap();
            std::fs::write(
                pid_dir.join("cgroup"),
                format!(
                    "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{}.scope\n",
                    pod_uid(n).replace('-', "_"),
                    container(n)
                ),
            )
            .unwrap();
            processes.push(ProcessSample {
                pid,
                used_memory_bytes: Some(u64::from(p + 1) << 24),
                sm_percent: Some(p % 7),
            });
        }
        samples.push(DeviceSample {
            uuid: gpu_uuid(g),
            parent_uuid: None,
            utilization_percent: Some(80),
            processes,
        });
    }
    CheckpointStore::new(&state)
        .save(&CheckpointData {
            boot_id: "bench".to_owned(),
            claims,
        })
        .unwrap();
    let source = Arc::new(FakeUsageSource::new(samples));
    let sampler = Sampler::new(source, &proc_dir, &state, 512);
    let mut registry = Registry::default();
    let metrics = UsageMetrics::register(&mut registry);

    let held = sampler.holdings().unwrap();
    let first = sampler.attribute(&held, &pods).unwrap();
    assert_eq!(first.attributed, u64::from(GPUS * PROCESSES));
    assert_eq!(first.rows.len(), (GPUS * CLAIMS_PER_GPU) as usize);

    c.bench_function("usage/scrape_8gpus_x_48processes", |b| {
        b.iter(|| {
            let held = sampler.holdings().unwrap();
            let attribution = sampler.attribute(&held, &pods).unwrap();
            metrics.record(&attribution);
            attribution.rows.len()
        })
    });
}

criterion_group!(benches, scrape);
criterion_main!(benches);
