//! A bus client for tools and tests: send envelopes, read what comes back.
//!
//! It talks to the host only through the bus, exactly as a remote producer
//! would over Kafka: it publishes serialized envelopes and consumes
//! serialized responses and dead letters in its own consumer group. The CLI's
//! `dev` and `send` commands, `onex bench` and the end-to-end tests use it.

use std::sync::Arc;

use bytes::Bytes;
use onex_bus::{BusError, ConsumerGroup, EventBus, Message, Subscription};
use onex_core::{DeadLetter, Envelope, TopicName};

/// Something that came back on an output or DLQ topic.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A response envelope (success or error).
    Response { topic: TopicName, envelope: Box<Envelope> },
    /// A dead-letter record.
    DeadLetter { topic: TopicName, record: Box<DeadLetter> },
    /// Bytes on an output topic that are neither (another producer's data).
    Unreadable { topic: TopicName, reason: String },
}

/// Publishes envelopes and receives outcomes.
#[derive(Debug)]
pub struct Client {
    bus: Arc<dyn EventBus>,
    subscription: Box<dyn Subscription>,
    dlq_topics: Vec<TopicName>,
}

/// The sending half of a [`Client`]; cheap to clone and usable from another task,
/// so a producer never waits on the consumer reading outcomes (which could deadlock
/// once bounded queues fill).
#[derive(Debug, Clone)]
pub struct Sender {
    bus: Arc<dyn EventBus>,
}

impl Sender {
    /// Publishes `envelope` on `topic`, keyed by its partition key.
    ///
    /// # Errors
    /// The bus's publish error.
    pub async fn send(&self, topic: &TopicName, envelope: &Envelope) -> Result<(), BusError> {
        self.send_raw(topic, Some(Bytes::from(envelope.partition_key())), Bytes::from(envelope.to_json())).await
    }

    /// Publishes raw bytes (for example a malformed message).
    ///
    /// # Errors
    /// The bus's publish error.
    pub async fn send_raw(&self, topic: &TopicName, key: Option<Bytes>, payload: Bytes) -> Result<(), BusError> {
        self.bus.publish(Message::new(topic.clone(), key, payload)).await
    }
}

impl Client {
    /// Subscribes to `outputs` and `dlq` as consumer group `group`.
    /// Subscribe before sending: the group sees what is published after it joined.
    ///
    /// # Errors
    /// The bus's subscribe error.
    pub async fn connect(
        bus: Arc<dyn EventBus>,
        group: &str,
        outputs: &[TopicName],
        dlq: &[TopicName],
    ) -> Result<Self, BusError> {
        let mut topics: Vec<TopicName> = outputs.iter().chain(dlq).cloned().collect();
        topics.sort();
        topics.dedup();
        let subscription = bus.subscribe(&ConsumerGroup(group.to_owned()), &topics).await?;
        Ok(Self { bus, subscription, dlq_topics: dlq.to_vec() })
    }

    /// A sender that publishes on the same bus.
    pub fn sender(&self) -> Sender {
        Sender { bus: Arc::clone(&self.bus) }
    }

    /// The next outcome, acked; `None` when the bus closed.
    ///
    /// # Errors
    /// A bus error while receiving or acking.
    ///
    /// # Cancel safety
    /// Cancel safe, as the bus subscription is.
    pub async fn next(&mut self) -> Option<Result<Outcome, BusError>> {
        let delivery = match self.subscription.next().await? {
            Ok(d) => d,
            Err(e) => return Some(Err(e)),
        };
        if let Err(e) = self.bus.ack(&delivery.receipt).await {
            return Some(Err(e));
        }
        let topic = delivery.receipt.topic;
        let bytes = &delivery.message.payload;
        let outcome = if self.dlq_topics.contains(&topic) {
            match serde_json::from_slice::<DeadLetter>(bytes) {
                Ok(record) => Outcome::DeadLetter { topic, record: Box::new(record) },
                Err(e) => Outcome::Unreadable { topic, reason: e.to_string() },
            }
        } else {
            match Envelope::from_json(bytes) {
                Ok(envelope) => Outcome::Response { topic, envelope: Box::new(envelope) },
                Err(e) => Outcome::Unreadable { topic, reason: e.to_string() },
            }
        };
        Some(Ok(outcome))
    }
}
