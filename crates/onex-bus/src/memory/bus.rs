//! [`MemoryBus`]: the registries, the publish path and the [`EventBus`] impl.
//!
//! Publishing takes the topic registry's read lock just long enough to find
//! (or, once per topic, create) the topic, then works under that one
//! partition's lock: check every group's queue has room, assign the offset,
//! record the history entry, enqueue for each group, wake each owner. If a
//! queue is full the publisher registers on the partition's `space` notify
//! while still holding the lock, so the ack that frees a slot cannot slip
//! between its check and its wait, and then waits with no lock held.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use onex_core::TopicName;
use tokio::sync::broadcast;

use super::config::MemoryBusConfig;
use super::group::Group;
use super::history::{History, HistoryEntry};
use super::queue::Ack;
use super::stats::{GroupPartitionStats, MemoryBusStats, TopicStats};
use super::subscription::MemorySubscription;
use super::sync::{lock, read, write};
use super::topic::Topic;
use crate::bus::{BusHealth, ConsumerGroup, EventBus, Message, Receipt, Subscription};
use crate::error::BusError;

/// The in-process event bus: bounded, ordered per partition, at-least-once.
///
/// Cloning is cheap and every clone is the same bus. See the
/// [module docs](super) for the guarantees.
///
/// ```
/// use bytes::Bytes;
/// use onex_bus::{ConsumerGroup, EventBus, MemoryBus, MemoryBusConfig, Message};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let bus = MemoryBus::new(MemoryBusConfig::default());
/// let topic: onex_core::TopicName = "onex.acme.orders.cmd.v1".parse()?;
/// let group = ConsumerGroup("orders".to_owned());
///
/// // Subscribe first: a group only sees messages published after it joined.
/// let mut subscription = bus.subscribe(&group, &[topic.clone()]).await?;
/// bus.publish(Message::new(topic, Some(Bytes::from("order-1")), Bytes::from("{}"))).await?;
///
/// if let Some(delivery) = subscription.next().await.transpose()? {
///     bus.ack(&delivery.receipt).await?;
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct MemoryBus {
    shared: Arc<Shared>,
}

pub(super) struct Shared {
    config: MemoryBusConfig,
    partitions: u32,
    topics: RwLock<HashMap<TopicName, Arc<Topic>>>,
    groups: Mutex<HashMap<ConsumerGroup, Arc<Group>>>,
    history: History,
    closed: AtomicBool,
}

impl MemoryBus {
    /// An empty bus; topics and groups appear as they are used.
    pub fn new(config: MemoryBusConfig) -> Self {
        // A partition index is a `u32` in receipts; more partitions than that
        // could never be addressed, let alone allocated.
        let partitions = u32::try_from(config.partitions.get()).unwrap_or(u32::MAX);
        Self {
            shared: Arc::new(Shared {
                config,
                partitions,
                topics: RwLock::new(HashMap::new()),
                groups: Mutex::new(HashMap::new()),
                history: History::new(config.history),
                closed: AtomicBool::new(false),
            }),
        }
    }

    /// The settings this bus was built with.
    pub fn config(&self) -> &MemoryBusConfig {
        &self.shared.config
    }

    /// The last `history` messages published, oldest first, all topics.
    pub fn history(&self) -> Vec<HistoryEntry> {
        self.shared.history.snapshot()
    }

    /// A live feed of every message published from now on.
    ///
    /// For observers (dev-mode printing, `onex tail`), not for consumers: an
    /// observer that falls more than [`WATCH_CAPACITY`](super::WATCH_CAPACITY)
    /// entries behind misses the oldest ones (`recv` returns
    /// `RecvError::Lagged`) rather than slowing publishers down. Gaps in
    /// [`HistoryEntry::sequence`] show what was missed.
    pub fn watch(&self) -> broadcast::Receiver<HistoryEntry> {
        self.shared.history.watch()
    }

    /// A snapshot of per-topic and per-group counters.
    pub fn stats(&self) -> MemoryBusStats {
        self.shared.stats()
    }

    /// Whether [`EventBus::close`] has been called.
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }
}

impl fmt::Debug for MemoryBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBus")
            .field("config", &self.shared.config)
            .field("closed", &self.shared.is_closed())
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    fn topic(&self, name: &TopicName) -> Arc<Topic> {
        if let Some(topic) = read(&self.topics).get(name) {
            return Arc::clone(topic);
        }
        let mut topics = write(&self.topics);
        let topic = topics.entry(name.clone()).or_insert_with(|| Arc::new(Topic::new(name.clone(), self.partitions)));
        Arc::clone(topic)
    }

    async fn publish(&self, message: Message) -> Result<(), BusError> {
        let topic = self.topic(&message.topic);
        let (index, partition) = topic.route(message.key.as_deref());
        let capacity = self.config.queue_capacity.get();
        let mut woken = false;
        loop {
            let mut space = pin!(partition.space.notified());
            {
                let mut state = lock(&partition.state);
                if self.is_closed() {
                    return Err(BusError::Closed);
                }
                if state.has_room(capacity) {
                    let offset = state.next_offset();
                    self.history.record(&message, index, offset);
                    state.push(message);
                    // We consumed a wake-up meant for "there is room"; if
                    // there still is, pass it on to the next waiting publisher.
                    if woken && state.has_room(capacity) {
                        partition.space.notify_one();
                    }
                    return Ok(());
                }
                space.as_mut().enable();
            }
            space.await;
            woken = true;
        }
    }

    fn ack(&self, receipt: &Receipt) -> Result<(), BusError> {
        let unknown = || BusError::UnknownReceipt {
            topic: receipt.topic.to_string(),
            partition: receipt.partition,
            offset: receipt.offset,
        };
        let topics = read(&self.topics);
        let partition = topics.get(&receipt.topic).and_then(|t| t.partition(receipt.partition)).ok_or_else(unknown)?;
        let capacity = self.config.queue_capacity.get();
        let outcome = lock(&partition.state)
            .group_queue_mut(&receipt.group)
            .map_or(Ack::Unknown, |queue| queue.ack(receipt.offset, capacity));
        match outcome {
            Ack::Acked { was_full } => {
                // Only a full queue can have publishers waiting on it.
                if was_full {
                    partition.space.notify_one();
                }
                Ok(())
            }
            Ack::Unknown => Err(unknown()),
        }
    }

    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        for topic in read(&self.topics).values() {
            for partition in topic.partitions() {
                // Passing through the lock orders us after any publisher that
                // read the flag as unset and is about to wait; it has enabled
                // its waiter by the time we get the lock, so this wakes it.
                drop(lock(&partition.state));
                partition.space.notify_waiters();
            }
        }
        let groups: Vec<Arc<Group>> = lock(&self.groups).values().cloned().collect();
        for group in groups {
            group.wake_members();
        }
    }

    fn health(&self) -> BusHealth {
        let topics = read(&self.topics).len();
        let groups = lock(&self.groups).len();
        let closed = self.is_closed();
        let state = if closed { "closed, " } else { "" };
        BusHealth {
            ready: !closed,
            detail: format!(
                "memory bus: {state}{topics} {}, {groups} {}",
                plural(topics, "topic", "topics"),
                plural(groups, "group", "groups")
            ),
        }
    }

    fn stats(&self) -> MemoryBusStats {
        let mut topics: Vec<Arc<Topic>> = read(&self.topics).values().cloned().collect();
        topics.sort_by(|a, b| a.name().cmp(b.name()));
        let mut stats = MemoryBusStats::default();
        for topic in &topics {
            let mut published = 0;
            for (index, partition) in (0_u32..).zip(topic.partitions()) {
                let state = lock(&partition.state);
                published += state.next_offset();
                stats.groups.extend(state.queues().iter().map(|queue| GroupPartitionStats {
                    group: queue.group().clone(),
                    topic: topic.name().clone(),
                    partition: index,
                    queued: queue.queued_len(),
                    in_flight: queue.in_flight_len(),
                    acked: queue.acked(),
                    redelivered: queue.redelivered(),
                }));
            }
            stats.topics.push(TopicStats { topic: topic.name().clone(), published });
        }
        stats.groups.sort_by(|a, b| (&a.topic, &a.group, a.partition).cmp(&(&b.topic, &b.group, b.partition)));
        stats
    }
}

fn plural(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

#[async_trait]
impl EventBus for MemoryBus {
    /// Enqueues `message` for every group subscribed to its topic, waiting
    /// while any of those queues for its partition is full.
    ///
    /// # Errors
    /// [`BusError::Closed`] after `close`, including for a publish that was
    /// waiting for room when the bus closed.
    ///
    /// # Cancel safety
    /// Cancel safe in this backend: the message is enqueued, all at once, only
    /// in the poll that returns `Ok`; a dropped publish never happened.
    async fn publish(&self, message: Message) -> Result<(), BusError> {
        self.shared.publish(message).await
    }

    /// Publishes one message after another, so order is kept per partition.
    ///
    /// # Errors
    /// [`BusError::Closed`] after `close`; the messages before the failing
    /// one have been published.
    async fn publish_batch(&self, messages: Vec<Message>) -> Result<(), BusError> {
        for message in messages {
            self.shared.publish(message).await?;
        }
        Ok(())
    }

    /// Joins `group` as a new member consuming `topics` (created if new).
    ///
    /// The group receives messages published to a topic after its first
    /// member subscribed to that topic (Kafka's `auto.offset.reset=latest`),
    /// so subscribe before anything is sent. Partitions are rebalanced among
    /// the group's members.
    ///
    /// # Errors
    /// [`BusError::Closed`] after `close`.
    async fn subscribe(&self, group: &ConsumerGroup, topics: &[TopicName]) -> Result<Box<dyn Subscription>, BusError> {
        let shared = &self.shared;
        if shared.is_closed() {
            return Err(BusError::Closed);
        }
        let unique: BTreeSet<&TopicName> = topics.iter().collect();
        let topics: Vec<Arc<Topic>> = unique.into_iter().map(|name| shared.topic(name)).collect();
        let group = {
            let mut groups = lock(&shared.groups);
            Arc::clone(groups.entry(group.clone()).or_insert_with(|| Arc::new(Group::new(group.clone()))))
        };
        let member = group.join(&topics);
        Ok(Box::new(MemorySubscription::new(Arc::clone(shared), group, member)))
    }

    /// Frees the delivery's slot; it will not be redelivered. Acks may come
    /// in any order, and still work after `close`.
    ///
    /// # Errors
    /// [`BusError::UnknownReceipt`] if the receipt was already acked, never
    /// delivered, or put back for redelivery because its member left.
    async fn ack(&self, receipt: &Receipt) -> Result<(), BusError> {
        self.shared.ack(receipt)
    }

    fn health(&self) -> BusHealth {
        self.shared.health()
    }

    /// Fails further publishes (including waiting ones) and lets every
    /// subscription drain what is queued for it, then end.
    async fn close(&self) {
        self.shared.close();
    }
}
