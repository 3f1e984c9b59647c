//! `onex run`: host a contract until SIGTERM / Ctrl-C.

use std::path::Path;
use std::process::ExitCode;

use onex_runtime::RuntimeHost;
use tracing::{error, info};

use crate::contract;

pub async fn run(path: &Path) -> ExitCode {
    let Some(loaded) = contract::load(path) else { return ExitCode::FAILURE };
    let host = match RuntimeHost::builder().contract(loaded.contract).build().await {
        Ok(host) => host,
        Err(e) => {
            error!(error = %e, "Cannot start the runtime host.");
            contract::report_host_error(&e);
            return ExitCode::FAILURE;
        }
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
    let report = running.shutdown().await;
    info!(
        received = report.stats.received,
        succeeded = report.stats.succeeded,
        failed = report.stats.failed,
        dead_lettered = report.stats.dead_lettered,
        "Runtime host stopped."
    );
    if report.drained { ExitCode::SUCCESS } else { ExitCode::FAILURE }
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
