//! Memory bounded by design: what kube-scheduler sends at 5,000 nodes, measured, and the
//! extender's peak RSS while 16 clients post maximum-size bodies at once.
//!
//! The RSS is read from `/proc/<child>/status` (`VmHWM`, the peak) of a child process that
//! does nothing but serve the extender's router with the default limits: this test binary
//! started again with `TESSERA_MEMORY_CHILD=1`, running the ignored test `memory_child`.
//! The clients and their bodies live in this (parent) process, so they are not counted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod extender_fixture;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use extender_fixture::{Fixture, FixtureNode};
use tessera::cluster::testing::synthetic_cluster;
use tessera::extender::ExtenderArgs;
use tessera::extender::limits::{DEFAULT_DECODE_BUDGET_BYTES, DEFAULT_MAX_BODY_BYTES};
use tessera::extender::testing::wire::{names_request, nodes_request, scheduler_nodes};
use tessera::extender::{BodyLimits, Bound, RouteOptions};
use tessera::market::CapacityType;

const CHILD_ENV: &str = "TESSERA_MEMORY_CHILD";
/// Concurrent clients.
const CLIENTS: usize = 16;
/// The acceptance bound on the extender's peak RSS.
const MAX_PEAK_RSS_KIB: u64 = 256 * 1024;

/// The sizes behind the default body limit (`docs/extender.md`, "Request limits").
#[test]
fn request_sizes_at_5000_nodes_fit_the_default_limit_as_documented() {
    let cluster = synthetic_cluster(5_000, 8, 0, 42);
    let nodes = scheduler_nodes(&cluster, 5_000);
    assert_eq!(nodes.len(), 5_000);

    // Names mode with the cluster's names, and with every name at the 253-byte maximum.
    let names: Vec<String> = (0..5_000).map(|i| cluster.node_name(i)).collect();
    let names_body = names_request(&names);
    let longest: Vec<String> = (0..5_000).map(|i| format!("{i:0>253}")).collect();
    let longest_body = names_request(&longest);
    // Nodes mode: full Node objects.
    let nodes_body = nodes_request(&nodes);
    let per_node = nodes_body.len() / nodes.len();
    println!(
        "names mode: {} bytes ({} with 253-byte names); Nodes mode: {} bytes ({} per node); limit {}",
        names_body.len(),
        longest_body.len(),
        nodes_body.len(),
        per_node,
        DEFAULT_MAX_BODY_BYTES
    );
    for body in [&names_body, &longest_body, &nodes_body] {
        let args = ExtenderArgs::parse(body).unwrap();
        assert_eq!(args.nodes.len(), 5_000);
    }
    // Names mode at 5,000 nodes fits 6 times over even with every name 253 bytes long, and
    // 90 times over with the cluster's names.
    assert!(
        longest_body.len() * 6 < DEFAULT_MAX_BODY_BYTES,
        "{}",
        longest_body.len()
    );
    assert!(
        names_body.len() * 90 < DEFAULT_MAX_BODY_BYTES,
        "{}",
        names_body.len()
    );
    // docs/extender.md: a full Node is about 17 KiB, so the limit holds about 480 of them;
    // Nodes mode at 5,000 nodes (82 MiB) needs nodeCacheCapable, the chart's default.
    assert!(
        (15 * 1024..19 * 1024).contains(&per_node),
        "{per_node} bytes per node"
    );
    assert!(nodes_body.len() > 8 * DEFAULT_MAX_BODY_BYTES);
}

/// Served by the child: the extender's router with default limits over a small cache.
#[test]
#[ignore = "run by sixteen_maximum_size_bodies_keep_peak_rss_bounded in a child process"]
fn memory_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let options = RouteOptions {
        limits: BodyLimits::default(),
        explain_access: None,
    };
    let app = Fixture::new()
        .node(
            "gpu-node-00000",
            FixtureNode::priced(CapacityType::OnDemand, 8.0, 8),
        )
        .node(
            "gpu-node-00001",
            FixtureNode::priced(CapacityType::Spot, 3.0, 8),
        )
        .router_with_options("/", options);
    let shutdown = CancellationToken::new();
    let addr = runtime.block_on(async {
        let bound = Bound::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = bound.local_addr();
        tokio::spawn(bound.serve(app, None, shutdown.clone(), Duration::from_secs(1)));
        addr
    });
    println!("LISTENING {addr} {}", vm("VmRSS"));
    std::io::stdout().flush().unwrap();
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    println!("PEAK {}", vm("VmHWM"));
    std::io::stdout().flush().unwrap();
    shutdown.cancel();
}

/// `VmHWM`/`VmRSS` of this process, KiB.
fn vm(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// One filter call; the status code.
fn post(addr: SocketAddr, body: &[u8]) -> u16 {
    let mut socket = TcpStream::connect(addr).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    socket
        .set_write_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        socket,
        "POST /filter HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    // The server may answer (503) before reading the body and close; that is fine.
    let _ = socket.write_all(body);
    let mut answer = Vec::new();
    let _ = socket.read_to_end(&mut answer);
    let head = String::from_utf8_lossy(&answer[..answer.len().min(12)]).into_owned();
    head.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0)
}

#[test]
fn sixteen_maximum_size_bodies_keep_peak_rss_bounded() {
    // A Nodes-mode body of full Node objects just under the limit: the worst case, as the
    // filter answer echoes the nodes back.
    let count = DEFAULT_MAX_BODY_BYTES / (16 * 1024) + 50;
    let cluster = synthetic_cluster(count, 8, 0, 7);
    let mut nodes = scheduler_nodes(&cluster, count);
    let mut body = nodes_request(&nodes);
    while body.len() > DEFAULT_MAX_BODY_BYTES {
        let over = body.len() - DEFAULT_MAX_BODY_BYTES;
        let drop = over.div_ceil(18 * 1024).max(1);
        nodes.truncate(nodes.len() - drop);
        body = nodes_request(&nodes);
    }
    assert!(
        body.len() > DEFAULT_MAX_BODY_BYTES - 64 * 1024,
        "{}",
        body.len()
    );
    let body = Arc::new(body);

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "memory_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (addr, start_rss): (SocketAddr, u64) = loop {
        let line = lines.next().unwrap().unwrap();
        // libtest may print `test memory_child ... ` on the same line first.
        if let Some((_, rest)) = line.split_once("LISTENING ") {
            let (addr, rss) = rest.split_once(' ').unwrap();
            break (addr.parse().unwrap(), rss.trim().parse().unwrap());
        }
    };

    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let body = Arc::clone(&body);
                scope.spawn(move || post(addr, &body))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "report").unwrap();
    let peak: u64 = loop {
        let line = lines.next().unwrap().unwrap();
        if let Some((_, rest)) = line.split_once("PEAK ") {
            break rest.trim().parse().unwrap();
        }
    };
    child.wait().unwrap();
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let busy = statuses.iter().filter(|s| **s == 503).count();
    println!(
        "{CLIENTS} × {} byte bodies (budget {DEFAULT_DECODE_BUDGET_BYTES}): {ok} answered 200, \
         {busy} got 503; child RSS {:.1} MiB at start, peak {:.1} MiB",
        body.len(),
        start_rss as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    assert_eq!(ok + busy, CLIENTS, "{statuses:?}");
    assert!(
        ok >= 2,
        "at least the budget's worth is answered: {statuses:?}"
    );
    assert!(peak <= MAX_PEAK_RSS_KIB, "peak RSS {peak} KiB");
}
