//! The in-memory event bus: the embedded default backend.
//!
//! [`MemoryBus`] keeps the [`EventBus`](crate::EventBus) contract inside one
//! process, with the same shape as Kafka so that code tested against it
//! behaves the same against a broker:
//!
//! - **Topics and partitions.** A topic is created on first use with
//!   [`MemoryBusConfig::partitions`] partitions. A keyed message goes to
//!   partition `fnv1a(key) % partitions` (stable across runs and Rust
//!   versions); unkeyed messages go round-robin. Each (topic, partition)
//!   numbers its messages with offsets counting up from 0.
//! - **Consumer groups.** Every group receives every message; the members of
//!   one group share the partitions, balanced round-robin and recomputed when
//!   a member joins or its subscription is dropped. A group receives what is
//!   published to a topic *after* its first member subscribed to that topic,
//!   like Kafka's `auto.offset.reset=latest`: the runtime subscribes before
//!   anything is sent. A group outlives its members: with none left, its
//!   queues keep filling until publishers wait.
//! - **Ordering.** Within a partition, deliveries come in offset order, also
//!   across a rebalance: a partition's new owner starts once the previous
//!   holder has acked (or dropped) everything it was given.
//! - **Backpressure.** Per group, topic and partition, at most
//!   [`MemoryBusConfig::queue_capacity`] messages are queued or in flight.
//!   `publish` waits, without spinning and without holding any lock, until
//!   every subscribed group has room in the message's partition. Nothing is
//!   ever dropped and nothing grows without bound.
//! - **At-least-once.** A delivery stays in flight until acked; acks may come
//!   in any order. When a subscription is dropped, its un-acked deliveries
//!   are redelivered, in offset order and before newer messages, to the
//!   member that gets the partition next. Receipts carry no member
//!   generation, so a receipt kept by a dropped member matches the
//!   redelivery of the same offset; acking it acks that redelivery.
//! - **Inspection.** [`MemoryBus::history`] returns the last
//!   [`MemoryBusConfig::history`] messages published (all topics, with a
//!   bus-wide sequence number); [`MemoryBus::watch`] streams new ones to
//!   observers, which may lag and miss entries but never slow the bus down.
//!   [`MemoryBus::stats`] counts published, queued, in-flight and acked
//!   messages.
//! - **Close.** After [`close`](crate::EventBus::close), publishes fail with
//!   [`BusError::Closed`](crate::BusError::Closed) and each subscription
//!   returns what is still queued for it, then `None`. Acks keep working so
//!   in-flight work can finish.
//!
//! What it deliberately is not: durable (everything is lost with the
//! process) or shared between processes. Use the Kafka backend for that.

mod bus;
mod config;
mod group;
mod history;
mod queue;
mod stats;
mod subscription;
mod sync;
mod topic;

#[cfg(test)]
mod tests;

pub use bus::MemoryBus;
pub use config::MemoryBusConfig;
pub use history::{HistoryEntry, WATCH_CAPACITY};
pub use stats::{GroupPartitionStats, MemoryBusStats, TopicStats};
