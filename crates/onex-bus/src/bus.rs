//! The `EventBus` trait: how the runtime talks to any message bus.
//!
//! The contract every backend keeps:
//! - `publish` returns only when the message is durable as far as the
//!   backend can tell (memory: enqueued for every subscribed group;
//!   Kafka: acknowledged by the broker). A caller may ack its input after that.
//! - Within one partition, deliveries arrive in publish order. Messages with
//!   the same key always land in the same partition.
//! - Each consumer group receives every message once per group; members of
//!   one group share the partitions.
//! - A delivery stays "in flight" until it is acked; un-acked deliveries are
//!   redelivered when their partition moves to another member (at-least-once).
//! - Every queue is bounded: a full queue makes `publish` wait (backpressure),
//!   it never drops and never grows without bound.

use std::fmt;

use async_trait::async_trait;
use bytes::Bytes;
use onex_core::TopicName;

use crate::error::BusError;

/// A message as the bus carries it: opaque bytes plus routing data.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    pub topic: TopicName,
    /// Partition key; messages with the same key keep their order.
    pub key: Option<Bytes>,
    pub payload: Bytes,
    /// Transport headers (Kafka headers; kept as-is by the memory bus).
    pub headers: Vec<(String, Bytes)>,
}

impl Message {
    /// A message with a key and no headers.
    pub fn new(topic: TopicName, key: Option<Bytes>, payload: Bytes) -> Self {
        Self { topic, key, payload, headers: Vec::new() }
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Payloads may be large or sensitive: show sizes, not bytes.
        f.debug_struct("Message")
            .field("topic", &self.topic)
            .field("key_len", &self.key.as_ref().map(Bytes::len))
            .field("payload_len", &self.payload.len())
            .field("headers", &self.headers.len())
            .finish()
    }
}

/// Names a consumer group.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConsumerGroup(pub String);

impl fmt::Display for ConsumerGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Identifies one delivery for `ack`. Plain data, so it can cross tasks.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Receipt {
    pub group: ConsumerGroup,
    pub topic: TopicName,
    pub partition: u32,
    pub offset: u64,
}

/// One message handed to one consumer-group member.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub message: Message,
    pub receipt: Receipt,
}

/// Whether the bus can be used right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusHealth {
    pub ready: bool,
    /// One line for operators, e.g. "memory bus: 3 topics, 1 group".
    pub detail: String,
}

/// Lag and in-flight work of one partition owned by a consumer of this process.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    /// The log end as best known; `None` before the broker reported one.
    pub high_watermark: Option<i64>,
    /// The next offset this consumer will read; `None` before the first delivery.
    pub position: Option<i64>,
    /// The offset committed (or stored for the next commit) for the group.
    pub committed: Option<i64>,
    /// Records not yet read: log end − position (0 when unknown).
    pub lag: i64,
    /// Records read but not yet finished (not acked).
    pub in_flight: usize,
    /// Whether fetching from this partition is paused (backpressure).
    pub paused: bool,
}

/// A stream of deliveries for one consumer-group member.
#[async_trait]
pub trait Subscription: Send + fmt::Debug {
    /// The next delivery, or `None` once the bus is closed and nothing is
    /// left queued for this member.
    ///
    /// # Cancel safety
    /// Cancel safe: if the future is dropped before completing, no delivery is lost.
    async fn next(&mut self) -> Option<Result<Delivery, BusError>>;

    /// Leaves the consumer group after committing what was acked (Kafka).
    /// Called once, after the last ack; dropping without it does the same in the background.
    async fn close(&mut self) {}
}

/// A message bus. See the module docs for the guarantees implementors keep.
#[async_trait]
pub trait EventBus: Send + Sync + fmt::Debug {
    /// Publishes one message; returns when it is durable.
    ///
    /// # Errors
    /// [`BusError::Closed`] after `close`; backend errors otherwise.
    ///
    /// # Cancel safety
    /// Not cancel safe: a cancelled publish may or may not have happened.
    async fn publish(&self, message: Message) -> Result<(), BusError>;

    /// Publishes several messages; returns when all are durable. Order is kept per partition.
    ///
    /// # Errors
    /// As [`EventBus::publish`]; on error some messages may have been published.
    async fn publish_batch(&self, messages: Vec<Message>) -> Result<(), BusError>;

    /// Joins `group` as a new member consuming `topics`.
    ///
    /// # Errors
    /// [`BusError::Closed`] after `close`; backend errors otherwise.
    async fn subscribe(&self, group: &ConsumerGroup, topics: &[TopicName]) -> Result<Box<dyn Subscription>, BusError>;

    /// Marks a delivery as done; its slot is freed and it will not be redelivered.
    ///
    /// # Errors
    /// [`BusError::UnknownReceipt`] if it was already acked or never delivered.
    async fn ack(&self, receipt: &Receipt) -> Result<(), BusError>;

    /// Current health.
    fn health(&self) -> BusHealth;

    /// Whether published [`Message::headers`] reach consumers (Kafka headers). When
    /// false the host skips building them.
    fn carries_headers(&self) -> bool {
        false
    }

    /// Lag per partition this process consumes; empty for buses without offsets.
    fn partitions(&self) -> Vec<PartitionLag> {
        Vec::new()
    }

    /// Stops accepting publishes and ends every subscription once its queue is empty.
    async fn close(&self);
}
