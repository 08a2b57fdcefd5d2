//! NodePrepareResources as the kubelet calls it: a tonic client on the DRA Unix socket, the
//! plugin reading each claim from an in-process API server over HTTP, checkpoint and CDI
//! writes with fsync, fake GPUs. Then the resident memory of the `tessera plugin` binary
//! serving 8 fake GPUs.
//!
//! Run with `cargo bench --bench prepare` (temp dirs on the disk `TMPDIR` points to: the
//! checkpoint's fsyncs cost what that disk charges). Criterion prints the mean; the bench also
//! prints p50 / p99 of every timed call, since the target is a p99.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/plugin_support/mod.rs"]
mod plugin_support;

use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use plugin_support::{DRIVER, MockApiServer, NODE, RunningPlugin, TestNode};
use tessera::model::MigState;
use tessera::plugin::proto::dra_v1 as v1;
use tessera::prepare::ClaimBuilder;
use tokio::runtime::Runtime;

const GPUS: u32 = 8;

fn claim_ref(uid: &str) -> v1::Claim {
    v1::Claim {
        namespace: "bench".to_owned(),
        name: uid.to_owned(),
        uid: uid.to_owned(),
    }
}

/// A claim for one share of `gpu-<gpu>-shared`, as the scheduler leaves it.
fn shared_claim(api: &MockApiServer, uid: &str, gpu: u32) {
    api.insert(
        ClaimBuilder::new("bench", uid, uid)
            .share(
                "gpu",
                DRIVER,
                NODE,
                &format!("gpu-{gpu}-shared"),
                &format!("{uid}-share"),
                &[("memory", "10Gi"), ("compute", "12")],
            )
            .build(),
    );
}

struct Bench {
    rt: Runtime,
    api: MockApiServer,
    plugin: RunningPlugin,
    client: v1::dra_plugin_client::DraPluginClient<tonic::transport::Channel>,
    _node: TestNode,
}

fn setup() -> Bench {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut node = TestNode::new(GPUS);
    for gpu in &mut node.inventory.gpus {
        gpu.mig = MigState::Disabled;
    }
    let (api, plugin, client) = rt.block_on(async {
        let api = MockApiServer::start().await;
        let plugin = node.start(&api, None).await;
        let client = plugin.v1().await;
        (api, plugin, client)
    });
    Bench {
        rt,
        api,
        plugin,
        client,
        _node: node,
    }
}

fn percentiles(name: &str, samples: &Mutex<Vec<Duration>>) {
    let mut s = samples.lock().unwrap().clone();
    if s.is_empty() {
        return; // filtered out on the command line
    }
    s.sort();
    let at = |q: f64| s[((s.len() as f64 * q).ceil() as usize).clamp(1, s.len()) - 1];
    eprintln!(
        "{name}: {} calls, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        s.len(),
        at(0.50).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        s[s.len() - 1].as_secs_f64() * 1e3
    );
}

fn prepare(c: &mut Criterion) {
    let mut bench = setup();
    let mut group = c.benchmark_group("node_prepare_resources");
    group.measurement_time(Duration::from_secs(10));

    // One claim holding one share of a shared GPU; a fresh claim every call (a repeated one
    // would take the idempotent fast path), unprepared outside the timing.
    let one = Mutex::new(Vec::new());
    let mut serial = 0u64;
    group.bench_function("one_shared_claim", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                serial += 1;
                let uid = format!("one-{serial}");
                shared_claim(&bench.api, &uid, 0);
                let request = v1::NodePrepareResourcesRequest {
                    claims: vec![claim_ref(&uid)],
                };
                let started = Instant::now();
                let answer = bench
                    .rt
                    .block_on(bench.client.node_prepare_resources(request))
                    .unwrap()
                    .into_inner();
                let took = started.elapsed();
                total += took;
                one.lock().unwrap().push(took);
                assert_eq!(answer.claims[&uid].error, "");
                bench
                    .rt
                    .block_on(bench.client.node_unprepare_resources(
                        v1::NodeUnprepareResourcesRequest {
                            claims: vec![claim_ref(&uid)],
                        },
                    ))
                    .unwrap();
            }
            total
        })
    });

    // Eight claims in one call, one share on each of the 8 GPUs (a pod with 8 claims).
    let eight = Mutex::new(Vec::new());
    group.bench_function("eight_claims", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                serial += 1;
                let uids: Vec<String> = (0..GPUS).map(|g| format!("eight-{serial}-{g}")).collect();
                for (g, uid) in uids.iter().enumerate() {
                    shared_claim(&bench.api, uid, g as u32);
                }
                let claims: Vec<_> = uids.iter().map(|u| claim_ref(u)).collect();
                let started = Instant::now();
                let answer = bench
                    .rt
                    .block_on(bench.client.node_prepare_resources(
                        v1::NodePrepareResourcesRequest {
                            claims: claims.clone(),
                        },
                    ))
                    .unwrap()
                    .into_inner();
                let took = started.elapsed();
                total += took;
                eight.lock().unwrap().push(took);
                assert!(answer.claims.values().all(|c| c.error.is_empty()));
                bench
                    .rt
                    .block_on(
                        bench
                            .client
                            .node_unprepare_resources(v1::NodeUnprepareResourcesRequest { claims }),
                    )
                    .unwrap();
            }
            total
        })
    });
    group.finish();
    percentiles("one_shared_claim", &one);
    percentiles("eight_claims", &eight);
    let Bench { rt, plugin, .. } = bench;
    rt.block_on(plugin.stop()).unwrap();
}

/// What one durable checkpoint write costs on this disk (temp file, fsync, rename,
/// directory fsync): prepare does two.
fn checkpoint_save(c: &mut Criterion) {
    use tessera::prepare::checkpoint::{CheckpointData, CheckpointStore};
    let dir = tempfile::tempdir().unwrap();
    let store = CheckpointStore::new(dir.path());
    let data = CheckpointData {
        boot_id: "bench".to_owned(),
        ..CheckpointData::default()
    };
    c.bench_function("checkpoint/save_empty", |b| {
        b.iter(|| store.save(&data).unwrap())
    });
}

/// Start the real binary with 8 fake GPUs (`--fake-gpus h100x8`) against the in-process API
/// server, prepare and unprepare 8 claims four times through its socket, then read its VmRSS
/// and VmHWM. The mock serves claims only, so the publisher beside it keeps retrying: its
/// memory is in the figure.
fn resident_memory(_: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let api = rt.block_on(MockApiServer::start());
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: mock\n  cluster: {{server: '{}'}}\ncontexts:\n- name: mock\n  context: {{cluster: mock, user: mock}}\ncurrent-context: mock\nusers:\n- name: mock\n  user: {{}}\n",
            api.url()
        ),
    )
    .unwrap();
    let registry = dir.path().join("registry");
    let plugin_dir = dir.path().join("plugin");
    // The usage sampler runs every second over 8 GPUs × 48 processes (this bench's own PID,
    // so each one is read from the real /proc and counted as not a pod's).
    let usage = dir.path().join("usage.yaml");
    let mut yaml = String::new();
    for g in 0..GPUS {
        yaml.push_str(&format!(
            "- uuid: GPU-{g}\n  utilizationPercent: 50\n  processes:\n"
        ));
        for _ in 0..48 {
            yaml.push_str(&format!(
                "    - {{pid: {}, usedMemoryBytes: 1048576, smPercent: 1}}\n",
                std::process::id()
            ));
        }
    }
    std::fs::write(&usage, yaml).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["plugin", "--node-name", NODE, "--admin-addr", "127.0.0.1:0"])
        .args(["--fake-gpus", "h100x8", "--features", "consumable"])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--plugin-registry-dir")
        .arg(&registry)
        .arg("--plugin-dir")
        .arg(&plugin_dir)
        .arg("--cdi-dir")
        .arg(dir.path().join("cdi"))
        .args([
            "--usage-interval",
            "1",
            "--host-proc",
            "/proc",
            "--fake-usage",
        ])
        .arg(&usage)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let dra = plugin_dir.join("dra.sock");
    let started = Instant::now();
    while !registry.join(format!("{DRIVER}-reg.sock")).exists() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the plugin did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let idle = vm_kib(child.id(), "VmRSS");
    rt.block_on(async {
        let channel = tonic::transport::Endpoint::try_from("http://[::]:50051")
            .unwrap()
            .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
                let dra = dra.clone();
                async move {
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                        tokio::net::UnixStream::connect(dra).await?,
                    ))
                }
            }))
            .await
            .unwrap();
        let mut client = v1::dra_plugin_client::DraPluginClient::new(channel);
        for round in 0..4 {
            let uids: Vec<String> = (0..GPUS).map(|g| format!("rss-{round}-{g}")).collect();
            for (g, uid) in uids.iter().enumerate() {
                shared_claim(&api, uid, g as u32);
            }
            let claims: Vec<_> = uids.iter().map(|u| claim_ref(u)).collect();
            let answer = client
                .node_prepare_resources(v1::NodePrepareResourcesRequest {
                    claims: claims.clone(),
                })
                .await
                .unwrap()
                .into_inner();
            assert!(
                answer.claims.values().all(|c| c.error.is_empty()),
                "{answer:?}"
            );
            client
                .node_unprepare_resources(v1::NodeUnprepareResourcesRequest { claims })
                .await
                .unwrap();
        }
    });
    let busy = vm_kib(child.id(), "VmRSS");
    let peak = vm_kib(child.id(), "VmHWM");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    eprintln!(
        "tessera plugin, {GPUS} fake GPUs: VmRSS idle {:.1} MiB, after 32 prepares {:.1} MiB, VmHWM {:.1} MiB; exit {status}",
        idle as f64 / 1024.0,
        busy as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    assert!(status.success(), "SIGTERM is a clean exit");
    assert!(
        !registry.join(format!("{DRIVER}-reg.sock")).exists(),
        "sockets removed"
    );
}

fn vm_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

criterion_group!(benches, checkpoint_save, prepare, resident_memory);
criterion_main!(benches);
