//! Helpers of the integration tests: local test servers on 127.0.0.1:0 and call contexts.
//!
//! Every server runs as a task of the test's own runtime and is aborted when
//! its [`TestServer`] is dropped, so tests share nothing.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    dead_code,
    reason = "test helpers: a failed set-up must fail the test loudly; each test binary uses a subset"
)]

pub mod consul_server;

use std::net::SocketAddr;

use axum::Router;
use onex_core::{CorrelationId, EnvelopeId, Operation};
use onex_handlers::CallContext;
use serde_json::{Map, Value};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// An axum app served on a loopback port for the life of this value.
pub struct TestServer {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl TestServer {
    pub async fn start(app: Router) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let addr = listener.local_addr().expect("the bound address");
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("the test server runs");
        });
        Self { addr, task }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A loopback address nothing listens on (bound, then released).
pub async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}/")
}

pub fn ctx() -> CallContext {
    CallContext {
        envelope_id: EnvelopeId(Uuid::from_u128(1)),
        correlation_id: CorrelationId(Uuid::from_u128(2)),
        attempt: 1,
        deadline: None,
    }
}

pub fn op(name: &str) -> Operation {
    Operation::from(name)
}

pub fn map(v: Value) -> Map<String, Value> {
    v.as_object().cloned().expect("a JSON object")
}
