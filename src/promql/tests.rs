//! The client against a scripted HTTP server on a loopback port.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

/// Serves one connection: reads the request, answers `status` with `body`, returns the request.
async fn serve_once(status: u16, body: &'static str) -> (String, tokio::task::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        // Headers, then the Content-Length body.
        loop {
            let n = socket.read(&mut buf).await.unwrap();
            request.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&request).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if request.len() >= end + 4 + length {
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
        let response = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        socket.write_all(response.as_bytes()).await.unwrap();
        String::from_utf8_lossy(&request).to_string()
    });
    (url, handle)
}

#[tokio::test]
async fn a_vector_is_decoded_and_the_query_is_form_encoded() {
    let (url, server) = serve_once(
        200,
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"pod":"a"},"value":[1700000000,"1.5"]},{"metric":{},"value":[1700000000,"NaN"]}]}}"#,
    )
    .await;
    let client = Client::new(&format!("{url}/prom/"), Duration::from_secs(5)).unwrap();
    let samples = client
        .query("sum by (pod) (x{a=\"b c\"})", 1_700_000_000.0)
        .await
        .unwrap();
    assert_eq!(samples.len(), 2);
    assert_eq!((samples[0].label("pod"), samples[0].value), ("a", 1.5));
    assert!(samples[1].value.is_nan());
    let request = server.await.unwrap();
    assert!(
        request.starts_with("POST /prom/api/v1/query HTTP/1.1"),
        "{request}"
    );
    assert!(
        request.ends_with("query=sum+by+%28pod%29+%28x%7Ba%3D%22b+c%22%7D%29&time=1700000000.000"),
        "{request}"
    );
}

#[tokio::test]
async fn errors_say_what_went_wrong() {
    let (url, _server) = serve_once(
        400,
        r#"{"status":"error","errorType":"bad_data","error":"parse error at char 3"}"#,
    )
    .await;
    let client = Client::new(&url, Duration::from_secs(5)).unwrap();
    let error = client.query("x(", 0.0).await.unwrap_err().to_string();
    assert_eq!(
        error,
        "Prometheus answered HTTP 400: bad_data parse error at char 3"
    );

    let (url, _server) = serve_once(502, "Bad Gateway").await;
    let client = Client::new(&url, Duration::from_secs(5)).unwrap();
    let error = client.query("x", 0.0).await.unwrap_err().to_string();
    assert_eq!(error, "Prometheus answered HTTP 502:  Bad Gateway");

    let (url, _server) = serve_once(
        200,
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[0,"1"]},{"metric":{"a":"b"},"value":[0,"2"]}]}}"#,
    )
    .await;
    let client = Client::new(&url, Duration::from_secs(5))
        .unwrap()
        .with_limits(1 << 20, 1);
    let error = client.query("x", 0.0).await.unwrap_err().to_string();
    assert!(
        error.contains("2 series, more than the limit of 1"),
        "{error}"
    );

    let (url, _server) = serve_once(
        200,
        r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#,
    )
    .await;
    let client = Client::new(&url, Duration::from_secs(5))
        .unwrap()
        .with_limits(16, 10);
    let error = client.query("x", 0.0).await.unwrap_err().to_string();
    assert!(error.contains("larger than 16 bytes"), "{error}");

    // A port nobody listens on.
    let free = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", free.local_addr().unwrap());
    drop(free);
    let client = Client::new(&url, Duration::from_secs(5)).unwrap();
    let error = client.query("x", 0.0).await.unwrap_err().to_string();
    assert!(
        error.starts_with(&format!("Prometheus at {url} is unreachable")),
        "{error}"
    );

    for (bad, why) in [
        ("https://prom:9090", "https is not supported"),
        ("prom:9090", "must start with http://"),
        ("http://prom:9090/?a=b", "query string"),
    ] {
        let error = Client::new(bad, Duration::from_secs(1))
            .unwrap_err()
            .to_string();
        assert!(error.contains(why), "{bad}: {error}");
    }
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let _held = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(socket);
    });
    let client = Client::new(&url, Duration::from_millis(200)).unwrap();
    let error = client.query("x", 0.0).await.unwrap_err().to_string();
    assert!(error.contains("did not answer within 0.2 s"), "{error}");
}
