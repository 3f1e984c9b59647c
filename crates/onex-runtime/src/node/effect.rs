//! EFFECT nodes: route each operation to a handler.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use onex_core::{Envelope, ErrorCode, Operation, RuntimeError};
use onex_handlers::{CallContext, Handler};
use serde_json::Value;

use super::Node;

/// Where an operation goes.
#[derive(Debug, Clone)]
enum Target {
    Handler(Arc<dyn Handler>),
    /// A Python class that needs an external worker.
    Worker {
        class: String,
        module: String,
    },
}

/// An EFFECT node: a table from operation to handler.
#[derive(Debug)]
pub struct EffectNode {
    routes: HashMap<Operation, Target>,
}

/// Builds an [`EffectNode`].
#[derive(Debug, Default)]
pub struct EffectNodeBuilder {
    routes: HashMap<Operation, Target>,
}

impl EffectNodeBuilder {
    /// Routes `operation` to `handler`.
    #[must_use]
    pub fn route(mut self, operation: impl Into<Operation>, handler: Arc<dyn Handler>) -> Self {
        self.routes.insert(operation.into(), Target::Handler(handler));
        self
    }

    /// Marks `operation` as implemented by a Python class (answered with `WORKER_REQUIRED`).
    #[must_use]
    pub fn worker_route(mut self, operation: impl Into<Operation>, class: String, module: String) -> Self {
        self.routes.insert(operation.into(), Target::Worker { class, module });
        self
    }

    pub fn build(self) -> EffectNode {
        EffectNode { routes: self.routes }
    }
}

impl EffectNode {
    pub fn builder() -> EffectNodeBuilder {
        EffectNodeBuilder::default()
    }

    fn not_found(&self, operation: Option<&Operation>) -> RuntimeError {
        let mut available: Vec<String> = self
            .routes
            .iter()
            .map(|(op, t)| match t {
                Target::Handler(h) => format!("{op} → {}", h.handler_type()),
                Target::Worker { class, .. } => format!("{op} → {class} (needs a worker)"),
            })
            .collect();
        available.sort();
        let what = match operation {
            Some(op) => format!("no handler for operation `{op}`"),
            None => "the envelope has no `operation`".to_owned(),
        };
        RuntimeError::new(ErrorCode::HandlerNotFound, format!("{what}; available handlers: {}", available.join(", ")))
    }
}

#[async_trait]
impl Node for EffectNode {
    fn operations(&self) -> Vec<Operation> {
        self.routes.keys().cloned().collect()
    }

    async fn process(&self, envelope: &Envelope) -> Result<Value, RuntimeError> {
        let operation = envelope.operation.as_ref().ok_or_else(|| self.not_found(None))?;
        match self.routes.get(operation) {
            Some(Target::Handler(handler)) => {
                let ctx = CallContext {
                    envelope_id: envelope.envelope_id,
                    correlation_id: envelope.correlation(),
                    attempt: envelope.metadata.retry_count.saturating_add(1),
                    deadline: envelope.metadata.deadline,
                };
                handler.execute(&ctx, operation, &envelope.payload).await.map_err(|e| {
                    e.to_runtime_error(handler.handler_type(), operation.as_str())
                        .with_correlation_id(envelope.correlation().0)
                })
            }
            Some(Target::Worker { class, module }) => Err(RuntimeError::new(
                ErrorCode::WorkerRequired,
                format!("operation `{operation}` is implemented by the Python class `{module}.{class}`, which onex cannot run; route it to a native handler type or run a worker"),
            )
            .with_operation(operation.as_str())),
            None => Err(self.not_found(Some(operation))),
        }
    }
}
