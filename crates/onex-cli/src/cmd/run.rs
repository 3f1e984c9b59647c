//! `onex run`: host a contract until SIGTERM / Ctrl-C.

use std::path::Path;
use std::process::ExitCode;

use onex_runtime::RuntimeHost;
use tracing::{error, info};

use crate::contract;

pub async fn run(path: &Path) -> ExitCode {
    let Some(loaded) = contract::load(path) else { return ExitCode::FAILURE };
    let host = match RuntimeHost::builder().contract(loaded.contract).build() {
        Ok(host) => host,
        Err(e) => {
            error!(error = %e, "Cannot start the runtime host.");
            return ExitCode::FAILURE;
        }
    };
    let running = match host.start().await {
        Ok(r) => r,
        Err(e) => {
            error!(error = %e, "Cannot start the runtime host.");
            return ExitCode::FAILURE;
        }
    };
    let signal = shutdown_signal().await;
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

/// Waits for Ctrl-C or SIGTERM and names which one arrived.
pub async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            return tokio::select! {
                _ = tokio::signal::ctrl_c() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    "SIGINT"
}
