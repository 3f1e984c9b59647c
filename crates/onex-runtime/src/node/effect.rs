//! EFFECT nodes: route each operation to a handler.
//!
//! Handlers bound in the contract are called through their resilience stack
//! (deadline → retry → circuit breaker → rate limit → timeout, see
//! `onex_handlers::resilience`); the node reports the attempts the stack
//! made and whether the binding's `dead_letter_on` wants the failure in the
//! DLQ. Handlers registered only in code have no binding and are called
//! directly.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use onex_core::contract::DeadLetterPolicy;
use onex_core::{Clock, Envelope, ErrorCode, Operation, RuntimeError};
use onex_handlers::{CallContext, Handler, HandlerError, ResilientHandler, TokioClock};
use serde_json::Value;
use tracing::Instrument;

use super::{Node, NodeOutcome};
use crate::metrics::CallMetrics;
use crate::telemetry;

/// Where an operation goes.
#[derive(Debug, Clone)]
enum Target {
    /// A handler registered in code without a contract binding: called directly.
    Plain(Arc<dyn Handler>),
    /// A contract binding: called through its resilience stack.
    Resilient { handler: Arc<ResilientHandler>, dead_letter_on: DeadLetterPolicy },
    /// A Python class that needs an external worker.
    Worker { class: String, module: String },
}

impl Target {
    fn handler_type(&self) -> Option<&str> {
        match self {
            Self::Plain(h) => Some(h.handler_type()),
            Self::Resilient { handler, .. } => Some(handler.handler_type()),
            Self::Worker { .. } => None,
        }
    }

    /// The `handler` metric label: the binding's name; a handler routed in code knows only its type.
    fn handler_name(&self) -> Option<&str> {
        match self {
            Self::Resilient { handler, .. } => Some(handler.name()),
            other => other.handler_type(),
        }
    }
}

/// A route and the handles that count and time its handler calls (none for worker routes).
#[derive(Debug)]
struct Route {
    target: Target,
    calls: Option<CallMetrics>,
}

/// An EFFECT node: a table from operation to handler.
#[derive(Debug)]
pub struct EffectNode {
    routes: HashMap<Operation, Route>,
}

/// Builds an [`EffectNode`].
#[derive(Debug, Default)]
pub struct EffectNodeBuilder {
    routes: HashMap<Operation, Target>,
    clock: Option<Arc<dyn Clock>>,
}

impl EffectNodeBuilder {
    /// Routes `operation` to `handler`, called directly (no resilience stack).
    #[must_use]
    pub fn route(mut self, operation: impl Into<Operation>, handler: Arc<dyn Handler>) -> Self {
        self.routes.insert(operation.into(), Target::Plain(handler));
        self
    }

    /// Routes `operation` through a handler's resilience stack; failures that
    /// `dead_letter_on` covers are also dead-lettered.
    #[must_use]
    pub fn route_resilient(
        mut self,
        operation: impl Into<Operation>,
        handler: Arc<ResilientHandler>,
        dead_letter_on: DeadLetterPolicy,
    ) -> Self {
        self.routes.insert(operation.into(), Target::Resilient { handler, dead_letter_on });
        self
    }

    /// Marks `operation` as implemented by a Python class (answered with `WORKER_REQUIRED`).
    #[must_use]
    pub fn worker_route(mut self, operation: impl Into<Operation>, class: String, module: String) -> Self {
        self.routes.insert(operation.into(), Target::Worker { class, module });
        self
    }

    /// Times handler calls (`onex_handler_call_duration_seconds`) on `clock`; default: tokio's clock.
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    pub fn build(self) -> EffectNode {
        // Metric handles are resolved here, once per route, so a call only bumps atomics.
        let clock = self.clock.unwrap_or_else(|| Arc::new(TokioClock::new()));
        let routes = self
            .routes
            .into_iter()
            .map(|(op, target)| {
                let calls = target
                    .handler_name()
                    .zip(target.handler_type())
                    .map(|(name, ty)| CallMetrics::new(name, ty, &op, Arc::clone(&clock)));
                (op, Route { target, calls })
            })
            .collect();
        EffectNode { routes }
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
            .map(|(op, r)| match &r.target {
                Target::Worker { class, .. } => format!("{op} → {class} (needs a worker)"),
                other => format!("{op} → {}", other.handler_type().unwrap_or("?")),
            })
            .collect();
        available.sort();
        let what = match operation {
            Some(op) => format!("no handler for operation `{op}`"),
            None => "the envelope has no `operation`".to_owned(),
        };
        RuntimeError::new(ErrorCode::HandlerNotFound, format!("{what}; available handlers: {}", available.join(", ")))
            .with_attempts(0)
    }
}

fn context(envelope: &Envelope) -> CallContext {
    CallContext {
        envelope_id: envelope.envelope_id,
        correlation_id: envelope.correlation(),
        attempt: envelope.metadata.retry_count.saturating_add(1),
        deadline: envelope.metadata.deadline,
    }
}

fn runtime_error(e: &HandlerError, handler_type: &str, operation: &Operation, envelope: &Envelope) -> RuntimeError {
    e.to_runtime_error(handler_type, operation.as_str()).with_correlation_id(envelope.correlation().0)
}

#[async_trait]
impl Node for EffectNode {
    fn operations(&self) -> Vec<Operation> {
        self.routes.keys().cloned().collect()
    }

    async fn process(&self, envelope: &Envelope) -> Result<Value, RuntimeError> {
        self.run(envelope).await.result
    }

    async fn run(&self, envelope: &Envelope) -> NodeOutcome {
        let refused = |error: RuntimeError| NodeOutcome { result: Err(error), attempts: 0, dead_letter: false };
        let Some(operation) = envelope.operation.as_ref() else { return refused(self.not_found(None)) };
        let Some(route) = self.routes.get(operation) else { return refused(self.not_found(Some(operation))) };
        let timer = route.calls.as_ref().map(CallMetrics::start);
        let outcome = match &route.target {
            Target::Plain(handler) => {
                // A handler registered in code has no binding name; its type names it.
                let span = telemetry::handler_span(handler.handler_type(), handler.handler_type(), operation, Some(1));
                let result = handler
                    .execute(&context(envelope), operation, &envelope.payload)
                    .instrument(span.clone())
                    .await
                    .map_err(|e| runtime_error(&e, handler.handler_type(), operation, envelope));
                if result.is_err() {
                    telemetry::mark_failed(&span);
                }
                NodeOutcome { result, attempts: 1, dead_letter: false }
            }
            Target::Resilient { handler, dead_letter_on } => {
                let span = telemetry::handler_span(handler.name(), handler.handler_type(), operation, None);
                let outcome =
                    handler.call(&context(envelope), operation, &envelope.payload).instrument(span.clone()).await;
                telemetry::record_attempts(&span, outcome.attempts);
                if outcome.result.is_err() {
                    telemetry::mark_failed(&span);
                }
                match outcome.result {
                    Ok(payload) => NodeOutcome { result: Ok(payload), attempts: outcome.attempts, dead_letter: false },
                    Err(e) => NodeOutcome {
                        dead_letter: dead_letter_on.applies_to(e.dead_letter_cause()),
                        result: Err(runtime_error(&e, handler.handler_type(), operation, envelope)
                            .with_attempts(outcome.attempts)),
                        attempts: outcome.attempts,
                    },
                }
            }
            Target::Worker { class, module } => refused(
                RuntimeError::new(
                    ErrorCode::WorkerRequired,
                    format!(
                        "operation `{operation}` is implemented by the Python class `{module}.{class}`, which onex \
                         cannot run; route it to a native handler type or run a worker"
                    ),
                )
                .with_operation(operation.as_str()),
            ),
        };
        if let Some(timer) = timer {
            timer.finish(outcome.result.is_ok());
        }
        outcome
    }
}
