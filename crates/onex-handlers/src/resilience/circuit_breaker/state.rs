//! The circuit breaker's state machine, as pure data: no clock, no locks, no I/O.
//!
//! ```text
//!            failure_threshold consecutive failures,
//!            or failure rate >= threshold over the window (>= minimum_calls)
//!   Closed ───────────────────────────────────────────────► Open
//!     ▲                                                    │   ▲
//!     │ all permitted probes succeeded      wait_in_open   │   │ a probe failed
//!     │                                     elapsed, next  ▼   │
//!     └──────────────────────────────────────────────── HalfOpen
//! ```
//!
//! The caller passes the time in (monotonic for the open wait, wall for the
//! transition log), so every transition is tested as data in, data out.
//! Transitions out of Open happen lazily, on the next call after the wait
//! (resilience4j's default): nothing needs a timer task.
//!
//! Each call is admitted with the state's generation; an outcome from an
//! older generation (a call admitted before the breaker last changed state)
//! is ignored, so a slow call that started while closed cannot be mistaken
//! for a half-open probe.

use std::collections::VecDeque;
use std::time::Duration;

use onex_core::Timestamp;
use onex_core::contract::CircuitBreakerPolicy;

/// Transitions kept for inspection; older ones are dropped.
pub(super) const TRANSITIONS_KEPT: usize = 16;

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CircuitState {
    /// Calls flow; outcomes are counted.
    Closed,
    /// Calls are refused until `wait_in_open` has passed.
    Open,
    /// A limited number of probe calls decide between Closed and Open.
    HalfOpen,
}

impl CircuitState {
    /// The lowercase name, as used in metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

/// One change of state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub from: CircuitState,
    pub to: CircuitState,
    /// Wall-clock time of the change.
    pub at: Timestamp,
}

/// How many times a breaker entered each state since it was built (for metrics:
/// the transition log keeps only the last few).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TransitionCounts {
    pub to_closed: u64,
    pub to_open: u64,
    pub to_half_open: u64,
}

impl TransitionCounts {
    /// Transitions into `state`.
    pub const fn get(self, state: CircuitState) -> u64 {
        match state {
            CircuitState::Closed => self.to_closed,
            CircuitState::Open => self.to_open,
            CircuitState::HalfOpen => self.to_half_open,
        }
    }

    fn count(&mut self, state: CircuitState) {
        let n = match state {
            CircuitState::Closed => &mut self.to_closed,
            CircuitState::Open => &mut self.to_open,
            CircuitState::HalfOpen => &mut self.to_half_open,
        };
        *n += 1;
    }
}

/// How a finished call counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// The dependency answered in time (including with a permanent error).
    Success,
    /// The dependency failed transiently, timed out, or was slow.
    Failure,
    /// The call never reached the dependency (refused below, or cancelled).
    Ignored,
}

/// A call let through, to be reported back with [`BreakerState::on_outcome`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Permit {
    generation: u64,
}

/// The last calls' outcomes, oldest first, as a fixed-size ring.
#[derive(Debug)]
struct Window {
    failed: VecDeque<bool>,
    size: usize,
    failures: usize,
}

impl Window {
    fn new(size: usize) -> Self {
        Self { failed: VecDeque::with_capacity(size), size, failures: 0 }
    }

    fn record(&mut self, failed: bool) {
        if self.failed.len() == self.size && self.failed.pop_front() == Some(true) {
            self.failures -= 1;
        }
        self.failed.push_back(failed);
        self.failures += usize::from(failed);
    }

    fn clear(&mut self) {
        self.failed.clear();
        self.failures = 0;
    }

    fn calls(&self) -> usize {
        self.failed.len()
    }

    /// Failure rate in percent; `None` when empty.
    fn failure_rate(&self) -> Option<f64> {
        #[allow(clippy::cast_precision_loss, reason = "window sizes are at most 10 000")]
        (!self.failed.is_empty()).then(|| self.failures as f64 * 100.0 / self.failed.len() as f64)
    }
}

/// The breaker's state and counters.
#[derive(Debug)]
pub(super) struct BreakerState {
    policy: CircuitBreakerPolicy,
    state: CircuitState,
    generation: u64,
    consecutive_failures: u32,
    window: Window,
    /// Monotonic time the breaker last opened.
    opened_at: Duration,
    /// Probes admitted (in flight or done) and succeeded in the current half-open spell.
    probes_admitted: u32,
    probes_succeeded: u32,
    rejected: u64,
    transitions: VecDeque<Transition>,
    transition_counts: TransitionCounts,
}

impl BreakerState {
    pub(super) fn new(policy: CircuitBreakerPolicy) -> Self {
        let size = usize::try_from(policy.sliding_window_size.get()).unwrap_or(usize::MAX);
        Self {
            policy,
            state: CircuitState::Closed,
            generation: 0,
            consecutive_failures: 0,
            window: Window::new(size),
            opened_at: Duration::ZERO,
            probes_admitted: 0,
            probes_succeeded: 0,
            rejected: 0,
            transitions: VecDeque::with_capacity(TRANSITIONS_KEPT),
            transition_counts: TransitionCounts::default(),
        }
    }

    /// Admits or refuses a call at monotonic time `now`. Returns the transition
    /// to half-open if this call caused it.
    pub(super) fn try_acquire(&mut self, now: Duration, wall: Timestamp) -> (Option<Permit>, Option<Transition>) {
        let mut transition = None;
        if self.state == CircuitState::Open && now.saturating_sub(self.opened_at) >= self.policy.wait_in_open {
            transition = Some(self.move_to(CircuitState::HalfOpen, now, wall));
        }
        let admitted = match self.state {
            CircuitState::Closed => true,
            CircuitState::Open => false,
            CircuitState::HalfOpen => {
                let free = self.probes_admitted < self.policy.permitted_calls_in_half_open.get();
                self.probes_admitted += u32::from(free);
                free
            }
        };
        if !admitted {
            self.rejected += 1;
        }
        (admitted.then_some(Permit { generation: self.generation }), transition)
    }

    /// Records how an admitted call ended. Returns the transition it caused, if any.
    pub(super) fn on_outcome(
        &mut self,
        permit: Permit,
        outcome: Outcome,
        now: Duration,
        wall: Timestamp,
    ) -> Option<Transition> {
        if permit.generation != self.generation {
            return None;
        }
        match (self.state, outcome) {
            (CircuitState::Closed, Outcome::Ignored) | (CircuitState::Open, _) => None,
            (CircuitState::Closed, Outcome::Success) => {
                self.consecutive_failures = 0;
                self.window.record(false);
                None
            }
            (CircuitState::Closed, Outcome::Failure) => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                self.window.record(true);
                self.should_trip().then(|| self.move_to(CircuitState::Open, now, wall))
            }
            (CircuitState::HalfOpen, Outcome::Ignored) => {
                // The probe never reached the dependency: give its slot to the next call.
                self.probes_admitted = self.probes_admitted.saturating_sub(1);
                None
            }
            (CircuitState::HalfOpen, Outcome::Failure) => Some(self.move_to(CircuitState::Open, now, wall)),
            (CircuitState::HalfOpen, Outcome::Success) => {
                self.probes_succeeded += 1;
                (self.probes_succeeded >= self.policy.permitted_calls_in_half_open.get())
                    .then(|| self.move_to(CircuitState::Closed, now, wall))
            }
        }
    }

    fn should_trip(&self) -> bool {
        if self.consecutive_failures >= self.policy.failure_threshold.get() {
            return true;
        }
        let minimum = usize::try_from(self.policy.minimum_calls.get()).unwrap_or(usize::MAX);
        match (self.policy.failure_rate_threshold, self.window.failure_rate()) {
            (Some(threshold), Some(rate)) => self.window.calls() >= minimum && rate >= threshold,
            _ => false,
        }
    }

    fn move_to(&mut self, to: CircuitState, now: Duration, wall: Timestamp) -> Transition {
        let transition = Transition { from: self.state, to, at: wall };
        self.state = to;
        self.generation += 1;
        self.consecutive_failures = 0;
        self.window.clear();
        self.probes_admitted = 0;
        self.probes_succeeded = 0;
        if to == CircuitState::Open {
            self.opened_at = now;
        }
        if self.transitions.len() == TRANSITIONS_KEPT {
            self.transitions.pop_front();
        }
        self.transitions.push_back(transition);
        self.transition_counts.count(to);
        transition
    }

    pub(super) fn state(&self) -> CircuitState {
        self.state
    }

    pub(super) fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    pub(super) fn failure_rate(&self) -> Option<f64> {
        self.window.failure_rate()
    }

    pub(super) fn calls_in_window(&self) -> usize {
        self.window.calls()
    }

    pub(super) fn rejected(&self) -> u64 {
        self.rejected
    }

    pub(super) fn transitions(&self) -> Vec<Transition> {
        self.transitions.iter().copied().collect()
    }

    pub(super) fn transition_counts(&self) -> TransitionCounts {
        self.transition_counts
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;

    const T0: Timestamp = Timestamp::UNIX_EPOCH;

    fn nz(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
    }

    fn at(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    /// Admits one call at `now` and reports `outcome` for it; returns the new state.
    fn call(b: &mut BreakerState, now: Duration, outcome: Outcome) -> Option<CircuitState> {
        let (permit, _) = b.try_acquire(now, T0);
        let permit = permit?;
        b.on_outcome(permit, outcome, now, T0);
        Some(b.state())
    }

    #[test]
    fn opens_after_the_threshold_of_consecutive_failures_only() {
        let mut b = BreakerState::new(CircuitBreakerPolicy::default());
        for _ in 0..4 {
            assert_eq!(call(&mut b, at(0), Outcome::Failure), Some(CircuitState::Closed));
        }
        assert_eq!(call(&mut b, at(0), Outcome::Success), Some(CircuitState::Closed));
        assert_eq!(b.consecutive_failures(), 0);
        for _ in 0..4 {
            call(&mut b, at(0), Outcome::Failure);
        }
        assert_eq!(call(&mut b, at(0), Outcome::Failure), Some(CircuitState::Open));
        assert_eq!(call(&mut b, at(0), Outcome::Success), None, "open refuses");
        assert_eq!(b.rejected(), 1);
    }

    #[test]
    fn permanent_looking_successes_and_ignored_calls_do_not_count_as_failures() {
        let mut b = BreakerState::new(CircuitBreakerPolicy::default());
        for _ in 0..4 {
            call(&mut b, at(0), Outcome::Failure);
        }
        call(&mut b, at(0), Outcome::Ignored);
        assert_eq!(b.consecutive_failures(), 4, "an ignored call neither resets nor adds");
        assert_eq!(b.calls_in_window(), 4);
    }

    #[test]
    fn outcomes_of_calls_admitted_before_a_transition_are_ignored() {
        let mut b = BreakerState::new(CircuitBreakerPolicy::default());
        let (early, _) = b.try_acquire(at(0), T0);
        for _ in 0..5 {
            call(&mut b, at(0), Outcome::Failure);
        }
        assert_eq!(b.state(), CircuitState::Open);
        let (_, t) = b.try_acquire(at(30_000), T0);
        assert_eq!(t.map(|t| t.to), Some(CircuitState::HalfOpen));
        let early = early.unwrap_or_else(|| panic!("closed breaker refused"));
        assert_eq!(b.on_outcome(early, Outcome::Success, at(30_000), T0), None);
        assert_eq!(b.state(), CircuitState::HalfOpen, "a stale success is not a probe");
    }

    #[test]
    fn the_window_forgets_the_oldest_outcome() {
        let mut w = Window::new(3);
        for failed in [true, true, false, false] {
            w.record(failed);
        }
        assert_eq!((w.calls(), w.failures), (3, 1));
        assert!((w.failure_rate().unwrap_or(0.0) - 100.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn the_transition_log_is_bounded() {
        let policy = CircuitBreakerPolicy { failure_threshold: nz(1), wait_in_open: at(1), ..Default::default() };
        let mut b = BreakerState::new(policy);
        for i in 0..40 {
            call(&mut b, at(i * 10), Outcome::Failure);
        }
        assert_eq!(b.transitions().len(), TRANSITIONS_KEPT);
        // The counts are not bounded: 40 failures with the wait elapsed each time are
        // 1 trip from closed, then 39 rounds of half-open → open.
        let counts = b.transition_counts();
        assert_eq!((counts.to_open, counts.to_half_open, counts.to_closed), (40, 39, 0));
    }
}
