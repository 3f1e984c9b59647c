//! The producer's circuit breaker: after `threshold` consecutive failed
//! publishes the circuit opens and publishes fail fast; after the reset
//! timeout one probe publish is let through (half-open), and its result
//! closes or re-opens the circuit. Time is passed in, so tests need no clock.

use std::time::{Duration, Instant};

/// The breaker's state, as health reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

#[derive(Debug)]
pub(crate) struct ProducerBreaker {
    threshold: u32,
    reset_timeout: Duration,
    failures: u32,
    opened_at: Option<Instant>,
    probe_in_flight: bool,
}

impl ProducerBreaker {
    pub(crate) fn new(threshold: u32, reset_timeout: Duration) -> Self {
        Self { threshold: threshold.max(1), reset_timeout, failures: 0, opened_at: None, probe_in_flight: false }
    }

    /// Whether a publish may go out now. In half-open state only one probe at a time may.
    pub(crate) fn try_acquire(&mut self, now: Instant) -> bool {
        match self.opened_at {
            None => true,
            Some(at) if now.duration_since(at) >= self.reset_timeout && !self.probe_in_flight => {
                self.probe_in_flight = true;
                true
            }
            Some(_) => false,
        }
    }

    /// Records a publish result. Returns the new state if it changed.
    pub(crate) fn record(&mut self, ok: bool, now: Instant) -> Option<BreakerState> {
        let before = self.state(now);
        self.probe_in_flight = false;
        if ok {
            self.failures = 0;
            self.opened_at = None;
        } else {
            self.failures = self.failures.saturating_add(1);
            if self.opened_at.is_some() || self.failures >= self.threshold {
                self.opened_at = Some(now);
            }
        }
        let after = self.state(now);
        (after != before).then_some(after)
    }

    pub(crate) fn state(&self, now: Instant) -> BreakerState {
        match self.opened_at {
            None => BreakerState::Closed,
            Some(at) if now.duration_since(at) >= self.reset_timeout => BreakerState::HalfOpen,
            Some(_) => BreakerState::Open,
        }
    }

    /// When the circuit allows a probe again (for error messages).
    pub(crate) fn retry_in(&self, now: Instant) -> Duration {
        self.opened_at.map_or(Duration::ZERO, |at| self.reset_timeout.saturating_sub(now.duration_since(at)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_consecutive_failures_only() {
        let t0 = Instant::now();
        let mut b = ProducerBreaker::new(5, Duration::from_secs(30));
        for _ in 0..4 {
            assert!(b.try_acquire(t0));
            assert_eq!(b.record(false, t0), None);
        }
        // A success resets the count.
        assert_eq!(b.record(true, t0), None);
        for _ in 0..4 {
            b.record(false, t0);
        }
        assert_eq!(b.record(false, t0), Some(BreakerState::Open));
        assert!(!b.try_acquire(t0 + Duration::from_secs(29)));
        assert_eq!(b.retry_in(t0 + Duration::from_secs(29)), Duration::from_secs(1));
    }

    #[test]
    fn half_open_lets_one_probe_through_and_its_result_decides() {
        let t0 = Instant::now();
        let mut b = ProducerBreaker::new(1, Duration::from_secs(10));
        b.record(false, t0);
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(b.state(t1), BreakerState::HalfOpen);
        assert!(b.try_acquire(t1), "the probe");
        assert!(!b.try_acquire(t1), "only one probe at a time");
        // The probe fails: open again for a full timeout.
        assert_eq!(b.record(false, t1), Some(BreakerState::Open));
        assert!(!b.try_acquire(t1 + Duration::from_secs(9)));
        let t2 = t1 + Duration::from_secs(10);
        assert!(b.try_acquire(t2));
        assert_eq!(b.record(true, t2), Some(BreakerState::Closed));
        assert!(b.try_acquire(t2));
    }
}
