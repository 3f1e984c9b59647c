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
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Opens the `envelope` span and joins the caller's trace (see [`TraceContext`]).
/// `node` is `None` when the envelope could not be routed.
///
/// Ids are recorded as strings encoded on the stack rather than with `%`
/// (Display): this runs for every envelope, and going through the formatting
/// machinery costs several times more. The values are only computed when
/// the span is enabled.
pub(crate) fn envelope_span(runtime_id: &str, node: Option<&NodeId>, envelope: &Envelope) -> (Span, TraceContext) {
    let traceparent = envelope.metadata.traceparent.as_deref().map(|v| (v, TraceParent::parse(v)));
    let incoming = traceparent.and_then(|(_, parsed)| parsed.ok());
    let (mut envelope_id, mut correlation_id, mut trace_id) = ([0; 36], [0; 36], [0; 32]);
    let span = tracing::error_span!(
        "envelope",
        { fields::RUNTIME_ID } = runtime_id,
        { fields::NODE_ID } = node.map(NodeId::as_str),
        { fields::HANDLER_TYPE } = envelope.handler_type.as_deref(),
        { fields::ENVELOPE_ID } = &*envelope.envelope_id.0.hyphenated().encode_lower(&mut envelope_id),
        { fields::CORRELATION_ID } = &*envelope.correlation().0.hyphenated().encode_lower(&mut correlation_id),
        { fields::OPERATION } = envelope.operation.as_ref().map(Operation::as_str),
        // With a valid caller, the trace id is the caller's (OpenTelemetry or not).
        { fields::TRACE_ID } = incoming.as_ref().map(|t| t.trace_id_hex(&mut trace_id)),
        "otel.kind" = "consumer",
        "otel.status_code" = Empty,
    );
    if let Some((value, Err(e))) = traceparent {
        tracing::debug!(
            parent: &span,
            traceparent = prefix(value, 64),
            reason = %e,
            "Ignoring an invalid traceparent; starting a new trace."
        );
    }
    let trace = join_trace(&span, incoming, envelope.metadata.tracestate.as_deref());
    (span, trace)
}

/// Opens the `handler.call` span, a child of the current (`envelope`) span.
/// `attempts` when already known (a plain handler makes exactly one), else
/// [`record_attempts`] records them.
pub(crate) fn handler_span(handler: &str, handler_type: &str, operation: &Operation, attempts: Option<u32>) -> Span {
    tracing::error_span!(
        "handler.call",
        { fields::HANDLER } = handler,
        { fields::HANDLER_TYPE } = handler_type,
        { fields::OPERATION } = operation.as_str(),
        // i64: the OpenTelemetry bridge exports u64 values as strings.
        { fields::ATTEMPTS } = attempts.map(i64::from),
        "otel.status_code" = Empty,
    )
}

/// Records the attempts of a call opened with `attempts: None`.
pub(crate) fn record_attempts(span: &Span, attempts: u32) {
    span.record(fields::ATTEMPTS, i64::from(attempts));
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

/// Makes `span` a child of the caller (`incoming`), and learns the span's
/// own trace context when an OpenTelemetry layer records it.
fn join_trace(span: &Span, incoming: Option<TraceParent>, tracestate: Option<&str>) -> TraceContext {
    if let Some(parent) = incoming {
        // Fails without an OpenTelemetry layer (there is no span to parent), which is fine.
        let _ = span.set_parent(remote_parent(parent, tracestate));
    }
    // Reading the context builds the OpenTelemetry span, so this comes after `set_parent`.
    let cx = span.context();
    let own = cx.span().span_context().clone();
    let ours = own
        .is_valid()
        .then(|| TraceParent::new(own.trace_id().to_bytes(), own.span_id().to_bytes(), own.trace_flags().to_u8()).ok())
        .flatten();
    if let (Some(ours), None) = (ours, incoming) {
        // A new trace: its id is known only now.
        span.record(fields::TRACE_ID, ours.trace_id_hex(&mut [0; 32]));
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
    use std::fmt::Write as _;
    match (trace.ours, trace.incoming) {
        (Some(next), _) => {
            // Reuses the buffer of the `traceparent` copied from the request, if any.
            let value = response.traceparent.get_or_insert_with(String::new);
            value.clear();
            let _infallible = write!(value, "{next}");
        }
        // The copied value is already the one to pass on unless it had a later version.
        (None, Some(incoming)) => {
            if !response.traceparent.as_deref().is_some_and(|v| v.len() == 55 && v.starts_with("00-")) {
                response.traceparent = Some(incoming.to_string());
            }
        }
        (None, None) => response.traceparent = None,
    }
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
