//! Deadline: an envelope whose deadline has passed is failed without calling the handler.
//!
//! The deadline travels as an absolute wall-clock instant (`metadata.deadline`
//! → [`CallContext::deadline`]), so the remaining budget passes down every
//! layer and every hop unchanged: each layer below computes what is left with
//! [`CallContext::remaining`]. This layer only refuses work that is already
//! too late; the layers below keep within the budget (the retry layer does
//! not sleep past it, the rate limit does not wait past it, the timeout of an
//! attempt is cut to it).

use std::sync::Arc;

use async_trait::async_trait;
use onex_core::Operation;
use serde_json::Value;

use super::layer::{HandlerLayer, StackContext};
use crate::error::HandlerError;
use crate::handler::{CallContext, Handler, HandlerDescription, HandlerHealth};
use crate::internal_events::HandlerDeadlineExceeded;

/// Fails calls whose deadline has passed; passes the rest through unchanged.
#[derive(Debug, Clone)]
pub struct Deadline {
    inner: Arc<dyn Handler>,
    cx: StackContext,
}

impl Deadline {
    /// Guards `inner`.
    pub fn new(inner: Arc<dyn Handler>, cx: StackContext) -> Self {
        Self { inner, cx }
    }

    /// `Ok` when the call may proceed.
    ///
    /// # Errors
    /// [`HandlerError::DeadlineExceeded`] when `ctx.deadline` is now or in the past.
    pub fn check(&self, ctx: &CallContext) -> Result<(), HandlerError> {
        match ctx.deadline {
            Some(deadline) if self.cx.clock.now() >= deadline => {
                HandlerDeadlineExceeded { handler: &self.cx.handler, attempts: 0 }.emit(&self.cx.stats);
                Err(HandlerError::DeadlineExceeded { deadline })
            }
            _ => Ok(()),
        }
    }

    /// The wrapped handler.
    pub fn get_ref(&self) -> &Arc<dyn Handler> {
        &self.inner
    }
}

#[async_trait]
impl Handler for Deadline {
    fn handler_type(&self) -> &str {
        self.inner.handler_type()
    }

    fn describe(&self) -> HandlerDescription {
        self.inner.describe()
    }

    async fn execute(&self, ctx: &CallContext, operation: &Operation, payload: &Value) -> Result<Value, HandlerError> {
        self.check(ctx)?;
        self.inner.execute(ctx, operation, payload).await
    }

    async fn health(&self) -> HandlerHealth {
        self.inner.health().await
    }

    async fn shutdown(&self) {
        self.inner.shutdown().await;
    }
}

/// Builds [`Deadline`]s.
#[derive(Debug, Clone)]
pub struct DeadlineLayer {
    cx: StackContext,
}

impl DeadlineLayer {
    pub fn new(cx: StackContext) -> Self {
        Self { cx }
    }
}

impl HandlerLayer for DeadlineLayer {
    fn layer(&self, inner: Arc<dyn Handler>) -> Arc<dyn Handler> {
        Arc::new(Deadline::new(inner, self.cx.clone()))
    }
}
