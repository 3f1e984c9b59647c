//! Timeout: one attempt may take at most `timeout_ms`, and never past the deadline.
//!
//! The innermost layer, so it times each attempt separately (the retry layer
//! above decides whether a timed-out attempt is tried again: a timeout is
//! transient). The limit is the binding's timeout or the time left before the
//! envelope's deadline, whichever is shorter, so a retried call cannot
//! overrun the deadline by a whole attempt. The handler's future is dropped
//! on expiry (see the cancel-safety note of [`Handler::execute`]).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use onex_core::Operation;
use serde_json::Value;

use super::layer::{HandlerLayer, StackContext};
use crate::error::HandlerError;
use crate::handler::{CallContext, Handler, HandlerDescription, HandlerHealth};
use crate::internal_events::HandlerCallTimedOut;

/// Abandons an attempt that runs longer than its limit.
#[derive(Debug, Clone)]
pub struct Timeout {
    inner: Arc<dyn Handler>,
    timeout: Duration,
    cx: StackContext,
}

impl Timeout {
    /// Limits each call of `inner` to `timeout`.
    pub fn new(inner: Arc<dyn Handler>, timeout: Duration, cx: StackContext) -> Self {
        Self { inner, timeout, cx }
    }

    /// The wrapped handler.
    pub fn get_ref(&self) -> &Arc<dyn Handler> {
        &self.inner
    }
}

#[async_trait]
impl Handler for Timeout {
    fn handler_type(&self) -> &str {
        self.inner.handler_type()
    }

    fn describe(&self) -> HandlerDescription {
        self.inner.describe()
    }

    async fn execute(&self, ctx: &CallContext, operation: &Operation, payload: &Value) -> Result<Value, HandlerError> {
        let limit = ctx.remaining(self.cx.clock.as_ref()).map_or(self.timeout, |left| left.min(self.timeout));
        match tokio::time::timeout(limit, self.inner.execute(ctx, operation, payload)).await {
            Ok(result) => result,
            Err(_elapsed) => {
                HandlerCallTimedOut { handler: &self.cx.handler, after: limit }.emit(&self.cx.stats);
                Err(HandlerError::Timeout { after: limit })
            }
        }
    }

    async fn health(&self) -> HandlerHealth {
        self.inner.health().await
    }

    async fn shutdown(&self) {
        self.inner.shutdown().await;
    }
}

/// Builds [`Timeout`]s.
#[derive(Debug, Clone)]
pub struct TimeoutLayer {
    timeout: Duration,
    cx: StackContext,
}

impl TimeoutLayer {
    /// Per-attempt limit `timeout` (a binding's `timeout_ms`).
    pub fn new(timeout: Duration, cx: StackContext) -> Self {
        Self { timeout, cx }
    }
}

impl HandlerLayer for TimeoutLayer {
    fn layer(&self, inner: Arc<dyn Handler>) -> Arc<dyn Handler> {
        Arc::new(Timeout::new(inner, self.timeout, self.cx.clone()))
    }
}
