//! Things that happen in the handler stack, each logged and counted in one place.
//!
//! Call sites build an event and `emit()` it; the event writes the log line
//! and bumps the binding's counter together, so the two never disagree
//! (vector's `internal_events`). Per-envelope events log at DEBUG; a breaker
//! opening is a WARN (the dependency is failing), closing again an INFO.

use std::time::Duration;

use crate::error::HandlerError;
use crate::resilience::{CircuitState, ResilienceStats};

/// A transient failure is about to be retried after `delay`.
#[derive(Debug)]
pub(crate) struct HandlerRetrying<'a> {
    pub handler: &'a str,
    /// The attempt that failed, from 1.
    pub attempt: u32,
    pub delay: Duration,
    pub error: &'a HandlerError,
}

impl HandlerRetrying<'_> {
    pub(crate) fn emit(self, stats: &ResilienceStats) {
        tracing::debug!(
            handler = self.handler,
            attempt = self.attempt,
            delay_ms = u64::try_from(self.delay.as_millis()).unwrap_or(u64::MAX),
            error = %self.error,
            "Retrying after transient error."
        );
        ResilienceStats::bump(&stats.retries);
    }
}

/// The circuit breaker of a binding changed state.
#[derive(Debug)]
pub(crate) struct CircuitBreakerTransitioned<'a> {
    pub handler: &'a str,
    pub from: CircuitState,
    pub to: CircuitState,
}

impl CircuitBreakerTransitioned<'_> {
    pub(crate) fn emit(self) {
        let (handler, from, to) = (self.handler, self.from.as_str(), self.to.as_str());
        match self.to {
            CircuitState::Open => tracing::warn!(handler, from, to, "Circuit breaker opened; calls are refused."),
            CircuitState::HalfOpen => tracing::info!(handler, from, to, "Circuit breaker half-open; probing."),
            CircuitState::Closed => tracing::info!(handler, from, to, "Circuit breaker closed; calls flow again."),
        }
    }
}

/// The circuit breaker refused a call.
#[derive(Debug)]
pub(crate) struct CircuitBreakerRejected<'a> {
    pub handler: &'a str,
}

impl CircuitBreakerRejected<'_> {
    pub(crate) fn emit(self, stats: &ResilienceStats) {
        tracing::debug!(handler = self.handler, "Circuit breaker refused the call.");
        ResilienceStats::bump(&stats.circuit_rejected);
    }
}

/// What the rate limit did with a call that found no token.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RateLimitAction {
    Waited(Duration),
    Rejected,
}

/// The rate limit delayed or refused a call.
#[derive(Debug)]
pub(crate) struct HandlerRateLimited<'a> {
    pub handler: &'a str,
    pub action: RateLimitAction,
}

impl HandlerRateLimited<'_> {
    pub(crate) fn emit(self, stats: &ResilienceStats) {
        match self.action {
            RateLimitAction::Waited(wait) => {
                let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
                tracing::debug!(handler = self.handler, wait_ms, "Waiting for a rate-limit token.");
                ResilienceStats::bump(&stats.rate_limit_waits);
            }
            RateLimitAction::Rejected => {
                tracing::debug!(handler = self.handler, "Rate limit refused the call.");
                ResilienceStats::bump(&stats.rate_limited);
            }
        }
    }
}

/// An attempt ran into its timeout.
#[derive(Debug)]
pub(crate) struct HandlerCallTimedOut<'a> {
    pub handler: &'a str,
    pub after: Duration,
}

impl HandlerCallTimedOut<'_> {
    pub(crate) fn emit(self, stats: &ResilienceStats) {
        let after_ms = u64::try_from(self.after.as_millis()).unwrap_or(u64::MAX);
        tracing::debug!(handler = self.handler, after_ms, "Handler attempt timed out.");
        ResilienceStats::bump(&stats.timeouts);
    }
}

/// The envelope's deadline ended the call.
#[derive(Debug)]
pub(crate) struct HandlerDeadlineExceeded<'a> {
    pub handler: &'a str,
    /// Attempts made before (0: expired on arrival).
    pub attempts: u32,
}

impl HandlerDeadlineExceeded<'_> {
    pub(crate) fn emit(self, stats: &ResilienceStats) {
        tracing::debug!(
            handler = self.handler,
            attempts = self.attempts,
            "Deadline exceeded; not calling the handler."
        );
        ResilienceStats::bump(&stats.deadline_exceeded);
    }
}
