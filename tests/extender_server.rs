//! The extender served over real sockets: plain HTTP and HTTPS (as `enableHTTPS: true`
//! reaches it), graceful shutdown, and clear errors for bad TLS files.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod extender_fixture;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use extender_fixture::{Fixture, FixtureNode};
use tessera::extender::{Bound, ExtenderError, TlsFiles, tls_config};
use tessera::market::CapacityType;

fn tls_fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

fn request_bytes(path: &str) -> Vec<u8> {
    let body = json!({"Pod": {"metadata": {"name": "p", "namespace": "ns"},
                              "spec": {"containers": [{"name": "c",
                                  "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}},
                      "NodeNames": ["a", "b"]})
    .to_string();
    format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Sends one request over `stream` and returns the raw response.
fn exchange(mut stream: impl Read + Write, path: &str) -> String {
    stream.write_all(&request_bytes(path)).unwrap();
    let mut response = Vec::new();
    // `Connection: close`: the server ends the stream after the answer; a TLS close without
    // close_notify still leaves the full answer read.
    let _ = stream.read_to_end(&mut response);
    String::from_utf8(response).unwrap()
}

fn app() -> axum::Router {
    Fixture::new()
        .node("a", FixtureNode::priced(CapacityType::OnDemand, 8.0, 8))
        .node(
            "b",
            FixtureNode::priced(CapacityType::Spot, 2.0, 8)
                .with_notice("AWS spot interruption notice"),
        )
        .router("/scheduler")
}

async fn start(
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
) -> (
    SocketAddr,
    CancellationToken,
    tokio::task::JoinHandle<Result<(), ExtenderError>>,
) {
    let bound = Bound::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = bound.local_addr();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(bound.serve(app(), tls, shutdown.clone(), Duration::from_secs(2)));
    (addr, shutdown, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_answers_and_shuts_down_gracefully() {
    let (addr, shutdown, task) = start(None).await;
    let response = tokio::task::spawn_blocking(move || {
        exchange(
            std::net::TcpStream::connect(addr).unwrap(),
            "/scheduler/filter",
        )
    })
    .await
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains(r#""NodeNames":["a"]"#), "{response}");
    assert!(
        response.contains("AWS spot interruption notice"),
        "{response}"
    );

    shutdown.cancel();
    let ended = tokio::time::timeout(Duration::from_secs(5), task).await;
    assert!(matches!(ended, Ok(Ok(Ok(())))), "{ended:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_serves_the_same_answers_with_the_given_certificate() {
    let files = TlsFiles::server_only(tls_fixture("server.pem"), tls_fixture("server.key"));
    let (addr, shutdown, task) = start(Some(tls_config(&files).unwrap())).await;
    let response = tokio::task::spawn_blocking(move || {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(tls_fixture("ca.pem")).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let server = ServerName::try_from("localhost").unwrap();
        let mut connection = rustls::ClientConnection::new(Arc::new(config), server).unwrap();
        let mut socket = std::net::TcpStream::connect(addr).unwrap();
        exchange(
            rustls::Stream::new(&mut connection, &mut socket),
            "/scheduler/prioritize",
        )
    })
    .await
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.contains(r#"{"Host":"a","Score":10}"#),
        "{response}"
    );
    assert!(response.contains(r#"{"Host":"b","Score":0}"#), "{response}");

    // Plain HTTP to the HTTPS port is refused at the TLS layer, never answered in clear.
    let plain = tokio::task::spawn_blocking(move || {
        exchange(
            std::net::TcpStream::connect(addr).unwrap(),
            "/scheduler/filter",
        )
    })
    .await
    .unwrap();
    assert!(!plain.contains("NodeNames"), "{plain}");
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[test]
fn bad_tls_files_are_clear_errors() {
    let missing = TlsFiles::server_only(tls_fixture("absent.pem"), tls_fixture("server.key"));
    let err = tls_config(&missing).unwrap_err().to_string();
    assert!(err.contains("absent.pem"), "{err}");

    let swapped = TlsFiles::server_only(tls_fixture("server.key"), tls_fixture("server.pem"));
    let err = tls_config(&swapped).unwrap_err().to_string();
    assert!(
        err.contains("CERTIFICATE") || err.contains("not a PEM"),
        "{err}"
    );

    let wrong_key = TlsFiles::server_only(tls_fixture("ca.pem"), tls_fixture("server.key"));
    let err = tls_config(&wrong_key).unwrap_err().to_string();
    assert!(err.contains("do not match"), "{err}");
}

#[test]
fn a_taken_port_is_reported_before_serving() {
    let first = Bound::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let err = Bound::bind(first.local_addr()).err().unwrap();
    assert!(
        err.to_string().starts_with("cannot listen on 127.0.0.1:"),
        "{err}"
    );
}
