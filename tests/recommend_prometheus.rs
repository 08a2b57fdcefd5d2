//! `tessera recommend` against a real Prometheus holding recorded usage series.
//!
//! The test writes a day of plugin, extender and kube-state-metrics series as OpenMetrics
//! text, turns it into TSDB blocks with `promtool tsdb create-blocks-from openmetrics`, serves
//! them with `prometheus` on a loopback port, and checks the report against figures worked
//! out by hand (they are the worked example of docs/recommend.md):
//!
//! - `infer` (Deployment, owner from kube-state-metrics): a whole H100 using ≤ 7 GiB and p95
//!   8 % → MIG `1g.10gb` (7 × 1.2 = 8.4 GiB ≤ 9.75 GiB; 8 % ≤ 1/7); the extender prices it at
//!   $4/h, so $2920/month now, $417.14 after.
//! - `train` (StatefulSet, guessed from `train-0`): a whole H100 at ≤ 64 GiB and p95 85 % →
//!   kept (76.8 GiB needs `7g.80gb`, the whole GPU; a 77 GiB share would free < 1/7).
//! - `notebook` (a bare pod): MIG `3g.40gb`, busy the first half of the day, then nothing:
//!   p95 20 % of the instance = 8.57 % of the GPU and 4 GiB → `1g.10gb`; and idle for the last
//!   6 h, listed with its cost.
//! - `nightly-eval` (CronJob, through `kube_job_owner`): a whole H100 for 2 h of the day at
//!   30 GiB and 50 % → `4g.40gb`, its cost weighted by the 2 h held, noted "short history".
//! - errors: an unreachable Prometheus, and a window without the tessera metrics (both
//!   branches: no sampler at all, and a sampler but no held device).
//!
//! Needs `prometheus` and `promtool` (Prometheus 2.x): `.ci/install-prometheus` fetches them
//! and `.ci/run` runs this test with TESSERA_PROMETHEUS_BIN_DIR pointing at them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tessera::market::PriceCatalog;
use tessera::rightsize::price::catalog_price;

/// The end of the recorded day (2026-05-28T20:00:00Z), a whole minute.
const END: i64 = 1_779_998_400;
const STEP: i64 = 60;
const DAY: i64 = 86_400;
const GIB: u64 = 1 << 30;
const H100: &str = "NVIDIA H100 80GB HBM3";
const INFER_POD: &str = "infer-7d9f8b6c5d-x2x4z";
const NIGHTLY_POD: &str = "nightly-eval-29123456-x8k2p";

struct Prometheus {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bin_dir() -> PathBuf {
    PathBuf::from(std::env::var("TESSERA_PROMETHEUS_BIN_DIR").expect(
        "TESSERA_PROMETHEUS_BIN_DIR must name a directory with prometheus and promtool \
         (.ci/install-prometheus prints one)",
    ))
}

/// One gauge sample line per minute of `[from, END]` with `value(t)`; `None` leaves a gap.
fn series(out: &mut String, name_labels: &str, from: i64, value: impl Fn(i64) -> Option<f64>) {
    let mut t = from;
    while t <= END {
        if let Some(v) = value(t) {
            writeln!(out, "{name_labels} {v} {t}").unwrap();
        }
        t += STEP;
    }
}

/// The recorded day. Minute `i` of the day is `(t - (END - DAY)) / STEP`, 1..=1440.
fn openmetrics() -> String {
    let start = END - DAY + STEP;
    let minute = |t: i64| (t - (END - DAY)) / STEP;
    // 30 busy minutes (2 % of the day): the peaks, above the 95th percentile.
    let busy = move |t: i64| (600..630).contains(&minute(t));
    let first_half = move |t: i64| minute(t) <= 720;
    let first_two_hours = move |t: i64| minute(t) <= 120;
    let h100 = format!("gpu_model=\"{H100}\",gpu_memory_bytes=\"{}\"", 80 * GIB);
    let mut out = String::new();

    out.push_str("# TYPE tessera_plugin_claim_device_info gauge\n");
    for (pod, claim, device, ty, profile, mem, compute) in [
        (
            INFER_POD,
            "infer-7d9f8b6c5d-x2x4z-gpu-k2x8q",
            "gpu-0",
            "gpu",
            "",
            80 * GIB,
            "100",
        ),
        (
            "train-0",
            "train-0-gpu-p7n4m",
            "gpu-1",
            "gpu",
            "",
            80 * GIB,
            "100",
        ),
        (
            "notebook",
            "notebook-gpu",
            "gpu-2-mig-3g40gb-0",
            "mig",
            "3g.40gb",
            42_221_043_712,
            "42",
        ),
        (
            NIGHTLY_POD,
            "nightly-gpu",
            "gpu-3",
            "gpu",
            "",
            80 * GIB,
            "100",
        ),
    ] {
        let nightly = pod == NIGHTLY_POD;
        series(
            &mut out,
            &format!(
                "tessera_plugin_claim_device_info{{namespace=\"ml\",pod=\"{pod}\",claim=\"{claim}\",device=\"{device}\",type=\"{ty}\",{h100},profile=\"{profile}\",memory_bytes=\"{mem}\",compute_percent=\"{compute}\"}}"
            ),
            start,
            |t| (!nightly || first_two_hours(t)).then_some(1.0),
        );
    }

    out.push_str("# TYPE tessera_plugin_gpu_memory_used_bytes gauge\n");
    let gib = |n: u64| (n * GIB) as f64;
    series(
        &mut out,
        &format!(
            "tessera_plugin_gpu_memory_used_bytes{{namespace=\"ml\",pod=\"{INFER_POD}\",container=\"server\",claim=\"infer-7d9f8b6c5d-x2x4z-gpu-k2x8q\",device=\"gpu-0\",type=\"gpu\"}}"
        ),
        start,
        |t| Some(if busy(t) { gib(7) } else { gib(6) }),
    );
    series(
        &mut out,
        "tessera_plugin_gpu_memory_used_bytes{namespace=\"ml\",pod=\"train-0\",container=\"trainer\",claim=\"train-0-gpu-p7n4m\",device=\"gpu-1\",type=\"gpu\"}",
        start,
        |t| Some(if busy(t) { gib(64) } else { gib(60) }),
    );
    series(
        &mut out,
        "tessera_plugin_gpu_memory_used_bytes{namespace=\"ml\",pod=\"notebook\",container=\"jupyter\",claim=\"notebook-gpu\",device=\"gpu-2-mig-3g40gb-0\",type=\"mig\"}",
        start,
        |t| first_half(t).then(|| gib(4)),
    );

    series(
        &mut out,
        &format!(
            "tessera_plugin_gpu_memory_used_bytes{{namespace=\"ml\",pod=\"{NIGHTLY_POD}\",container=\"eval\",claim=\"nightly-gpu\",device=\"gpu-3\",type=\"gpu\"}}"
        ),
        start,
        |t| first_two_hours(t).then(|| gib(30)),
    );

    out.push_str("# TYPE tessera_plugin_gpu_utilization_percent gauge\n");
    series(
        &mut out,
        &format!(
            "tessera_plugin_gpu_utilization_percent{{namespace=\"ml\",pod=\"{INFER_POD}\",container=\"server\",claim=\"infer-7d9f8b6c5d-x2x4z-gpu-k2x8q\",device=\"gpu-0\",type=\"gpu\",source=\"process\"}}"
        ),
        start,
        |t| Some(if busy(t) { 30.0 } else { 8.0 }),
    );
    series(
        &mut out,
        "tessera_plugin_gpu_utilization_percent{namespace=\"ml\",pod=\"train-0\",container=\"trainer\",claim=\"train-0-gpu-p7n4m\",device=\"gpu-1\",type=\"gpu\",source=\"process\"}",
        start,
        |t| Some(if busy(t) { 100.0 } else { 85.0 }),
    );
    series(
        &mut out,
        "tessera_plugin_gpu_utilization_percent{namespace=\"ml\",pod=\"notebook\",container=\"jupyter\",claim=\"notebook-gpu\",device=\"gpu-2-mig-3g40gb-0\",type=\"mig\",source=\"instance\"}",
        start,
        |t| first_half(t).then_some(20.0),
    );

    series(
        &mut out,
        &format!(
            "tessera_plugin_gpu_utilization_percent{{namespace=\"ml\",pod=\"{NIGHTLY_POD}\",container=\"eval\",claim=\"nightly-gpu\",device=\"gpu-3\",type=\"gpu\",source=\"process\"}}"
        ),
        start,
        |t| first_two_hours(t).then_some(50.0),
    );

    // The sampler's counter runs for three days: a window two days back has the sampler but
    // no held device.
    out.push_str("# TYPE tessera_plugin_gpu_usage_processes counter\n");
    series(
        &mut out,
        "tessera_plugin_gpu_usage_processes_total{outcome=\"attributed\"}",
        END - 3 * DAY,
        |t| Some(((t - (END - 3 * DAY)) / STEP) as f64),
    );

    out.push_str("# TYPE tessera_extender_allocation_cost_dollars_per_hour gauge\n");
    series(
        &mut out,
        &format!(
            "tessera_extender_allocation_cost_dollars_per_hour{{namespace=\"ml\",pod=\"{INFER_POD}\",claim=\"infer-7d9f8b6c5d-x2x4z-gpu-k2x8q\",node=\"gpu-node-1\",device=\"gpu-0\",type=\"gpu\"}}"
        ),
        start,
        |_| Some(4.0),
    );

    out.push_str("# TYPE kube_pod_owner gauge\n");
    for (pod, kind, name) in [
        (INFER_POD, "ReplicaSet", "infer-7d9f8b6c5d"),
        ("notebook", "<none>", "<none>"),
        (NIGHTLY_POD, "Job", "nightly-eval-29123456"),
        // A pod that held no GPU: the owner queries must not bring it in.
        ("web-5f6d7c8b9c-q2w4e", "ReplicaSet", "web-5f6d7c8b9c"),
    ] {
        series(
            &mut out,
            &format!(
                "kube_pod_owner{{namespace=\"ml\",pod=\"{pod}\",owner_kind=\"{kind}\",owner_name=\"{name}\",owner_is_controller=\"true\"}}"
            ),
            start,
            |_| Some(1.0),
        );
    }
    out.push_str("# TYPE kube_replicaset_owner gauge\n");
    for (rs, name) in [("infer-7d9f8b6c5d", "infer"), ("web-5f6d7c8b9c", "web")] {
        series(
            &mut out,
            &format!(
                "kube_replicaset_owner{{namespace=\"ml\",replicaset=\"{rs}\",owner_kind=\"Deployment\",owner_name=\"{name}\",owner_is_controller=\"true\"}}"
            ),
            start,
            |_| Some(1.0),
        );
    }
    out.push_str("# TYPE kube_job_owner gauge\n");
    series(
        &mut out,
        "kube_job_owner{namespace=\"ml\",job_name=\"nightly-eval-29123456\",owner_kind=\"CronJob\",owner_name=\"nightly-eval\",owner_is_controller=\"true\"}",
        start,
        |t| first_two_hours(t).then_some(1.0),
    );
    out.push_str("# EOF\n");
    out
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn get(addr: &str, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    Some(text)
}

fn start_prometheus() -> Prometheus {
    let bin = bin_dir();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.om");
    std::fs::write(&data, openmetrics()).unwrap();
    let tsdb = dir.path().join("tsdb");
    let status = Command::new(bin.join("promtool"))
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&data)
        .arg(&tsdb)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "promtool tsdb create-blocks-from failed");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, "global: {}\n").unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let child = Command::new(bin.join("prometheus"))
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", tsdb.display()))
        .arg(format!("--web.listen-address={addr}"))
        // The recorded data is older than the default 15 days of retention.
        .arg("--storage.tsdb.retention.time=100y")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let prometheus = Prometheus {
        child,
        url: format!("http://{addr}"),
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if get(&addr, "/-/ready")
            .is_some_and(|r| r.starts_with("HTTP/1.0 200") || r.starts_with("HTTP/1.1 200"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "prometheus did not become ready: {}",
            log_of(&prometheus)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    prometheus
}

fn log_of(p: &Prometheus) -> String {
    std::fs::read_to_string(p._dir.path().join("prometheus.log")).unwrap_or_default()
}

fn recommend(url: &str, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args([
            "recommend",
            "--prometheus",
            url,
            "--window",
            "1d",
            "--idle-for",
            "6h",
        ])
        .args(extra)
        .output()
        .unwrap()
}

fn workload<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["workload"]["name"] == name)
        .unwrap_or_else(|| panic!("no workload {name} in {report:#}"))
}

fn close(a: &Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() < 0.01)
}

#[test]
#[ignore = "needs Prometheus: .ci/run installs it and runs this"]
fn recommend_reads_a_real_prometheus() {
    let prometheus = start_prometheus();
    let end = END.to_string();
    let out = recommend(&prometheus.url, &["--end", &end, "--format", "json"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        log_of(&prometheus)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["schemaVersion"], 1);
    assert_eq!(report["window"]["end"], "2026-05-28T20:00:00Z");
    assert_eq!(
        report["workloads"].as_array().unwrap().len(),
        4,
        "{report:#}"
    );

    let catalog = PriceCatalog::builtin().unwrap();
    let h100 = catalog_price(&catalog, H100, Some(80 * GIB)).usd_per_gpu_hour;

    // infer: whole GPU → MIG 1g.10gb, priced by the extender at $4/GPU-h.
    let infer = workload(&report, "infer");
    assert_eq!(infer["workload"]["kind"], "Deployment");
    assert_eq!(infer["workload"]["guessed"], false);
    assert_eq!(infer["holds"]["type"], "gpu");
    assert!(
        close(&infer["memory"]["p95Bytes"], (6 * GIB) as f64),
        "{infer:#}"
    );
    assert!(close(&infer["memory"]["peakBytes"], (7 * GIB) as f64));
    assert!(close(&infer["compute"]["p95Percent"], 8.0), "{infer:#}");
    assert!(close(&infer["compute"]["peakPercent"], 30.0));
    assert_eq!(infer["recommendation"]["action"], "shrink");
    assert_eq!(infer["recommendation"]["target"]["type"], "mig");
    assert_eq!(infer["recommendation"]["target"]["profile"], "1g.10gb");
    assert_eq!(infer["cost"]["priceSource"]["kind"], "extender");
    assert!(
        close(&infer["cost"]["nowPerMonth"], 4.0 * 730.0),
        "{infer:#}"
    );
    assert!(close(&infer["cost"]["afterPerMonth"], 4.0 / 7.0 * 730.0));
    let yaml = infer["claimTemplate"].as_str().unwrap();
    assert!(
        yaml.contains("deviceClassName: mig.gpu.tessera.dev"),
        "{yaml}"
    );
    assert!(yaml.contains(".profile == '1g.10gb'"), "{yaml}");
    assert!(yaml.contains(&format!(".model == '{H100}'")), "{yaml}");

    // train: stays on its whole GPU; owner guessed from the StatefulSet pod name.
    let train = workload(&report, "train");
    assert_eq!(train["workload"]["kind"], "StatefulSet");
    assert_eq!(train["workload"]["guessed"], true);
    assert!(close(&train["compute"]["p95Percent"], 85.0));
    assert!(close(&train["memory"]["peakBytes"], (64 * GIB) as f64));
    assert_eq!(train["recommendation"]["action"], "keep");
    assert_eq!(train["claimTemplate"], Value::Null);
    assert_eq!(train["cost"]["priceSource"]["kind"], "catalog");
    assert!(
        train["cost"]["priceSource"]["instanceType"].is_string(),
        "{train:#}"
    );
    assert!(close(&train["cost"]["nowPerMonth"], h100 * 730.0));
    assert!(close(&train["cost"]["savingsPerMonth"], 0.0));

    // notebook: 3g.40gb → 1g.10gb, and idle for the last 6 h.
    let notebook = workload(&report, "notebook");
    assert_eq!(notebook["workload"]["kind"], "Pod");
    assert!(close(&notebook["memory"]["peakBytes"], (4 * GIB) as f64));
    assert!(
        close(&notebook["compute"]["p95Percent"], 20.0 * 3.0 / 7.0),
        "{notebook:#}"
    );
    assert_eq!(notebook["recommendation"]["target"]["profile"], "1g.10gb");
    assert!(close(
        &notebook["cost"]["nowPerMonth"],
        h100 * 3.0 / 7.0 * 730.0
    ));
    assert!(close(
        &notebook["cost"]["afterPerMonth"],
        h100 / 7.0 * 730.0
    ));
    let idle = report["idle"].as_array().unwrap();
    assert_eq!(idle.len(), 1, "{report:#}");
    assert_eq!(idle[0]["pod"], "notebook");
    assert_eq!(idle[0]["device"], "gpu-2-mig-3g40gb-0");
    assert!(close(&idle[0]["costPerMonth"], h100 * 3.0 / 7.0 * 730.0));

    // nightly-eval (CronJob, through kube_job_owner): a whole GPU for the first 2 h only.
    // 30 GiB × 1.2 = 36 GiB and p95 50 %: 3g.40gb has 3/7 = 42.9 % of the SMs, too few, so
    // 4g.40gb. Held 2 h of 24 (plus at most Prometheus's 5-minute lookback): 1/12 of a GPU on
    // average, and a note that the history is short.
    let nightly = workload(&report, "nightly-eval");
    assert_eq!(nightly["workload"]["kind"], "CronJob");
    assert_eq!(nightly["recommendation"]["target"]["profile"], "4g.40gb");
    let held = nightly["heldHours"].as_f64().unwrap();
    assert!((2.0..=2.1).contains(&held), "{nightly:#}");
    let now = nightly["cost"]["nowPerMonth"].as_f64().unwrap();
    assert!(
        (now - h100 * held / 24.0 * 730.0).abs() < 0.01,
        "{nightly:#}"
    );
    assert!(
        nightly["notes"][0]
            .as_str()
            .unwrap()
            .starts_with("short history"),
        "{nightly:#}"
    );
    let nightly_savings = now * 3.0 / 7.0;

    let savings = 4.0 * 730.0 * 6.0 / 7.0 + h100 * 730.0 * 2.0 / 7.0 + nightly_savings;
    assert!(
        close(&report["totals"]["savingsPerMonth"], savings),
        "{report:#}"
    );

    // The table says the same for people.
    let out = recommend(&prometheus.url, &["--end", "2026-05-28T20:00:00Z"]);
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("ml/Deployment infer"), "{table}");
    assert!(table.contains("ml/StatefulSet train (guessed)"), "{table}");
    assert!(table.contains("Idle allocations"), "{table}");
    assert!(
        table.contains("deviceClassName: mig.gpu.tessera.dev"),
        "{table}"
    );

    // For a textfile collector or a Pushgateway: the same figures as gauges.
    let out = recommend(&prometheus.url, &["--end", &end, "--format", "openmetrics"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("tessera_recommend_savings_dollars_per_month{")
                && l.contains("owner_name=\"infer\"")
        })
        .unwrap_or_else(|| panic!("no savings line for infer in {text}"));
    let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((value - 4.0 * 730.0 * 6.0 / 7.0).abs() < 0.01, "{line}");
    assert!(text.contains("tessera_recommend_idle_cost_dollars_per_month{namespace=\"ml\",owner_kind=\"Pod\",owner_name=\"notebook\""), "{text}");

    // A window before any tessera series: which metric is missing, and what it means.
    let out = recommend(&prometheus.url, &["--end", &(END - 5 * DAY).to_string()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("has no tessera_plugin_claim_device_info and no tessera_plugin_gpu_usage_processes_total"),
        "{stderr}"
    );
    let out = recommend(&prometheus.url, &["--end", &(END - 2 * DAY).to_string()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no claim was prepared"), "{stderr}");
}

#[test]
fn recommend_says_when_prometheus_is_unreachable() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let out = recommend(&url, &["--end", &END.to_string()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("Prometheus at {url} is unreachable")),
        "{stderr}"
    );
}

#[test]
fn recommend_refuses_bad_flags_before_asking_prometheus() {
    let url = format!("http://127.0.0.1:{}", free_port());
    for (flags, want) in [
        (&["--window", "7x"][..], "--window"),
        (
            &["--window", "1d", "--idle-for", "2d"][..],
            "--idle-for 2d is longer than --window",
        ),
        (&["--window", "100d"][..], "longer than 90d"),
        (&["--step", "1s", "--window", "30d"][..], "raise --step"),
        (
            &["--headroom=-1"][..],
            "headroom -1 must be between 0 and 4",
        ),
        (
            &["--partition-kinds", "mig,mps"][..],
            "unknown partition kind `mps`",
        ),
        (
            &["--end", "yesterday"][..],
            "neither RFC 3339 nor Unix seconds",
        ),
        (&["--driver-name", "GPU!"][..], "not a DNS subdomain"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(["recommend", "--prometheus", &url])
            .args(flags)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{flags:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(want), "{flags:?}: {stderr}");
        assert!(
            !stderr.contains("unreachable"),
            "{flags:?} reached for Prometheus: {stderr}"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["recommend", "--prometheus", "https://prometheus:9090"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("https is not supported"), "{stderr}");
}
