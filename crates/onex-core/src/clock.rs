//! Time, injected.
//!
//! Logic in onex never reads the system clock directly: it takes a
//! `&dyn Clock`. Production uses [`SystemClock`]; tests use [`ManualClock`]
//! and move time forward explicitly, so retry schedules, breakers and
//! deadlines are tested without sleeping.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A wall-clock instant in UTC, serialized as RFC 3339 with microseconds.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    /// The Unix epoch.
    pub const UNIX_EPOCH: Self = Self(DateTime::UNIX_EPOCH);

    /// Milliseconds since the Unix epoch.
    pub fn from_unix_millis(ms: i64) -> Option<Self> {
        DateTime::from_timestamp_millis(ms).map(Self)
    }

    /// Milliseconds since the Unix epoch.
    pub fn unix_millis(self) -> i64 {
        self.0.timestamp_millis()
    }

    /// Parses an RFC 3339 timestamp (`2025-01-01T00:00:00Z`, any offset).
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        DateTime::parse_from_rfc3339(s).ok().map(|t| Self(t.with_timezone(&Utc)))
    }

    /// This instant plus `d`, saturating at the far future.
    pub fn saturating_add(self, d: Duration) -> Self {
        chrono::Duration::from_std(d)
            .ok()
            .and_then(|d| self.0.checked_add_signed(d))
            .map_or(Self(DateTime::<Utc>::MAX_UTC), Self)
    }

    /// How long from `self` until `later`; zero if `later` is not after `self`.
    pub fn until(self, later: Self) -> Duration {
        (later.0 - self.0).to_std().unwrap_or(Duration::ZERO)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::Micros, true))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse_rfc3339(&raw).ok_or_else(|| {
            serde::de::Error::custom(format_args!(
                "`{raw}` is not an RFC 3339 timestamp such as `2025-01-01T12:00:00Z`"
            ))
        })
    }
}

/// A source of time. Implementations must be cheap and thread-safe.
///
/// `now` is wall time (envelope timestamps, deadlines carried between
/// processes); `monotonic` never goes backwards and is what durations,
/// timeouts and latency measurements use.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current wall-clock time.
    fn now(&self) -> Timestamp;
    /// Time since a fixed, arbitrary origin. Never decreases.
    fn monotonic(&self) -> Duration;
}

/// The real clock.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A clock whose monotonic origin is now.
    pub fn new() -> Self {
        Self { origin: Instant::now() }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp(Utc::now())
    }
    fn monotonic(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A clock that moves only when told to. For tests and simulations.
#[derive(Debug)]
pub struct ManualClock {
    state: Mutex<(Timestamp, Duration)>,
}

impl ManualClock {
    /// A clock standing at `start`, with monotonic time zero.
    pub fn new(start: Timestamp) -> Self {
        Self { state: Mutex::new((start, Duration::ZERO)) }
    }

    /// A clock at 2025-01-01T00:00:00Z.
    pub fn at_fixed_start() -> Self {
        Self::new(Timestamp::from_unix_millis(1_735_689_600_000).unwrap_or(Timestamp::UNIX_EPOCH))
    }

    /// Moves both wall and monotonic time forward by `d`.
    pub fn advance(&self, d: Duration) {
        let mut s = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        s.0 = s.0.saturating_add(d);
        s.1 += d;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner).0
    }
    fn monotonic(&self) -> Duration {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner).1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let clock = ManualClock::at_fixed_start();
        let t0 = clock.now();
        assert_eq!(clock.now(), t0);
        clock.advance(Duration::from_millis(1500));
        assert_eq!(t0.until(clock.now()), Duration::from_millis(1500));
        assert_eq!(clock.monotonic(), Duration::from_millis(1500));
    }

    #[test]
    fn timestamp_round_trips_through_json() {
        let t = Timestamp::from_unix_millis(1_735_689_600_123).unwrap_or(Timestamp::UNIX_EPOCH);
        let json = serde_json::to_string(&t).unwrap_or_default();
        assert_eq!(json, "\"2025-01-01T00:00:00.123000Z\"");
        let back: Timestamp = serde_json::from_str(&json).unwrap_or(Timestamp::UNIX_EPOCH);
        assert_eq!(back, t);
    }

    #[test]
    fn a_bad_timestamp_says_what_format_is_expected() {
        let err = serde_json::from_str::<Timestamp>("\"yesterday\"").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("RFC 3339"), "{err}");
    }

    #[test]
    fn until_is_zero_for_the_past() {
        let clock = ManualClock::at_fixed_start();
        let t0 = clock.now();
        clock.advance(Duration::from_secs(1));
        assert_eq!(clock.now().until(t0), Duration::ZERO);
    }
}
