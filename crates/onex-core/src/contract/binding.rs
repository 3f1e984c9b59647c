//! Decoding of a handler binding's resilience settings: `retry_policy`,
//! `circuit_breaker`, the rate limit and `dead_letter_on`.
//!
//! These settings configure the handler stack (onex-handlers `resilience`), so
//! they are checked here with the same diagnostics as the rest of the contract:
//! every problem with position, field path, hint and fix, cross-field checks
//! included (`max_delay_ms >= base_delay_ms`, `minimum_calls <= sliding_window_size`).
//! Whether a v0.1 contract may use them is decided by the caller (`runtime.rs`).
//!
//! Keys from the other ONEX dialects (onex-contract-shapes §8) are accepted
//! as aliases where their meaning is the same, so settings copied from a
//! node's `error_handling` block do not fail on spelling alone.

use std::num::NonZeroU32;
use std::time::Duration;

use super::decode::{Decoder, Fields, index, join};
use super::model::{
    Backoff, CircuitBreakerPolicy, DeadLetterCause, DeadLetterPolicy, RateLimitMode, RateLimitPolicy, RetryPolicy,
    default_rate_limit_burst,
};
use super::yaml::{Kind, Node};

/// `jitter_factor` is the core effect `io_config` spelling of `jitter`.
const RETRY_KEYS: [&str; 7] =
    ["max_retries", "backoff_strategy", "backoff", "base_delay_ms", "max_delay_ms", "jitter", "jitter_factor"];

/// `reset_timeout_ms` and `half_open_max_requests` are the node `error_handling` spellings.
const CIRCUIT_BREAKER_KEYS: [&str; 10] = [
    "enabled",
    "failure_threshold",
    "failure_rate_threshold",
    "sliding_window_size",
    "minimum_calls",
    "wait_in_open_ms",
    "reset_timeout_ms",
    "permitted_calls_in_half_open",
    "half_open_max_requests",
    "slow_call_threshold_ms",
];

/// A positive count that fits the model's `NonZeroU32`.
fn count(d: &mut Decoder<'_>, f: &Fields<'_>, key: &str, path: &str, max: i64) -> Option<NonZeroU32> {
    f.get(key)
        .and_then(|n| d.int(n, &join(path, key), 1..=max))
        .and_then(|v| u32::try_from(v).ok())
        .and_then(NonZeroU32::new)
}

/// Milliseconds, at least `min`.
fn millis(d: &mut Decoder<'_>, node: &Node, path: &str, min: i64) -> Option<Duration> {
    d.int(node, path, min..=i64::MAX).and_then(|v| u64::try_from(v).ok()).map(Duration::from_millis)
}

/// `retry_policy`.
pub fn retry_policy(node: &Node, path: &str, d: &mut Decoder<'_>) -> Option<RetryPolicy> {
    let r = d.map(node, path)?;
    d.deny_unknown(&r, path, &RETRY_KEYS);
    let mut policy = RetryPolicy::default();
    if let Some(v) = r
        .get("max_retries")
        .and_then(|n| d.int(n, &join(path, "max_retries"), 0..=1000))
        .and_then(|v| u32::try_from(v).ok())
    {
        policy.max_retries = v;
    }
    if let Some((key, n)) = r.get_any(&["backoff_strategy", "backoff"]) {
        if let Some(b) = d.one_of(n, &join(path, key), &["fixed", "exponential"]) {
            policy.backoff = if b == "fixed" { Backoff::Fixed } else { Backoff::Exponential };
        }
    }
    if let Some(v) = r.get("base_delay_ms").and_then(|n| millis(d, n, &join(path, "base_delay_ms"), 0)) {
        policy.base_delay = v;
    }
    if let Some(v) = r.get("max_delay_ms").and_then(|n| millis(d, n, &join(path, "max_delay_ms"), 0)) {
        policy.max_delay = v;
    }
    if let Some((key, n)) = r.get_any(&["jitter", "jitter_factor"]) {
        if let Some(j) = jitter(n, &join(path, key), d) {
            policy.jitter = j;
        }
    }
    if policy.max_delay < policy.base_delay {
        let at = if r.has("max_delay_ms") { "max_delay_ms" } else { "base_delay_ms" };
        d.error(
            r.get(at).map_or(r.node.pos, |n| n.pos),
            &join(path, at),
            format!(
                "max_delay_ms ({}) is less than base_delay_ms ({})",
                policy.max_delay.as_millis(),
                policy.base_delay.as_millis()
            ),
            Some("the delay grows from base_delay_ms up to max_delay_ms".into()),
            Some("raise max_delay_ms to at least base_delay_ms".into()),
        );
        return None;
    }
    Some(policy)
}

/// `jitter`: `true` (1.0, full jitter), `false` (0.0) or a factor in `0.0..=1.0`.
fn jitter(node: &Node, path: &str, d: &mut Decoder<'_>) -> Option<f64> {
    #[allow(clippy::cast_precision_loss, reason = "an integer here is 0 or 1, or an error")]
    let factor = match node.kind {
        Kind::Bool(b) => return Some(if b { 1.0 } else { 0.0 }),
        Kind::Float(f) => f,
        Kind::Int(i) => i as f64,
        _ => {
            d.error(
                node.pos,
                path,
                format!("`jitter` must be `true`, `false` or a number between 0.0 and 1.0, found {}", node.type_name()),
                Some("`true` is full jitter (1.0), `false` no jitter (0.0)".into()),
                Some("write `jitter: true`, or a factor such as `jitter: 0.2`".into()),
            );
            return None;
        }
    };
    if !(0.0..=1.0).contains(&factor) {
        d.error(
            node.pos,
            path,
            format!("`jitter` is {factor}; it must be between 0.0 and 1.0"),
            Some("the factor is the share of each delay that is randomised".into()),
            Some("write a factor between 0.0 and 1.0, e.g. `jitter: 0.2`".into()),
        );
        return None;
    }
    Some(factor)
}

/// `circuit_breaker`. `timeout` is the binding's per-attempt timeout, for the slow-call check.
pub fn circuit_breaker(
    node: &Node,
    path: &str,
    timeout: Duration,
    d: &mut Decoder<'_>,
) -> Option<CircuitBreakerPolicy> {
    let c = d.map(node, path)?;
    d.deny_unknown(&c, path, &CIRCUIT_BREAKER_KEYS);
    let mut policy = CircuitBreakerPolicy::default();
    let errors_before = d.error_count();
    if let Some(v) = c.get("enabled").and_then(|n| d.bool(n, &join(path, "enabled"))) {
        policy.enabled = v;
    }
    if let Some(v) = count(d, &c, "failure_threshold", path, 10_000) {
        policy.failure_threshold = v;
    }
    if let Some(n) = c.get("failure_rate_threshold") {
        let at = join(path, "failure_rate_threshold");
        policy.failure_rate_threshold = d.float_above(n, &at, 0.0).and_then(|p| {
            if p > 100.0 {
                d.error(
                    n.pos,
                    &at,
                    format!("`failure_rate_threshold` is {p}; it is a percentage, at most 100"),
                    Some("the breaker opens when this share of the calls in the window failed".into()),
                    Some("write a percentage such as `failure_rate_threshold: 50`".into()),
                );
                return None;
            }
            Some(p)
        });
    }
    if let Some(v) = count(d, &c, "sliding_window_size", path, 10_000) {
        policy.sliding_window_size = v;
    }
    if let Some(v) = count(d, &c, "minimum_calls", path, 10_000) {
        policy.minimum_calls = v;
    }
    if let Some((key, n)) = c.get_any(&["wait_in_open_ms", "reset_timeout_ms"]) {
        if let Some(v) = millis(d, n, &join(path, key), 1) {
            policy.wait_in_open = v;
        }
    }
    if let Some(v) = c
        .get_any(&["permitted_calls_in_half_open", "half_open_max_requests"])
        .and_then(|(key, _)| count(d, &c, key, path, 1000))
    {
        policy.permitted_calls_in_half_open = v;
    }
    if let Some(n) = c.get("slow_call_threshold_ms") {
        let at = join(path, "slow_call_threshold_ms");
        policy.slow_call_threshold = millis(d, n, &at, 1);
        if policy.slow_call_threshold.is_some_and(|s| s >= timeout) {
            d.warning(
                n.pos,
                &at,
                format!(
                    "slow_call_threshold_ms ({}) is not below the binding's timeout_ms ({}); no call can be slow without timing out first",
                    policy.slow_call_threshold.map_or(0, |s| s.as_millis()),
                    timeout.as_millis()
                ),
                Some("timed-out calls already count as failures".into()),
                Some("lower slow_call_threshold_ms below timeout_ms, or remove it".into()),
            );
        }
    }
    if policy.minimum_calls > policy.sliding_window_size {
        let at = if c.has("minimum_calls") { "minimum_calls" } else { "sliding_window_size" };
        d.error(
            c.get(at).map_or(c.node.pos, |n| n.pos),
            &join(path, at),
            format!(
                "minimum_calls ({}) is greater than sliding_window_size ({})",
                policy.minimum_calls, policy.sliding_window_size
            ),
            Some(
                "the failure rate is judged over the window, which never holds more than sliding_window_size calls"
                    .into(),
            ),
            Some("lower minimum_calls to at most sliding_window_size".into()),
        );
    }
    (d.error_count() == errors_before).then_some(policy)
}

/// The rate limit from `rate_limit_per_second`, `rate_limit_burst` and `rate_limit_mode`
/// of binding `h` at `path`; `None` when there is none or it is wrong.
pub fn rate_limit(h: &Fields<'_>, path: &str, d: &mut Decoder<'_>) -> Option<RateLimitPolicy> {
    let per_second =
        h.get("rate_limit_per_second").and_then(|n| d.float_above(n, &join(path, "rate_limit_per_second"), 0.0));
    let burst = count(d, h, "rate_limit_burst", path, 1_000_000);
    let mode = h.get("rate_limit_mode").and_then(|n| {
        d.one_of(n, &join(path, "rate_limit_mode"), &["wait", "reject"])
            .map(|m| if m == "reject" { RateLimitMode::Reject } else { RateLimitMode::Wait })
    });
    if !h.has("rate_limit_per_second") {
        for key in ["rate_limit_burst", "rate_limit_mode"] {
            if h.has(key) {
                d.error(
                    h.key_pos(key),
                    &join(path, key),
                    format!("`{key}` has no effect without `rate_limit_per_second`"),
                    Some("the rate limit is off unless a rate is given".into()),
                    Some(format!("add `rate_limit_per_second: ...` to the binding, or remove `{key}`")),
                );
            }
        }
        return None;
    }
    let per_second = per_second?;
    Some(RateLimitPolicy {
        per_second,
        burst: burst.unwrap_or_else(|| default_rate_limit_burst(per_second)),
        mode: mode.unwrap_or_default(),
    })
}

/// `dead_letter_on`: a list of causes; `[]` dead-letters nothing.
pub fn dead_letter_on(node: &Node, path: &str, d: &mut Decoder<'_>) -> Option<DeadLetterPolicy> {
    let items = d.list(node, path)?;
    let names: Vec<&'static str> = DeadLetterCause::ALL.iter().map(|c| c.as_str()).collect();
    let mut causes = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        if let Some(cause) = d.one_of(item, &index(path, i), &names).and_then(DeadLetterCause::parse) {
            causes.push(cause);
        }
    }
    (causes.len() == items.len()).then(|| DeadLetterPolicy::of(causes))
}
