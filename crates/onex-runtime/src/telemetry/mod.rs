//! Logs and traces: the process-wide `tracing` subscriber, the spans the
//! runtime opens per envelope, and OpenTelemetry export.
//!
//! [`init`] installs one subscriber: an [`EnvFilter`] (`RUST_LOG` wins over
//! the configured level), a log layer (JSON lines or human text on stderr),
//! and, only when an OTLP endpoint is configured, an OpenTelemetry layer that
//! exports the `envelope` and `handler.call` spans. Without an endpoint no
//! OpenTelemetry pipeline exists at all, so spans cost only what logging
//! them costs.

mod config;
mod context;
mod format;
#[cfg(feature = "otlp")]
mod otlp;
#[cfg(test)]
mod tests;

pub use config::{LogFormat, Telemetry, TelemetryConfig, TelemetryError, env_filter, init, subscriber};
pub use format::{EscapedFields, JsonFields, JsonLines};

pub(crate) use context::{TraceContext, envelope_span, handler_span, mark_failed, propagate, record_attempts};
