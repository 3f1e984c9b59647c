//! Consumer lag per partition, from what the broker reports and what this
//! consumer has seen itself.
//!
//! The broker's high watermark is not always the log end (tansu reports the
//! start of the last batch + 1), so lag is computed against the highest of
//! the reported watermark and one past the highest offset delivered here:
//! a watermark below what we have already read is stale, never negative lag.

/// The effective log end: the reported watermark, raised to what was already delivered.
pub(crate) fn log_end(reported_high_watermark: Option<i64>, delivered_next: Option<i64>) -> Option<i64> {
    match (reported_high_watermark.filter(|h| *h >= 0), delivered_next) {
        (Some(h), Some(n)) => Some(h.max(n)),
        (h, n) => h.or(n),
    }
}

/// Records between the position and the log end; never negative.
pub(crate) fn lag(log_end: Option<i64>, position: Option<i64>, committed: Option<i64>) -> i64 {
    let Some(end) = log_end else { return 0 };
    // Before the first delivery the consumer will start at the committed offset.
    let from = position.or(committed.filter(|c| *c >= 0)).unwrap_or(0);
    (end - from).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_the_distance_from_position_to_log_end() {
        assert_eq!(lag(log_end(Some(100), Some(40)), Some(40), Some(30)), 60);
        assert_eq!(lag(log_end(Some(100), Some(100)), Some(100), Some(100)), 0);
    }

    #[test]
    fn a_watermark_behind_what_was_read_is_stale_not_negative() {
        // tansu: watermark = start of last batch + 1 = 91, but we already read up to 99.
        let end = log_end(Some(91), Some(100));
        assert_eq!(end, Some(100));
        assert_eq!(lag(end, Some(100), None), 0);
    }

    #[test]
    fn before_the_first_delivery_lag_counts_from_the_committed_offset() {
        assert_eq!(lag(log_end(Some(50), None), None, Some(20)), 30);
        // Nothing committed (librdkafka reports -1001): count from the start.
        assert_eq!(lag(log_end(Some(50), None), None, Some(-1001)), 50);
    }

    #[test]
    fn unknown_watermark_means_no_lag_claimed() {
        assert_eq!(log_end(None, None), None);
        assert_eq!(log_end(Some(-1), None), None, "librdkafka's 'unknown'");
        assert_eq!(lag(None, Some(5), Some(5)), 0);
        assert_eq!(log_end(None, Some(7)), Some(7));
    }
}
