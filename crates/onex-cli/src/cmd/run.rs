//! `onex run`: host a contract until SIGTERM / Ctrl-C.

use std::path::Path;
use std::process::ExitCode;

use onex_runtime::RuntimeHost;
use tracing::{error, info};

use crate::contract;

pub async fn run(path: &Path) -> ExitCode {
    let Some(loaded) = contract::load(path) else { return ExitCode::FAILURE };
    let admin_spec = match admin_overrides(loaded.contract.runtime.admin.clone(), &|k| std::env::var(k).ok()) {
        Ok(spec) => spec,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let host = match RuntimeHost::builder().contract(loaded.contract).build().await {
        Ok(host) => host,
        Err(e) => {
            error!(error = %e, "Cannot start the runtime host.");
            contract::report_host_error(&e);
            return ExitCode::FAILURE;
        }
    };
    // Probes answer from before the first envelope: /health/startup is 503 until consuming.
    let admin = if admin_spec.enabled {
        match host.serve_admin(&admin_spec).await {
            Ok(server) => Some(server),
            Err(e) => {
                error!(error = %e, "Cannot start the admin server.");
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    // Listen before starting: a SIGTERM that arrives right after start must
    // trigger a graceful shutdown, not the default kill.
    let signal = shutdown_signal();
    let running = match host.start().await {
        Ok(r) => r,
        Err(e) => {
            error!(error = %e, "Cannot start the runtime host.");
            contract::report_host_error(&e);
            return ExitCode::FAILURE;
        }
    };
    let signal = signal.await;
    info!(signal, "Shutting down.");
    // Readiness turns 503 at once; the admin server stays up until the host has drained.
    let report = running.shutdown().await;
    if let Some(admin) = admin {
        admin.stop().await;
    }
    info!(
        received = report.stats.received,
        succeeded = report.stats.succeeded,
        failed = report.stats.failed,
        dead_lettered = report.stats.dead_lettered,
        "Runtime host stopped."
    );
    if report.drained {
        ExitCode::SUCCESS
    } else {
        error!("Envelopes were still in flight when the grace period ended; exiting with status 1.");
        ExitCode::FAILURE
    }
}

/// Installs the SIGINT (Ctrl-C) and SIGTERM handlers now; the returned future
/// resolves with the name of the first signal that arrives.
pub fn shutdown_signal() -> impl std::future::Future<Output = &'static str> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        // `signal()` registers at once (unlike `ctrl_c()`, which registers when first polled).
        let int = signal(SignalKind::interrupt());
        let term = signal(SignalKind::terminate());
        async move {
            match (int, term) {
                (Ok(mut int), Ok(mut term)) => tokio::select! {
                    _ = int.recv() => "SIGINT",
                    _ = term.recv() => "SIGTERM",
                },
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                    "SIGINT"
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}

/// `ONEX_ADMIN_ADDRESS`, `ONEX_ADMIN_PORT` and `ONEX_ADMIN_TOKEN` override `runtime.admin`
/// (a token belongs in the environment or a secret store rather than in the contract).
fn admin_overrides(
    mut spec: onex_core::contract::AdminSpec,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<onex_core::contract::AdminSpec, String> {
    if let Some(a) = env("ONEX_ADMIN_ADDRESS") {
        spec.address = a
            .parse()
            .map_err(|_| format!("ONEX_ADMIN_ADDRESS `{a}` is not an IP address; use e.g. 127.0.0.1 or 0.0.0.0"))?;
    }
    if let Some(p) = env("ONEX_ADMIN_PORT") {
        spec.port =
            p.parse().map_err(|_| format!("ONEX_ADMIN_PORT `{p}` is not a port (0-65535; 0 picks a free one)"))?;
    }
    if let Some(t) = env("ONEX_ADMIN_TOKEN").filter(|t| !t.is_empty()) {
        spec.token = Some(t);
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_environment_overrides_win_and_bad_values_are_explained() {
        let env = |k: &str| match k {
            "ONEX_ADMIN_PORT" => Some("0".to_owned()),
            "ONEX_ADMIN_TOKEN" => Some("t0k3n".to_owned()),
            _ => None,
        };
        let spec = admin_overrides(onex_core::contract::AdminSpec::default(), &env).unwrap();
        assert_eq!((spec.port, spec.token.as_deref()), (0, Some("t0k3n")));
        let bad = |k: &str| (k == "ONEX_ADMIN_PORT").then(|| "http".to_owned());
        let err = admin_overrides(onex_core::contract::AdminSpec::default(), &bad).unwrap_err();
        assert!(err.contains("ONEX_ADMIN_PORT `http` is not a port"), "{err}");
    }
}
