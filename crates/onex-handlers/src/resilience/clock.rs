//! [`TokioClock`]: the injected [`Clock`] that agrees with tokio's timer.
//!
//! The layers wait with `tokio::time::sleep` and `timeout` but read time
//! through `Clock`. Reading it from tokio's `Instant` keeps the two consistent:
//! under `#[tokio::test(start_paused = true)]` both are fake and move together
//! (tokio advances paused time when every task is idle, or on
//! `tokio::time::advance`), so tests assert exact schedules without sleeping.
//! In production tokio's clock is the OS monotonic clock, so [`SystemClock`]
//! works as well; this one is preferred because it is the same in both.

use std::time::Duration;

use onex_core::{Clock, SystemClock, Timestamp};
use tokio::time::Instant;

/// Monotonic time from tokio's clock; wall time is the wall time at creation
/// plus that monotonic time (so it does not follow later wall-clock steps).
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    origin: Instant,
    wall_origin: Timestamp,
}

impl TokioClock {
    /// A clock whose wall time starts at the system's wall time now.
    pub fn new() -> Self {
        Self::starting_at(SystemClock::new().now())
    }

    /// A clock whose wall time starts at `wall` (tests: a fixed, readable start).
    pub fn starting_at(wall: Timestamp) -> Self {
        Self { origin: Instant::now(), wall_origin: wall }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Timestamp {
        self.wall_origin.saturating_add(self.monotonic())
    }

    fn monotonic(&self) -> Duration {
        self.origin.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn reads_follow_paused_tokio_time() {
        let clock = TokioClock::starting_at(Timestamp::UNIX_EPOCH);
        tokio::time::advance(Duration::from_millis(1500)).await;
        assert_eq!(clock.monotonic(), Duration::from_millis(1500));
        assert_eq!(clock.now(), Timestamp::UNIX_EPOCH.saturating_add(Duration::from_millis(1500)));
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(clock.monotonic(), Duration::from_millis(61_500));
    }
}
