//! Behaviour of the whole stack, on paused tokio time: no test sleeps.
//!
//! Every test runs under `start_paused = true`: tokio advances its clock only
//! when all tasks wait on timers, and [`TokioClock`] reads that clock, so the
//! delays, trips and refills asserted here are exact.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use onex_core::contract::{Backoff, DeadLetterCause, HandlerBinding, HandlerType, RateLimitMode, RateLimitPolicy};
use onex_core::{Clock, CorrelationId, EnvelopeId, ErrorClass, ErrorCode, Operation, Timestamp};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::{Value, json};
use uuid::Uuid;

use super::mock::{MockHop, MockHung, MockScripted, permanent, transient};
use super::{BackoffSchedule, CircuitState, ResilientHandler, TokioClock};
use crate::error::HandlerError;
use crate::handler::{CallContext, Handler};

/// 2025-01-01T00:00:00Z, so transition timestamps read well.
fn t0() -> Timestamp {
    Timestamp::from_unix_millis(1_735_689_600_000).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

fn clock() -> Arc<TokioClock> {
    Arc::new(TokioClock::starting_at(t0()))
}

/// A binding with seed 000 defaults, as the contract loader builds it.
fn binding() -> HandlerBinding {
    HandlerBinding::new(HandlerType::Http, "api")
}

fn no_jitter(b: &mut HandlerBinding) {
    b.retry_policy.jitter = 0.0;
}

fn stack(handler: Arc<dyn Handler>, b: &HandlerBinding, clock: &Arc<TokioClock>) -> ResilientHandler {
    ResilientHandler::with_rng(handler, b, Arc::clone(clock) as Arc<dyn Clock>, StdRng::seed_from_u64(7))
}

fn ctx(deadline: Option<Timestamp>) -> CallContext {
    CallContext {
        envelope_id: EnvelopeId(Uuid::from_u128(1)),
        correlation_id: CorrelationId(Uuid::from_u128(2)),
        attempt: 1,
        deadline,
    }
}

fn op() -> Operation {
    Operation::from("http.get")
}

/// Gaps between consecutive calls.
fn gaps(calls: &[super::mock::SeenCall]) -> Vec<Duration> {
    calls.windows(2).map(|w| w[1].at - w[0].at).collect()
}

// --- retry ---

#[tokio::test(start_paused = true)]
async fn retry_delays_for_a_seeded_jitter_are_exact() {
    let clock = clock();
    let mock = Arc::new(MockScripted::failing(clock.clone()));
    let b = binding(); // exponential, 100 ms base, 5 s cap, full jitter, 3 retries
    let out = stack(mock.clone(), &b, &clock).call(&ctx(None), &op(), &Value::Null).await;

    let expected: Vec<_> = BackoffSchedule::new(b.retry_policy).delays(&mut StdRng::seed_from_u64(7)).collect();
    assert_eq!(gaps(&mock.calls()), expected);
    assert_eq!(expected, [ms(96), ms(138), ms(342)], "the schedule of seed 7 under rand 0.9's StdRng");
    assert_eq!(out.attempts, 4);
}

#[tokio::test(start_paused = true)]
async fn exponential_retry_delays_double_up_to_the_cap() {
    let clock = clock();
    let mock = Arc::new(MockScripted::failing(clock.clone()));
    let mut b = binding();
    no_jitter(&mut b);
    b.retry_policy.max_retries = 5;
    b.retry_policy.max_delay = ms(500);
    b.circuit_breaker.failure_threshold = nz(10); // the default 5 would refuse the sixth attempt
    stack(mock.clone(), &b, &clock).call(&ctx(None), &op(), &Value::Null).await;
    assert_eq!(gaps(&mock.calls()), [ms(100), ms(200), ms(400), ms(500), ms(500)]);
}

#[tokio::test(start_paused = true)]
async fn fixed_retry_delays_are_all_the_base() {
    let clock = clock();
    let mock = Arc::new(MockScripted::failing(clock.clone()));
    let mut b = binding();
    no_jitter(&mut b);
    b.retry_policy.backoff = Backoff::Fixed;
    b.retry_policy.base_delay = ms(250);
    stack(mock.clone(), &b, &clock).call(&ctx(None), &op(), &Value::Null).await;
    assert_eq!(gaps(&mock.calls()), [ms(250), ms(250), ms(250)]);
}

#[tokio::test(start_paused = true)]
async fn retry_never_retries_permanent_errors() {
    let clock = clock();
    let mock = Arc::new(MockScripted::new(clock.clone(), [Err(permanent())]));
    let out = stack(mock.clone(), &binding(), &clock).call(&ctx(None), &op(), &Value::Null).await;
    assert_eq!(mock.call_count(), 1);
    assert_eq!(out.result, Err(permanent()));
    assert_eq!(out.attempts, 1);
    let err = out.result.err().unwrap_or_else(|| panic!("no error"));
    assert_eq!((err.attempts(), err.dead_letter_cause()), (1, DeadLetterCause::Permanent));
}

#[tokio::test(start_paused = true)]
async fn exhausted_retries_carry_the_attempt_count_and_the_last_error() {
    let clock = clock();
    let mock = Arc::new(MockScripted::failing(clock.clone()));
    let handler = stack(mock.clone(), &binding(), &clock);
    let out = handler.call(&ctx(None), &op(), &Value::Null).await;
    assert_eq!(out.result, Err(HandlerError::RetriesExhausted { attempts: 4, last: Box::new(transient()) }));
    let attempts: Vec<u32> = mock.calls().iter().map(|c| c.attempt).collect();
    assert_eq!(attempts, [1, 2, 3, 4], "each attempt is numbered for the handler");
    let err = out.result.err().unwrap_or_else(|| panic!("no error"));
    assert_eq!((err.attempts(), err.class(), err.code()), (4, ErrorClass::Transient, ErrorCode::HandlerExecution));
    assert_eq!(err.dead_letter_cause(), DeadLetterCause::RetriesExhausted);
    assert!(binding().dead_letter_on.applies_to(err.dead_letter_cause()), "exhausted envelopes are dead-lettered");
    assert_eq!(handler.stats().snapshot().retries, 3);
}

#[tokio::test(start_paused = true)]
async fn a_success_after_retries_reports_its_attempts() {
    let clock = clock();
    let mock = Arc::new(MockScripted::new(clock.clone(), [Err(transient()), Err(transient()), Ok(json!(1))]));
    let out = stack(mock, &binding(), &clock).call(&ctx(None), &op(), &Value::Null).await;
    assert_eq!((out.result, out.attempts), (Ok(json!(1)), 3));
}

#[tokio::test(start_paused = true)]
async fn a_permanent_error_after_a_retry_keeps_the_attempt_count() {
    let clock = clock();
    let mock = Arc::new(MockScripted::new(clock.clone(), [Err(transient()), Err(permanent())]));
    let out = stack(mock, &binding(), &clock).call(&ctx(None), &op(), &Value::Null).await;
    let err = out.result.err().unwrap_or_else(|| panic!("no error"));
    assert_eq!(err, HandlerError::RetryStopped { attempts: 2, cause: Box::new(permanent()) });
    assert_eq!(
        (err.attempts(), err.class(), err.dead_letter_cause()),
        (2, ErrorClass::Permanent, DeadLetterCause::Permanent)
    );
}

#[tokio::test(start_paused = true)]
async fn retries_stop_when_the_breaker_opens() {
    let clock = clock();
    let mock = Arc::new(MockScripted::failing(clock.clone()));
    let mut b = binding();
    b.retry_policy.max_retries = 10;
    b.circuit_breaker.failure_threshold = nz(2);
    let handler = stack(mock.clone(), &b, &clock);
    let out = handler.call(&ctx(None), &op(), &Value::Null).await;
    assert_eq!(mock.call_count(), 2, "the third attempt is refused by the open breaker");
    let err = out.result.err().unwrap_or_else(|| panic!("no error"));
    assert_eq!(
        err,
        HandlerError::RetryStopped {
            attempts: 3,
            cause: Box::new(HandlerError::CircuitOpen { handler: "api".into() })
        }
    );
    assert_eq!((err.code(), err.class()), (ErrorCode::CircuitOpen, ErrorClass::Rejected));
    assert_eq!(err.dead_letter_cause(), DeadLetterCause::CircuitOpen);
}

fn retry_later(after: Duration) -> HandlerError {
    HandlerError::RetryLater { message: "http 429 Too Many Requests".into(), retry_after: after }
}

#[tokio::test(start_paused = true)]
async fn retry_waits_for_a_retry_after_longer_than_its_own_delay() {
    let clock = clock();
    let mock = Arc::new(MockScripted::new(clock.clone(), [Err(retry_later(ms(1500))), Ok(json!(1))]));
    let mut b = binding();
    no_jitter(&mut b); // own first delay: 100 ms
    let out = stack(mock.clone(), &b, &clock).call(&ctx(None), &op(), &Value::Null).await;
    assert_eq!(gaps(&mock.calls()), [ms(1500)]);
    assert_eq!((out.result, out.attempts), (Ok(json!(1)), 2));
}

#[tokio::test(start_paused = true)]
async fn retry_keeps_its_own_delay_when_retry_after_is_shorter() {
    let clock = clock();
    let mock = Arc::new(MockScripted::new(clock.clone(), [Err(retry_later(ms(10))), Ok(json!(1))]));
    let mut b = binding();
    no_jitter(&mut b);
    stack(mock.clone(), &b, &clock).call(&ctx(None), &op(), &Value::Null).await;
    assert_eq!(gaps(&mock.calls()), [ms(100)]);
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_capped_by_max_delay() {
    let clock = clock();
    let mock = Arc::new(MockScripted::new(clock.clone(), [Err(retry_later(ms(3_600_000))), Ok(json!(1))]));
    let mut b = binding();
    no_jitter(&mut b); // max_delay 5 s
    stack(mock.clone(), &b, &clock).call(&ctx(None), &op(), &Value::Null).await;
    assert_eq!(gaps(&mock.calls()), [ms(5000)]);
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_past_the_deadline_stops_at_once() {
    let clock = clock();
    let mock = Arc::new(MockScripted::new(clock.clone(), [Err(retry_later(ms(2000))), Ok(json!(1))]));
    let mut b = binding();
    no_jitter(&mut b);
    let deadline = t0().saturating_add(ms(1000));
    let out = stack(mock.clone(), &b, &clock).call(&ctx(Some(deadline)), &op(), &Value::Null).await;
    assert_eq!(mock.call_count(), 1);
    assert_eq!(clock.monotonic(), ms(0), "no sleep into the deadline");
    let err = out.result.err().unwrap_or_else(|| panic!("no error"));
    assert_eq!((err.code(), err.attempts()), (ErrorCode::DeadlineExceeded, 1));
}

// --- deadline ---

#[tokio::test(start_paused = true)]
async fn an_expired_deadline_fails_fast_without_calling_the_handler() {
    let clock = clock();
    let mock = Arc::new(MockScripted::ok(clock.clone()));
    let handler = stack(mock.clone(), &binding(), &clock);
    let out = handler.call(&ctx(Some(t0())), &op(), &Value::Null).await;
    assert_eq!(out.result, Err(HandlerError::DeadlineExceeded { deadline: t0() }));
    assert_eq!(out.attempts, 0);
    assert_eq!(mock.call_count(), 0);
    assert_eq!(handler.stats().snapshot().deadline_exceeded, 1);
}

#[tokio::test(start_paused = true)]
async fn the_deadline_caps_total_retry_time() {
    let clock = clock();
    let mock = Arc::new(MockScripted::failing(clock.clone()));
    let mut b = binding();
    no_jitter(&mut b);
    let deadline = t0().saturating_add(ms(250));
    let out = stack(mock.clone(), &b, &clock).call(&ctx(Some(deadline)), &op(), &Value::Null).await;
    // Attempt 1 at 0 ms, attempt 2 at 100 ms; the next delay (200 ms) would end past 250 ms.
    assert_eq!(mock.calls().iter().map(|c| c.at).collect::<Vec<_>>(), [ms(0), ms(100)]);
    assert_eq!(clock.monotonic(), ms(100), "no retry sleep past the deadline");
    let err = out.result.err().unwrap_or_else(|| panic!("no error"));
    assert_eq!((err.code(), err.attempts()), (ErrorCode::DeadlineExceeded, 2));
    assert_eq!(out.attempts, 2);
}

#[tokio::test(start_paused = true)]
async fn the_deadline_propagates_across_two_hops() {
    let clock = clock();
    let deadline = t0().saturating_add(ms(1000));
    // Node B answers; its handler sees what is left of A's budget.
    let b_handler = Arc::new(MockScripted::ok(clock.clone()));
    let node_b = Arc::new(stack(b_handler.clone(), &binding(), &clock));
    let node_a = stack(Arc::new(MockHop { spend: ms(300), next: node_b }), &binding(), &clock);
    let out = node_a.call(&ctx(Some(deadline)), &op(), &Value::Null).await;
    assert_eq!(out.result, Ok(json!("ok")));
    assert_eq!(b_handler.calls()[0].remaining, Some(ms(700)), "B gets the remaining budget, not a fresh one");

    // Node B hangs: the whole chain ends at A's deadline, not after B's 30 s timeout.
    let clock = self::clock();
    let deadline = t0().saturating_add(ms(1000));
    let node_b = Arc::new(stack(Arc::new(MockHung::default()), &binding(), &clock));
    let node_a = stack(Arc::new(MockHop { spend: ms(300), next: node_b }), &binding(), &clock);
    let out = node_a.call(&ctx(Some(deadline)), &op(), &Value::Null).await;
    assert_eq!(clock.monotonic(), ms(1000));
    assert_eq!(out.result.err().map(|e| e.code()), Some(ErrorCode::DeadlineExceeded));
}

// --- timeout ---

#[tokio::test(start_paused = true)]
async fn a_hung_handler_times_out_after_timeout_ms() {
    let clock = clock();
    let hung = Arc::new(MockHung::default());
    let mut b = binding();
    b.retry_policy.max_retries = 0;
    b.timeout = ms(2000);
    let handler = stack(hung.clone(), &b, &clock);
    let out = handler.call(&ctx(None), &op(), &Value::Null).await;
    assert_eq!(clock.monotonic(), ms(2000));
    let timeout = HandlerError::Timeout { after: ms(2000) };
    assert_eq!(out.result, Err(HandlerError::RetriesExhausted { attempts: 1, last: Box::new(timeout) }));
    assert_eq!(hung.call_count(), 1);
    assert_eq!(handler.stats().snapshot().timeouts, 1);
}

#[tokio::test(start_paused = true)]
async fn timed_out_attempts_are_retried() {
    let clock = clock();
    let hung = Arc::new(MockHung::default());
    let mut b = binding();
    no_jitter(&mut b);
    b.timeout = ms(1000);
    let out = stack(hung.clone(), &b, &clock).call(&ctx(None), &op(), &Value::Null).await;
    assert_eq!(hung.call_count(), 4);
    assert_eq!(clock.monotonic(), ms(4 * 1000 + 100 + 200 + 400));
    assert_eq!(out.result.err().map(|e| e.code()), Some(ErrorCode::Timeout));
}

// --- circuit breaker ---

/// One envelope with no retries, so each call is one breaker call.
async fn once(handler: &ResilientHandler) -> Result<Value, HandlerError> {
    handler.call(&ctx(None), &op(), &Value::Null).await.result
}

fn single_attempt() -> HandlerBinding {
    let mut b = binding();
    b.retry_policy.max_retries = 0;
    b
}

#[tokio::test(start_paused = true)]
async fn breaker_opens_after_five_consecutive_failures_and_recovers_through_half_open() {
    let clock = clock();
    let mock = Arc::new(MockScripted::failing(clock.clone()));
    let handler = stack(mock.clone(), &single_attempt(), &clock);
    let breaker = handler.circuit_breaker().cloned().unwrap_or_else(|| panic!("breaker disabled"));
    for _ in 0..4 {
        let _ = once(&handler).await;
        assert_eq!(breaker.state(), CircuitState::Closed);
    }
    let _ = once(&handler).await;
    assert_eq!(breaker.state(), CircuitState::Open);

    // Open: refused without calling the handler.
    assert_eq!(once(&handler).await, Err(HandlerError::CircuitOpen { handler: "api".into() }));
    assert_eq!(mock.call_count(), 5);
    tokio::time::advance(ms(29_999)).await;
    assert!(matches!(once(&handler).await, Err(HandlerError::CircuitOpen { .. })));

    // After wait_in_open (30 s), one probe; it succeeds and the breaker closes.
    tokio::time::advance(ms(1)).await;
    mock.answer(Ok(json!("back")));
    assert_eq!(once(&handler).await, Ok(json!("back")));
    let snap = breaker.snapshot();
    assert_eq!(snap.state, CircuitState::Closed);
    assert_eq!(snap.rejected_calls, 2);
    let log: Vec<_> = snap.transitions.iter().map(|t| (t.from, t.to, t.at)).collect();
    assert_eq!(
        log,
        [
            (CircuitState::Closed, CircuitState::Open, t0()),
            (CircuitState::Open, CircuitState::HalfOpen, t0().saturating_add(ms(30_000))),
            (CircuitState::HalfOpen, CircuitState::Closed, t0().saturating_add(ms(30_000))),
        ]
    );
    assert_eq!(handler.stats().snapshot().circuit_rejected, 2);
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_reopens_the_breaker_for_another_wait() {
    let clock = clock();
    let mock = Arc::new(MockScripted::failing(clock.clone()));
    let handler = stack(mock.clone(), &single_attempt(), &clock);
    for _ in 0..5 {
        let _ = once(&handler).await;
    }
    tokio::time::advance(ms(30_000)).await;
    let _ = once(&handler).await; // the probe fails
    let breaker = handler.circuit_breaker().cloned().unwrap_or_else(|| panic!("breaker disabled"));
    assert_eq!(breaker.state(), CircuitState::Open);
    tokio::time::advance(ms(29_000)).await;
    assert!(
        matches!(once(&handler).await, Err(HandlerError::CircuitOpen { .. })),
        "the wait restarts at the failed probe"
    );
    assert_eq!(mock.call_count(), 6);
}

#[tokio::test(start_paused = true)]
async fn half_open_admits_exactly_the_permitted_probes() {
    let clock = clock();
    let mock = Arc::new(MockScripted::failing(clock.clone()).with_latency(ms(1000)));
    let mut b = single_attempt();
    b.circuit_breaker.permitted_calls_in_half_open = nz(3);
    b.timeout = ms(5000);
    let handler = stack(mock.clone(), &b, &clock);
    for _ in 0..5 {
        let _ = once(&handler).await;
    }
    tokio::time::advance(ms(30_000)).await;
    mock.answer(Ok(json!("back")));
    // join! polls in order: the first three take the probe slots, the fourth finds none.
    let (a, b2, c, d) = tokio::join!(once(&handler), once(&handler), once(&handler), once(&handler));
    assert_eq!([a, b2, c], [Ok(json!("back")), Ok(json!("back")), Ok(json!("back"))]);
    assert_eq!(d, Err(HandlerError::CircuitOpen { handler: "api".into() }));
    assert_eq!(mock.call_count(), 5 + 3);
    let breaker = handler.circuit_breaker().cloned().unwrap_or_else(|| panic!("breaker disabled"));
    assert_eq!(breaker.state(), CircuitState::Closed, "three successful probes close it");
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_probe_gives_its_half_open_slot_back() {
    let clock = clock();
    let mock = Arc::new(MockScripted::failing(clock.clone()).with_latency(ms(1000)));
    let handler = stack(mock.clone(), &single_attempt(), &clock);
    for _ in 0..5 {
        let _ = once(&handler).await;
    }
    tokio::time::advance(ms(30_000)).await;
    mock.answer(Ok(json!("back")));
    // The caller gives up on the only probe after 10 ms: its future is dropped mid-call.
    assert!(tokio::time::timeout(ms(10), once(&handler)).await.is_err());
    assert_eq!(once(&handler).await, Ok(json!("back")), "the next call gets the probe slot");
    assert_eq!(handler.circuit_breaker().map(|b| b.state()), Some(CircuitState::Closed));
}

#[tokio::test(start_paused = true)]
async fn failure_rate_over_the_window_trips_the_breaker() {
    let clock = clock();
    let mock = Arc::new(MockScripted::ok(clock.clone()));
    let mut b = single_attempt();
    b.circuit_breaker.failure_threshold = nz(100);
    b.circuit_breaker.failure_rate_threshold = Some(50.0);
    b.circuit_breaker.sliding_window_size = nz(10);
    b.circuit_breaker.minimum_calls = nz(6);
    let handler = stack(mock.clone(), &b, &clock);
    let breaker = handler.circuit_breaker().cloned().unwrap_or_else(|| panic!("breaker disabled"));
    // Two failures in a row, then alternating: 4 of 6 failed, but only after the 6th call is the rate judged.
    for (i, fail) in [true, true, false, true, false].into_iter().enumerate() {
        mock.answer(if fail { Err(transient()) } else { Ok(json!(i)) });
        let _ = once(&handler).await;
        assert_eq!(breaker.state(), CircuitState::Closed, "call {i}: below minimum_calls");
    }
    mock.answer(Err(transient()));
    let _ = once(&handler).await;
    let snap = breaker.snapshot();
    assert_eq!(snap.state, CircuitState::Open);
    assert_eq!(snap.transitions.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn permanent_errors_do_not_trip_the_breaker() {
    let clock = clock();
    let mock = Arc::new(MockScripted::new(clock.clone(), [Err(permanent())]));
    let handler = stack(mock, &single_attempt(), &clock);
    for _ in 0..20 {
        let _ = once(&handler).await;
    }
    assert_eq!(handler.circuit_breaker().map(|b| b.state()), Some(CircuitState::Closed));
}

#[tokio::test(start_paused = true)]
async fn slow_calls_count_as_failures() {
    let clock = clock();
    let mock = Arc::new(MockScripted::ok(clock.clone()).with_latency(ms(600)));
    let mut b = single_attempt();
    b.circuit_breaker.failure_threshold = nz(2);
    b.circuit_breaker.slow_call_threshold = Some(ms(500));
    let handler = stack(mock, &b, &clock);
    assert_eq!(once(&handler).await, Ok(json!("ok")), "a slow call still returns its result");
    let _ = once(&handler).await;
    assert_eq!(handler.circuit_breaker().map(|b| b.state()), Some(CircuitState::Open));
}

#[tokio::test(start_paused = true)]
async fn breaker_trips_within_ten_seconds_of_the_first_failure_with_default_settings() {
    // Seed 000 success metric: "circuit breaker trigger < 10 s". Defaults everywhere
    // (3 retries, exponential from 100 ms, full jitter, 5 consecutive failures), and a
    // dependency that takes a full second to fail each call; envelopes arrive one at a time.
    let clock = clock();
    let mock = Arc::new(MockScripted::failing(clock.clone()).with_latency(ms(1000)));
    let handler = stack(mock.clone(), &binding(), &clock);
    let breaker = handler.circuit_breaker().cloned().unwrap_or_else(|| panic!("breaker disabled"));
    let mut envelopes = 0;
    while breaker.state() == CircuitState::Closed {
        let _ = handler.call(&ctx(None), &op(), &Value::Null).await;
        envelopes += 1;
    }
    let first_failure = t0().saturating_add(ms(1000));
    let opened = breaker.snapshot().transitions[0].at;
    let trip = first_failure.until(opened);
    assert!(trip < Duration::from_secs(10), "tripped {trip:?} after the first failure");
    eprintln!("breaker tripped {trip:?} after the first failure");
    assert_eq!((envelopes, mock.call_count()), (2, 5));
}

// --- rate limit ---

fn rate_limited(per_second: f64, burst: u32, mode: RateLimitMode) -> HandlerBinding {
    let mut b = binding();
    b.rate_limit = Some(RateLimitPolicy { per_second, burst: nz(burst), mode });
    b
}

#[tokio::test(start_paused = true)]
async fn rate_limit_holds_its_rate_over_a_simulated_minute() {
    let clock = clock();
    let mock = Arc::new(MockScripted::ok(clock.clone()));
    let handler = stack(mock.clone(), &rate_limited(10.0, 5, RateLimitMode::Wait), &clock);
    while clock.monotonic() < Duration::from_secs(60) {
        assert_eq!(once(&handler).await, Ok(json!("ok")));
    }
    let calls = mock.calls();
    let in_minute = calls.iter().filter(|c| c.at < Duration::from_secs(60)).count();
    // 10/s for 60 s plus the initial burst of 5 (of which the first is one of the 600).
    assert_eq!(in_minute, 604);
    // After the burst, no second ever holds more than 10 calls.
    for second in 1..60 {
        let n = calls
            .iter()
            .filter(|c| c.at >= Duration::from_secs(second) && c.at < Duration::from_secs(second + 1))
            .count();
        assert_eq!(n, 10, "second {second}");
    }
    assert_eq!(handler.stats().snapshot().rate_limited, 0);
}

#[tokio::test(start_paused = true)]
async fn rate_limit_reject_mode_refuses_without_waiting() {
    let clock = clock();
    let mock = Arc::new(MockScripted::ok(clock.clone()));
    let handler = stack(mock.clone(), &rate_limited(1.0, 2, RateLimitMode::Reject), &clock);
    assert!(once(&handler).await.is_ok());
    assert!(once(&handler).await.is_ok());
    let out = handler.call(&ctx(None), &op(), &Value::Null).await;
    assert_eq!(out.result, Err(HandlerError::RateLimited { handler: "api".into() }));
    assert_eq!(out.attempts, 1, "a refusal is not retried");
    assert_eq!(clock.monotonic(), Duration::ZERO);
    tokio::time::advance(ms(1000)).await;
    assert!(once(&handler).await.is_ok(), "one token back after a second");
    assert_eq!(mock.call_count(), 3);
    assert_eq!(handler.stats().snapshot().rate_limited, 1);
    assert_eq!(
        handler.circuit_breaker().map(|b| b.snapshot().calls_in_window),
        Some(3),
        "refusals are not breaker calls"
    );
}

#[tokio::test(start_paused = true)]
async fn rate_limit_wait_is_bounded_by_the_deadline() {
    let clock = clock();
    let mock = Arc::new(MockScripted::ok(clock.clone()));
    let handler = stack(mock.clone(), &rate_limited(1.0, 1, RateLimitMode::Wait), &clock);
    assert!(once(&handler).await.is_ok());
    // The next token is 1 s away; a 500 ms budget cannot wait for it.
    let out = handler.call(&ctx(Some(t0().saturating_add(ms(500)))), &op(), &Value::Null).await;
    assert_eq!(out.result.err().map(|e| e.code()), Some(ErrorCode::RateLimited));
    assert_eq!(clock.monotonic(), Duration::ZERO);
    // A 2 s budget waits for it.
    let out = handler.call(&ctx(Some(t0().saturating_add(ms(2000)))), &op(), &Value::Null).await;
    assert!(out.result.is_ok());
    assert_eq!(clock.monotonic(), ms(1000));
    assert_eq!(handler.stats().snapshot().rate_limit_waits, 1);
}

// --- composition ---

#[tokio::test(start_paused = true)]
async fn a_disabled_breaker_is_left_out_of_the_stack() {
    let clock = clock();
    let mut b = single_attempt();
    b.circuit_breaker.enabled = false;
    let handler = stack(Arc::new(MockScripted::failing(clock.clone())), &b, &clock);
    for _ in 0..10 {
        assert!(matches!(once(&handler).await, Err(HandlerError::RetriesExhausted { .. })));
    }
    assert!(handler.circuit_breaker().is_none());
}

#[tokio::test(start_paused = true)]
async fn health_reports_an_open_breaker() {
    let clock = clock();
    let handler = stack(Arc::new(MockScripted::failing(clock.clone())), &single_attempt(), &clock);
    assert!(handler.health().await.healthy);
    for _ in 0..5 {
        let _ = once(&handler).await;
    }
    let health = handler.health().await;
    assert!(!health.healthy && health.detail.contains("circuit breaker open"), "{health:?}");
}
