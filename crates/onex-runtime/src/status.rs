//! [`RuntimeStatus`]: everything an operator asks of a running host, in one
//! serializable snapshot. The admin server's `/api/status`, the dashboard and
//! `onex status` all read it, and the health probes are derived from it.

use std::time::Duration;

use futures_util::future::join_all;
use onex_bus::PartitionLag;
use onex_handlers::resilience::{CallSummary, CircuitState};
use serde::Serialize;

use crate::activity::{InFlight, NodeCounts, Phase, RecentDeadLetter, RecentOutcome};
use crate::host::{HandlerEntry, HostStats, Shared};

/// How long one handler's health check may take before it counts as unhealthy.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// Envelopes in flight listed by id (the oldest); the count is always complete.
const IN_FLIGHT_LISTED: usize = 20;

/// A running host, as operators see it.
#[derive(Debug, Clone, Serialize)]
pub struct RuntimeStatus {
    pub runtime_id: String,
    pub version: &'static str,
    pub phase: Phase,
    /// `phase` is ready, the bus is ready and every handler is healthy.
    pub ready: bool,
    pub uptime_seconds: f64,
    pub stats: HostStats,
    pub in_flight: usize,
    /// The oldest envelopes in flight (at most 20).
    pub oldest_in_flight: Vec<InFlight>,
    pub bus: BusStatus,
    pub nodes: Vec<NodeStatus>,
    pub handlers: Vec<HandlerStatus>,
    /// Latest outcomes, newest first.
    pub recent: Vec<RecentOutcome>,
    /// Latest dead letters written, newest first.
    pub dead_letters: Vec<RecentDeadLetter>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BusStatus {
    pub ready: bool,
    pub detail: String,
    /// Lag per partition (Kafka); empty on the in-memory bus.
    pub partitions: Vec<PartitionLag>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    pub id: String,
    pub operations: Vec<String>,
    pub concurrency: usize,
    pub publish_topic: String,
    pub counts: NodeCounts,
}

#[derive(Debug, Clone, Serialize)]
pub struct HandlerStatus {
    pub name: String,
    pub handler_type: String,
    pub healthy: bool,
    pub detail: String,
    /// `closed`, `open` or `half_open`; `None` without a breaker.
    pub breaker: Option<&'static str>,
    /// Calls, errors, latency and last error (contract bindings only).
    pub calls: Option<CallSummary>,
}

impl Shared {
    /// The status now. Asks every handler for its health (at most 2 s each, all at once).
    pub(crate) async fn status(&self) -> RuntimeStatus {
        let handlers = join_all(self.handlers.iter().map(handler_status)).await;
        let bus = self.bus.health();
        let phase = self.activity.phase();
        let names = |i: usize| self.nodes.get(i).map(|n| n.id.to_string()).unwrap_or_default();
        let mut in_flight = self.activity.in_flight(&names);
        let count = in_flight.len();
        in_flight.truncate(IN_FLIGHT_LISTED);
        RuntimeStatus {
            runtime_id: self.runtime_id.clone(),
            version: env!("CARGO_PKG_VERSION"),
            phase,
            ready: phase == Phase::Ready && bus.ready && handlers.iter().all(|h| h.healthy),
            uptime_seconds: self.activity.uptime_seconds(),
            stats: self.stats(),
            in_flight: count,
            oldest_in_flight: in_flight,
            bus: BusStatus { ready: bus.ready, detail: bus.detail, partitions: self.bus.partitions() },
            nodes: self
                .nodes
                .iter()
                .map(|n| NodeStatus {
                    id: n.id.to_string(),
                    operations: n.node.operations().iter().map(ToString::to_string).collect(),
                    concurrency: n.concurrency.get(),
                    publish_topic: n.publish_topic.to_string(),
                    counts: n.counters.snapshot(),
                })
                .collect(),
            handlers,
            recent: self.activity.recent(),
            dead_letters: self.activity.recent_dead(),
        }
    }
}

async fn handler_status(entry: &HandlerEntry) -> HandlerStatus {
    let health = tokio::time::timeout(HEALTH_TIMEOUT, entry.handler.health()).await;
    let (healthy, detail) = match health {
        Ok(h) => (h.healthy, h.detail),
        Err(_) => (false, format!("health check did not answer within {}s", HEALTH_TIMEOUT.as_secs())),
    };
    let stack = entry.stack.as_ref();
    HandlerStatus {
        name: entry.name.clone(),
        handler_type: entry.handler.handler_type().to_owned(),
        healthy,
        detail,
        breaker: stack.and_then(|s| s.circuit_breaker()).map(|b| match b.state() {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
        }),
        calls: stack.map(|s| s.calls()),
    }
}
