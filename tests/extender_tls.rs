//! Mutual TLS and certificate rotation over real sockets: a client without a certificate from
//! the client CA is refused in the handshake, one with it is answered, and certificate files
//! replaced on disk are served without a restart.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod extender_fixture;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_util::sync::CancellationToken;

use extender_fixture::{Fixture, FixtureNode};
use tessera::extender::tls::reload_on_change;
use tessera::extender::{Bound, TlsFiles, tls_config};
use tessera::market::CapacityType;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

const BODY: &str = r#"{"Pod":{"metadata":{"name":"p","namespace":"ns"}},"NodeNames":["a"]}"#;

/// A client trusting both server CAs, presenting `identity` (cert, key) when given.
fn client(identity: Option<(&str, &str)>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in ["ca.pem", "ca2.pem"] {
        for cert in CertificateDer::pem_file_iter(fixture(ca)).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    Arc::new(match identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(fixture(cert))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let key = PrivateKeyDer::from_pem_file(fixture(key)).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
    })
}

/// One prioritize call; the answer, or the I/O error the handshake or exchange ended in.
/// Also returns the server's leaf certificate when the handshake got that far.
fn call(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> (Result<String, String>, Option<Vec<u8>>) {
    let server = ServerName::try_from("localhost").unwrap();
    let mut connection = rustls::ClientConnection::new(config, server).unwrap();
    let mut socket = std::net::TcpStream::connect(addr).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut stream = rustls::Stream::new(&mut connection, &mut socket);
    let request = format!(
        "POST /prioritize HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let mut result = stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string());
    let mut response = Vec::new();
    if result.is_ok() {
        result = match stream.read_to_end(&mut response) {
            Ok(_) => Ok(()),
            // A TLS close without close_notify after a full answer is fine.
            Err(_) if !response.is_empty() => Ok(()),
            Err(e) => Err(e.to_string()),
        };
    }
    let leaf = connection
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.as_ref().to_vec());
    (
        result.map(|()| String::from_utf8_lossy(&response).into_owned()),
        leaf,
    )
}

fn pem_der(path: &Path) -> Vec<u8> {
    CertificateDer::pem_file_iter(path)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .as_ref()
        .to_vec()
}

async fn serve(
    files: &TlsFiles,
) -> (
    SocketAddr,
    CancellationToken,
    axum_server::tls_rustls::RustlsConfig,
) {
    let config = tls_config(files).unwrap();
    let app = Fixture::new()
        .node("a", FixtureNode::priced(CapacityType::OnDemand, 8.0, 8))
        .router("/");
    let bound = Bound::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = bound.local_addr();
    let shutdown = CancellationToken::new();
    tokio::spawn(bound.serve(
        app,
        Some(config.clone()),
        shutdown.clone(),
        Duration::from_secs(1),
    ));
    (addr, shutdown, config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_refuses_clients_without_a_certificate_from_the_client_ca() {
    let files = TlsFiles {
        cert: fixture("server.pem"),
        key: fixture("server.key"),
        client_ca: Some(fixture("client-ca.pem")),
    };
    let (addr, shutdown, _) = serve(&files).await;
    let outcomes = tokio::task::spawn_blocking(move || {
        [
            call(addr, client(Some(("client.pem", "client.key")))).0,
            call(addr, client(None)).0,
            call(addr, client(Some(("stranger.pem", "stranger.key")))).0,
        ]
    })
    .await
    .unwrap();
    let [trusted, anonymous, stranger] = outcomes;
    let answer = trusted.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""Host":"a""#), "{answer}");
    for (who, outcome) in [("no certificate", anonymous), ("stranger", stranger)] {
        match outcome {
            Err(_) => {}
            Ok(text) => assert!(!text.contains("HTTP/1.1"), "{who} was answered: {text}"),
        }
    }
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_certificate_is_served_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("tls.crt");
    let key = dir.path().join("tls.key");
    std::fs::copy(fixture("server.pem"), &cert).unwrap();
    std::fs::copy(fixture("server.key"), &key).unwrap();
    let files = TlsFiles::server_only(cert.clone(), key.clone());
    let (addr, shutdown, config) = serve(&files).await;
    tokio::spawn(reload_on_change(
        config,
        files,
        Duration::from_millis(50),
        shutdown.clone(),
    ));
    let first = tokio::task::spawn_blocking(move || call(addr, client(None)))
        .await
        .unwrap();
    assert!(first.0.unwrap().starts_with("HTTP/1.1 200"));
    assert_eq!(first.1.unwrap(), pem_der(&fixture("server.pem")));

    // A half-written rotation (new certificate, old key) is not taken: the old pair stays.
    std::fs::copy(fixture("server2.pem"), &cert).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let during = tokio::task::spawn_blocking(move || call(addr, client(None)))
        .await
        .unwrap();
    assert_eq!(during.1.unwrap(), pem_der(&fixture("server.pem")));

    std::fs::copy(fixture("server2.key"), &key).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let rotated = pem_der(&fixture("server2.pem"));
    loop {
        let (answer, leaf) = tokio::task::spawn_blocking(move || call(addr, client(None)))
            .await
            .unwrap();
        if leaf.as_deref() == Some(rotated.as_slice()) {
            assert!(answer.unwrap().starts_with("HTTP/1.1 200"));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the rotated certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
}
