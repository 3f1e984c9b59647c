//! What a layer is, and what the layers of one binding share.
//!
//! A layer turns a handler into a handler that does one more thing (tower's
//! `Layer`, with our `Handler` as the service). Layers take and return
//! `Arc<dyn Handler>`: one virtual call per layer costs nanoseconds, and it
//! keeps every layer usable on its own, around any handler.

use std::fmt;
use std::sync::Arc;

use onex_core::Clock;

use super::stats::ResilienceStats;
use crate::handler::Handler;

/// Wraps a handler in one more concern.
pub trait HandlerLayer: fmt::Debug {
    /// The decorated handler.
    fn layer(&self, inner: Arc<dyn Handler>) -> Arc<dyn Handler>;
}

/// What every layer of one binding's stack shares: the binding's name (for
/// errors and logs), the injected clock and the binding's counters.
#[derive(Debug, Clone)]
pub struct StackContext {
    /// The handler binding's name, e.g. `api`.
    pub handler: Arc<str>,
    /// Time as the layers see it; use [`TokioClock`](super::TokioClock) so reads agree with tokio's sleeps.
    pub clock: Arc<dyn Clock>,
    /// Counters the layers update.
    pub stats: Arc<ResilienceStats>,
}

impl StackContext {
    /// A context for binding `handler` with fresh counters.
    pub fn new(handler: &str, clock: Arc<dyn Clock>) -> Self {
        Self { handler: Arc::from(handler), clock, stats: Arc::new(ResilienceStats::default()) }
    }
}
