//! [`TelemetryConfig`] and [`init`]: what the CLI (or an embedding program) calls once at start.

use std::io::IsTerminal as _;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{SdkTracerProvider, Tracer};
use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

use super::format::{EscapedFields, JsonFields, JsonLines};

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One JSON object per line, every span field at the top level (`onex run`).
    #[default]
    Json,
    /// Readable text for a terminal (`onex dev`).
    Human,
}

/// What [`init`] sets up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryConfig {
    /// A level or filter directive (`info`, `debug`, `onex_runtime=trace`);
    /// `RUST_LOG`, when set, wins. Invalid values fall back to `info`.
    pub log_level: String,
    pub log_format: LogFormat,
    /// The OTLP collector's base URL (`http://localhost:4318`, as
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`); spans are posted to `/v1/traces`
    /// there as HTTP/protobuf. `None`: no OpenTelemetry pipeline.
    pub otlp_endpoint: Option<String>,
    /// The `service.name` of exported spans.
    pub service_name: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_level: "info".to_owned(),
            log_format: LogFormat::Json,
            otlp_endpoint: None,
            service_name: "onex".to_owned(),
        }
    }
}

/// Why telemetry could not be set up as configured.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// A global subscriber was installed already (by an earlier `init`, or the embedding program).
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled,
}

/// The installed telemetry. Keep it alive until the program ends: dropping
/// it (or [`Telemetry::shutdown`]) flushes spans not yet exported.
#[derive(Debug)]
#[must_use = "dropping Telemetry shuts down span export"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported over OTLP.
    pub fn exports_spans(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports what is still buffered and stops the exporter. Blocks for at most
    /// the exporter's timeout; call it outside async code or from a blocking task.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(provider) = self.provider.take() {
            if let Err(e) = provider.shutdown() {
                tracing::warn!(error = %e, "Could not flush the last spans to the OTLP endpoint.");
            }
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The log filter: `RUST_LOG` when set and valid, else `log_level`, else `info`.
pub fn env_filter(log_level: &str) -> EnvFilter {
    EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(log_level))
        .unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Installs the process-wide subscriber: logs on stderr and, when
/// `otlp_endpoint` is set (and the `otlp` feature is built), span export.
///
/// An endpoint that cannot be used (a bad URL, or a build without `otlp`)
/// is logged as a warning and logging goes on without export: telemetry never
/// stops the runtime from starting.
///
/// # Errors
/// [`TelemetryError::AlreadyInstalled`] when a global subscriber exists.
pub fn init(config: TelemetryConfig) -> Result<Telemetry, TelemetryError> {
    let (provider, problem) = match config.otlp_endpoint.as_deref().filter(|e| !e.trim().is_empty()) {
        None => (None, None),
        Some(endpoint) => match tracer_provider(endpoint, &config.service_name) {
            Ok(provider) => (Some(provider), None),
            Err(problem) => (None, Some(problem)),
        },
    };
    let tracer = provider.as_ref().map(|p| p.tracer("onex"));
    // Colours only for a terminal that wants them: piped or collected logs stay plain text.
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    build(config.log_format, env_filter(&config.log_level), std::io::stderr, tracer, ansi)
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInstalled)?;
    match (&provider, problem, &config.otlp_endpoint) {
        (Some(_), _, Some(endpoint)) => tracing::info!(otlp_endpoint = %endpoint, "Exporting spans over OTLP."),
        (None, Some(problem), Some(endpoint)) => {
            tracing::warn!(otlp_endpoint = %endpoint, problem = %problem, "Not exporting spans: the OTLP endpoint cannot be used.");
        }
        _ => {}
    }
    Ok(Telemetry { provider })
}

#[cfg(feature = "otlp")]
fn tracer_provider(endpoint: &str, service_name: &str) -> Result<SdkTracerProvider, String> {
    let exporter = super::otlp::span_exporter(endpoint)?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(opentelemetry_sdk::Resource::builder().with_service_name(service_name.to_owned()).build())
        .build())
}

#[cfg(not(feature = "otlp"))]
fn tracer_provider(_endpoint: &str, _service_name: &str) -> Result<SdkTracerProvider, String> {
    Err("this build of onex has no OTLP exporter (cargo feature `otlp`)".to_owned())
}

/// The subscriber [`init`] installs, with the parts a test or an embedding
/// program wants to choose: where lines go (written without colours), and
/// which tracer, if any, records spans for OpenTelemetry.
pub fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
    tracer: Option<Tracer>,
) -> impl Subscriber + for<'a> LookupSpan<'a> + Send + Sync + 'static
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    build(format, filter, writer, tracer, false)
}

fn build<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
    tracer: Option<Tracer>,
    ansi: bool,
) -> impl Subscriber + for<'a> LookupSpan<'a> + Send + Sync + 'static
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let (json, human) = match format {
        LogFormat::Json => (
            Some(
                tracing_subscriber::fmt::layer()
                    .event_format(JsonLines)
                    .fmt_fields(JsonFields)
                    .with_ansi(false)
                    .with_writer(writer),
            ),
            None,
        ),
        LogFormat::Human => (
            None,
            Some(
                tracing_subscriber::fmt::layer()
                    .with_target(false)
                    .with_ansi(ansi)
                    .fmt_fields(EscapedFields)
                    .with_writer(writer),
            ),
        ),
    };
    // `Option<Layer>` is a layer that is absent when `None`: no OpenTelemetry
    // pipeline, not even a disabled one, without a tracer.
    // Source location and thread are where the runtime opens its spans, not
    // where the work is: noise on every span, and a string copy each.
    let otel = tracer.map(|t| tracing_opentelemetry::layer().with_tracer(t).with_location(false).with_threads(false));
    tracing_subscriber::registry().with(filter).with(json).with(human).with(otel)
}
