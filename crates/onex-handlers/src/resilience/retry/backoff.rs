//! The delay before each retry: fixed or exponential, capped, with jitter.
//!
//! Kept apart from the retry loop so the schedule is a pure function of the
//! policy and a random source, testable as data: retry `n` (from 1) waits
//! `base * 2^(n-1)` (exponential) or `base` (fixed), capped at `max_delay`,
//! then jitter takes a uniform share off it: `d * (1 - jitter * r)`, `r` in
//! `[0, 1)`. Jitter only shortens, so `max_delay` is a hard cap and full
//! jitter (1.0) is the "full jitter" of the AWS Architecture Blog. Delays have
//! millisecond resolution, as the contract writes them.

use std::time::Duration;

use onex_core::contract::{Backoff, RetryPolicy};
use rand::Rng;

/// The delays of one call's retries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffSchedule {
    policy: RetryPolicy,
}

impl BackoffSchedule {
    pub fn new(policy: RetryPolicy) -> Self {
        Self { policy }
    }

    /// The longest delay the policy allows between attempts.
    pub fn max_delay(&self) -> Duration {
        self.policy.max_delay
    }

    /// The delay before retry `retry` (1 for the first retry), before jitter.
    pub fn capped_delay(&self, retry: u32) -> Duration {
        let p = &self.policy;
        let delay = match p.backoff {
            Backoff::Fixed => p.base_delay,
            Backoff::Exponential => {
                // 2^31 * any non-zero base is already past every sane cap; saturate instead of overflowing.
                let factor = 1_u32.checked_shl(retry.saturating_sub(1).min(31)).unwrap_or(u32::MAX);
                p.base_delay.checked_mul(factor).unwrap_or(p.max_delay)
            }
        };
        delay.min(p.max_delay)
    }

    /// The delay before retry `retry`, with jitter drawn from `rng`.
    pub fn delay(&self, retry: u32, rng: &mut impl Rng) -> Duration {
        let capped = self.capped_delay(retry);
        if self.policy.jitter <= 0.0 {
            return capped;
        }
        let r: f64 = rng.random();
        let ms = capped.as_secs_f64() * 1000.0 * (1.0 - self.policy.jitter * r);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "0 <= ms <= max_delay in ms")]
        Duration::from_millis(ms.floor().max(0.0) as u64)
    }

    /// Every retry delay of one call, in order (`max_retries` of them).
    pub fn delays<'r, R: Rng>(&self, rng: &'r mut R) -> impl Iterator<Item = Duration> + use<'r, R> {
        let schedule = *self;
        (1..=self.policy.max_retries).map(move |n| schedule.delay(n, rng))
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn policy(backoff: Backoff, max_retries: u32, jitter: f64) -> RetryPolicy {
        RetryPolicy {
            max_retries,
            backoff,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            jitter,
        }
    }

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().copied().map(Duration::from_millis).collect()
    }

    #[test]
    fn exponential_doubles_from_the_base_up_to_the_cap() {
        let s = BackoffSchedule::new(policy(Backoff::Exponential, 6, 0.0));
        let got: Vec<_> = s.delays(&mut StdRng::seed_from_u64(1)).collect();
        assert_eq!(got, ms(&[100, 200, 400, 800, 1000, 1000]));
    }

    #[test]
    fn fixed_waits_the_base_every_time() {
        let s = BackoffSchedule::new(policy(Backoff::Fixed, 4, 0.0));
        let got: Vec<_> = s.delays(&mut StdRng::seed_from_u64(1)).collect();
        assert_eq!(got, ms(&[100, 100, 100, 100]));
    }

    #[test]
    fn huge_retry_numbers_saturate_at_the_cap() {
        let s = BackoffSchedule::new(policy(Backoff::Exponential, 3, 0.0));
        assert_eq!(s.capped_delay(40), Duration::from_millis(1000));
        assert_eq!(s.capped_delay(u32::MAX), Duration::from_millis(1000));
    }

    #[test]
    fn jitter_stays_within_its_share_of_the_delay() {
        let s = BackoffSchedule::new(policy(Backoff::Exponential, 10, 0.25));
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..200 {
            for n in 1..=10 {
                let capped = s.capped_delay(n);
                let d = s.delay(n, &mut rng);
                assert!(d <= capped, "retry {n}: {d:?} > {capped:?}");
                assert!(d.as_secs_f64() >= capped.as_secs_f64() * 0.75 - 0.001, "retry {n}: {d:?} below 75 %");
            }
        }
    }

    #[test]
    fn a_seeded_rng_gives_the_same_delays_every_run() {
        let s = BackoffSchedule::new(policy(Backoff::Exponential, 5, 1.0));
        let a: Vec<_> = s.delays(&mut StdRng::seed_from_u64(42)).collect();
        let b: Vec<_> = s.delays(&mut StdRng::seed_from_u64(42)).collect();
        assert_eq!(a, b);
        let c: Vec<_> = s.delays(&mut StdRng::seed_from_u64(43)).collect();
        assert_ne!(a, c);
    }
}
