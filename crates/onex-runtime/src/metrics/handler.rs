//! Handler metrics: calls and their duration per EFFECT route, and each
//! binding's resilience counters and circuit breaker.
//!
//! Calls are counted and timed by the EFFECT node around the whole call, as
//! the envelope sees it: retries, backoff and rate-limit waits included, so
//! the histogram is the handler's share of envelope latency. The resilience
//! layers already keep relaxed atomic counters ([`ResilienceStats`]); they are
//! copied into the registry at scrape time instead of being counted twice.

use std::sync::Arc;
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram};
use onex_core::{Clock, Operation};
use onex_handlers::ResilientHandler;
use onex_handlers::resilience::{CircuitBreakerHandle, CircuitState, ResilienceStats};

use super::catalog as names;
use super::recorder::{counter, gauge, histogram, label};

/// One EFFECT route's handles: a handler, its type, and the operation routed to it.
#[derive(Debug, Clone)]
pub(crate) struct CallMetrics {
    success: Counter,
    error: Counter,
    duration: Histogram,
    clock: Arc<dyn Clock>,
}

/// A call being timed; see [`CallMetrics::start`].
#[derive(Debug)]
pub(crate) struct CallTimer<'a> {
    metrics: &'a CallMetrics,
    started: Duration,
}

impl CallMetrics {
    /// Handles for calls of `handler` (a binding name; a handler routed in code
    /// without a binding is named by its type) for `operation`.
    pub(crate) fn new(handler: &str, handler_type: &str, operation: &Operation, clock: Arc<dyn Clock>) -> Self {
        let labels = || {
            vec![label("handler", handler), label("handler_type", handler_type), label("operation", operation.as_str())]
        };
        let calls = |outcome: &'static str| {
            let mut labels = labels();
            labels.push(label("outcome", outcome));
            counter(names::HANDLER_CALLS, labels)
        };
        Self {
            success: calls("success"),
            error: calls("error"),
            duration: histogram(names::HANDLER_CALL_DURATION, labels()),
            clock,
        }
    }

    /// Starts timing one call.
    pub(crate) fn start(&self) -> CallTimer<'_> {
        CallTimer { metrics: self, started: self.clock.monotonic() }
    }
}

impl CallTimer<'_> {
    /// Records the call's duration and outcome. A call whose future is dropped records nothing.
    pub(crate) fn finish(self, success: bool) {
        let m = self.metrics;
        m.duration.record(m.clock.monotonic().saturating_sub(self.started).as_secs_f64());
        let counter = if success { &m.success } else { &m.error };
        counter.increment(1);
    }
}

/// One handler binding's resilience counters and breaker, copied into the registry at scrape time.
#[derive(Debug)]
pub(crate) struct ResilienceMetrics {
    stats: Arc<ResilienceStats>,
    retries: Counter,
    timeouts: Counter,
    deadline_exceeded: Counter,
    rate_limit_waited: Counter,
    rate_limit_rejected: Counter,
    circuit_rejected: Counter,
    breaker: Option<BreakerMetrics>,
}

/// A breaker's state gauge and transition counters; only for bindings with a breaker.
#[derive(Debug)]
struct BreakerMetrics {
    handle: CircuitBreakerHandle,
    state: Gauge,
    /// Transitions into each state, indexed like [`STATES`].
    transitions: Vec<Counter>,
}

const STATES: [CircuitState; 3] = [CircuitState::Closed, CircuitState::HalfOpen, CircuitState::Open];

/// The value of `onex_circuit_breaker_state`: ordered by how much traffic the breaker lets through.
pub(crate) const fn state_value(state: CircuitState) -> f64 {
    match state {
        CircuitState::Closed => 0.0,
        CircuitState::HalfOpen => 1.0,
        CircuitState::Open => 2.0,
    }
}

impl ResilienceMetrics {
    pub(crate) fn new(handler: &ResilientHandler) -> Self {
        let name = handler.name();
        let per_handler = |metric: &'static str| counter(metric, vec![label("handler", name)]);
        let rate_limited =
            |action: &'static str| counter(names::RATE_LIMITED, vec![label("handler", name), label("action", action)]);
        let breaker = handler.circuit_breaker().map(|handle| BreakerMetrics {
            handle: handle.clone(),
            state: gauge(names::CIRCUIT_BREAKER_STATE, vec![label("handler", name)]),
            transitions: STATES
                .iter()
                .map(|s| {
                    counter(
                        names::CIRCUIT_BREAKER_TRANSITIONS,
                        vec![label("handler", name), label("to_state", s.as_str())],
                    )
                })
                .collect(),
        });
        Self {
            stats: Arc::clone(handler.stats()),
            retries: per_handler(names::HANDLER_RETRIES),
            timeouts: per_handler(names::HANDLER_TIMEOUTS),
            deadline_exceeded: per_handler(names::HANDLER_DEADLINE_EXCEEDED),
            rate_limit_waited: rate_limited("waited"),
            rate_limit_rejected: rate_limited("rejected"),
            circuit_rejected: per_handler(names::CIRCUIT_BREAKER_REJECTED),
            breaker,
        }
    }

    pub(crate) fn refresh(&self) {
        let s = self.stats.snapshot();
        self.retries.absolute(s.retries);
        self.timeouts.absolute(s.timeouts);
        self.deadline_exceeded.absolute(s.deadline_exceeded);
        self.rate_limit_waited.absolute(s.rate_limit_waits);
        self.rate_limit_rejected.absolute(s.rate_limited);
        self.circuit_rejected.absolute(s.circuit_rejected);
        if let Some(b) = &self.breaker {
            let snapshot = b.handle.snapshot();
            b.state.set(state_value(snapshot.state));
            for (state, counter) in STATES.iter().zip(&b.transitions) {
                counter.absolute(snapshot.transition_counts.get(*state));
            }
        }
    }
}
