//! The http handler against a local axum server on 127.0.0.1:0.
//!
//! No test sleeps. Timeouts use a route that never answers and a short
//! `timeout_ms`; retries run through the real `ResilientHandler` with
//! millisecond delays. `Retry-After` is asserted two ways: here, that the
//! handler turns the header into `HandlerError::RetryLater` and that the
//! stack waits for it (real time, with the wait capped to 50 ms by
//! `max_delay`: paused tokio time cannot be used with real sockets, as it
//! would fire the request timers while the client waits on I/O); and on
//! paused time with a mock in the resilience unit tests.

#![allow(clippy::unwrap_used, reason = "helper fns of the tests: a failed set-up must fail the test")]

mod support;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{any, get};
use futures_util::stream;
use onex_core::contract::{HandlerBinding, HandlerType, RetryPolicy};
use onex_core::{Clock, ErrorClass};
use onex_handlers::resilience::{ResilientHandler, TokioClock};
use onex_handlers::{Handler, HandlerError, HttpHandler};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::{Value, json};
use support::{TestServer, closed_port_url, ctx, map, op};

/// Hit counters of the test server's routes.
#[derive(Debug, Default)]
struct Hits {
    flaky: AtomicUsize,
    throttled: AtomicUsize,
    not_found: AtomicUsize,
    upload: AtomicUsize,
}

fn app(hits: Arc<Hits>) -> Router {
    Router::new()
        .route("/json", get(|| async { axum::Json(json!({"hello": "world"})) }))
        .route("/text", get(|| async { ([(header::CONTENT_TYPE, "text/plain")], "plain text") }))
        .route("/echo", any(echo))
        .route("/status/{code}", get(status))
        .route("/flaky", get(flaky))
        .route("/throttled", get(throttled))
        .route("/missing", get(missing))
        .route("/upload", any(upload))
        .route("/hang", get(std::future::pending::<&'static str>))
        .route("/endless", get(endless))
        .route("/declared-large", get(|| async { vec![b'x'; 64 * 1024] }))
        .route("/redirect", get(|| async { Redirect::temporary("/json") }))
        .route("/redirect-loop", get(|| async { Redirect::temporary("/redirect-loop") }))
        .route(
            "/redirect-away",
            get(|Query(q): Query<std::collections::HashMap<String, String>>| async move {
                Redirect::temporary(q.get("to").map_or("/", String::as_str))
            }),
        )
        .with_state(hits)
}

/// Echoes method, query, selected headers and body as JSON.
async fn echo(method: axum::http::Method, uri: axum::http::Uri, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    axum::Json(json!({
        "method": method.as_str(),
        "query": uri.query().unwrap_or(""),
        "content_type": header("content-type"),
        "x_request": header("x-request"),
        "x_default": header("x-default"),
        "user_agent": header("user-agent"),
        "body": String::from_utf8_lossy(&body),
    }))
    .into_response()
}

async fn status(Path(code): Path<u16>) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::IM_A_TEAPOT);
    (status, format!("status {code}: {}", "detail ".repeat(60))).into_response()
}

/// 503 twice, then 200.
async fn flaky(State(hits): State<Arc<Hits>>) -> Response {
    if hits.flaky.fetch_add(1, Ordering::SeqCst) < 2 {
        (StatusCode::SERVICE_UNAVAILABLE, "warming up").into_response()
    } else {
        axum::Json(json!({"ok": true})).into_response()
    }
}

/// 429 with `Retry-After: 1` once, then 200.
async fn throttled(State(hits): State<Arc<Hits>>) -> Response {
    if hits.throttled.fetch_add(1, Ordering::SeqCst) == 0 {
        (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "1")], "slow down").into_response()
    } else {
        axum::Json(json!({"ok": true})).into_response()
    }
}

async fn missing(State(hits): State<Arc<Hits>>) -> Response {
    hits.not_found.fetch_add(1, Ordering::SeqCst);
    (StatusCode::NOT_FOUND, "no such invoice").into_response()
}

async fn upload(State(hits): State<Arc<Hits>>) -> StatusCode {
    hits.upload.fetch_add(1, Ordering::SeqCst);
    StatusCode::NO_CONTENT
}

/// A body that never ends, with no Content-Length: a client that buffered it all would never return.
async fn endless() -> Response {
    let chunks = stream::repeat_with(|| Ok::<_, Infallible>(Bytes::from_static(&[b'x'; 1024])));
    Body::from_stream(chunks).into_response()
}

struct Fixture {
    server: TestServer,
    hits: Arc<Hits>,
}

async fn fixture() -> Fixture {
    let hits = Arc::new(Hits::default());
    Fixture { server: TestServer::start(app(Arc::clone(&hits))).await, hits }
}

fn handler(server: &TestServer, extra: Value) -> HttpHandler {
    let mut config = map(json!({"base_url": server.url("/")}));
    config.extend(map(extra));
    HttpHandler::from_config(&config).unwrap()
}

async fn call(handler: &dyn Handler, operation: &str, payload: Value) -> Result<Value, HandlerError> {
    handler.execute(&ctx(), &op(operation), &payload).await
}

/// A binding with 1 ms exponential backoff, no jitter, and the given cap.
fn binding(max_delay: Duration) -> HandlerBinding {
    HandlerBinding {
        retry_policy: RetryPolicy {
            base_delay: Duration::from_millis(1),
            max_delay,
            jitter: 0.0,
            ..RetryPolicy::default()
        },
        timeout: Duration::from_secs(10),
        ..HandlerBinding::new(HandlerType::Http, "api")
    }
}

fn resilient(handler: HttpHandler, max_delay: Duration) -> ResilientHandler {
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::new());
    ResilientHandler::with_rng(Arc::new(handler), &binding(max_delay), clock, StdRng::seed_from_u64(1))
}

// --- success ---

#[tokio::test]
async fn get_returns_status_headers_and_parsed_json() {
    let f = fixture().await;
    let out = call(&handler(&f.server, json!({})), "http.get", json!({"url": "json"})).await.unwrap();
    assert_eq!(out["status"], 200);
    assert_eq!(out["headers"]["content-type"], "application/json");
    assert_eq!(out["json"], json!({"hello": "world"}));
    assert!(out.get("body").is_none());
}

#[tokio::test]
async fn text_responses_come_back_as_body() {
    let f = fixture().await;
    let out = call(&handler(&f.server, json!({})), "http.get", json!({"url": "/text"})).await.unwrap();
    assert_eq!(out["body"], "plain text");
    assert!(out.get("json").is_none());
}

#[tokio::test]
async fn post_sends_json_with_headers_and_query() {
    let f = fixture().await;
    let h = handler(&f.server, json!({"default_headers": {"X-Default": "d", "X-Request": "overridden"}}));
    let payload = json!({"url": "echo", "headers": {"X-Request": "r"}, "query": {"page": 2}, "json": {"a": [1, 2]}});
    let out = call(&h, "http.post", payload).await.unwrap();
    let echoed = &out["json"];
    assert_eq!(echoed["method"], "POST");
    assert_eq!(echoed["query"], "page=2");
    assert_eq!(echoed["content_type"], "application/json");
    assert_eq!(echoed["x_request"], "r", "request headers override default headers");
    assert_eq!(echoed["x_default"], "d");
    assert_eq!(echoed["user_agent"], concat!("onex/", env!("CARGO_PKG_VERSION")));
    assert_eq!(echoed["body"], r#"{"a":[1,2]}"#);
}

#[tokio::test]
async fn every_method_reaches_the_server() {
    let f = fixture().await;
    let h = handler(&f.server, json!({}));
    for (operation, method) in [
        ("http.get", "GET"),
        ("http.post", "POST"),
        ("http.put", "PUT"),
        ("http.patch", "PATCH"),
        ("http.delete", "DELETE"),
    ] {
        let out = call(&h, operation, json!({"url": "echo", "body": "t"})).await.unwrap();
        assert_eq!(out["json"]["method"], method);
    }
}

#[tokio::test]
async fn redirects_within_the_origin_are_followed() {
    let f = fixture().await;
    let out = call(&handler(&f.server, json!({})), "http.get", json!({"url": "redirect"})).await.unwrap();
    assert_eq!(out["json"], json!({"hello": "world"}));
}

// --- errors and retries ---

#[tokio::test]
async fn a_5xx_is_retried_then_succeeds_through_the_resilient_handler() {
    let f = fixture().await;
    let stack = resilient(handler(&f.server, json!({})), Duration::from_millis(10));
    let outcome = stack.call(&ctx(), &op("http.get"), &json!({"url": "flaky"})).await;
    assert_eq!(outcome.result.unwrap()["json"], json!({"ok": true}));
    assert_eq!(outcome.attempts, 3);
    assert_eq!(f.hits.flaky.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_4xx_is_not_retried() {
    let f = fixture().await;
    let stack = resilient(handler(&f.server, json!({})), Duration::from_millis(10));
    let outcome = stack.call(&ctx(), &op("http.get"), &json!({"url": "missing"})).await;
    let err = outcome.result.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Permanent);
    assert!(err.to_string().ends_with("404 Not Found: no such invoice"), "{err}");
    assert_eq!((outcome.attempts, f.hits.not_found.load(Ordering::SeqCst)), (1, 1));
}

#[tokio::test]
async fn error_excerpts_are_cut_to_200_characters() {
    let f = fixture().await;
    let err = call(&handler(&f.server, json!({})), "http.get", json!({"url": "status/400"})).await.unwrap_err();
    let message = err.to_string();
    let excerpt = message.split_once("400 Bad Request: ").unwrap().1;
    assert_eq!(excerpt.chars().count(), 201, "200 characters and an ellipsis: {excerpt}");
    assert!(excerpt.ends_with('…'));
}

#[tokio::test]
async fn statuses_map_to_classes_over_the_wire() {
    let f = fixture().await;
    let h = handler(&f.server, json!({}));
    for (code, class) in [
        (500, ErrorClass::Transient),
        (502, ErrorClass::Transient),
        (429, ErrorClass::Transient),
        (409, ErrorClass::Conflict),
        (401, ErrorClass::Permanent),
        (422, ErrorClass::Permanent),
    ] {
        let err = call(&h, "http.get", json!({"url": format!("status/{code}")})).await.unwrap_err();
        assert_eq!(err.class(), class, "{code}: {err}");
    }
}

#[tokio::test]
async fn a_request_past_timeout_ms_fails_with_a_transient_timeout() {
    let f = fixture().await;
    let err =
        call(&handler(&f.server, json!({})), "http.get", json!({"url": "hang", "timeout_ms": 50})).await.unwrap_err();
    assert_eq!(err, HandlerError::Timeout { after: Duration::from_millis(50) });
    assert_eq!(err.class(), ErrorClass::Transient);
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    let h = HttpHandler::from_config(&map(json!({"base_url": closed_port_url().await}))).unwrap();
    let err = call(&h, "http.get", json!({"url": "x?token=s3cr3t"})).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Transient);
    let message = err.to_string();
    assert!(message.contains("cannot connect"), "{message}");
    assert!(!message.contains("s3cr3t"), "query strings never reach errors: {message}");
}

#[tokio::test]
async fn a_429_carries_its_retry_after() {
    let f = fixture().await;
    let err = call(&handler(&f.server, json!({})), "http.get", json!({"url": "throttled"})).await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
    assert_eq!(err.class(), ErrorClass::Transient);
}

#[tokio::test]
async fn retry_after_is_honoured_by_the_resilient_handler() {
    let f = fixture().await;
    // Own delay 1 ms; Retry-After 1 s, capped to the 50 ms max_delay.
    let stack = resilient(handler(&f.server, json!({})), Duration::from_millis(50));
    let started = Instant::now();
    let outcome = stack.call(&ctx(), &op("http.get"), &json!({"url": "throttled"})).await;
    assert_eq!(outcome.attempts, 2);
    assert!(outcome.result.is_ok());
    assert!(started.elapsed() >= Duration::from_millis(50), "waited {:?}", started.elapsed());
}

#[tokio::test]
async fn an_endless_response_is_refused_at_the_limit() {
    let f = fixture().await;
    let h = handler(&f.server, json!({"max_response_bytes": 16384}));
    let err = call(&h, "http.get", json!({"url": "endless"})).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Permanent);
    assert!(err.to_string().contains("over max_response_bytes (16384); reading stopped at the limit"), "{err}");
}

#[tokio::test]
async fn a_declared_oversized_response_is_refused_before_reading() {
    let f = fixture().await;
    let h = handler(&f.server, json!({"max_response_bytes": 16384}));
    let err = call(&h, "http.get", json!({"url": "declared-large"})).await.unwrap_err();
    assert!(err.to_string().contains("response body of 65536 bytes is over max_response_bytes (16384)"), "{err}");
}

#[tokio::test]
async fn an_oversized_request_is_refused_before_sending() {
    let f = fixture().await;
    let h = handler(&f.server, json!({"max_request_bytes": 1024}));
    let err = call(&h, "http.post", json!({"url": "upload", "body": "x".repeat(2048)})).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Permanent);
    assert!(err.to_string().contains("over max_request_bytes (1024)"), "{err}");
    assert_eq!(f.hits.upload.load(Ordering::SeqCst), 0, "nothing was sent");
}

#[tokio::test]
async fn a_url_off_the_base_origin_is_refused() {
    let f = fixture().await;
    let other = fixture().await;
    let err =
        call(&handler(&f.server, json!({})), "http.get", json!({"url": other.server.url("/json")})).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Permanent);
    assert!(err.to_string().contains("outside the origin of base_url"), "{err}");
}

#[tokio::test]
async fn a_redirect_off_the_base_origin_is_refused() {
    let f = fixture().await;
    let other = fixture().await;
    let payload = json!({"url": "redirect-away", "query": {"to": other.server.url("/json")}});
    let err = call(&handler(&f.server, json!({})), "http.get", payload.clone()).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Permanent);
    assert!(err.to_string().contains("leaves base_url's origin"), "{err}");
    let allowed = call(&handler(&f.server, json!({"allow_any_host": true})), "http.get", payload).await.unwrap();
    assert_eq!(allowed["json"], json!({"hello": "world"}));
}

#[tokio::test]
async fn a_redirect_loop_stops_at_max_redirects() {
    let f = fixture().await;
    let err = call(&handler(&f.server, json!({"max_redirects": 3})), "http.get", json!({"url": "redirect-loop"}))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Permanent);
    assert!(err.to_string().contains("more than 3 redirects"), "{err}");
}

#[tokio::test]
async fn unknown_operations_are_refused_with_the_supported_list() {
    let f = fixture().await;
    let err = call(&handler(&f.server, json!({})), "http.head", json!({"url": "json"})).await.unwrap_err();
    assert!(matches!(err, HandlerError::UnsupportedOperation { ref supported, .. } if supported.len() == 5), "{err}");
}

// --- describe, health, shutdown ---

#[tokio::test]
async fn describe_lists_the_five_operations() {
    let f = fixture().await;
    let d = handler(&f.server, json!({})).describe();
    let names: Vec<&str> = d.operations.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["http.get", "http.post", "http.put", "http.patch", "http.delete"]);
}

#[tokio::test]
async fn health_is_healthy_when_the_base_url_answers() {
    let f = fixture().await;
    let health = handler(&f.server, json!({})).health().await;
    assert!(health.healthy, "{health:?}");
}

#[tokio::test]
async fn health_is_unhealthy_when_the_base_url_is_unreachable() {
    let h = HttpHandler::from_config(&map(json!({"base_url": closed_port_url().await}))).unwrap();
    let health = h.health().await;
    assert!(!health.healthy);
    assert!(health.detail.contains("cannot connect"), "{health:?}");
}

#[tokio::test]
async fn after_shutdown_calls_fail_without_reaching_the_server() {
    let f = fixture().await;
    let h = handler(&f.server, json!({}));
    h.shutdown().await;
    let err = call(&h, "http.post", json!({"url": "upload"})).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Permanent);
    assert!(err.to_string().contains("shut down"));
    assert_eq!(f.hits.upload.load(Ordering::SeqCst), 0);
    assert!(!h.health().await.healthy);
}
