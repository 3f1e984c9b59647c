//! Circuit breaker: stop calling a dependency that keeps failing, probe it later.
//!
//! One breaker per handler binding, shared by every call of that binding
//! (the layer is built once and its [`CircuitBreakerHandle`] cloned). It sits
//! inside the retry layer, so every attempt counts and an open breaker's
//! refusal ([`HandlerError::CircuitOpen`], class rejected) ends the retries.
//!
//! What counts, as resilience4j counts it: a transient error or a timeout is
//! a failure; a call slower than `slow_call_threshold` is a failure even if it
//! succeeded; a permanent or conflict error is a success (the dependency
//! answered); a call refused below (rate limit) or cancelled does not count.
//! The state machine itself is in `state.rs`.

mod state;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use onex_core::contract::CircuitBreakerPolicy;
use onex_core::{ErrorClass, Operation};
use serde_json::Value;

use self::state::{BreakerState, Outcome, Permit};
pub use self::state::{CircuitState, Transition, TransitionCounts};
use super::layer::{HandlerLayer, StackContext};
use crate::error::HandlerError;
use crate::handler::{CallContext, Handler, HandlerDescription, HandlerHealth};
use crate::internal_events::{CircuitBreakerRejected, CircuitBreakerTransitioned};

/// The breaker shared by all calls of one binding.
#[derive(Debug)]
struct Shared {
    /// A std mutex: held for a few comparisons, never across an await.
    state: Mutex<BreakerState>,
    slow_call_threshold: Option<Duration>,
    cx: StackContext,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, BreakerState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn acquire(&self) -> Option<Permit> {
        let (now, wall) = (self.cx.clock.monotonic(), self.cx.clock.now());
        let (permit, transition) = self.lock().try_acquire(now, wall);
        if let Some(t) = transition {
            CircuitBreakerTransitioned { handler: &self.cx.handler, from: t.from, to: t.to }.emit();
        }
        if permit.is_none() {
            CircuitBreakerRejected { handler: &self.cx.handler }.emit(&self.cx.stats);
        }
        permit
    }

    fn release(&self, permit: Permit, outcome: Outcome) {
        let (now, wall) = (self.cx.clock.monotonic(), self.cx.clock.now());
        let transition = self.lock().on_outcome(permit, outcome, now, wall);
        if let Some(t) = transition {
            CircuitBreakerTransitioned { handler: &self.cx.handler, from: t.from, to: t.to }.emit();
        }
    }
}

/// Reports a call that never finished (its future was dropped) as not counting,
/// so a cancelled half-open probe gives its slot back.
struct PermitGuard<'a> {
    shared: &'a Shared,
    permit: Option<Permit>,
}

impl PermitGuard<'_> {
    fn finish(mut self, outcome: Outcome) {
        if let Some(permit) = self.permit.take() {
            self.shared.release(permit, outcome);
        }
    }
}

impl Drop for PermitGuard<'_> {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            self.shared.release(permit, Outcome::Ignored);
        }
    }
}

/// Refuses calls while the binding's dependency is failing.
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    inner: Arc<dyn Handler>,
    shared: Arc<Shared>,
}

impl CircuitBreaker {
    /// The wrapped handler.
    pub fn get_ref(&self) -> &Arc<dyn Handler> {
        &self.inner
    }

    /// A handle to read this breaker's state.
    pub fn handle(&self) -> CircuitBreakerHandle {
        CircuitBreakerHandle { shared: Arc::clone(&self.shared) }
    }
}

fn outcome_of(result: &Result<Value, HandlerError>, elapsed: Duration, slow: Option<Duration>) -> Outcome {
    let base = match result {
        Ok(_) => Outcome::Success,
        Err(e) => match e.class() {
            ErrorClass::Transient => Outcome::Failure,
            ErrorClass::Permanent | ErrorClass::Conflict => Outcome::Success,
            ErrorClass::Rejected => Outcome::Ignored,
        },
    };
    match (base, slow) {
        (Outcome::Success, Some(threshold)) if elapsed > threshold => Outcome::Failure,
        _ => base,
    }
}

#[async_trait]
impl Handler for CircuitBreaker {
    fn handler_type(&self) -> &str {
        self.inner.handler_type()
    }

    fn describe(&self) -> HandlerDescription {
        self.inner.describe()
    }

    async fn execute(&self, ctx: &CallContext, operation: &Operation, payload: &Value) -> Result<Value, HandlerError> {
        let shared = &*self.shared;
        let Some(permit) = shared.acquire() else {
            return Err(HandlerError::CircuitOpen { handler: shared.cx.handler.to_string() });
        };
        let guard = PermitGuard { shared, permit: Some(permit) };
        let started = shared.cx.clock.monotonic();
        let result = self.inner.execute(ctx, operation, payload).await;
        let elapsed = shared.cx.clock.monotonic().saturating_sub(started);
        guard.finish(outcome_of(&result, elapsed, shared.slow_call_threshold));
        result
    }

    /// The inner handler's health, reported unhealthy while the breaker is open.
    async fn health(&self) -> HandlerHealth {
        let inner = self.inner.health().await;
        match self.handle().state() {
            CircuitState::Open => {
                HandlerHealth { healthy: false, detail: format!("circuit breaker open; {}", inner.detail) }
            }
            _ => inner,
        }
    }

    async fn shutdown(&self) {
        self.inner.shutdown().await;
    }
}

/// Reads a breaker's state from outside (health, metrics). Cheap to clone.
#[derive(Debug, Clone)]
pub struct CircuitBreakerHandle {
    shared: Arc<Shared>,
}

/// A breaker's state and counters at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct CircuitBreakerSnapshot {
    /// The binding's name.
    pub handler: String,
    pub state: CircuitState,
    /// Failures in a row while closed.
    pub consecutive_failures: u32,
    /// Failure rate in percent over the calls in the window; `None` when the window is empty.
    pub failure_rate: Option<f64>,
    /// Calls in the failure-rate window (cleared at every transition).
    pub calls_in_window: usize,
    /// Calls refused since the breaker was built.
    pub rejected_calls: u64,
    /// The most recent transitions, oldest first (at most 16).
    pub transitions: Vec<Transition>,
    /// Transitions into each state since the breaker was built.
    pub transition_counts: TransitionCounts,
}

impl CircuitBreakerHandle {
    /// The current state. Note that Open becomes HalfOpen only when the next call arrives.
    pub fn state(&self) -> CircuitState {
        self.shared.lock().state()
    }

    /// Everything at once, consistently.
    pub fn snapshot(&self) -> CircuitBreakerSnapshot {
        let s = self.shared.lock();
        CircuitBreakerSnapshot {
            handler: self.shared.cx.handler.to_string(),
            state: s.state(),
            consecutive_failures: s.consecutive_failures(),
            failure_rate: s.failure_rate(),
            calls_in_window: s.calls_in_window(),
            rejected_calls: s.rejected(),
            transitions: s.transitions(),
            transition_counts: s.transition_counts(),
        }
    }
}

/// Builds the binding's breaker; every handler it wraps shares the one state.
#[derive(Debug, Clone)]
pub struct CircuitBreakerLayer {
    shared: Arc<Shared>,
}

impl CircuitBreakerLayer {
    /// A closed breaker with `policy` (its `enabled` flag is the caller's business).
    pub fn new(policy: CircuitBreakerPolicy, cx: StackContext) -> Self {
        let slow_call_threshold = policy.slow_call_threshold;
        Self { shared: Arc::new(Shared { state: Mutex::new(BreakerState::new(policy)), slow_call_threshold, cx }) }
    }

    /// A handle to read the breaker's state.
    pub fn handle(&self) -> CircuitBreakerHandle {
        CircuitBreakerHandle { shared: Arc::clone(&self.shared) }
    }

    /// The breaker around `inner`, as its concrete type.
    pub fn breaker(&self, inner: Arc<dyn Handler>) -> CircuitBreaker {
        CircuitBreaker { inner, shared: Arc::clone(&self.shared) }
    }
}

impl HandlerLayer for CircuitBreakerLayer {
    fn layer(&self, inner: Arc<dyn Handler>) -> Arc<dyn Handler> {
        Arc::new(self.breaker(inner))
    }
}
