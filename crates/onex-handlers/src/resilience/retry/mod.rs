//! Retry: a transient failure is tried again after a backoff, within the budget.
//!
//! Only [`ErrorClass::Transient`](onex_core::ErrorClass) errors are retried;
//! classification belongs to the error ([`HandlerError::class`]), the delays
//! to [`BackoffSchedule`], and this module only runs the loop. It stops on:
//! success; a non-retryable error (permanent, conflict, or a refusal by the
//! layers below such as an open breaker, so retries stop when the breaker
//! opens); an exhausted budget (`max_retries`); or a deadline that the next
//! delay would reach, in which case it fails with `DEADLINE_EXCEEDED` at once
//! instead of sleeping into it. The final error carries the attempt count
//! ([`HandlerError::attempts`]); [`Retry::call`] also reports it on success.
//!
//! When the failed attempt says how long to wait ([`HandlerError::retry_after`],
//! e.g. an HTTP `Retry-After`), the delay is that hint when it is longer than
//! the schedule's, capped by `max_delay` (a server must not park a call for
//! an hour) and, like every delay, checked against the deadline.
//!
//! Attempt `k` of a call is passed down with `CallContext::attempt =
//! ctx.attempt + k - 1`, so handlers and logs see attempt numbers that also
//! count redeliveries of the envelope.

mod backoff;

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use onex_core::Operation;
use onex_core::contract::RetryPolicy;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::Value;

pub use self::backoff::BackoffSchedule;
use super::layer::{HandlerLayer, StackContext};
use super::stack::CallOutcome;
use crate::error::HandlerError;
use crate::handler::{CallContext, Handler, HandlerDescription, HandlerHealth};
use crate::internal_events::{HandlerDeadlineExceeded, HandlerRetrying};

/// Retries transient failures of the inner handler.
#[derive(Debug)]
pub struct Retry {
    inner: Arc<dyn Handler>,
    max_retries: u32,
    schedule: BackoffSchedule,
    /// Drawn from only when a retry is due, so the lock is off the success path.
    /// A std mutex: never held across an await.
    rng: Mutex<StdRng>,
    cx: StackContext,
}

impl Retry {
    /// Retries `inner` per `policy`, with jitter from `rng`.
    pub fn new(inner: Arc<dyn Handler>, policy: RetryPolicy, rng: StdRng, cx: StackContext) -> Self {
        Self {
            inner,
            max_retries: policy.max_retries,
            schedule: BackoffSchedule::new(policy),
            rng: Mutex::new(rng),
            cx,
        }
    }

    /// The wrapped handler.
    pub fn get_ref(&self) -> &Arc<dyn Handler> {
        &self.inner
    }

    /// Runs the call with retries and reports how many attempts it took.
    ///
    /// # Cancel safety
    /// Dropping the future abandons the current attempt or backoff sleep; no
    /// state outside the call is left behind.
    pub async fn call(&self, ctx: &CallContext, operation: &Operation, payload: &Value) -> CallOutcome {
        let mut attempts: u32 = 1;
        loop {
            let attempt_ctx = CallContext { attempt: ctx.attempt.saturating_add(attempts - 1), ..ctx.clone() };
            let error = match self.inner.execute(&attempt_ctx, operation, payload).await {
                Ok(value) => return CallOutcome { result: Ok(value), attempts },
                Err(e) => e,
            };
            if !error.class().is_retryable() {
                let result =
                    if attempts == 1 { error } else { HandlerError::RetryStopped { attempts, cause: Box::new(error) } };
                return CallOutcome { result: Err(result), attempts };
            }
            if attempts > self.max_retries {
                return CallOutcome {
                    result: Err(HandlerError::RetriesExhausted { attempts, last: Box::new(error) }),
                    attempts,
                };
            }
            let delay = {
                let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
                self.schedule.delay(attempts, &mut *rng)
            };
            let delay = match error.retry_after() {
                Some(hint) => delay.max(hint.min(self.schedule.max_delay())),
                None => delay,
            };
            if let Some(deadline) = ctx.deadline {
                // Starting the next attempt at or after the deadline would be wasted work.
                if self.cx.clock.now().saturating_add(delay) >= deadline {
                    HandlerDeadlineExceeded { handler: &self.cx.handler, attempts }.emit(&self.cx.stats);
                    let cause = Box::new(HandlerError::DeadlineExceeded { deadline });
                    return CallOutcome { result: Err(HandlerError::RetryStopped { attempts, cause }), attempts };
                }
            }
            HandlerRetrying { handler: &self.cx.handler, attempt: attempt_ctx.attempt, delay, error: &error }
                .emit(&self.cx.stats);
            tokio::time::sleep(delay).await;
            attempts += 1;
        }
    }
}

#[async_trait]
impl Handler for Retry {
    fn handler_type(&self) -> &str {
        self.inner.handler_type()
    }

    fn describe(&self) -> HandlerDescription {
        self.inner.describe()
    }

    async fn execute(&self, ctx: &CallContext, operation: &Operation, payload: &Value) -> Result<Value, HandlerError> {
        self.call(ctx, operation, payload).await.result
    }

    async fn health(&self) -> HandlerHealth {
        self.inner.health().await
    }

    async fn shutdown(&self) {
        self.inner.shutdown().await;
    }
}

/// Builds [`Retry`]s; each gets its own random source, seeded from this layer's.
#[derive(Debug)]
pub struct RetryLayer {
    policy: RetryPolicy,
    seed: Mutex<StdRng>,
    cx: StackContext,
}

impl RetryLayer {
    /// Jitter seeded from the operating system.
    pub fn new(policy: RetryPolicy, cx: StackContext) -> Self {
        Self::with_rng(policy, StdRng::from_os_rng(), cx)
    }

    /// Jitter drawn from `rng`: tests pass `StdRng::seed_from_u64(n)` for exact delays.
    pub fn with_rng(policy: RetryPolicy, rng: StdRng, cx: StackContext) -> Self {
        Self { policy, seed: Mutex::new(rng), cx }
    }

    /// The retry layer around `inner`, as its concrete type (for [`Retry::call`]).
    pub fn retry(&self, inner: Arc<dyn Handler>) -> Retry {
        let rng = {
            let mut seed = self.seed.lock().unwrap_or_else(PoisonError::into_inner);
            StdRng::from_rng(&mut *seed)
        };
        Retry::new(inner, self.policy, rng, self.cx.clone())
    }
}

impl HandlerLayer for RetryLayer {
    fn layer(&self, inner: Arc<dyn Handler>) -> Arc<dyn Handler> {
        Arc::new(self.retry(inner))
    }
}
