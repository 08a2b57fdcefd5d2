use std::convert::Infallible;

use axum::http::HeaderMap;
use futures::StreamExt;

use super::*;

fn limits(max: usize, budget: usize) -> BodyLimits {
    BodyLimits {
        max_body_bytes: max,
        decode_budget_bytes: budget,
        body_read_timeout: Duration::from_millis(200),
        queue_wait: Duration::from_millis(100),
    }
}

fn length(n: usize) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_LENGTH, n.to_string().parse().unwrap());
    headers
}

#[tokio::test(flavor = "current_thread")]
async fn a_body_within_limits_is_read_and_charged_until_dropped() {
    let limits = limits(64 * 1024, 128 * 1024);
    let budget = DecodeBudget::new(limits.decode_budget_bytes);
    let body = vec![b'x'; 10_000];
    let read = read_body(
        &limits,
        &budget,
        &length(body.len()),
        Body::from(body.clone()),
    )
    .await
    .unwrap();
    assert_eq!(read.bytes.as_ref(), body.as_slice());
    // 10,000 bytes are charged as 10 KiB.
    assert_eq!(budget.available_bytes(), 128 * 1024 - 10 * 1024);
    drop(read);
    assert_eq!(budget.available_bytes(), 128 * 1024);
}

#[tokio::test(flavor = "current_thread")]
async fn an_announced_oversize_body_is_refused_before_it_is_read() {
    let limits = limits(1024, 4096);
    let budget = DecodeBudget::new(limits.decode_budget_bytes);
    // The body stream would fail if polled: 413 must come from the header alone.
    let never = futures::stream::pending::<Result<Bytes, Infallible>>();
    let err = read_body(&limits, &budget, &length(1025), Body::from_stream(never))
        .await
        .err()
        .unwrap();
    assert_eq!(err, BodyError::TooLarge { limit: 1024 });
    assert_eq!(err.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(err.closes_connection());
}

#[tokio::test(flavor = "current_thread")]
async fn an_unannounced_body_is_cut_at_the_limit() {
    let limits = limits(1024, 4096);
    let budget = DecodeBudget::new(limits.decode_budget_bytes);
    let chunks =
        futures::stream::iter((0..8).map(|_| Ok::<_, Infallible>(Bytes::from(vec![b'a'; 200]))));
    let err = read_body(
        &limits,
        &budget,
        &HeaderMap::new(),
        Body::from_stream(chunks),
    )
    .await
    .err()
    .unwrap();
    assert_eq!(err, BodyError::TooLarge { limit: 1024 });
    assert_eq!(budget.available_bytes(), 4096, "the charge is returned");
}

#[tokio::test(flavor = "current_thread")]
async fn a_full_budget_answers_busy_after_the_queue_wait_and_frees_on_release() {
    let limits = limits(4096, 4096);
    let budget = DecodeBudget::new(limits.decode_budget_bytes);
    let first = read_body(
        &limits,
        &budget,
        &length(4096),
        Body::from(vec![b'a'; 4096]),
    )
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let err = read_body(&limits, &budget, &length(10), Body::from(vec![b'a'; 10]))
        .await
        .err()
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(err.closes_connection());
    drop(first);
    assert!(
        read_body(&limits, &budget, &length(10), Body::from(vec![b'a'; 10]))
            .await
            .is_ok()
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_body_larger_than_the_budget_is_charged_the_whole_budget_not_refused() {
    let limits = limits(8192, 2048);
    let budget = DecodeBudget::new(limits.decode_budget_bytes);
    let read = read_body(
        &limits,
        &budget,
        &length(8000),
        Body::from(vec![b'a'; 8000]),
    )
    .await
    .unwrap();
    assert_eq!(budget.available_bytes(), 0);
    drop(read);
}

#[tokio::test(flavor = "current_thread")]
async fn a_trickling_body_is_cut_at_the_read_timeout() {
    let limits = limits(4096, 8192);
    let budget = DecodeBudget::new(limits.decode_budget_bytes);
    let slow = futures::stream::iter(0..100).then(|_| async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        Ok::<_, Infallible>(Bytes::from_static(b"a"))
    });
    let started = std::time::Instant::now();
    let err = read_body(&limits, &budget, &length(100), Body::from_stream(slow))
        .await
        .err()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(err.status(), StatusCode::REQUEST_TIMEOUT);
    assert_eq!(budget.available_bytes(), 8192);
}

#[tokio::test(flavor = "current_thread")]
async fn a_length_that_is_not_a_number_is_a_bad_request() {
    let limits = limits(4096, 8192);
    let budget = DecodeBudget::new(limits.decode_budget_bytes);
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_LENGTH, "12x".parse().unwrap());
    let err = read_body(&limits, &budget, &headers, Body::from("x"))
        .await
        .err()
        .unwrap();
    assert_eq!(err.status(), StatusCode::BAD_REQUEST);
}
