//! Log and trace set-up: JSON lines for `run`, human-readable for interactive
//! commands, OTLP span export when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
//! The work is `onex_runtime::telemetry`'s; this only reads the flags and the
//! standard OpenTelemetry variables.

use onex_runtime::telemetry::{self, Telemetry, TelemetryConfig};

use crate::LogFormat;

/// Installs the global subscriber. `RUST_LOG` wins over `level`. Keep the
/// result until exit: dropping it flushes the spans not yet exported.
pub fn init(level: &str, format: LogFormat) -> Option<Telemetry> {
    let config = TelemetryConfig {
        log_level: level.to_owned(),
        log_format: match format {
            LogFormat::Json => telemetry::LogFormat::Json,
            LogFormat::Human => telemetry::LogFormat::Human,
        },
        otlp_endpoint: env("OTEL_EXPORTER_OTLP_ENDPOINT"),
        service_name: env("OTEL_SERVICE_NAME").unwrap_or_else(|| "onex".to_owned()),
    };
    // Fails only when a subscriber is installed already, which keeps logging as it was.
    telemetry::init(config).ok()
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}
