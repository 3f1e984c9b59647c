//! What the Kafka clients tell us about the brokers, and the events a test
//! or an operator can watch (`KafkaBus::events`).

use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use rdkafka::client::ClientContext as RdClientContext;
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;
use tokio::sync::broadcast;
use tracing::{debug, warn};

use super::breaker::BreakerState;

/// Something that happened on the Kafka bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusEvent {
    /// Partitions were assigned to a consumer of `group`.
    Assigned { group: String, partitions: Vec<(String, i32)> },
    /// Partitions were taken away; `committed` is what was committed for them.
    Revoked { group: String, partitions: Vec<(String, i32)>, committed: Vec<(String, i32, i64)> },
    /// Fetching paused: `in_flight` deliveries reached the pause threshold.
    Paused { group: String, in_flight: usize },
    /// Fetching resumed: in-flight deliveries fell to `in_flight`.
    Resumed { group: String, in_flight: usize },
    /// No broker answers.
    BrokersDown { reason: String },
    /// A broker answers again.
    BrokersUp,
    /// The producer's circuit breaker changed state.
    ProducerBreaker(BreakerState),
}

/// Reachability of the brokers, shared by the producer and every consumer.
#[derive(Debug)]
pub(crate) struct Health {
    up: AtomicBool,
    last_error: Mutex<Option<String>>,
    events: broadcast::Sender<BusEvent>,
}

impl Health {
    pub(crate) fn new() -> Self {
        Self { up: AtomicBool::new(false), last_error: Mutex::new(None), events: broadcast::channel(1024).0 }
    }

    pub(crate) fn emit(&self, event: BusEvent) {
        // No receiver is fine: events are for whoever watches.
        let _ = self.events.send(event);
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<BusEvent> {
        self.events.subscribe()
    }

    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    pub(crate) fn last_error(&self) -> Option<String> {
        self.last_error.lock().clone()
    }

    pub(crate) fn broker_reachable(&self) {
        if !self.up.swap(true, Ordering::Relaxed) {
            self.emit(BusEvent::BrokersUp);
        }
    }

    pub(crate) fn brokers_down(&self, reason: String) {
        *self.last_error.lock() = Some(reason.clone());
        if self.up.swap(false, Ordering::Relaxed) {
            warn!(reason = %reason, "No Kafka broker answers; the bus is not ready.");
            self.emit(BusEvent::BrokersDown { reason });
        }
    }

    /// librdkafka statistics: the brokers it talks to and their states.
    pub(crate) fn observe_brokers(&self, stats: &Statistics) {
        // Entries with node id -1 are the bootstrap placeholders, not real brokers.
        let mut real = stats.brokers.values().filter(|b| b.nodeid >= 0).peekable();
        if real.peek().is_none() {
            return;
        }
        if real.any(|b| b.state == "UP") {
            self.broker_reachable();
        }
    }

    fn observe_error(&self, error: &KafkaError, reason: &str) {
        match error.rdkafka_error_code() {
            // "0/1 brokers are down" comes while a client is being destroyed: not an outage.
            Some(RDKafkaErrorCode::AllBrokersDown) if !reason.starts_with("0/") => {
                self.brokers_down(format!("all brokers are down: {reason}"));
            }
            _ => {
                debug!(error = %error, reason, "Kafka client error.");
                *self.last_error.lock() = Some(format!("{error}: {reason}"));
            }
        }
    }
}

/// The producer's librdkafka context: feeds [`Health`].
pub(crate) struct ClientContext {
    pub(crate) health: std::sync::Arc<Health>,
}

impl RdClientContext for ClientContext {
    fn stats(&self, statistics: Statistics) {
        self.health.observe_brokers(&statistics);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.health.observe_error(&error, reason);
    }

    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        log_rdkafka(level, fac, log_message);
    }
}

/// librdkafka's own log lines, through tracing.
pub(crate) fn log_rdkafka(level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
    use rdkafka::config::RDKafkaLogLevel as L;
    match level {
        L::Emerg | L::Alert | L::Critical | L::Error => warn!(target: "librdkafka", facility = fac, "{message}"),
        _ => debug!(target: "librdkafka", facility = fac, "{message}"),
    }
}
