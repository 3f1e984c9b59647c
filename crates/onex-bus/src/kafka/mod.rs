//! The Kafka bus (rdkafka, librdkafka built from source).
//!
//! Guarantees, on top of the [`EventBus`](crate::EventBus) contract:
//! - `publish` returns once the broker acknowledged the record (acks=all and
//!   an idempotent producer by default), so acking an input after publishing
//!   its outcome never loses it.
//! - Each `subscribe` is one consumer-group member (cooperative-sticky
//!   assignment). An offset is committed only past envelopes whose outcome
//!   was acked ([`offsets`]), every `commit_interval`, on revoke and on close.
//! - A member holds at most `max_in_flight` deliveries and pauses fetching at
//!   `pause_threshold_percent` of that.
//! - The producer sits behind a circuit breaker; its state, broker
//!   reachability and per-partition lag are in [`KafkaBus::health`] and
//!   [`KafkaBus::partitions`].
//!
//! `docs/kafka.md` is the user guide.

mod breaker;
mod config;
mod consumer;
mod health;
mod inspect;
mod lag;
mod offsets;
mod producer;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use onex_core::TopicName;
use parking_lot::Mutex;
use rdkafka::ClientConfig;
use rdkafka::producer::Producer as _;
use tokio::sync::broadcast;
use tracing::info;

pub use breaker::BreakerState;
pub use config::{Acks, KafkaConfig, OffsetReset, Security};
pub use health::BusEvent;
pub use inspect::Record;

use crate::{BusError, BusHealth, ConsumerGroup, EventBus, Message, PartitionLag, Receipt, Subscription};
use consumer::{KafkaSubscription, Member};
use health::{ClientContext, Health};
use producer::Producer;

/// The Kafka event bus. Cheap to share behind an `Arc`.
pub struct KafkaBus {
    config: KafkaConfig,
    producer: Producer,
    health: Arc<Health>,
    members: Mutex<Vec<Weak<Member>>>,
    closed: Arc<Closed>,
}

/// Set once by `close`; wakes subscriptions waiting for records.
#[derive(Debug, Default)]
pub(crate) struct Closed {
    flag: AtomicBool,
    notify: tokio::sync::Notify,
}

impl Closed {
    pub(crate) fn is_set(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    fn set(&self) {
        self.flag.store(true, Ordering::Relaxed);
        self.notify.notify_waiters();
    }

    /// Completes once `close` is called (register before checking `is_set`).
    pub(crate) fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }
}

impl std::fmt::Debug for KafkaBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaBus")
            .field("bootstrap_servers", &self.config.bootstrap_servers)
            .field("producer", &self.producer)
            .finish_non_exhaustive()
    }
}

impl KafkaBus {
    /// Creates the producer and checks that a broker answers within `config.timeout`.
    ///
    /// # Errors
    /// [`BusError::Backend`] naming the addresses and what to check when no broker
    /// answers or librdkafka rejects a setting.
    pub async fn connect(config: KafkaConfig) -> Result<Self, BusError> {
        let health = Arc::new(Health::new());
        let client: rdkafka::producer::FutureProducer<ClientContext> = client_config(&config.producer_properties())
            .create_with_context(ClientContext { health: Arc::clone(&health) })
            .map_err(|e| BusError::Backend(format!("the Kafka producer settings were rejected: {e}")))?;
        let breaker =
            breaker::ProducerBreaker::new(config.circuit_breaker_threshold, config.circuit_breaker_reset_timeout);
        let bus = Self {
            producer: Producer::new(client, breaker, Arc::clone(&health)),
            health,
            members: Mutex::new(Vec::new()),
            closed: Arc::new(Closed::default()),
            config,
        };
        bus.check_reachable().await?;
        info!(bootstrap_servers = %bus.config.bootstrap_servers, "Connected to Kafka.");
        Ok(bus)
    }

    /// Asks a broker for cluster metadata; fails after `config.timeout`.
    async fn check_reachable(&self) -> Result<(), BusError> {
        let client = self.producer.client().clone();
        let timeout = self.config.timeout;
        let servers = self.config.bootstrap_servers.clone();
        let result = tokio::task::spawn_blocking(move || client.client().fetch_metadata(None, timeout))
            .await
            .map_err(|e| BusError::Backend(format!("metadata request task failed: {e}")))?;
        match result {
            Ok(_) => {
                self.health.broker_reachable();
                Ok(())
            }
            Err(e) => {
                let reason = format!(
                    "no Kafka broker at {servers} answered within {:.0}s ({e}); check runtime.event_bus.config.bootstrap_servers \
                     (or KAFKA_BOOTSTRAP_SERVERS) and that the broker is running and reachable from here",
                    timeout.as_secs_f64()
                );
                self.health.brokers_down(reason.clone());
                Err(BusError::Backend(reason))
            }
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &KafkaConfig {
        &self.config
    }

    /// Events (assignments, revokes, pause/resume, broker and breaker changes) from now on.
    pub fn events(&self) -> broadcast::Receiver<BusEvent> {
        self.health.subscribe()
    }

    /// The producer circuit breaker's state.
    pub fn producer_breaker(&self) -> BreakerState {
        self.producer.breaker_state()
    }

    /// Reads every record of `topic` from the beginning (DLQ inspection), at most
    /// `limit`, stopping once nothing new arrived for `idle`.
    ///
    /// # Errors
    /// [`BusError::Backend`] when the topic's metadata or records cannot be read.
    pub async fn read_topic(&self, topic: &TopicName, limit: usize, idle: Duration) -> Result<Vec<Record>, BusError> {
        let config = client_config(&self.config.consumer_properties("onex-inspect"));
        let topic = topic.clone();
        let timeout = self.config.timeout;
        tokio::task::spawn_blocking(move || inspect::read_topic(&config, &topic, limit, idle, timeout))
            .await
            .map_err(|e| BusError::Backend(format!("reading task failed: {e}")))?
    }

    fn live_members(&self) -> Vec<Arc<Member>> {
        let mut members = self.members.lock();
        members.retain(|m| m.strong_count() > 0);
        members.iter().filter_map(Weak::upgrade).collect()
    }
}

fn client_config(properties: &[(String, String)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    for (k, v) in properties {
        config.set(k, v);
    }
    config
}

#[async_trait]
impl EventBus for KafkaBus {
    async fn publish(&self, message: Message) -> Result<(), BusError> {
        if self.closed.is_set() {
            return Err(BusError::Closed);
        }
        self.producer.send(&message).await
    }

    async fn publish_batch(&self, messages: Vec<Message>) -> Result<(), BusError> {
        if self.closed.is_set() {
            return Err(BusError::Closed);
        }
        self.producer.send_all(&messages).await
    }

    async fn subscribe(&self, group: &ConsumerGroup, topics: &[TopicName]) -> Result<Box<dyn Subscription>, BusError> {
        if self.closed.is_set() {
            return Err(BusError::Closed);
        }
        let config = client_config(&self.config.consumer_properties(&group.0));
        let limits = (self.config.max_in_flight, self.config.pause_at());
        let member = Member::new(&config, group.clone(), topics, limits, Arc::clone(&self.health))
            .map_err(|e| BusError::Backend(format!("creating a Kafka consumer for group `{group}` failed: {e}")))?;
        self.members.lock().push(Arc::downgrade(&member));
        Ok(Box::new(KafkaSubscription { member, closed: Arc::clone(&self.closed) }))
    }

    async fn ack(&self, receipt: &Receipt) -> Result<(), BusError> {
        let members = self.live_members();
        let member = members.iter().find(|m| m.owns(receipt)).ok_or_else(|| BusError::UnknownReceipt {
            topic: receipt.topic.to_string(),
            partition: receipt.partition,
            offset: receipt.offset,
        })?;
        member.ack(receipt)
    }

    fn carries_headers(&self) -> bool {
        true
    }

    fn partitions(&self) -> Vec<PartitionLag> {
        self.live_members().iter().flat_map(|m| m.partitions()).collect()
    }

    fn health(&self) -> BusHealth {
        let up = self.health.is_up();
        let breaker = self.producer.breaker_state();
        let closed = self.closed.is_set();
        let partitions = self.partitions();
        let lag: i64 = partitions.iter().map(|p| p.lag).sum();
        let in_flight: usize = partitions.iter().map(|p| p.in_flight).sum();
        let mut detail = format!(
            "kafka bus at {}: brokers {}; producer circuit {}; {} partition(s) assigned, {in_flight} in flight, lag {lag}",
            self.config.bootstrap_servers,
            if up { "reachable" } else { "unreachable" },
            match breaker {
                BreakerState::Closed => "closed",
                BreakerState::Open => "open",
                BreakerState::HalfOpen => "half-open",
            },
            partitions.len(),
        );
        if let (false, Some(e)) = (up, self.health.last_error()) {
            detail.push_str(&format!("; last error: {e}"));
        }
        if closed {
            detail.push_str("; closed");
        }
        BusHealth { ready: up && breaker != BreakerState::Open && !closed, detail }
    }

    async fn close(&self) {
        self.closed.set();
        let client = self.producer.client().clone();
        let timeout = self.config.timeout;
        // Wait for records still queued in librdkafka.
        let _ = tokio::task::spawn_blocking(move || client.flush(timeout)).await;
    }
}
