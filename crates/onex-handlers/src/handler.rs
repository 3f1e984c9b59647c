//! The `Handler` trait.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use onex_core::{Clock, CorrelationId, EnvelopeId, Operation, Timestamp};
use serde::Serialize;
use serde_json::Value;

use crate::error::HandlerError;

/// What a handler learns about the envelope it serves, besides the payload.
#[derive(Debug, Clone)]
pub struct CallContext {
    pub envelope_id: EnvelopeId,
    pub correlation_id: CorrelationId,
    /// The attempt number, starting at 1.
    pub attempt: u32,
    /// After this instant the result is useless; handlers pass it to the systems they call.
    pub deadline: Option<Timestamp>,
}

impl CallContext {
    /// The budget left before the deadline: `None` without a deadline, zero once it has passed.
    /// This is what a handler passes on when it calls another node (the next hop's deadline
    /// is the same instant, so the budget shrinks by the time already spent).
    pub fn remaining(&self, clock: &dyn Clock) -> Option<Duration> {
        self.deadline.map(|d| clock.now().until(d))
    }
}

/// One operation a handler supports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OperationInfo {
    pub name: String,
    pub description: String,
}

/// What `describe()` returns: the handler type and its operations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HandlerDescription {
    pub handler_type: String,
    pub operations: Vec<OperationInfo>,
}

impl HandlerDescription {
    /// A description from `(operation, description)` pairs, e.g. a handler's `OPERATIONS` table.
    pub fn new<'a>(handler_type: &str, operations: impl IntoIterator<Item = &'a (&'a str, &'a str)>) -> Self {
        Self {
            handler_type: handler_type.to_owned(),
            operations: operations
                .into_iter()
                .map(|(name, description)| OperationInfo {
                    name: (*name).to_owned(),
                    description: (*description).to_owned(),
                })
                .collect(),
        }
    }

    /// Whether `operation` is one of the described operations.
    pub fn supports(&self, operation: &str) -> bool {
        self.operations.iter().any(|o| o.name == operation)
    }
}

/// Health of one handler, from a real connectivity check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HandlerHealth {
    pub healthy: bool,
    pub detail: String,
}

/// Executes operations for EFFECT nodes.
///
/// Implementors keep this contract:
/// - `execute` may be called concurrently from many tasks; it must not hold
///   locks across calls to external systems for longer than the call.
/// - Errors are classified ([`HandlerError::class`]): transient only when the
///   same call might succeed later. The resilience layers retry on that alone.
/// - No secret ever appears in an error message or a log line.
/// - `shutdown` is called exactly once, after the last `execute` has returned;
///   it releases pools and connections.
#[async_trait]
pub trait Handler: Send + Sync + fmt::Debug {
    /// The handler type, e.g. `local`, `http`.
    fn handler_type(&self) -> &str;

    /// The operations this handler supports.
    fn describe(&self) -> HandlerDescription;

    /// Runs one operation on a payload and returns the result payload.
    ///
    /// # Errors
    /// [`HandlerError::UnsupportedOperation`] for an operation not in `describe()`,
    /// [`HandlerError::Failed`] with a class otherwise.
    ///
    /// # Cancel safety
    /// Dropping the future abandons the call; the external system may or may not have seen it.
    async fn execute(&self, ctx: &CallContext, operation: &Operation, payload: &Value) -> Result<Value, HandlerError>;

    /// Checks connectivity.
    async fn health(&self) -> HandlerHealth;

    /// Releases resources. Called exactly once.
    async fn shutdown(&self);
}
