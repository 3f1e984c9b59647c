//! The spans the runtime opens per envelope and per handler call, and how
//! W3C trace context flows through them.
//!
//! An envelope's valid `metadata.traceparent` makes its `envelope` span a
//! child of the caller's span (a remote parent); the response carries a
//! `traceparent` naming the `envelope` span, so the next hop continues the
//! same trace. With no OpenTelemetry layer installed the spans still give
//! every log line its fields, and a valid `traceparent` is passed on
//! unchanged: onex is then a hop that does not record.
//!
//! The spans are at ERROR level on purpose: a span's level only decides
//! whether it exists, and these must exist whenever anything is logged (a
//! `warn` line needs its envelope's fields as much as an `info` line).
//! `RUST_LOG=off`, or a filter that silences `onex_runtime`, removes them.

use onex_core::trace_context::TraceParent;
use onex_core::{Envelope, Metadata, NodeId, Operation, fields};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing::Span;
use tracing::field::{Empty, display};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Opens the `envelope` span. `node` is `None` when the envelope could not be routed.
pub(crate) fn envelope_span(runtime_id: &str, node: Option<&NodeId>, envelope: &Envelope) -> Span {
    tracing::error_span!(
        "envelope",
        { fields::RUNTIME_ID } = runtime_id,
        { fields::NODE_ID } = node.map(NodeId::as_str),
        { fields::HANDLER_TYPE } = envelope.handler_type.as_deref(),
        { fields::ENVELOPE_ID } = %envelope.envelope_id,
        { fields::CORRELATION_ID } = %envelope.correlation(),
        { fields::OPERATION } = envelope.operation.as_ref().map(Operation::as_str),
        { fields::TRACE_ID } = Empty,
        "otel.kind" = "consumer",
        "otel.status_code" = Empty,
    )
}

/// Opens the `handler.call` span, a child of the current (`envelope`) span.
pub(crate) fn handler_span(handler: &str, handler_type: &str, operation: &Operation) -> Span {
    tracing::error_span!(
        "handler.call",
        { fields::HANDLER } = handler,
        { fields::HANDLER_TYPE } = handler_type,
        { fields::OPERATION } = operation.as_str(),
        { fields::ATTEMPTS } = Empty,
        "otel.status_code" = Empty,
    )
}

/// Records how a handler call ended on its span.
pub(crate) fn record_call(span: &Span, attempts: u32, failed: bool) {
    // i64: the OpenTelemetry bridge exports u64 values as strings.
    span.record(fields::ATTEMPTS, i64::from(attempts));
    if failed {
        mark_failed(span);
    }
}

/// Marks a span as failed (OpenTelemetry status `Error`).
pub(crate) fn mark_failed(span: &Span) {
    span.record("otel.status_code", "ERROR");
}

/// An envelope's place in a trace, settled when its span opens.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TraceContext {
    /// The caller's valid `traceparent`.
    incoming: Option<TraceParent>,
    /// The `envelope` span's own context, when an OpenTelemetry layer records it.
    ours: Option<TraceParent>,
}

/// Makes `span` a child of the caller named by `metadata.traceparent`, and
/// records the trace id on it for the log lines inside. An invalid
/// `traceparent` is logged at debug and ignored: the span starts a new trace.
pub(crate) fn join_trace(span: &Span, metadata: &Metadata) -> TraceContext {
    let incoming = metadata.traceparent.as_deref().and_then(|value| match TraceParent::parse(value) {
        Ok(parent) => {
            // Fails without an OpenTelemetry layer (there is no span to parent), which is fine.
            let _ = span.set_parent(remote_parent(parent, metadata.tracestate.as_deref()));
            Some(parent)
        }
        Err(e) => {
            tracing::debug!(
                parent: span,
                traceparent = prefix(value, 64),
                reason = %e,
                "Ignoring an invalid traceparent; starting a new trace."
            );
            None
        }
    });
    // Reading the context builds the OpenTelemetry span, so this comes after `set_parent`.
    let cx = span.context();
    let own = cx.span().span_context().clone();
    let ours = own
        .is_valid()
        .then(|| TraceParent::new(own.trace_id().to_bytes(), own.span_id().to_bytes(), own.trace_flags().to_u8()).ok())
        .flatten();
    if let Some(trace) = ours.or(incoming) {
        span.record(fields::TRACE_ID, display(trace.trace_id_hex()));
    }
    TraceContext { incoming, ours }
}

fn remote_parent(parent: TraceParent, tracestate: Option<&str>) -> opentelemetry::Context {
    // An unparsable tracestate is left out of the OpenTelemetry span; the
    // envelope still carries it on as received.
    let state = tracestate.and_then(|s| s.parse::<TraceState>().ok()).unwrap_or_default();
    let span_context = SpanContext::new(
        TraceId::from_bytes(parent.trace_id()),
        SpanId::from_bytes(parent.parent_id()),
        TraceFlags::new(parent.flags()),
        true,
        state,
    );
    opentelemetry::Context::new().with_remote_span_context(span_context)
}

/// Sets the response's trace context: the `envelope` span is the parent of
/// whatever the response causes downstream.
///
/// When no OpenTelemetry layer records the span, a valid incoming
/// `traceparent` is passed on (as version 00) and an invalid one removed.
/// `tracestate` belongs to the trace it came with, so it stays only when the
/// incoming `traceparent` was valid.
pub(crate) fn propagate(trace: TraceContext, response: &mut Metadata) {
    response.traceparent = trace.ours.or(trace.incoming).map(|t| t.to_string());
    if trace.incoming.is_none() {
        response.tracestate = None;
    }
}

/// At most `max` bytes of `s`, cut at a character boundary: enough to
/// recognise a bad value in a log line without copying a huge one into it.
fn prefix(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}
