//! Mock handlers for the resilience tests: scripted answers, counted calls, optional latency.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use onex_core::{Clock, ErrorClass, Operation};
use serde_json::{Value, json};

use crate::error::HandlerError;
use crate::handler::{CallContext, Handler, HandlerDescription, HandlerHealth};

/// One recorded call: when it started (monotonic) and the attempt number it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SeenCall {
    pub at: Duration,
    pub attempt: u32,
    pub remaining: Option<Duration>,
}

/// Answers from a script, then repeats the last answer; waits `latency` before each answer.
#[derive(Debug)]
pub(super) struct MockScripted {
    script: Mutex<VecDeque<Result<Value, HandlerError>>>,
    last: Mutex<Result<Value, HandlerError>>,
    latency: Duration,
    clock: Arc<dyn Clock>,
    calls: Mutex<Vec<SeenCall>>,
}

impl MockScripted {
    pub fn new(clock: Arc<dyn Clock>, script: impl IntoIterator<Item = Result<Value, HandlerError>>) -> Self {
        let script: VecDeque<_> = script.into_iter().collect();
        let last = script.back().cloned().unwrap_or(Ok(json!("ok")));
        Self {
            script: Mutex::new(script),
            last: Mutex::new(last),
            latency: Duration::ZERO,
            clock,
            calls: Mutex::default(),
        }
    }

    /// Always fails with a transient error.
    pub fn failing(clock: Arc<dyn Clock>) -> Self {
        Self::new(clock, [Err(transient())])
    }

    /// Always succeeds.
    pub fn ok(clock: Arc<dyn Clock>) -> Self {
        Self::new(clock, [Ok(json!("ok"))])
    }

    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    pub fn calls(&self) -> Vec<SeenCall> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    pub fn call_count(&self) -> usize {
        self.calls().len()
    }

    /// Replaces the remaining script and the repeated answer.
    pub fn answer(&self, result: Result<Value, HandlerError>) {
        if let (Ok(mut script), Ok(mut last)) = (self.script.lock(), self.last.lock()) {
            script.clear();
            *last = result;
        }
    }
}

pub(super) fn transient() -> HandlerError {
    HandlerError::Failed { class: ErrorClass::Transient, message: "connection reset".into() }
}

pub(super) fn permanent() -> HandlerError {
    HandlerError::Failed { class: ErrorClass::Permanent, message: "bad request".into() }
}

fn description() -> HandlerDescription {
    HandlerDescription { handler_type: "mock".into(), operations: Vec::new() }
}

#[async_trait]
impl Handler for MockScripted {
    fn handler_type(&self) -> &str {
        "mock"
    }

    fn describe(&self) -> HandlerDescription {
        description()
    }

    async fn execute(&self, ctx: &CallContext, _: &Operation, _: &Value) -> Result<Value, HandlerError> {
        let seen = SeenCall {
            at: self.clock.monotonic(),
            attempt: ctx.attempt,
            remaining: ctx.remaining(self.clock.as_ref()),
        };
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(seen);
        }
        let next = self.script.lock().ok().and_then(|mut s| s.pop_front());
        let answer = match next {
            Some(a) => a,
            None => self.last.lock().map(|l| l.clone()).unwrap_or(Ok(Value::Null)),
        };
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        answer
    }

    async fn health(&self) -> HandlerHealth {
        HandlerHealth { healthy: true, detail: "mock".into() }
    }

    async fn shutdown(&self) {}
}

/// Never answers.
#[derive(Debug, Default)]
pub(super) struct MockHung {
    calls: Mutex<u32>,
}

impl MockHung {
    pub fn call_count(&self) -> u32 {
        self.calls.lock().map(|c| *c).unwrap_or(0)
    }
}

#[async_trait]
impl Handler for MockHung {
    fn handler_type(&self) -> &str {
        "mock"
    }

    fn describe(&self) -> HandlerDescription {
        description()
    }

    async fn execute(&self, _: &CallContext, _: &Operation, _: &Value) -> Result<Value, HandlerError> {
        if let Ok(mut c) = self.calls.lock() {
            *c += 1;
        }
        std::future::pending().await
    }

    async fn health(&self) -> HandlerHealth {
        HandlerHealth { healthy: true, detail: "mock".into() }
    }

    async fn shutdown(&self) {}
}

/// Node A's handler in a two-hop call: spends `spend`, then calls node B's
/// stack with the same deadline (what the runtime does when A emits a command to B).
#[derive(Debug)]
pub(super) struct MockHop {
    pub spend: Duration,
    pub next: Arc<crate::resilience::ResilientHandler>,
}

#[async_trait]
impl Handler for MockHop {
    fn handler_type(&self) -> &str {
        "mock"
    }

    fn describe(&self) -> HandlerDescription {
        description()
    }

    async fn execute(&self, ctx: &CallContext, operation: &Operation, payload: &Value) -> Result<Value, HandlerError> {
        tokio::time::sleep(self.spend).await;
        // The command to B is a new envelope: first attempt, same absolute deadline.
        let to_b = CallContext { attempt: 1, ..ctx.clone() };
        self.next.call(&to_b, operation, payload).await.result
    }

    async fn health(&self) -> HandlerHealth {
        HandlerHealth { healthy: true, detail: "mock".into() }
    }

    async fn shutdown(&self) {}
}
