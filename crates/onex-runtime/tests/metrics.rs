//! The metrics a running host renders: after a known mix of envelopes
//! (successes, a permanent failure, retries that open the breaker, a call the
//! open breaker refuses, a malformed message, an unroutable envelope) the text
//! has exactly the expected values, and `promtool check metrics` accepts it.
//!
//! Metrics are process-wide, so this file runs one host in one test. It runs
//! on paused tokio time: handler durations and backoffs are exact.
//!
//! promtool comes from Debian's prometheus package; `scripts/services.sh`
//! installs it. Without it the test fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests fail by panicking")]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use bytes::Bytes;
use onex_core::contract::{MapSources, load_runtime_contract};
use onex_core::{Envelope, NodeId, SequentialIds};
use onex_handlers::TokioClock;
use onex_runtime::{Client, Outcome, RunningHost, RuntimeHost};
use serde_json::json;

const NODE: &str = "name: echo\ncontract_version: {major: 1, minor: 0, patch: 0}\nnode_type: EFFECT_GENERIC\n\
handler_routing:\n  handlers:\n    - {operation: local.error, handler_type: local}\n    - {operation: local.echo, handler_type: local}\n";

/// One retry 100 ms after a transient failure; two failed attempts in a row open the breaker.
const RUNTIME: &str = "runtime:\n  name: metrics\n  event_bus:\n    kind: memory\n    config:\n      topics: {input: onex.acme.metrics.cmd.v1, output: onex.acme.metrics.evt.v1}\n  handlers:\n    - {type: local, retry_policy: {max_retries: 1, base_delay_ms: 100, backoff_strategy: fixed, jitter: false}, circuit_breaker: {failure_threshold: 2, wait_in_open_ms: 60000}}\n  nodes:\n    - {slug: echo, contract: echo.yaml}\n";

async fn start() -> (RunningHost, Client) {
    let sources = MapSources::new().with_file("onex.yaml", RUNTIME).with_file("echo.yaml", NODE);
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

/// The value of the series written exactly as `series` (name and labels in rendered order).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[track_caller]
fn assert_series(text: &str, series: &str, expected: f64) {
    assert_eq!(value(text, series), Some(expected), "{series} in\n{text}");
}

/// Runs `promtool check metrics` on `text`; returns its exit status and everything it printed.
fn promtool_check(text: &str) -> (std::process::ExitStatus, String) {
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => panic!(
            "cannot run promtool ({e}); it is needed to check the metrics text: run scripts/services.sh, \
             which installs it from Debian's prometheus package"
        ),
    };
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status, format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test(start_paused = true)]
async fn a_running_host_renders_what_it_did_as_valid_prometheus_text() {
    let (running, mut client) = start().await;
    let input = running.input_topics()[0].clone();
    let ids = SequentialIds::new();
    let command = |op: &str, payload| {
        let mut e = Envelope::command(&ids, &TokioClock::new(), op, payload);
        // One key: processed one at a time, in this order (the breaker opens before the last call).
        e.metadata.partition_key = Some("entity-1".into());
        e
    };
    let mut unroutable = command("local.echo", json!({}));
    unroutable.target_node = Some(NodeId::from("nobody"));
    let envelopes = [
        command("local.echo", json!({"i": 1})),
        command("local.echo", json!({"i": 2})),
        command("local.echo", json!({"i": 3})),
        // Permanent: not retried, dead-lettered (default dead_letter_on).
        command("local.error", json!({"class": "permanent"})),
        // Transient: retried once after 100 ms, fails again, which opens the breaker; dead-lettered.
        command("local.error", json!({"class": "transient"})),
        // Refused by the open breaker: an error response, not dead-lettered.
        command("local.echo", json!({"i": 4})),
        unroutable,
    ];
    let sender = client.sender();
    for e in &envelopes {
        sender.send(&input, e).await.unwrap();
    }
    sender.send_raw(&input, Some(Bytes::from_static(b"k")), Bytes::from_static(b"{not json")).await.unwrap();

    // 7 responses; dead letters: the permanent, the transient and the malformed message.
    let (mut responses, mut dead_letters) = (0, 0);
    while responses < 7 || dead_letters < 3 {
        match client.next().await.unwrap().unwrap() {
            Outcome::Response { .. } => responses += 1,
            Outcome::DeadLetter { .. } => dead_letters += 1,
            Outcome::Unreadable { reason, .. } => panic!("{reason}"),
        }
    }
    // An outcome is counted just after it is published: wait until nothing is in flight.
    let mut text = running.metrics_text();
    for _ in 0..1000 {
        if value(&text, "onex_envelopes_in_flight") == Some(0.0) {
            break;
        }
        tokio::task::yield_now().await;
        text = running.metrics_text();
    }

    assert_series(&text, "onex_envelopes_in_flight", 0.0);
    assert_series(&text, "onex_bus_deliveries_total", 8.0);
    assert_series(&text, r#"onex_envelopes_received_total{node="echo"}"#, 6.0);
    assert_series(&text, r#"onex_envelopes_processed_total{node="echo",outcome="success"}"#, 3.0);
    assert_series(&text, r#"onex_envelopes_processed_total{node="echo",outcome="error"}"#, 3.0);
    assert_series(&text, r#"onex_envelopes_dead_lettered_total{node="echo",reason="permanent"}"#, 1.0);
    assert_series(&text, r#"onex_envelopes_dead_lettered_total{node="echo",reason="retries_exhausted"}"#, 1.0);
    assert_series(&text, r#"onex_envelopes_dead_lettered_total{node="echo",reason="circuit_open"}"#, 0.0);
    assert_series(&text, r#"onex_envelopes_dead_lettered_total{reason="invalid_envelope"}"#, 1.0);
    assert_series(&text, r#"onex_envelopes_malformed_total{reason="invalid_envelope"}"#, 1.0);
    assert_series(&text, r#"onex_envelopes_malformed_total{reason="response_on_command_topic"}"#, 0.0);
    assert_series(&text, "onex_envelopes_unroutable_total", 1.0);
    assert_series(&text, "onex_bus_publish_errors_total", 0.0);
    assert_series(&text, "onex_bus_ready", 1.0);

    let call = |op: &str, outcome: &str| {
        format!(
            r#"onex_handler_calls_total{{handler="local",handler_type="local",operation="{op}",outcome="{outcome}"}}"#
        )
    };
    assert_series(&text, &call("local.echo", "success"), 3.0);
    assert_series(&text, &call("local.echo", "error"), 1.0);
    assert_series(&text, &call("local.error", "success"), 0.0);
    assert_series(&text, &call("local.error", "error"), 2.0);
    // On paused time a call takes exactly its backoff: 0 s each, except the retried one (100 ms).
    let duration = |op: &str, part: &str| {
        format!(r#"onex_handler_call_duration_seconds_{part}{{handler="local",handler_type="local",operation="{op}"}}"#)
    };
    assert_series(&text, &duration("local.echo", "count"), 4.0);
    assert_series(&text, &duration("local.echo", "sum"), 0.0);
    assert_series(&text, &duration("local.error", "count"), 2.0);
    assert_series(&text, &duration("local.error", "sum"), 0.1);
    let bucket = |le: &str| {
        format!(
            r#"onex_handler_call_duration_seconds_bucket{{handler="local",handler_type="local",operation="local.error",le="{le}"}}"#
        )
    };
    assert_series(&text, &bucket("0.0001"), 1.0);
    assert_series(&text, &bucket("0.05"), 1.0);
    assert_series(&text, &bucket("0.1"), 2.0);
    assert_series(&text, &bucket("+Inf"), 2.0);

    assert_series(&text, r#"onex_handler_retries_total{handler="local"}"#, 1.0);
    assert_series(&text, r#"onex_handler_timeouts_total{handler="local"}"#, 0.0);
    assert_series(&text, r#"onex_handler_deadline_exceeded_total{handler="local"}"#, 0.0);
    assert_series(&text, r#"onex_rate_limited_total{handler="local",action="rejected"}"#, 0.0);
    assert_series(&text, r#"onex_circuit_breaker_rejected_total{handler="local"}"#, 1.0);
    assert_series(&text, r#"onex_circuit_breaker_state{handler="local"}"#, 2.0);
    assert_series(&text, r#"onex_circuit_breaker_transitions_total{handler="local",to_state="open"}"#, 1.0);
    assert_series(&text, r#"onex_circuit_breaker_transitions_total{handler="local",to_state="closed"}"#, 0.0);

    let build_info = text.lines().find(|l| l.starts_with("onex_build_info{")).unwrap_or_default();
    assert!(build_info.contains(&format!(r#"version="{}""#, env!("CARGO_PKG_VERSION"))), "{text}");
    assert!(build_info.ends_with(" 1"), "{build_info}");
    // Every family is described (promtool would flag one without HELP too, but say which).
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let name = line.split(' ').nth(2).unwrap();
        assert!(text.contains(&format!("# HELP {name} ")), "{name} has no HELP line");
    }

    let (status, output) = promtool_check(&text);
    assert!(status.success() && output.trim().is_empty(), "promtool check metrics: {status}\n{output}\n---\n{text}");

    running.shutdown().await;
}
