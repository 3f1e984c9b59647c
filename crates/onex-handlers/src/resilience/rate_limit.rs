//! Rate limit: a token bucket per handler binding, on the injected clock.
//!
//! The bucket is kept as GCRA (the algorithm governor uses): one number, the
//! theoretical arrival time of the next call, advanced by `1 / rate` per call
//! and allowed to run `burst - 1` intervals ahead of now. Each call reserves
//! its slot under a short lock and then waits outside it, so waiting calls
//! queue in arrival order with no queue to bound: the number of waiters is
//! bounded by the node's concurrency.
//!
//! In `wait` mode a call waits for its slot, but never past the envelope's
//! deadline and never longer than `max_wait` (the binding's timeout): a call
//! that would have to wait longer fails at once with
//! [`HandlerError::RateLimited`] and takes no slot. In `reject` mode any wait
//! is refused. governor itself reads its own clock, which the tests could
//! not drive, so this small bucket reads the injected one instead.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use onex_core::Operation;
use onex_core::contract::{RateLimitMode, RateLimitPolicy};
use serde_json::Value;

use super::layer::{HandlerLayer, StackContext};
use crate::error::HandlerError;
use crate::handler::{CallContext, Handler, HandlerDescription, HandlerHealth};
use crate::internal_events::{HandlerRateLimited, RateLimitAction};

/// GCRA state: times are monotonic clock readings.
#[derive(Debug)]
struct Bucket {
    /// Time between two tokens (`1 / per_second`).
    interval: Duration,
    /// How far ahead of now the next slot may be and still be taken without waiting.
    tolerance: Duration,
    /// Theoretical arrival time of the next call.
    next: Duration,
}

impl Bucket {
    fn new(policy: &RateLimitPolicy) -> Self {
        // A tiny rate would overflow `Duration`; such a limit admits the burst and then nothing.
        let interval = Duration::try_from_secs_f64(1.0 / policy.per_second).unwrap_or(Duration::MAX);
        Self { interval, tolerance: interval.saturating_mul(policy.burst.get() - 1), next: Duration::ZERO }
    }

    /// Takes the next slot if it is due within `max_wait` of `now`; returns the wait.
    fn reserve(&mut self, now: Duration, max_wait: Duration) -> Option<Duration> {
        let next = self.next.max(now);
        let wait = next.saturating_sub(self.tolerance).saturating_sub(now);
        if wait > max_wait {
            return None;
        }
        self.next = next.saturating_add(self.interval);
        Some(wait)
    }
}

/// Admits calls at the binding's rate.
#[derive(Debug, Clone)]
pub struct RateLimit {
    inner: Arc<dyn Handler>,
    bucket: Arc<Mutex<Bucket>>,
    mode: RateLimitMode,
    max_wait: Duration,
    cx: StackContext,
}

impl RateLimit {
    /// The wrapped handler.
    pub fn get_ref(&self) -> &Arc<dyn Handler> {
        &self.inner
    }

    /// How long this call must wait for its slot, or `None` when it is refused.
    fn admit(&self, ctx: &CallContext) -> Option<Duration> {
        let max_wait = match self.mode {
            RateLimitMode::Reject => Duration::ZERO,
            RateLimitMode::Wait => match ctx.remaining(self.cx.clock.as_ref()) {
                // Waiting until the deadline itself would leave no time for the call.
                Some(left) => self.max_wait.min(left.saturating_sub(Duration::from_nanos(1))),
                None => self.max_wait,
            },
        };
        let now = self.cx.clock.monotonic();
        self.bucket.lock().unwrap_or_else(PoisonError::into_inner).reserve(now, max_wait)
    }
}

#[async_trait]
impl Handler for RateLimit {
    fn handler_type(&self) -> &str {
        self.inner.handler_type()
    }

    fn describe(&self) -> HandlerDescription {
        self.inner.describe()
    }

    async fn execute(&self, ctx: &CallContext, operation: &Operation, payload: &Value) -> Result<Value, HandlerError> {
        match self.admit(ctx) {
            None => {
                HandlerRateLimited { handler: &self.cx.handler, action: RateLimitAction::Rejected }
                    .emit(&self.cx.stats);
                return Err(HandlerError::RateLimited { handler: self.cx.handler.to_string() });
            }
            Some(Duration::ZERO) => {}
            Some(wait) => {
                HandlerRateLimited { handler: &self.cx.handler, action: RateLimitAction::Waited(wait) }
                    .emit(&self.cx.stats);
                tokio::time::sleep(wait).await;
            }
        }
        self.inner.execute(ctx, operation, payload).await
    }

    async fn health(&self) -> HandlerHealth {
        self.inner.health().await
    }

    async fn shutdown(&self) {
        self.inner.shutdown().await;
    }
}

/// Builds the binding's rate limit; every handler it wraps shares the one bucket.
#[derive(Debug, Clone)]
pub struct RateLimitLayer {
    bucket: Arc<Mutex<Bucket>>,
    mode: RateLimitMode,
    max_wait: Duration,
    cx: StackContext,
}

impl RateLimitLayer {
    /// A full bucket for `policy`; in `wait` mode no call waits longer than `max_wait`
    /// (the stack passes the binding's `timeout_ms`).
    pub fn new(policy: RateLimitPolicy, max_wait: Duration, cx: StackContext) -> Self {
        Self { bucket: Arc::new(Mutex::new(Bucket::new(&policy))), mode: policy.mode, max_wait, cx }
    }
}

impl HandlerLayer for RateLimitLayer {
    fn layer(&self, inner: Arc<dyn Handler>) -> Arc<dyn Handler> {
        Arc::new(RateLimit {
            inner,
            bucket: Arc::clone(&self.bucket),
            mode: self.mode,
            max_wait: self.max_wait,
            cx: self.cx.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;

    fn bucket(per_second: f64, burst: u32) -> Bucket {
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        Bucket::new(&RateLimitPolicy { per_second, burst, mode: RateLimitMode::Wait })
    }

    #[test]
    fn a_full_bucket_admits_the_burst_then_one_per_interval() {
        let mut b = bucket(10.0, 3);
        let waits: Vec<_> = (0..5).map(|_| b.reserve(Duration::ZERO, Duration::MAX)).collect();
        let ms = |v: u64| Some(Duration::from_millis(v));
        assert_eq!(waits, [ms(0), ms(0), ms(0), ms(100), ms(200)]);
    }

    #[test]
    fn a_refused_call_takes_no_slot() {
        let mut b = bucket(1.0, 1);
        assert_eq!(b.reserve(Duration::ZERO, Duration::ZERO), Some(Duration::ZERO));
        assert_eq!(b.reserve(Duration::ZERO, Duration::ZERO), None);
        assert_eq!(b.reserve(Duration::from_secs(1), Duration::ZERO), Some(Duration::ZERO));
    }

    #[test]
    fn the_bucket_refills_while_idle_but_not_beyond_the_burst() {
        let mut b = bucket(2.0, 2);
        b.reserve(Duration::ZERO, Duration::MAX);
        b.reserve(Duration::ZERO, Duration::MAX);
        let later = Duration::from_secs(100);
        let waits: Vec<_> = (0..3).map(|_| b.reserve(later, Duration::MAX)).collect();
        assert_eq!(waits, [Some(Duration::ZERO), Some(Duration::ZERO), Some(Duration::from_millis(500))]);
    }

    #[test]
    fn a_tiny_rate_does_not_overflow() {
        let mut b = bucket(1e-300, 1);
        assert_eq!(b.reserve(Duration::ZERO, Duration::ZERO), Some(Duration::ZERO));
        assert_eq!(b.reserve(Duration::from_secs(1_000_000), Duration::ZERO), None);
    }
}
