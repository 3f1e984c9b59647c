//! Counters for health checks and metrics, read as one snapshot.
//!
//! The bus keeps levels (queued, in flight) and monotonic totals (published,
//! acked, redelivered) as plain integers under the partition locks it already
//! takes; [`MemoryBus::stats`](super::MemoryBus::stats) copies them out.
//! Exporting them as metrics is the runtime's job, so this crate emits
//! nothing on the hot path.

use onex_core::TopicName;

use crate::bus::ConsumerGroup;

/// A snapshot of the bus's counters, sorted by topic, then group and partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryBusStats {
    /// One entry per topic the bus has seen.
    pub topics: Vec<TopicStats>,
    /// One entry per consumer group, topic and partition.
    pub groups: Vec<GroupPartitionStats>,
}

/// Counters of one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicStats {
    pub topic: TopicName,
    /// Messages published to the topic, all partitions.
    pub published: u64,
}

/// Counters of one consumer group's queue for one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupPartitionStats {
    pub group: ConsumerGroup,
    pub topic: TopicName,
    pub partition: u32,
    /// Waiting to be delivered (including deliveries put back for redelivery).
    pub queued: usize,
    /// Delivered and not yet acked.
    pub in_flight: usize,
    /// Acked since the group subscribed.
    pub acked: u64,
    /// Deliveries put back because their holder left before acking.
    pub redelivered: u64,
}

impl GroupPartitionStats {
    /// Messages the group still has to finish: queued plus in flight.
    pub fn lag(&self) -> usize {
        self.queued + self.in_flight
    }
}

impl MemoryBusStats {
    /// Messages published to `topic`, or 0 if the bus has not seen it.
    pub fn published(&self, topic: &TopicName) -> u64 {
        self.topics.iter().find(|t| &t.topic == topic).map_or(0, |t| t.published)
    }

    /// The partitions of one group on one topic, by partition.
    pub fn group_topic(&self, group: &ConsumerGroup, topic: &TopicName) -> Vec<&GroupPartitionStats> {
        self.groups.iter().filter(|g| &g.group == group && &g.topic == topic).collect()
    }
}
