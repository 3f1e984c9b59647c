//! [`ResilienceStats`]: per-binding counters of what the layers did.
//!
//! Plain relaxed atomics: they are written on the call path and read by the
//! runtime for metrics and health, never used to make decisions, so no
//! ordering between them is needed and the cost is a few nanoseconds.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one binding's stack. Shared by its layers through [`StackContext`](super::StackContext).
#[derive(Debug, Default)]
pub struct ResilienceStats {
    pub(crate) retries: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) rate_limit_waits: AtomicU64,
    pub(crate) rate_limited: AtomicU64,
    pub(crate) deadline_exceeded: AtomicU64,
    pub(crate) circuit_rejected: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResilienceStatsSnapshot {
    /// Retries started (attempts after the first).
    pub retries: u64,
    /// Attempts abandoned by the per-attempt timeout.
    pub timeouts: u64,
    /// Calls that waited for a rate-limit token.
    pub rate_limit_waits: u64,
    /// Calls refused by the rate limit.
    pub rate_limited: u64,
    /// Calls ended by the envelope's deadline (expired on arrival, or no time left to retry).
    pub deadline_exceeded: u64,
    /// Calls refused by the open (or full half-open) circuit breaker.
    pub circuit_rejected: u64,
}

impl ResilienceStats {
    /// The counters now.
    pub fn snapshot(&self) -> ResilienceStatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ResilienceStatsSnapshot {
            retries: get(&self.retries),
            timeouts: get(&self.timeouts),
            rate_limit_waits: get(&self.rate_limit_waits),
            rate_limited: get(&self.rate_limited),
            deadline_exceeded: get(&self.deadline_exceeded),
            circuit_rejected: get(&self.circuit_rejected),
        }
    }

    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
