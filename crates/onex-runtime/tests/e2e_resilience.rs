//! The resilience stack seen through the host: error envelopes carry the
//! class and attempt count, `retry_count` lands in the response metadata,
//! and `dead_letter_on` decides what also goes to the DLQ. Runs on paused
//! tokio time: backoff sleeps advance the clock instantly, nothing really waits.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests fail by panicking")]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use onex_core::contract::{MapSources, load_runtime_contract};
use onex_core::{Clock, Envelope, ErrorClass, ErrorCode, SequentialIds};
use onex_handlers::TokioClock;
use onex_runtime::{Client, Outcome, RunningHost, RuntimeHost};
use serde_json::json;

const NODE: &str = "name: echo\ncontract_version: {major: 1, minor: 0, patch: 0}\nnode_type: EFFECT_GENERIC\n\
handler_routing:\n  handlers:\n    - {operation: local.error, handler_type: local}\n    - {operation: local.echo, handler_type: local}\n";

async fn start(binding: &str) -> (RunningHost, Client) {
    let runtime = format!(
        "runtime:\n  name: res\n  event_bus:\n    kind: memory\n    config:\n      topics: {{input: onex.acme.res.cmd.v1, output: onex.acme.res.evt.v1}}\n  handlers:\n    - {binding}\n  nodes:\n    - {{slug: echo, contract: echo.yaml}}\n"
    );
    let sources = MapSources::new().with_file("onex.yaml", runtime).with_file("echo.yaml", NODE);
    let contract = load_runtime_contract(Path::new("onex.yaml"), &sources).unwrap_or_else(|d| panic!("{d:?}")).contract;
    let host = RuntimeHost::builder()
        .contract(contract)
        .clock(Arc::new(TokioClock::new()))
        .ids(Arc::new(SequentialIds::new()))
        .build()
        .await
        .unwrap();
    let running = host.start().await.unwrap();
    let client =
        Client::connect(Arc::clone(running.bus()), "test", &running.output_topics(), &[running.dlq_topic().clone()])
            .await
            .unwrap();
    (running, client)
}

fn command(ids: &SequentialIds, op: &str, payload: serde_json::Value) -> Envelope {
    let mut e = Envelope::command(ids, &TokioClock::new(), op, payload);
    // One key for every envelope of a test: they are processed one at a time, in order.
    e.metadata.partition_key = Some("entity-1".into());
    e
}

#[tokio::test(start_paused = true)]
async fn exhausted_retries_answer_with_attempts_and_dead_letter_the_envelope() {
    let (running, mut client) = start(
        "{type: local, retry_policy: {max_retries: 2, base_delay_ms: 100, backoff_strategy: fixed, jitter: false}}",
    )
    .await;
    let request =
        command(&SequentialIds::new(), "local.error", json!({"class": "transient", "message": "upstream down"}));
    let started = tokio::time::Instant::now();
    client.sender().send(&running.input_topics()[0], &request).await.unwrap();

    let mut response = None;
    let mut record = None;
    while response.is_none() || record.is_none() {
        match client.next().await.unwrap().unwrap() {
            Outcome::Response { envelope, .. } => response = Some(envelope),
            Outcome::DeadLetter { record: r, .. } => record = Some(r),
            Outcome::Unreadable { reason, .. } => panic!("{reason}"),
        }
    }
    let (response, record) = (response.unwrap(), record.unwrap());
    let error = response.error.as_ref().unwrap();
    assert_eq!((error.code, error.class, error.attempts), (ErrorCode::HandlerExecution, ErrorClass::Transient, 3));
    assert!(error.message.contains("upstream down"), "{}", error.message);
    assert_eq!(response.metadata.retry_count, 2);
    // Two fixed 100 ms backoffs, on the paused clock.
    assert_eq!(started.elapsed(), Duration::from_millis(200));
    assert_eq!((record.attempts, record.error_class), (3, ErrorClass::Transient));
    assert!(record.error_response_sent);
    assert_eq!(record.envelope_id, Some(request.envelope_id));
    assert_eq!(running.stats().dead_lettered, 1);
    running.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_rejects_without_dead_lettering() {
    let (running, mut client) =
        start("{type: local, retry_policy: {max_retries: 0}, circuit_breaker: {failure_threshold: 2}}").await;
    let topic = running.input_topics()[0].clone();
    let ids = SequentialIds::new();
    for _ in 0..3 {
        client.sender().send(&topic, &command(&ids, "local.error", json!({"class": "transient"}))).await.unwrap();
    }
    let mut codes = Vec::new();
    let mut dead_letters = 0;
    while codes.len() < 3 {
        match client.next().await.unwrap().unwrap() {
            Outcome::Response { envelope, .. } => codes.push(envelope.error.map(|e| (e.code, e.class))),
            Outcome::DeadLetter { .. } => dead_letters += 1,
            Outcome::Unreadable { reason, .. } => panic!("{reason}"),
        }
    }
    assert_eq!(
        codes,
        vec![
            Some((ErrorCode::HandlerExecution, ErrorClass::Transient)),
            Some((ErrorCode::HandlerExecution, ErrorClass::Transient)),
            Some((ErrorCode::CircuitOpen, ErrorClass::Rejected)),
        ]
    );
    // The two real failures exhausted their (zero) retries; the refusal is load shedding.
    let report = running.shutdown().await;
    assert_eq!(report.stats.dead_lettered, 2);
    assert_eq!(dead_letters, 2);
}

#[tokio::test(start_paused = true)]
async fn an_expired_deadline_fails_fast_without_calling_the_handler() {
    let (running, mut client) = start("{type: local}").await;
    let mut request = command(&SequentialIds::new(), "local.echo", json!({"x": 1}));
    let now = TokioClock::new().now();
    request.metadata.deadline = onex_core::Timestamp::from_unix_millis(now.unix_millis() - 1000);
    client.sender().send(&running.input_topics()[0], &request).await.unwrap();
    let Outcome::Response { envelope, .. } = client.next().await.unwrap().unwrap() else {
        panic!("expected a response")
    };
    let error = envelope.error.unwrap();
    assert_eq!((error.code, error.class, error.attempts), (ErrorCode::DeadlineExceeded, ErrorClass::Rejected, 0));
    assert_eq!(envelope.metadata.retry_count, 0);
    running.shutdown().await;
}
