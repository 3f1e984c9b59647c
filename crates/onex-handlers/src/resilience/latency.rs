//! [`CallRecord`]: per-binding latency summary and last error, for health and
//! the dashboard (Prometheus histograms are kept separately by the runtime).
//!
//! Latencies go into 32 power-of-two buckets of microseconds, counted with
//! relaxed atomics: recording is lock-free, and a quantile is the upper bound
//! of its bucket (within a factor of two, enough to tell 1 ms from 100 ms).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;

const BUCKETS: usize = 32;

/// Latency and last error of one binding's calls.
#[derive(Debug)]
pub struct CallRecord {
    buckets: [AtomicU64; BUCKETS],
    count: AtomicU64,
    errors: AtomicU64,
    max_us: AtomicU64,
    last_error: Mutex<Option<LastError>>,
}

/// The most recent failed call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastError {
    pub code: String,
    pub message: String,
    /// Milliseconds since the Unix epoch.
    pub at_unix_ms: i64,
}

/// A summary of the calls so far.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallSummary {
    pub calls: u64,
    pub errors: u64,
    /// Upper bound of the bucket holding the median, in milliseconds.
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub last_error: Option<LastError>,
}

impl Default for CallRecord {
    fn default() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            max_us: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }
}

impl CallRecord {
    /// Records one call that took `elapsed`.
    pub fn record(&self, elapsed: Duration) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX).max(1);
        let bucket = (63 - us.leading_zeros() as usize).min(BUCKETS - 1);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
    }

    /// Records a failed call's error.
    pub fn record_error(&self, code: &str, message: &str, at_unix_ms: i64) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock() = Some(LastError { code: code.to_owned(), message: message.to_owned(), at_unix_ms });
    }

    pub fn summary(&self) -> CallSummary {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        let quantile = |q: f64| -> f64 {
            if total == 0 {
                return 0.0;
            }
            let rank = ((total as f64) * q).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (i, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    // Upper bound of bucket i: 2^(i+1) µs.
                    return (1u64 << (i + 1)) as f64 / 1000.0;
                }
            }
            0.0
        };
        CallSummary {
            calls: self.count.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            p50_ms: quantile(0.5),
            p99_ms: quantile(0.99),
            max_ms: self.max_us.load(Ordering::Relaxed) as f64 / 1000.0,
            last_error: self.last_error.lock().clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_land_in_the_right_power_of_two_bucket() {
        let r = CallRecord::default();
        for _ in 0..98 {
            r.record(Duration::from_micros(300)); // bucket [256, 512) µs
        }
        r.record(Duration::from_millis(40)); // [32768, 65536) µs
        r.record(Duration::from_millis(40));
        let s = r.summary();
        assert_eq!(s.calls, 100);
        assert_eq!(s.p50_ms, 0.512);
        assert_eq!(s.p99_ms, 65.536);
        assert_eq!(s.max_ms, 40.0);
        assert_eq!(s.last_error, None);
    }

    #[test]
    fn the_last_error_is_kept_and_errors_counted() {
        let r = CallRecord::default();
        assert_eq!(r.summary().p50_ms, 0.0);
        r.record_error("HANDLER_TIMEOUT", "first", 1);
        r.record_error("CONNECTION_FAILED", "second", 2);
        let s = r.summary();
        assert_eq!(s.errors, 2);
        assert_eq!(s.last_error.map(|e| (e.code, e.at_unix_ms)), Some(("CONNECTION_FAILED".to_owned(), 2)));
    }
}
