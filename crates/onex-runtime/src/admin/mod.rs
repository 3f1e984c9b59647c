//! The admin HTTP server: probes, metrics, the status API and the dashboard.
//!
//! | path | auth | what |
//! |---|---|---|
//! | `/health/live` | no | 200 while the process runs |
//! | `/health/startup` | no | 503 until the host consumes, then 200 |
//! | `/health/ready` | no | 200 when consuming, the bus is ready and every handler is healthy; 503 otherwise (also while draining) |
//! | `/health/handlers` | no | every handler: health, breaker state, last error, latency |
//! | `/metrics` | token | Prometheus text format |
//! | `/api/status` | token | [`RuntimeStatus`](crate::RuntimeStatus) as JSON |
//! | `/` | no | the dashboard page (it holds no data; it reads `/api/status`) |
//!
//! "token" means: when `runtime.admin.token` is set, a request needs
//! `Authorization: Bearer <token>` (RFC 6750), compared in constant time.

mod auth;
mod routes;

use std::net::SocketAddr;
use std::sync::Arc;

use onex_core::contract::AdminSpec;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::host::{HostError, Shared};

/// A running admin server. Stop it with [`AdminServer::stop`] after the host's shutdown.
#[derive(Debug)]
pub struct AdminServer {
    addr: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl AdminServer {
    /// Binds `spec.address:spec.port` and serves.
    pub(crate) async fn start(spec: &AdminSpec, shared: Arc<Shared>) -> Result<Self, HostError> {
        let listener = tokio::net::TcpListener::bind((spec.address, spec.port)).await.map_err(|e| {
            HostError::Wiring(format!(
                "the admin server cannot listen on {}:{} ({e}); set another `runtime.admin.port` (0 picks a free one), \
                 or `runtime.admin.enabled: false`",
                spec.address, spec.port
            ))
        })?;
        let addr = listener.local_addr().map_err(|e| HostError::Wiring(format!("admin server address: {e}")))?;
        let token = spec.token.as_deref().map(auth::Token::new);
        match &token {
            Some(t) => info!(%addr, token_sha256 = %t.fingerprint(), "Admin server listening (bearer token required)."),
            None => info!(%addr, "Admin server listening."),
        }
        let app = routes::router(shared, token);
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move { stopped.cancelled().await });
            if let Err(e) = serve.await {
                error!(error = %e, "Admin server failed.");
            }
        });
        Ok(Self { addr, stop, task })
    }

    /// Where it listens (the real port when the contract said 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and finishes open requests.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}
