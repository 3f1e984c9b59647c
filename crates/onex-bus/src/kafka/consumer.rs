//! One consumer-group member: a librdkafka consumer, the offsets it has in
//! flight, and backpressure.
//!
//! - A delivery's offset is stored for commit only when the bus is told its
//!   outcome is durable (`ack`), and only up to the lowest offset still in
//!   flight ([`OffsetBook`]). librdkafka commits stored offsets every
//!   `commit_interval`; on revoke and on close they are committed at once.
//! - Revoked partitions: what is done is committed, what is still in flight
//!   is abandoned; its outcome may still be published, and the next owner
//!   processes it again (a duplicate, which at-least-once allows).
//! - Backpressure: at `pause_at` deliveries in flight the member pauses its
//!   partitions and resumes at half that; it never holds more than
//!   `max_in_flight`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use onex_core::TopicName;
use parking_lot::Mutex;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message as _};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tokio::sync::Notify;
use tracing::{debug, info, warn};

use super::health::{BusEvent, Health, log_rdkafka};
use super::lag;
use super::offsets::OffsetBook;
use crate::{BusError, ConsumerGroup, Delivery, Message, PartitionLag, Receipt, Subscription};

/// State a member shares between its consumer callbacks, its subscription and `ack`.
#[derive(Debug)]
pub(crate) struct MemberState {
    pub(crate) group: ConsumerGroup,
    book: Mutex<OffsetBook>,
    /// Latest high watermark and committed offset per partition, from statistics.
    reported: Mutex<HashMap<(String, i32), (i64, i64)>>,
    paused: AtomicBool,
    /// Signalled when in-flight deliveries fall to the resume level.
    room: Notify,
    pause_at: usize,
    resume_at: usize,
    max_in_flight: usize,
    health: Arc<Health>,
}

/// librdkafka context of a member: rebalances, statistics, errors.
pub(crate) struct MemberContext {
    state: Arc<MemberState>,
}

impl rdkafka::client::ClientContext for MemberContext {
    fn stats(&self, statistics: Statistics) {
        self.state.health.observe_brokers(&statistics);
        let mut reported = self.state.reported.lock();
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                if *partition >= 0 {
                    reported.insert((topic.clone(), *partition), (p.hi_offset, p.committed_offset));
                }
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        super::health::ClientContext { health: Arc::clone(&self.state.health) }.error(error, reason);
    }

    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        log_rdkafka(level, fac, log_message);
    }
}

impl ConsumerContext for MemberContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(tpl) = rebalance else { return };
        let state = &self.state;
        let mut commit = TopicPartitionList::new();
        let mut committed = Vec::new();
        let partitions: Vec<(String, i32)> =
            tpl.elements().iter().map(|e| (e.topic().to_owned(), e.partition())).collect();
        {
            let mut book = state.book.lock();
            for (topic, partition) in &partitions {
                if let Some(position) = book.revoke(topic, *partition) {
                    // Adding a partition to a fresh list cannot fail.
                    let _ = commit.add_partition_offset(topic, *partition, Offset::Offset(position));
                    committed.push((topic.clone(), *partition, position));
                }
            }
        }
        if commit.count() > 0 {
            // Sync on purpose: the partitions may move as soon as this returns.
            if let Err(e) = consumer.commit(&commit, CommitMode::Sync) {
                warn!(group = %state.group, error = %e, "Committing revoked partitions failed; their last envelopes may be processed again.");
            }
        }
        info!(group = %state.group, partitions = ?partitions, committed = ?committed, "Partitions revoked.");
        state.room.notify_one();
        state.health.emit(BusEvent::Revoked { group: state.group.0.clone(), partitions, committed });
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Assign(tpl) = rebalance else { return };
        let state = &self.state;
        let partitions: Vec<(String, i32)> =
            tpl.elements().iter().map(|e| (e.topic().to_owned(), e.partition())).collect();
        {
            let mut book = state.book.lock();
            for (topic, partition) in &partitions {
                book.assign(topic, *partition);
            }
        }
        if state.paused.load(Ordering::Relaxed) {
            if let Err(e) = consumer.pause(tpl) {
                warn!(group = %state.group, error = %e, "Could not pause newly assigned partitions.");
            }
        }
        info!(group = %state.group, partitions = ?partitions, "Partitions assigned.");
        state.health.emit(BusEvent::Assigned { group: state.group.0.clone(), partitions });
    }

    fn commit_callback(&self, result: rdkafka::error::KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) => debug!(group = %self.state.group, partitions = offsets.count(), "Offsets committed."),
            // Nothing stored since the last commit.
            Err(KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => {
                warn!(group = %self.state.group, error = %e, "Committing offsets failed; will retry at the next interval.")
            }
        }
    }
}

/// A member: its consumer and shared state. The subscription owns it; the bus
/// keeps a weak reference to route acks.
pub(crate) struct Member {
    consumer: StreamConsumer<MemberContext>,
    topics: HashMap<String, TopicName>,
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member").field("state", self.state()).finish_non_exhaustive()
    }
}

impl Member {
    pub(crate) fn new(
        config: &rdkafka::ClientConfig,
        group: ConsumerGroup,
        topics: &[TopicName],
        limits: (usize, usize),
        health: Arc<Health>,
    ) -> Result<Arc<Self>, KafkaError> {
        let (max_in_flight, pause_at) = limits;
        let state = Arc::new(MemberState {
            group,
            book: Mutex::new(OffsetBook::default()),
            reported: Mutex::new(HashMap::new()),
            paused: AtomicBool::new(false),
            room: Notify::new(),
            pause_at,
            resume_at: pause_at / 2,
            max_in_flight,
            health,
        });
        let consumer: StreamConsumer<MemberContext> = config.create_with_context(MemberContext { state })?;
        let names: Vec<&str> = topics.iter().map(TopicName::as_str).collect();
        consumer.subscribe(&names)?;
        let topics = topics.iter().map(|t| (t.as_str().to_owned(), t.clone())).collect();
        Ok(Arc::new(Self { consumer, topics }))
    }

    pub(crate) fn state(&self) -> &MemberState {
        &self.consumer.context().state
    }

    /// Whether this member has `receipt` in flight (its partition is assigned here).
    pub(crate) fn owns(&self, receipt: &Receipt) -> bool {
        self.state().group == receipt.group && self.state().book.lock().owns(receipt.topic.as_str(), part(receipt))
    }

    /// Marks a delivery done and stores the new commit position, if it moved.
    pub(crate) fn ack(&self, receipt: &Receipt) -> Result<(), BusError> {
        let state = self.state();
        let moved = state.book.lock().acked(receipt.topic.as_str(), part(receipt), off(receipt)).map_err(|()| {
            BusError::UnknownReceipt {
                topic: receipt.topic.to_string(),
                partition: receipt.partition,
                offset: receipt.offset,
            }
        })?;
        if let Some(position) = moved {
            let mut tpl = TopicPartitionList::with_capacity(1);
            let _ = tpl.add_partition_offset(receipt.topic.as_str(), part(receipt), Offset::Offset(position));
            if let Err(e) = self.consumer.store_offsets(&tpl) {
                // The partition was revoked in between; its next owner starts from the last commit.
                debug!(topic = %receipt.topic, partition = receipt.partition, error = %e, "Offset not stored.");
            }
        }
        // The subscription re-checks the count; a spare wake-up costs one loop.
        state.room.notify_one();
        Ok(())
    }

    /// Lag and in-flight counts of every partition this member owns.
    pub(crate) fn partitions(&self) -> Vec<PartitionLag> {
        let state = self.state();
        let reported = state.reported.lock().clone();
        let paused = state.paused.load(Ordering::Relaxed);
        let book = state.book.lock();
        let mut out: Vec<PartitionLag> = book
            .iter()
            .map(|((topic, partition), p)| {
                let (hwm, committed) = reported.get(&(topic.clone(), *partition)).copied().unwrap_or((-1, -1));
                let end = lag::log_end(Some(hwm), p.next());
                let committed = p.committable().or((committed >= 0).then_some(committed));
                PartitionLag {
                    topic: topic.clone(),
                    partition: *partition,
                    high_watermark: end,
                    position: p.next(),
                    committed,
                    lag: lag::lag(end, p.next(), committed),
                    in_flight: p.in_flight(),
                    paused,
                }
            })
            .collect();
        out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        out
    }

    /// Commits every stored offset now (shutdown).
    pub(crate) fn commit_now(&self) {
        match self.consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) | Err(KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => warn!(group = %self.state().group, error = %e, "Final offset commit failed."),
        }
    }

    fn set_paused(&self, pause: bool, in_flight: usize) {
        let state = self.state();
        if state.paused.swap(pause, Ordering::Relaxed) == pause {
            return;
        }
        let result = self
            .consumer
            .assignment()
            .and_then(|tpl| if pause { self.consumer.pause(&tpl) } else { self.consumer.resume(&tpl) });
        if let Err(e) = result {
            warn!(group = %state.group, error = %e, "Could not pause or resume partitions.");
        }
        let group = state.group.0.clone();
        if pause {
            debug!(group = %group, in_flight, "Paused fetching (backpressure).");
            state.health.emit(BusEvent::Paused { group, in_flight });
        } else {
            debug!(group = %group, in_flight, "Resumed fetching.");
            state.health.emit(BusEvent::Resumed { group, in_flight });
        }
    }

    fn delivery(&self, m: &BorrowedMessage<'_>) -> Option<Delivery> {
        let state = self.state();
        let topic = self.topics.get(m.topic())?.clone();
        let (partition, offset) = (u32::try_from(m.partition()).ok()?, u64::try_from(m.offset()).ok()?);
        if !state.book.lock().delivered(m.topic(), m.partition(), m.offset()) {
            // A message of a partition revoked a moment ago: its next owner gets it.
            return None;
        }
        let headers = m
            .headers()
            .map(|h| {
                h.iter().map(|h| (h.key.to_owned(), Bytes::copy_from_slice(h.value.unwrap_or_default()))).collect()
            })
            .unwrap_or_default();
        let message = Message {
            topic: topic.clone(),
            key: m.key().map(Bytes::copy_from_slice),
            payload: Bytes::copy_from_slice(m.payload().unwrap_or_default()),
            headers,
        };
        Some(Delivery { message, receipt: Receipt { group: state.group.clone(), topic, partition, offset } })
    }
}

fn part(r: &Receipt) -> i32 {
    i32::try_from(r.partition).unwrap_or(i32::MAX)
}

fn off(r: &Receipt) -> i64 {
    i64::try_from(r.offset).unwrap_or(i64::MAX)
}

/// The [`Subscription`] of one member.
#[derive(Debug)]
pub(crate) struct KafkaSubscription {
    pub(crate) member: Arc<Member>,
    pub(crate) closed: Arc<super::Closed>,
}

#[async_trait]
impl Subscription for KafkaSubscription {
    async fn next(&mut self) -> Option<Result<Delivery, BusError>> {
        let member = &self.member;
        let state = member.state();
        loop {
            // Register for wake-ups before reading the state, so none is missed.
            let closing = self.closed.notified();
            let room = state.room.notified();
            if self.closed.is_set() {
                return None;
            }
            let in_flight = state.book.lock().in_flight();
            if in_flight >= state.pause_at {
                member.set_paused(true, in_flight);
            } else if in_flight <= state.resume_at {
                member.set_paused(false, in_flight);
            }
            let received = if in_flight >= state.max_in_flight {
                // Full: take nothing until something finishes.
                tokio::select! {
                    () = room => continue,
                    () = closing => return None,
                }
            } else if state.paused.load(Ordering::Relaxed) {
                // Keep polling (rebalances and heartbeats need it), but wake on room too.
                tokio::select! {
                    r = member.consumer.recv() => r.map(|m| member.delivery(&m)),
                    () = room => continue,
                    () = closing => return None,
                }
            } else {
                tokio::select! {
                    r = member.consumer.recv() => r.map(|m| member.delivery(&m)),
                    () = closing => return None,
                }
            };
            match received {
                Ok(Some(delivery)) => return Some(Ok(delivery)),
                Ok(None) => {}
                Err(e) => {
                    use rdkafka::types::RDKafkaErrorCode as Code;
                    match e.rdkafka_error_code() {
                        // A subscribed topic that does not exist yet: it is created on first
                        // publish (or by an operator); keep consuming the others meanwhile.
                        Some(Code::UnknownTopicOrPartition | Code::UnknownTopic | Code::PartitionEOF) => {
                            debug!(group = %state.group, error = %e, "Kafka consumer notice.");
                            continue;
                        }
                        Some(Code::AllBrokersDown) => state.health.brokers_down(e.to_string()),
                        _ => {}
                    }
                    return Some(Err(BusError::Backend(format!("consuming from Kafka failed: {e}"))));
                }
            }
        }
    }

    async fn close(&mut self) {
        // Committing and leaving block on the network: off the async threads.
        let member = Arc::clone(&self.member);
        let _ = tokio::task::spawn_blocking(move || member.commit_now()).await;
    }
}

impl Drop for KafkaSubscription {
    fn drop(&mut self) {
        // Commit what is done, then leave the group (which runs the revoke callback).
        // Both block on the network, so off the async threads when there are any.
        let member = Arc::clone(&self.member);
        let close = move || {
            member.commit_now();
            drop(member);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => drop(handle.spawn_blocking(close)),
            Err(_) => close(),
        }
    }
}
