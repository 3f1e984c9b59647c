use std::collections::HashSet;
use std::sync::Mutex;

use async_trait::async_trait;
use onex_bus::{BusError, BusHealth, ConsumerGroup, EventBus, Message, PartitionLag, Receipt, Subscription};
use onex_core::{ErrorClass, Timestamp, TopicName};
use onex_handlers::HandlerError;
use onex_handlers::resilience::CircuitState;

use super::catalog::{CATALOG, Kind};
use super::handler::state_value;
use super::host::dead_letter_cause;
use super::*;

/// The value of the series whose line starts with `series ` in `text`.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn catalog_names_are_unique_and_follow_prometheus_conventions() {
    let mut seen = HashSet::new();
    for (name, kind, help) in CATALOG {
        assert!(seen.insert(name), "{name} listed twice");
        assert!(name.starts_with("onex_") && !help.is_empty(), "{name}");
        assert_eq!(name.ends_with("_total"), *kind == Kind::Counter, "{name}: `_total` on counters and only there");
        if *kind == Kind::Histogram {
            assert!(name.ends_with("_seconds"), "{name}: histograms are durations in seconds");
        }
    }
}

#[test]
fn dead_letter_reasons_agree_with_the_handler_stack() {
    let failed = |class| HandlerError::Failed { class, message: "boom".into() };
    let errors = [
        failed(ErrorClass::Permanent),
        failed(ErrorClass::Conflict),
        failed(ErrorClass::Rejected),
        HandlerError::RetriesExhausted { attempts: 3, last: Box::new(failed(ErrorClass::Transient)) },
        HandlerError::Timeout { after: std::time::Duration::from_secs(1) },
        HandlerError::CircuitOpen { handler: "api".into() },
        HandlerError::RateLimited { handler: "api".into() },
        HandlerError::DeadlineExceeded { deadline: Timestamp::UNIX_EPOCH },
        HandlerError::RetryStopped {
            attempts: 2,
            cause: Box::new(HandlerError::CircuitOpen { handler: "api".into() }),
        },
    ];
    for e in errors {
        assert_eq!(dead_letter_cause(&e.to_runtime_error("http", "get")), e.dead_letter_cause(), "{e}");
    }
}

#[test]
fn breaker_state_values_grow_with_how_much_is_refused() {
    assert_eq!([CircuitState::Closed, CircuitState::HalfOpen, CircuitState::Open].map(state_value), [0.0, 1.0, 2.0]);
}

#[test]
fn build_info_is_always_rendered() {
    let text = render();
    let line = text.lines().find(|l| l.starts_with("onex_build_info{")).unwrap_or_default();
    assert!(line.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))), "{text}");
    assert!(line.ends_with(" 1"), "{line}");
}

/// A bus whose partitions the test sets.
#[derive(Debug, Default)]
struct LagBus {
    partitions: Mutex<Vec<PartitionLag>>,
}

#[async_trait]
impl EventBus for LagBus {
    async fn publish(&self, _: Message) -> Result<(), BusError> {
        Err(BusError::Closed)
    }
    async fn publish_batch(&self, _: Vec<Message>) -> Result<(), BusError> {
        Err(BusError::Closed)
    }
    async fn subscribe(&self, _: &ConsumerGroup, _: &[TopicName]) -> Result<Box<dyn Subscription>, BusError> {
        Err(BusError::Closed)
    }
    async fn ack(&self, _: &Receipt) -> Result<(), BusError> {
        Err(BusError::Closed)
    }
    fn health(&self) -> BusHealth {
        BusHealth { ready: false, detail: "test".into() }
    }
    fn partitions(&self) -> Vec<PartitionLag> {
        self.partitions.lock().unwrap().clone()
    }
    async fn close(&self) {}
}

fn lag(topic: &str, partition: i32, lag: i64, in_flight: usize, paused: bool) -> PartitionLag {
    PartitionLag {
        topic: topic.into(),
        partition,
        high_watermark: Some(100),
        position: Some(100 - lag),
        committed: None,
        lag,
        in_flight,
        paused,
    }
}

#[test]
fn partition_gauges_follow_the_bus_and_zero_partitions_no_longer_consumed() {
    let bus = LagBus::default();
    let metrics = HostMetrics::new([], []);
    let series =
        |name: &str, partition: u8| format!("{name}{{topic=\"onex.t.lagtest.cmd.v1\",partition=\"{partition}\"}}");

    *bus.partitions.lock().unwrap() =
        vec![lag("onex.t.lagtest.cmd.v1", 0, 7, 2, false), lag("onex.t.lagtest.cmd.v1", 1, 3, 0, true)];
    metrics.refresh(crate::HostStats::default(), &bus);
    let text = render();
    assert_eq!(value(&text, &series("onex_bus_consumer_lag", 0)), Some(7.0), "{text}");
    assert_eq!(value(&text, &series("onex_bus_in_flight", 0)), Some(2.0), "{text}");
    assert_eq!(value(&text, &series("onex_bus_partition_paused", 1)), Some(1.0), "{text}");
    assert_eq!(value(&text, "onex_bus_ready"), Some(0.0), "{text}");

    // Partition 1 moved to another member of the group.
    *bus.partitions.lock().unwrap() = vec![lag("onex.t.lagtest.cmd.v1", 0, 5, 1, false)];
    metrics.refresh(crate::HostStats::default(), &bus);
    let text = render();
    assert_eq!(value(&text, &series("onex_bus_consumer_lag", 0)), Some(5.0), "{text}");
    assert_eq!(value(&text, &series("onex_bus_consumer_lag", 1)), Some(0.0), "{text}");
    assert_eq!(value(&text, &series("onex_bus_partition_paused", 1)), Some(0.0), "{text}");
}
