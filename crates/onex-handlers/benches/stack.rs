//! Overhead of the resilience stack around a no-op handler (DESIGN.md target: < 5 µs per call).
//!
//! Both cases run on a current-thread tokio runtime with the timer enabled (the
//! timeout layer needs it), so `block_on` costs the same on both sides and the
//! difference is the stack: deadline check, retry loop, closed breaker, a rate
//! limit that always has a token, and the per-attempt timeout.

#![allow(clippy::expect_used, reason = "benchmark set-up fails loudly")]

use std::num::NonZeroU32;
use std::sync::Arc;

use async_trait::async_trait;
use criterion::{Criterion, criterion_group, criterion_main};
use onex_core::contract::{HandlerBinding, HandlerType, RateLimitMode, RateLimitPolicy};
use onex_core::{CorrelationId, EnvelopeId, Operation, Timestamp};
use onex_handlers::resilience::{ResilientHandler, TokioClock};
use onex_handlers::{CallContext, Handler, HandlerDescription, HandlerError, HandlerHealth};
use serde_json::Value;

/// Answers at once with `null`.
#[derive(Debug)]
struct NoopHandler;

#[async_trait]
impl Handler for NoopHandler {
    fn handler_type(&self) -> &str {
        "noop"
    }

    fn describe(&self) -> HandlerDescription {
        HandlerDescription { handler_type: "noop".into(), operations: Vec::new() }
    }

    async fn execute(&self, _: &CallContext, _: &Operation, _: &Value) -> Result<Value, HandlerError> {
        Ok(Value::Null)
    }

    async fn health(&self) -> HandlerHealth {
        HandlerHealth { healthy: true, detail: String::new() }
    }

    async fn shutdown(&self) {}
}

fn binding() -> HandlerBinding {
    HandlerBinding {
        // High enough that no call ever waits: the bench measures the bookkeeping, not a wait.
        rate_limit: Some(RateLimitPolicy {
            per_second: 1e9,
            burst: NonZeroU32::new(1_000_000).expect("non-zero"),
            mode: RateLimitMode::Wait,
        }),
        ..HandlerBinding::new(HandlerType::Local, "noop")
    }
}

fn bench_stack(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("tokio runtime");
    let clock = Arc::new(TokioClock::new());
    let bare: Arc<dyn Handler> = Arc::new(NoopHandler);
    let stacked = rt.block_on(async { ResilientHandler::new(Arc::new(NoopHandler), &binding(), clock) });
    let op = Operation::from("noop.call");
    let payload = Value::Null;
    let ctx = CallContext {
        envelope_id: EnvelopeId(uuid::Uuid::from_u128(1)),
        correlation_id: CorrelationId(uuid::Uuid::from_u128(2)),
        attempt: 1,
        // Far in the future: every layer does its deadline arithmetic.
        deadline: Timestamp::from_unix_millis(4_102_444_800_000),
    };

    let mut group = c.benchmark_group("handler_stack");
    group.bench_function("bare_noop", |b| {
        b.iter(|| rt.block_on(bare.execute(&ctx, &op, &payload)));
    });
    group.bench_function("full_stack_noop", |b| {
        b.iter(|| rt.block_on(stacked.call(&ctx, &op, &payload)));
    });
    group.finish();
}

criterion_group!(benches, bench_stack);
criterion_main!(benches);
