//! The host's metrics: handles per node resolved at wiring time, so the
//! envelope path only bumps atomics (no name lookup, no label allocation,
//! no lock), and the values read from elsewhere at scrape time.
//!
//! Scrape-time values: totals the host already counts ([`HostStats`]), each
//! handler binding's resilience counters and breaker state, and the bus
//! (readiness, lag per partition). Reading them when scraped costs the
//! envelope path nothing.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use metrics::{Counter, Gauge};
use onex_bus::EventBus;
use onex_core::contract::DeadLetterCause;
use onex_core::{ErrorClass, ErrorCode, NodeId, RuntimeError};
use onex_handlers::ResilientHandler;

use super::catalog as names;
use super::handler::ResilienceMetrics;
use super::recorder::{counter, gauge, label};
use crate::HostStats;

/// Deliveries between being taken from the bus and their outcome being
/// published, in this process. A plain static, not a gauge: two relaxed
/// atomic operations per envelope, exported as a gauge at scrape time.
static IN_FLIGHT: AtomicI64 = AtomicI64::new(0);

/// Counts one delivery as in flight until it is dropped.
#[derive(Debug)]
pub(crate) struct InFlight(());

impl InFlight {
    pub(crate) fn enter() -> Self {
        IN_FLIGHT.fetch_add(1, Ordering::Relaxed);
        Self(())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Why a delivery is not a processable envelope.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Malformed {
    /// Not JSON, or not a valid envelope.
    InvalidEnvelope,
    /// A response envelope on a command topic (dead-lettered to prevent loops).
    ResponseOnCommandTopic,
}

/// One node's handles.
#[derive(Debug)]
struct NodeMetrics {
    received: Counter,
    success: Counter,
    error: Counter,
    /// Indexed like [`DeadLetterCause::ALL`].
    dead_lettered: Vec<Counter>,
}

/// Everything one host exports. Built by the wiring; nodes are indexed as in the host.
#[derive(Debug)]
pub(crate) struct HostMetrics {
    nodes: Vec<NodeMetrics>,
    invalid_envelope: Counter,
    response_on_command_topic: Counter,
    unroutable: Counter,
    invalid_dead_lettered: Counter,
    receive_errors: Counter,
    deliveries: Counter,
    publish_errors: Counter,
    in_flight: Gauge,
    bus_ready: Gauge,
    handlers: Vec<ResilienceMetrics>,
    /// Partitions exported at the last scrape, to zero the ones this process no longer consumes.
    partitions: Mutex<BTreeSet<(String, i32)>>,
}

impl HostMetrics {
    pub(crate) fn new<'a>(
        nodes: impl IntoIterator<Item = &'a NodeId>,
        handlers: impl IntoIterator<Item = &'a Arc<ResilientHandler>>,
    ) -> Self {
        let nodes = nodes.into_iter().map(|id| NodeMetrics::new(id.as_str())).collect();
        let malformed = |reason: &'static str| counter(names::ENVELOPES_MALFORMED, vec![label("reason", reason)]);
        Self {
            nodes,
            invalid_envelope: malformed("invalid_envelope"),
            response_on_command_topic: malformed("response_on_command_topic"),
            unroutable: counter(names::ENVELOPES_UNROUTABLE, vec![]),
            invalid_dead_lettered: counter(names::ENVELOPES_DEAD_LETTERED, vec![label("reason", "invalid_envelope")]),
            receive_errors: counter(names::BUS_RECEIVE_ERRORS, vec![]),
            deliveries: counter(names::BUS_DELIVERIES, vec![]),
            publish_errors: counter(names::BUS_PUBLISH_ERRORS, vec![]),
            in_flight: gauge(names::ENVELOPES_IN_FLIGHT, vec![]),
            bus_ready: gauge(names::BUS_READY, vec![]),
            handlers: handlers.into_iter().map(|h| ResilienceMetrics::new(h)).collect(),
            partitions: Mutex::new(BTreeSet::new()),
        }
    }

    /// An envelope was routed to `node`.
    pub(crate) fn received(&self, node: usize) {
        if let Some(n) = self.nodes.get(node) {
            n.received.increment(1);
        }
    }

    /// The response to an envelope of `node` (`None`: it reached no node) was published.
    pub(crate) fn processed(&self, node: Option<usize>, success: bool) {
        if let Some(n) = node.and_then(|i| self.nodes.get(i)) {
            let counter = if success { &n.success } else { &n.error };
            counter.increment(1);
        }
    }

    /// The dead-letter record of a failed envelope of `node` was published.
    pub(crate) fn dead_lettered(&self, node: Option<usize>, error: &RuntimeError) {
        // Only node outcomes carry a `dead_letter_on` decision: an envelope that reached no
        // node gets an error response, never a dead-letter record of this kind.
        let Some(n) = node.and_then(|i| self.nodes.get(i)) else { return };
        let cause = dead_letter_cause(error);
        if let Some(c) = DeadLetterCause::ALL.iter().position(|c| *c == cause).and_then(|i| n.dead_lettered.get(i)) {
            c.increment(1);
        }
    }

    /// The dead-letter record of a delivery that is not a processable envelope was published.
    pub(crate) fn invalid_dead_lettered(&self) {
        self.invalid_dead_lettered.increment(1);
    }

    pub(crate) fn malformed(&self, why: Malformed) {
        let counter = match why {
            Malformed::InvalidEnvelope => &self.invalid_envelope,
            Malformed::ResponseOnCommandTopic => &self.response_on_command_topic,
        };
        counter.increment(1);
    }

    pub(crate) fn unroutable(&self) {
        self.unroutable.increment(1);
    }

    pub(crate) fn receive_error(&self) {
        self.receive_errors.increment(1);
    }

    /// Brings every scrape-time value up to date.
    pub(crate) fn refresh(&self, stats: HostStats, bus: &dyn EventBus) {
        // `absolute` keeps the larger value, so two hosts in one process never move a counter back.
        self.deliveries.absolute(stats.received);
        self.publish_errors.absolute(stats.publish_errors);
        #[allow(clippy::cast_precision_loss, reason = "a gauge is an f64; in-flight counts are far below 2^52")]
        let in_flight = IN_FLIGHT.load(Ordering::Relaxed).max(0) as f64;
        self.in_flight.set(in_flight);
        self.bus_ready.set(if bus.health().ready { 1.0 } else { 0.0 });
        for h in &self.handlers {
            h.refresh();
        }
        self.refresh_partitions(bus);
    }

    fn refresh_partitions(&self, bus: &dyn EventBus) {
        let mut seen = self.partitions.lock().unwrap_or_else(PoisonError::into_inner);
        let mut now = BTreeSet::new();
        for p in bus.partitions() {
            let gauges = PartitionGauges::new(&p.topic, p.partition);
            #[allow(clippy::cast_precision_loss, reason = "a gauge is an f64; lags are far below 2^52")]
            let (lag, in_flight) = (p.lag as f64, p.in_flight as f64);
            gauges.lag.set(lag);
            gauges.in_flight.set(in_flight);
            gauges.paused.set(if p.paused { 1.0 } else { 0.0 });
            now.insert((p.topic, p.partition));
        }
        // A partition moved to another member (rebalance) keeps no stale lag here.
        for (topic, partition) in seen.difference(&now) {
            let gauges = PartitionGauges::new(topic, *partition);
            for g in [gauges.lag, gauges.in_flight, gauges.paused] {
                g.set(0.0);
            }
        }
        *seen = now;
    }
}

impl NodeMetrics {
    fn new(node: &str) -> Self {
        let processed = |outcome: &'static str| {
            counter(names::ENVELOPES_PROCESSED, vec![label("node", node), label("outcome", outcome)])
        };
        Self {
            received: counter(names::ENVELOPES_RECEIVED, vec![label("node", node)]),
            success: processed("success"),
            error: processed("error"),
            dead_lettered: DeadLetterCause::ALL
                .iter()
                .map(|c| {
                    counter(names::ENVELOPES_DEAD_LETTERED, vec![label("node", node), label("reason", c.as_str())])
                })
                .collect(),
        }
    }
}

/// Handles of one partition's gauges; looked up at scrape time only.
struct PartitionGauges {
    lag: Gauge,
    in_flight: Gauge,
    paused: Gauge,
}

impl PartitionGauges {
    fn new(topic: &str, partition: i32) -> Self {
        let labels = || vec![label("topic", topic), label("partition", partition.to_string())];
        Self {
            lag: gauge(names::BUS_CONSUMER_LAG, labels()),
            in_flight: gauge(names::BUS_IN_FLIGHT, labels()),
            paused: gauge(names::BUS_PARTITION_PAUSED, labels()),
        }
    }
}

/// The `dead_letter_on` cause of a failure, recovered from its code and
/// class the way `HandlerError::dead_letter_cause` derives it.
pub(crate) fn dead_letter_cause(error: &RuntimeError) -> DeadLetterCause {
    match error.code {
        ErrorCode::CircuitOpen => DeadLetterCause::CircuitOpen,
        ErrorCode::RateLimited => DeadLetterCause::RateLimited,
        ErrorCode::DeadlineExceeded => DeadLetterCause::DeadlineExceeded,
        _ => match error.class {
            ErrorClass::Transient => DeadLetterCause::RetriesExhausted,
            ErrorClass::Permanent => DeadLetterCause::Permanent,
            ErrorClass::Conflict => DeadLetterCause::Conflict,
            ErrorClass::Rejected => DeadLetterCause::Rejected,
        },
    }
}
