//! `tessera plugin` with MPS claims, driven over its sockets as the kubelet drives it, with
//! the fake control binary (`tests/fixtures/fake-mps-control`) standing in for
//! `nvidia-cuda-mps-control`: the daemon starts with the first MPS share, a daemon killed
//! behind the plugin's back is restarted by supervision and shows in `/readyz` and the
//! metrics, one that cannot be restarted turns the GPU's shared devices Unhealthy in the
//! health stream, the last unprepare stops it, and a node without the binary refuses MPS
//! claims.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod plugin_support;

use std::path::PathBuf;
use std::time::Duration;

use plugin_support::{DRIVER, MockApiServer, NODE, TestNode, next_report};
use serde_json::json;
use tessera::plugin::READY_MPS;
use tessera::plugin::proto::dra_health_v1alpha1::{
    HealthStatus, NodeWatchResourcesRequest, NodeWatchResourcesResponse,
};
use tessera::prepare::ClaimBuilder;
use tessera::prepare::mps::MPS_RECORD_FILE;

fn mps_claim(name: &str, uid: &str, share: &str) -> k8s_openapi::api::resource::v1::ResourceClaim {
    ClaimBuilder::new("team-a", name, uid)
        .share(
            "gpu/shared",
            DRIVER,
            NODE,
            "gpu-0-shared",
            share,
            &[("memory", "10Gi"), ("compute", "25")],
        )
        .config(
            "FromClass",
            DRIVER,
            &[],
            json!({"apiVersion": "gpu.tessera.dev/v1alpha1", "kind": "GpuConfig",
                   "sharing": {"strategy": "MPS"}}),
        )
        .build()
}

fn daemon_pid(node: &TestNode) -> Option<u32> {
    let raw = std::fs::read(node.plugin_dir.join(MPS_RECORD_FILE)).ok()?;
    let record: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    let uuid = &node.inventory.gpus[0].uuid;
    record["data"]["daemons"][uuid]["pid"]
        .as_u64()
        .map(|p| u32::try_from(p).unwrap())
}

fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r).trim_start();
        !rest.starts_with('Z') && !rest.starts_with('X')
    })
}

fn commands(node: &TestNode) -> Vec<String> {
    let uuid = &node.inventory.gpus[0].uuid;
    std::fs::read_to_string(node.mps.root.join(uuid).join("log/commands.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.split(" CUDA_VISIBLE_DEVICES=").next().unwrap().to_owned())
        .collect()
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..500 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_follows_its_claims_and_a_killed_one_is_restarted_and_reported() {
    let api = MockApiServer::start().await;
    let node = TestNode::new(1);
    api.insert(mps_claim("a", "uid-a", "share-a"));
    api.insert(mps_claim("b", "uid-b", "share-b"));
    let plugin = node.start(&api, None).await;

    let response = plugin
        .prepare_v1(&[("team-a", "a", "uid-a"), ("team-a", "b", "uid-b")])
        .await;
    assert!(
        response.claims.values().all(|c| c.error.is_empty()),
        "{response:?}"
    );
    // One daemon for the GPU's two shares, with the shares' limits as its defaults.
    assert_eq!(
        commands(&node),
        [
            "start -d",
            "command set_default_active_thread_percentage 25",
            "command set_default_device_pinned_mem_limit 0 10240M",
        ]
    );
    let first = daemon_pid(&node).unwrap();
    assert!(running(first));
    let spec = node.cdi_spec("uid-b");
    assert_eq!(
        spec["containerEdits"]["mounts"][0]["hostPath"],
        node.mps
            .root
            .join(&node.inventory.gpus[0].uuid)
            .join("pipe")
            .display()
            .to_string()
    );

    // Killed behind the plugin's back: supervision (every 200 ms here) starts it again.
    let pid = rustix::process::Pid::from_raw(i32::try_from(first).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
    eventually("the daemon is restarted", || {
        daemon_pid(&node).is_some_and(|p| p != first && running(p))
    })
    .await;
    eventually("the restart is counted", || {
        plugin
            .metrics()
            .contains("tessera_plugin_mps_daemon_restarts_total 1")
    })
    .await;
    let metrics = plugin.metrics();
    assert!(
        metrics.contains("tessera_plugin_mps_daemons{state=\"running\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tessera_plugin_mps_daemons{state=\"down\"} 0"),
        "{metrics}"
    );
    let report = plugin.readiness.report();
    assert!(
        report.contains(&format!("ok {READY_MPS}: MPS control daemons running: 1")),
        "{report}"
    );
    assert_eq!(
        commands(&node).iter().filter(|c| *c == "start -d").count(),
        2
    );

    // The first share goes, the daemon stays; the last goes, the daemon quits.
    let second = daemon_pid(&node).unwrap();
    plugin.unprepare_v1(&[("team-a", "a", "uid-a")]).await;
    assert!(running(second));
    plugin.unprepare_v1(&[("team-a", "b", "uid-b")]).await;
    assert!(!running(second));
    assert_eq!(daemon_pid(&node), None);
    assert!(!node.mps.root.join(&node.inventory.gpus[0].uuid).exists());
    plugin.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_control_binary_mps_claims_fail_and_others_are_prepared() {
    let api = MockApiServer::start().await;
    let mut node = TestNode::new(1);
    node.mps.control_binary = PathBuf::from("/opt/absent/nvidia-cuda-mps-control");
    api.insert(mps_claim("a", "uid-a", "share-a"));
    api.insert(
        ClaimBuilder::new("team-a", "whole", "uid-whole")
            .device("gpu", DRIVER, NODE, "gpu-0")
            .build(),
    );
    let plugin = node.start(&api, None).await;
    let response = plugin
        .prepare_v1(&[("team-a", "a", "uid-a"), ("team-a", "whole", "uid-whole")])
        .await;
    let error = &response.claims["uid-a"].error;
    assert!(
        error.contains("/opt/absent/nvidia-cuda-mps-control")
            && error.contains("--mps-control-binary"),
        "{error}"
    );
    assert_eq!(response.claims["uid-whole"].error, "");
    assert!(!node.cdi_spec_path("uid-a").exists());
    assert!(
        plugin.metrics().contains(
            "tessera_plugin_errors_total{operation=\"prepare\",kind=\"mps_binary_missing\"} 1"
        ),
        "{}",
        plugin.metrics()
    );
    plugin.stop().await.unwrap();
}

fn health_of(response: &NodeWatchResourcesResponse, device: &str) -> (HealthStatus, String) {
    let d = response
        .devices
        .iter()
        .find(|d| d.device.as_ref().is_some_and(|id| id.device_name == device))
        .unwrap_or_else(|| panic!("{device} not reported"));
    (d.health(), d.message.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_that_cannot_be_restarted_makes_the_gpu_s_shares_unhealthy_until_it_runs() {
    let api = MockApiServer::start().await;
    let node = TestNode::new(2);
    api.insert(mps_claim("a", "uid-a", "share-a"));
    let plugin = node.start(&api, None).await;
    let response = plugin.prepare_v1(&[("team-a", "a", "uid-a")]).await;
    assert_eq!(response.claims["uid-a"].error, "");
    let mut client = plugin.health().await;
    let mut stream = client
        .node_watch_resources(NodeWatchResourcesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        health_of(&next_report(&mut stream).await, "gpu-0-shared").0,
        HealthStatus::Healthy
    );

    // The daemon dies and its directory cannot be made again (a file in the way).
    let uuid = node.inventory.gpus[0].uuid.clone();
    let dir = node.mps.root.join(&uuid);
    let pid = daemon_pid(&node).unwrap();
    let raw = rustix::process::Pid::from_raw(i32::try_from(pid).unwrap()).unwrap();
    rustix::process::kill_process(raw, rustix::process::Signal::KILL).unwrap();
    eventually("the daemon is dead", || !running(pid)).await;
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::write(&dir, b"in the way").unwrap();
    let (health, message) = loop {
        let report = next_report(&mut stream).await;
        let (health, message) = health_of(&report, "gpu-0-shared");
        if health == HealthStatus::Unhealthy {
            // Only the GPU whose daemon is down.
            assert_eq!(health_of(&report, "gpu-1-shared").0, HealthStatus::Healthy);
            assert_eq!(health_of(&report, "gpu-0").0, HealthStatus::Healthy);
            break (health, message);
        }
    };
    assert_eq!(health, HealthStatus::Unhealthy);
    assert!(message.contains("MPS control daemon is down"), "{message}");
    let report = plugin.readiness.report();
    assert!(
        report.contains(&format!("-- {READY_MPS}: MPS control daemons down")),
        "{report}"
    );
    assert!(
        plugin
            .metrics()
            .contains("tessera_plugin_mps_daemons{state=\"down\"} 1"),
        "{}",
        plugin.metrics()
    );

    // Out of the way: the next attempt after the backoff brings it back, and the shares
    // are Healthy again.
    std::fs::remove_file(&dir).unwrap();
    loop {
        let report = next_report(&mut stream).await;
        if health_of(&report, "gpu-0-shared").0 == HealthStatus::Healthy {
            break;
        }
    }
    assert!(daemon_pid(&node).is_some_and(running));
    eventually("readiness follows", || {
        plugin
            .readiness
            .report()
            .contains(&format!("ok {READY_MPS}:"))
    })
    .await;
    plugin.unprepare_v1(&[("team-a", "a", "uid-a")]).await;
    plugin.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_plugin_adopts_the_daemon_and_its_successor_stops_it() {
    let api = MockApiServer::start().await;
    let node = TestNode::new(1);
    api.insert(mps_claim("a", "uid-a", "share-a"));
    let plugin = node.start(&api, None).await;
    let response = plugin.prepare_v1(&[("team-a", "a", "uid-a")]).await;
    assert_eq!(response.claims["uid-a"].error, "");
    let pid = daemon_pid(&node).unwrap();
    plugin.stop().await.unwrap();
    assert!(running(pid), "the daemon outlives the plugin process");

    let restarted = node.start(&api, None).await;
    let report = restarted.readiness.report();
    assert!(
        report.contains(&format!("ok {READY_MPS}: MPS control daemons running: 1\n")),
        "{report}"
    );
    assert_eq!(daemon_pid(&node), Some(pid), "adopted, not started again");
    assert_eq!(
        commands(&node).iter().filter(|c| *c == "start -d").count(),
        1
    );
    assert!(
        restarted
            .metrics()
            .contains("tessera_plugin_mps_daemon_restarts_total 0"),
        "{}",
        restarted.metrics()
    );
    restarted.unprepare_v1(&[("team-a", "a", "uid-a")]).await;
    assert!(!running(pid));
    assert_eq!(daemon_pid(&node), None);
    assert!(!node.mps.root.join(&node.inventory.gpus[0].uuid).exists());
    restarted.stop().await.unwrap();
}
