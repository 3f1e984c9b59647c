#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io;
use std::sync::{Arc, Mutex};

use onex_core::{Envelope, ManualClock, Metadata, SequentialIds};
use serde_json::Value;
use tracing::{error_span, warn};
use tracing_subscriber::EnvFilter;

use super::{LogFormat, envelope_span, propagate, subscriber};

/// A user string that tries to end the current log line and forge another.
const FORGED: &str = "op\n{\"level\":\"ERROR\",\"message\":\"forged\"}\r\x1b[31mred\u{2028}";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// Logs one warning with `FORGED` in a span field, an event field and the message.
fn log_forged(format: LogFormat) -> String {
    let out = Captured::default();
    let writer = out.clone();
    let subscriber = subscriber(format, EnvFilter::new("info"), move || writer.clone(), None);
    tracing::subscriber::with_default(subscriber, || {
        let span = error_span!("envelope", runtime_id = "rt", operation = %FORGED, "otel.kind" = "consumer");
        span.in_scope(|| {
            let inner = error_span!("handler.call", handler = "h", operation = FORGED);
            inner.in_scope(|| warn!(error = %FORGED, "Failed: {FORGED}"));
        });
    });
    out.text()
}

#[test]
fn human_lines_escape_control_characters_in_every_value() {
    let text = log_forged(LogFormat::Human);
    // One event, one line: the newline, carriage return and escape are shown, not obeyed.
    assert_eq!(text.matches('\n').count(), 1, "{text}");
    assert!(text.ends_with('\n'));
    for raw in ['\r', '\x1b', '\u{2028}'] {
        assert!(!text.contains(raw), "{raw:?} in {text}");
    }
    assert!(text.contains(r#"op\n{"#), "{text}");
    assert!(text.contains("Failed: op\\n"), "{text}");
    assert!(text.contains("envelope{runtime_id=\"rt\""), "{text}");
    assert!(!text.contains("otel."), "{text}");
}

#[test]
fn json_lines_carry_every_span_field_at_the_top_level() {
    let text = log_forged(LogFormat::Json);
    assert_eq!(text.matches('\n').count(), 1, "{text}");
    let line: Value = serde_json::from_str(text.trim_end()).unwrap();
    assert_eq!(line["level"], "WARN");
    assert_eq!(line["message"], format!("Failed: {FORGED}"));
    assert_eq!(line["error"], FORGED);
    assert_eq!(line["runtime_id"], "rt");
    // The inner span's fields win over the outer span's of the same name.
    assert_eq!(line["operation"], FORGED);
    assert_eq!(line["handler"], "h");
    assert_eq!(line["span"], "handler.call");
    assert!(line.get("otel.kind").is_none(), "{line}");
    assert!(line["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')), "{line}");
}

#[test]
fn json_span_fields_recorded_later_are_on_later_lines() {
    let out = Captured::default();
    let writer = out.clone();
    let subscriber = subscriber(LogFormat::Json, EnvFilter::new("info"), move || writer.clone(), None);
    tracing::subscriber::with_default(subscriber, || {
        let span = error_span!("envelope", node_id = tracing::field::Empty, attempts = tracing::field::Empty);
        span.record("node_id", "a");
        span.record("attempts", 3u32);
        span.in_scope(|| tracing::info!(ratio = 0.5, ok = true, n = -2i64, "Done."));
    });
    let line: Value = serde_json::from_str(out.text().trim_end()).unwrap();
    assert_eq!(line["node_id"], "a");
    assert_eq!(line["attempts"], 3);
    assert_eq!(line["ratio"], 0.5);
    assert_eq!(line["ok"], true);
    assert_eq!(line["n"], -2);
}

/// Trace context as a response would get it, with logging on but no OpenTelemetry layer.
fn response_metadata(traceparent: Option<&str>, tracestate: Option<&str>) -> Metadata {
    let mut request = Envelope::command(&SequentialIds::new(), &ManualClock::at_fixed_start(), "op", Value::Null);
    request.metadata.traceparent = traceparent.map(str::to_owned);
    request.metadata.tracestate = tracestate.map(str::to_owned);
    let subscriber = subscriber(LogFormat::Json, EnvFilter::new("info"), io::sink, None);
    tracing::subscriber::with_default(subscriber, || {
        let (_span, trace) = envelope_span("rt", None, &request);
        // As `success_response` does: the request's metadata, copied.
        let mut response = request.metadata.clone();
        propagate(trace, &mut response);
        response
    })
}

#[test]
fn without_opentelemetry_a_valid_traceparent_passes_through_with_its_tracestate() {
    let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let m = response_metadata(Some(valid), Some("vendor=x"));
    assert_eq!(m.traceparent.as_deref(), Some(valid));
    assert_eq!(m.tracestate.as_deref(), Some("vendor=x"));
}

#[test]
fn without_opentelemetry_an_invalid_traceparent_is_removed_with_its_tracestate() {
    let m = response_metadata(Some("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"), Some("vendor=x"));
    assert_eq!((m.traceparent, m.tracestate), (None, None));
    let m = response_metadata(None, None);
    assert_eq!((m.traceparent, m.tracestate), (None, None));
}
