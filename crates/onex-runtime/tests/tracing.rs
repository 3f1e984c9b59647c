//! W3C trace context through the host, seen by an in-memory OpenTelemetry
//! exporter: an envelope's span joins the caller's trace, the handler call is
//! its child, and the response's `traceparent` makes the next node's span a
//! child of this one. Logs written inside carry the envelope's fields.
//!
//! One subscriber for the whole binary, installed as the global default (a
//! thread-local one would miss call sites whose interest another test's
//! thread cached first); each test picks its spans by its own trace id.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests fail by panicking")]

use std::io;
use std::sync::{Arc, Mutex, OnceLock};

use onex_bus::EventBus;
use onex_bus::memory::{MemoryBus, MemoryBusConfig};
use onex_core::contract::Environment;
use onex_core::{Envelope, NodeId, SystemClock, TopicName, UuidV7Ids};
use onex_handlers::LocalHandler;
use onex_runtime::telemetry::{LogFormat, subscriber};
use onex_runtime::{Client, EffectNode, NodeOptions, Outcome, RunningHost, RuntimeHost};
use opentelemetry::trace::{SpanId, TraceId, TracerProvider as _};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use serde_json::json;
use tracing_subscriber::EnvFilter;

const A_TOPIC: &str = "onex.acme.a.cmd.v1";
const B_TOPIC: &str = "onex.acme.b.cmd.v1";
const OUTPUT: &str = "onex.acme.trace.evt.v1";

struct Telemetry {
    exporter: InMemorySpanExporter,
    provider: SdkTracerProvider,
    logs: Arc<Mutex<Vec<u8>>>,
}

fn telemetry() -> &'static Telemetry {
    static TELEMETRY: OnceLock<Telemetry> = OnceLock::new();
    TELEMETRY.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        // Simple: each span is exported as it ends, so nothing waits for a batch.
        let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let writer = Capture(Arc::clone(&logs));
        let subscriber =
            subscriber(LogFormat::Json, EnvFilter::new("debug"), move || writer.clone(), Some(provider.tracer("test")));
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
        Telemetry { exporter, provider, logs }
    })
}

#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A host with nodes `a` and `b`, each echoing on its own topic.
async fn start() -> (RunningHost, Client) {
    let topic = |t: &str| t.parse::<TopicName>().unwrap();
    let bus: Arc<dyn EventBus> = Arc::new(MemoryBus::new(MemoryBusConfig::default()));
    let local = Arc::new(LocalHandler::new(Environment::Dev).unwrap());
    let node = || Arc::new(EffectNode::builder().route("local.echo", local.clone()).build());
    let running = RuntimeHost::builder()
        .bus(bus)
        .topics(topic(A_TOPIC), topic(OUTPUT))
        .handler("local", local.clone())
        .node("a", node(), NodeOptions { subscribe: vec![topic(A_TOPIC)], ..NodeOptions::default() })
        .node("b", node(), NodeOptions { subscribe: vec![topic(B_TOPIC)], ..NodeOptions::default() })
        .build()
        .await
        .unwrap()
        .start()
        .await
        .unwrap();
    let client = Client::connect(Arc::clone(running.bus()), "test", &running.output_topics(), &[]).await.unwrap();
    (running, client)
}

/// Sends `envelope` to `topic` and returns its response.
async fn call(running: &RunningHost, client: &mut Client, topic: &str, envelope: &Envelope) -> Envelope {
    client.sender().send(&topic.parse().unwrap(), envelope).await.unwrap();
    match client.next().await.unwrap().unwrap() {
        Outcome::Response { envelope: response, .. } => {
            assert_eq!(response.causation_id, Some(envelope.envelope_id));
            assert_eq!(response.success, Some(true), "{response:?}");
            *response
        }
        other => panic!("expected a response, got {other:?} (host {:?})", running.stats()),
    }
}

fn command(ids: &UuidV7Ids, traceparent: Option<&str>) -> Envelope {
    let mut e = Envelope::command(ids, &SystemClock::new(), "local.echo", json!({"hello": "trace"}));
    e.metadata.traceparent = traceparent.map(str::to_owned);
    e
}

/// The finished spans of one trace, after the host stopped (so every span ended).
fn spans_of(trace_id: TraceId) -> Vec<SpanData> {
    let t = telemetry();
    t.provider.force_flush().unwrap();
    t.exporter.get_finished_spans().unwrap().into_iter().filter(|s| s.span_context.trace_id() == trace_id).collect()
}

fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes.iter().find(|kv: &&KeyValue| kv.key.as_str() == key).map(|kv| &kv.value)
}

fn envelope_span(spans: &[SpanData], node: &str) -> SpanData {
    let mut found: Vec<&SpanData> = spans
        .iter()
        .filter(|s| s.name == "envelope" && attribute(s, "node_id") == Some(&Value::from(node.to_owned())))
        .collect();
    assert_eq!(found.len(), 1, "one envelope span of node {node} in {spans:#?}");
    found.remove(0).clone()
}

fn traceparent(trace_id: TraceId, span_id: SpanId) -> String {
    format!("00-{trace_id}-{span_id}-01")
}

#[tokio::test]
async fn the_trace_continues_from_the_caller_through_node_a_to_node_b() {
    let _ = telemetry();
    let (running, mut client) = start().await;
    let ids = UuidV7Ids;
    // Given a caller in trace T, whose own span is P.
    let trace_id = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
    let caller = SpanId::from_hex("00f067aa0ba902b7").unwrap();
    let mut x = command(&ids, Some(&traceparent(trace_id, caller)));
    x.metadata.tracestate = Some("vendor=opaque".into());

    // When node A answers X, and a downstream process sends A's answer on to node B as a new command.
    let a_response = call(&running, &mut client, A_TOPIC, &x).await;
    let mut y = command(&ids, a_response.metadata.traceparent.as_deref());
    y.metadata.tracestate = a_response.metadata.tracestate.clone();
    let b_response = call(&running, &mut client, B_TOPIC, &y).await;
    running.shutdown().await;

    // Then A's envelope span is a child of the caller's span, in trace T.
    let spans = spans_of(trace_id);
    let a = envelope_span(&spans, "a");
    assert_eq!(a.parent_span_id, caller);
    assert!(a.parent_span_is_remote);
    assert_eq!(attribute(&a, "envelope_id"), Some(&Value::from(x.envelope_id.to_string())));
    assert_eq!(attribute(&a, "correlation_id"), Some(&Value::from(x.correlation().to_string())));
    assert_eq!(attribute(&a, "runtime_id"), Some(&Value::from("onex")));
    assert_eq!(attribute(&a, "operation"), Some(&Value::from("local.echo")));
    // The handler call is a child of A's envelope span and says how many attempts it took.
    let handler = spans
        .iter()
        .find(|s| s.name == "handler.call" && s.parent_span_id == a.span_context.span_id())
        .unwrap_or_else(|| panic!("a handler.call span under A's envelope span in {spans:#?}"));
    assert_eq!(attribute(handler, "handler_type"), Some(&Value::from("local")));
    assert_eq!(attribute(handler, "attempts"), Some(&Value::I64(1)));
    // A's response names A's envelope span as the parent of what follows, and keeps tracestate.
    assert_eq!(a_response.metadata.traceparent, Some(traceparent(trace_id, a.span_context.span_id())));
    assert_eq!(a_response.metadata.tracestate.as_deref(), Some("vendor=opaque"));
    // So B's envelope span is a child of A's, in the same trace.
    let b = envelope_span(&spans, "b");
    assert_eq!(b.parent_span_id, a.span_context.span_id());
    assert_eq!(b_response.metadata.traceparent, Some(traceparent(trace_id, b.span_context.span_id())));
    assert!(spans.iter().all(|s| s.span_context.trace_id() == trace_id));
}

#[tokio::test]
async fn an_invalid_traceparent_starts_a_new_trace_without_an_error() {
    let t = telemetry();
    let (running, mut client) = start().await;
    // An all-zero trace id is invalid (W3C).
    let bad = "00-00000000000000000000000000000000-00f067aa0ba902b7-01";
    let mut x = command(&UuidV7Ids, Some(bad));
    x.metadata.tracestate = Some("vendor=stale".into());

    let response = call(&running, &mut client, A_TOPIC, &x).await;
    running.shutdown().await;

    // A fresh trace, rooted at A's envelope span, continued by the response.
    let next = response.metadata.traceparent.clone().expect("the response starts a trace");
    let trace_id = TraceId::from_hex(&next[3..35]).unwrap();
    assert_ne!(trace_id, TraceId::INVALID);
    let a = envelope_span(&spans_of(trace_id), "a");
    assert_eq!(a.parent_span_id, SpanId::INVALID);
    assert_eq!(next, format!("00-{trace_id}-{}-{}", a.span_context.span_id(), &next[53..]));
    // tracestate belonged to the rejected trace.
    assert_eq!(response.metadata.tracestate, None);
    // The rejection is a debug line inside the envelope's span, never an error.
    let logs = String::from_utf8(t.logs.lock().unwrap().clone()).unwrap();
    let id = x.envelope_id.to_string();
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|l: &serde_json::Value| l["envelope_id"] == id.as_str())
        .collect();
    let ignored = lines
        .iter()
        .find(|l| l["message"].as_str().is_some_and(|m| m.contains("invalid traceparent")))
        .unwrap_or_else(|| panic!("a line about the invalid traceparent in {lines:#?}"));
    assert_eq!(ignored["level"], "DEBUG");
    for field in ["runtime_id", "node_id", "correlation_id", "operation"] {
        assert!(ignored.get(field).is_some(), "{field} missing in {ignored}");
    }
    assert!(lines.iter().all(|l| l["level"] != "ERROR" && l["level"] != "WARN"), "{lines:#?}");
}

#[tokio::test]
async fn an_operation_name_cannot_forge_a_log_line() {
    let t = telemetry();
    let (running, mut client) = start().await;
    let forged = "nope\n{\"level\":\"ERROR\",\"message\":\"forged\"}";
    let mut x = Envelope::command(&UuidV7Ids, &SystemClock::new(), forged, json!({}));
    x.target_node = Some(NodeId::from("a"));
    client.sender().send(&A_TOPIC.parse().unwrap(), &x).await.unwrap();
    let Outcome::Response { envelope, .. } = client.next().await.unwrap().unwrap() else { panic!("a response") };
    assert_eq!(envelope.success, Some(false));
    running.shutdown().await;

    let logs = String::from_utf8(t.logs.lock().unwrap().clone()).unwrap();
    for line in logs.lines() {
        let line: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_ne!(line["message"], "forged");
    }
    assert!(logs.contains(&serde_json::to_string(forged).unwrap()[1..20]), "the operation is logged, escaped");
}
