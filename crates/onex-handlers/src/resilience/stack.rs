//! [`ResilientHandler`]: one binding's handler behind the whole stack, in the documented order.
//!
//! This is the one place the order is written. The runtime builds one
//! `ResilientHandler` per handler binding at wiring time, routes calls to it
//! (it is a [`Handler`] itself), and keeps its [`CircuitBreakerHandle`] and
//! [`ResilienceStats`] for health and metrics.

use std::sync::Arc;

use async_trait::async_trait;
use onex_core::contract::HandlerBinding;
use onex_core::{Clock, Operation};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::Value;

use super::circuit_breaker::{CircuitBreakerHandle, CircuitBreakerLayer};
use super::deadline::Deadline;
use super::latency::{CallRecord, CallSummary};
use super::layer::{HandlerLayer, StackContext};
use super::rate_limit::RateLimitLayer;
use super::retry::Retry;
use super::stats::ResilienceStats;
use super::timeout::TimeoutLayer;
use crate::error::HandlerError;
use crate::handler::{CallContext, Handler, HandlerDescription, HandlerHealth};

/// What a call through the stack came to, and how many attempts it took.
#[derive(Debug, Clone, PartialEq)]
pub struct CallOutcome {
    pub result: Result<Value, HandlerError>,
    /// Attempts made: 0 when the deadline had passed on arrival, else 1 + retries.
    /// The runtime writes `ctx.attempt - 1 + attempts - 1` as the response's `retry_count`
    /// and `attempts` into the DLQ record.
    pub attempts: u32,
}

/// A handler behind deadline → retry → circuit breaker → rate limit → timeout.
#[derive(Debug)]
pub struct ResilientHandler {
    /// Outermost: its inner handler is `retry`, so `Handler::execute` on it is the full stack.
    deadline: Deadline,
    retry: Arc<Retry>,
    breaker: Option<CircuitBreakerHandle>,
    cx: StackContext,
    calls: CallRecord,
}

impl ResilientHandler {
    /// Wraps `handler` as `binding` configures it; jitter is seeded from the OS.
    pub fn new(handler: Arc<dyn Handler>, binding: &HandlerBinding, clock: Arc<dyn Clock>) -> Self {
        Self::with_rng(handler, binding, clock, StdRng::from_os_rng())
    }

    /// As [`ResilientHandler::new`], with retry jitter drawn from `rng`
    /// (`StdRng::seed_from_u64(n)` makes every delay reproducible).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use onex_core::contract::{Environment, load_runtime_contract, MapSources};
    /// use onex_handlers::{CallContext, Handler, LocalHandler};
    /// use onex_handlers::resilience::{ResilientHandler, TokioClock};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sources = MapSources::new().with_file("onex.yaml", "runtime:\n  name: hello\n  event_bus:\n    kind: memory\n    config:\n      topics: {input: onex.acme.hello.cmd.v1, output: onex.acme.hello.evt.v1}\n  handlers:\n    - type: local\n      circuit_breaker: {failure_threshold: 3}\n");
    /// let contract = load_runtime_contract("onex.yaml".as_ref(), &sources)?.contract;
    /// let binding = &contract.handlers[0];
    /// let local = Arc::new(LocalHandler::new(Environment::Dev)?);
    /// let handler = ResilientHandler::new(local, binding, Arc::new(TokioClock::new()));
    /// assert_eq!(handler.handler_type(), "local");
    /// assert!(handler.circuit_breaker().is_some());
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_rng(handler: Arc<dyn Handler>, binding: &HandlerBinding, clock: Arc<dyn Clock>, rng: StdRng) -> Self {
        let cx = StackContext::new(&binding.name, clock);
        let breaker =
            binding.circuit_breaker.enabled.then(|| CircuitBreakerLayer::new(binding.circuit_breaker, cx.clone()));
        let rate_limit = binding.rate_limit.map(|policy| RateLimitLayer::new(policy, binding.timeout, cx.clone()));
        let timeout = TimeoutLayer::new(binding.timeout, cx.clone());

        // The order, outermost first; a call passes the layers in this order:
        //   1. deadline         an expired envelope fails with DEADLINE_EXCEEDED, the handler is never called
        //   2. retry            transient errors only; stops on a refusal below, the budget, or the deadline
        //   3. circuit breaker  one per binding; every attempt counts, and its refusal ends the retries
        //   4. rate limit       one bucket per binding; every attempt takes a token (refused calls do not)
        //   5. timeout          per attempt, cut to the time left before the deadline
        //   6. the handler
        // Layers 3-5 are folded onto the handler innermost first; deadline and retry are kept
        // as concrete types because the stack reports the attempt count of every call.
        let inside_retry: [Option<&dyn HandlerLayer>; 3] = [
            breaker.as_ref().map(|l| l as &dyn HandlerLayer),
            rate_limit.as_ref().map(|l| l as &dyn HandlerLayer),
            Some(&timeout),
        ];
        let chain = inside_retry.into_iter().flatten().rev().fold(handler, |inner, layer| layer.layer(inner));
        let retry = Arc::new(Retry::new(chain, binding.retry_policy, rng, cx.clone()));
        let deadline = Deadline::new(Arc::clone(&retry) as Arc<dyn Handler>, cx.clone());

        Self { deadline, retry, breaker: breaker.map(|l| l.handle()), cx, calls: CallRecord::default() }
    }

    /// Runs one call through the stack.
    ///
    /// # Cancel safety
    /// Dropping the future abandons the call (the current attempt or wait); a
    /// half-open breaker gets its probe slot back.
    pub async fn call(&self, ctx: &CallContext, operation: &Operation, payload: &Value) -> CallOutcome {
        let outcome = match self.deadline.check(ctx) {
            Err(e) => CallOutcome { result: Err(e), attempts: 0 },
            Ok(()) => {
                let started = self.cx.clock.now();
                let outcome = self.retry.call(ctx, operation, payload).await;
                self.calls.record(started.until(self.cx.clock.now()));
                outcome
            }
        };
        if let Err(e) = &outcome.result {
            self.calls.record_error(&e.code().to_string(), &e.to_string(), self.cx.clock.now().unix_millis());
        }
        outcome
    }

    /// Latency summary and last error of the calls so far (health, dashboard).
    pub fn calls(&self) -> CallSummary {
        self.calls.summary()
    }

    /// The binding's name.
    pub fn name(&self) -> &str {
        &self.cx.handler
    }

    /// The binding's circuit breaker; `None` when `circuit_breaker.enabled` is false.
    pub fn circuit_breaker(&self) -> Option<&CircuitBreakerHandle> {
        self.breaker.as_ref()
    }

    /// The binding's counters.
    pub fn stats(&self) -> &Arc<ResilienceStats> {
        &self.cx.stats
    }
}

#[async_trait]
impl Handler for ResilientHandler {
    fn handler_type(&self) -> &str {
        self.retry.handler_type()
    }

    fn describe(&self) -> HandlerDescription {
        self.retry.describe()
    }

    async fn execute(&self, ctx: &CallContext, operation: &Operation, payload: &Value) -> Result<Value, HandlerError> {
        self.call(ctx, operation, payload).await.result
    }

    async fn health(&self) -> HandlerHealth {
        self.deadline.health().await
    }

    async fn shutdown(&self) {
        self.deadline.shutdown().await;
    }
}
