//! The handler stack: deadline → retry → circuit breaker → rate limit →
//! per-attempt timeout → handler, configured per handler binding.
//!
//! Each concern is one layer in its own module, and each layer is a
//! [`Handler`](crate::Handler) decorator around an inner `Arc<dyn Handler>`,
//! so layers compose in any order and tests drive one at a time with a mock
//! handler. [`ResilientHandler`] (in `stack.rs`) composes them in the order
//! above, written once; that is what the runtime wires in front of every
//! handler binding.
//!
//! Time is injected: layers read it through an `Arc<dyn Clock>` and wait with
//! tokio's timer, so with [`TokioClock`] under paused tokio time every retry
//! schedule, breaker transition, refill and timeout is tested on fake time
//! without sleeping. How the settings interact is described in
//! `docs/resilience.md`.

mod circuit_breaker;
mod clock;
mod deadline;
mod latency;
mod layer;
mod rate_limit;
mod retry;
mod stack;
mod stats;
mod timeout;

#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;

pub use circuit_breaker::{
    CircuitBreaker, CircuitBreakerHandle, CircuitBreakerLayer, CircuitBreakerSnapshot, CircuitState, Transition,
    TransitionCounts,
};
pub use clock::TokioClock;
pub use deadline::{Deadline, DeadlineLayer};
pub use latency::{CallRecord, CallSummary, LastError};
pub use layer::{HandlerLayer, StackContext};
pub use rate_limit::{RateLimit, RateLimitLayer};
pub use retry::{BackoffSchedule, Retry, RetryLayer};
pub use stack::{CallOutcome, ResilientHandler};
pub use stats::{ResilienceStats, ResilienceStatsSnapshot};
pub use timeout::{Timeout, TimeoutLayer};
