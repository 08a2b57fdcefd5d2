//! Bounded time on a real socket: a client that sends headers and then trickles its body is
//! answered 408 and dropped within the body read timeout, one that trickles its headers is
//! dropped within the header read timeout, and normal requests keep answering meanwhile.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod extender_fixture;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use extender_fixture::{Fixture, FixtureNode};
use tessera::extender::{BodyLimits, Bound, RouteOptions};
use tessera::market::CapacityType;
use tessera::serving::Timeouts;

const BODY_TIMEOUT: Duration = Duration::from_secs(1);
const HEADER_TIMEOUT: Duration = Duration::from_secs(1);
const BODY: &str = r#"{"Pod":{"metadata":{"name":"p","namespace":"ns"}},"NodeNames":["a","b"]}"#;

async fn start() -> (SocketAddr, CancellationToken) {
    let options = RouteOptions {
        limits: BodyLimits {
            body_read_timeout: BODY_TIMEOUT,
            ..BodyLimits::with_max_body(1024 * 1024)
        },
        explain_access: None,
    };
    let app = Fixture::new()
        .node("a", FixtureNode::priced(CapacityType::OnDemand, 8.0, 8))
        .node("b", FixtureNode::priced(CapacityType::OnDemand, 4.0, 8))
        .router_with_options("/", options);
    let bound = Bound::bind("127.0.0.1:0".parse().unwrap())
        .unwrap()
        .with_timeouts(Timeouts {
            header_read: HEADER_TIMEOUT,
            ..Timeouts::default()
        });
    let addr = bound.local_addr();
    let shutdown = CancellationToken::new();
    tokio::spawn(bound.serve(app, None, shutdown.clone(), Duration::from_secs(1)));
    (addr, shutdown)
}

/// One normal prioritize call; its latency.
fn normal_call(addr: SocketAddr) -> Duration {
    let started = Instant::now();
    let mut socket = TcpStream::connect(addr).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        socket,
        "POST /prioritize HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{BODY}",
        BODY.len()
    )
    .unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    started.elapsed()
}

/// Reads until the server closes `socket`; what it sent and when it closed.
fn until_closed(mut socket: TcpStream, started: Instant) -> (String, Duration) {
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = Vec::new();
    let _ = socket.read_to_end(&mut answer);
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_is_dropped_within_the_timeout_while_normal_requests_answer() {
    let (addr, shutdown) = start().await;
    let report = tokio::task::spawn_blocking(move || {
        let baseline = normal_call(addr);
        // Twenty clients send headers and one byte of a 1,000-byte body, then stall.
        let started = Instant::now();
        let slow: Vec<TcpStream> = (0..20)
            .map(|_| {
                let mut socket = TcpStream::connect(addr).unwrap();
                socket
                    .write_all(b"POST /filter HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
                    .unwrap();
                socket
            })
            .collect();
        let during: Vec<Duration> = (0..10).map(|_| normal_call(addr)).collect();
        let closed: Vec<(String, Duration)> =
            slow.into_iter().map(|s| until_closed(s, started)).collect();
        (baseline, during, closed)
    })
    .await
    .unwrap();
    let (baseline, during, closed) = report;
    for latency in &during {
        assert!(
            *latency < Duration::from_millis(500),
            "a normal request took {latency:?} (alone: {baseline:?})"
        );
    }
    for (answer, at) in closed {
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("not received within 1s"), "{answer}");
        assert!(
            at >= BODY_TIMEOUT && at < BODY_TIMEOUT + Duration::from_secs(2),
            "closed after {at:?}"
        );
    }
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_headers_and_idle_connections_are_closed_at_the_header_timeout() {
    let (addr, shutdown) = start().await;
    let closed = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let mut partial = TcpStream::connect(addr).unwrap();
        partial
            .write_all(b"POST /filter HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        let idle = TcpStream::connect(addr).unwrap();
        let during = normal_call(addr);
        (
            until_closed(partial, started),
            until_closed(idle, started),
            during,
        )
    })
    .await
    .unwrap();
    let ((_, partial_at), (idle_answer, idle_at), during) = closed;
    assert!(during < Duration::from_millis(500), "{during:?}");
    for at in [partial_at, idle_at] {
        assert!(
            at >= HEADER_TIMEOUT && at < HEADER_TIMEOUT + Duration::from_secs(2),
            "closed after {at:?}"
        );
    }
    assert!(!idle_answer.contains("200"), "{idle_answer}");
    shutdown.cancel();
}
