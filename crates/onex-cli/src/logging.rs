//! Log and trace set-up: JSON lines for `run`, human-readable for interactive
//! commands, OTLP span export when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
//! The work is `onex_runtime::telemetry`'s; this only reads the flags and the
//! standard OpenTelemetry variables.

use onex_runtime::telemetry::{self, Telemetry, TelemetryConfig};

use crate::LogFormat;

/// Installs the global subscriber. `RUST_LOG` wins over `level`. Keep the
/// result until exit: dropping it flushes the spans not yet exported.
pub fn init(level: &str, format: LogFormat, contract_otlp: Option<String>) -> Option<Telemetry> {
    let config = TelemetryConfig {
        log_level: level.to_owned(),
        log_format: match format {
            LogFormat::Json => telemetry::LogFormat::Json,
            LogFormat::Human => telemetry::LogFormat::Human,
        },
        // The standard variable wins over the contract's `runtime.observability.otlp_endpoint`.
        otlp_endpoint: env("OTEL_EXPORTER_OTLP_ENDPOINT").or(contract_otlp),
        service_name: env("OTEL_SERVICE_NAME").unwrap_or_else(|| "onex".to_owned()),
    };
    // Fails only when a subscriber is installed already, which keeps logging as it was.
    telemetry::init(config).ok()
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// `runtime.observability` of the contract `run` will host, read before logging starts.
/// A contract that does not load gives the defaults; `run` reports its problems itself.
pub fn contract_observability(path: &std::path::Path) -> onex_core::contract::ObservabilitySpec {
    onex_core::contract::load_runtime_contract(path, &onex_runtime::StdSources)
        .map(|loaded| loaded.contract.runtime.observability)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_gives_run_its_log_level_and_otlp_endpoint_and_a_broken_one_gives_defaults() {
        let dir = std::env::temp_dir().join(format!("onex-obs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.yaml");
        std::fs::write(
            &good,
            "runtime:\n  name: obs\n  observability: {log_level: \"warn,onex_bus=debug\", otlp_endpoint: \"http://127.0.0.1:4318\"}\n  event_bus:\n    kind: memory\n    config:\n      topics: {input: onex.acme.obs.cmd.v1, output: onex.acme.obs.evt.v1}\n",
        )
        .unwrap();
        let spec = contract_observability(&good);
        assert_eq!(spec.log_level.as_deref(), Some("warn,onex_bus=debug"));
        assert_eq!(spec.otlp_endpoint.as_deref(), Some("http://127.0.0.1:4318"));
        let broken = dir.join("broken.yaml");
        std::fs::write(&broken, "runtime: [").unwrap();
        assert_eq!(contract_observability(&broken), onex_core::contract::ObservabilitySpec::default());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
