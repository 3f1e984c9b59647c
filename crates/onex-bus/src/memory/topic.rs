//! Topics, their partitions, and which partition a message goes to.
//!
//! A topic is created on first use with the bus's fixed partition count. Each
//! partition has its own lock, so publishers and consumers of different
//! partitions never contend; the lock covers the offset counter and one
//! [`GroupQueue`] per consumer group that subscribed to the topic. A message
//! is copied into every group's queue under that lock, which is what makes
//! "enqueued for every subscribed group" atomic with offset assignment.
//!
//! Keyed messages go to `fnv1a(key) % partitions`. FNV-1a is used instead of
//! std's `DefaultHasher` because its output is specified and stable across
//! Rust versions and runs, so a key maps to the same partition forever.
//! Unkeyed messages go round-robin per topic.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use onex_core::TopicName;
use tokio::sync::Notify;

use super::queue::GroupQueue;
use crate::bus::{ConsumerGroup, Message};

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

/// 64-bit FNV-1a: the stable key hash behind partition selection.
pub(super) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV_OFFSET_BASIS, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME))
}

#[derive(Debug)]
pub(super) struct Topic {
    name: TopicName,
    partitions: Box<[Partition]>,
    round_robin: AtomicUsize,
}

#[derive(Debug)]
pub(super) struct Partition {
    pub(super) state: Mutex<PartitionState>,
    /// Publishers wait here while some group's queue is full. Acks that free a
    /// slot in a full queue wake one; `close` wakes all.
    pub(super) space: Notify,
}

#[derive(Debug, Default)]
pub(super) struct PartitionState {
    next_offset: u64,
    /// Indexed by the slot returned from [`PartitionState::add_group`]; groups
    /// are never removed, so slots stay valid for the life of the bus.
    queues: Vec<GroupQueue>,
}

impl Topic {
    pub(super) fn new(name: TopicName, partitions: u32) -> Self {
        let partitions = (0..partitions)
            .map(|_| Partition { state: Mutex::new(PartitionState::default()), space: Notify::new() })
            .collect();
        Self { name, partitions, round_robin: AtomicUsize::new(0) }
    }

    pub(super) fn name(&self) -> &TopicName {
        &self.name
    }

    pub(super) fn partitions(&self) -> &[Partition] {
        &self.partitions
    }

    pub(super) fn partition(&self, index: u32) -> Option<&Partition> {
        self.partitions.get(usize::try_from(index).ok()?)
    }

    /// The partition `key` belongs to, or the next one in turn without a key.
    pub(super) fn route(&self, key: Option<&[u8]>) -> (u32, &Partition) {
        let count = self.partitions.len();
        let index = match key {
            // The remainder is below `count`, a `usize`, so it converts back.
            Some(key) => usize::try_from(fnv1a(key) % count as u64).unwrap_or(0),
            // Relaxed: only the spread matters, not ordering with other memory.
            None => self.round_robin.fetch_add(1, Ordering::Relaxed) % count,
        };
        // `index < count` and `new` built at most `u32::MAX` partitions.
        (u32::try_from(index).unwrap_or(u32::MAX), &self.partitions[index])
    }
}

impl PartitionState {
    /// Offsets handed out so far, which is the number of messages published.
    pub(super) fn next_offset(&self) -> u64 {
        self.next_offset
    }

    pub(super) fn has_room(&self, capacity: usize) -> bool {
        self.queues.iter().all(|q| q.has_room(capacity))
    }

    /// Assigns the next offset and enqueues `message` for every group; the
    /// caller has checked [`Self::has_room`].
    pub(super) fn push(&mut self, message: Message) -> u64 {
        let offset = self.next_offset;
        self.next_offset += 1;
        // The last group takes the original, so the common one-group case
        // does not copy at all.
        if let Some((last, rest)) = self.queues.split_last_mut() {
            for queue in rest {
                queue.push(offset, message.clone());
            }
            last.push(offset, message);
        }
        offset
    }

    /// Starts a queue for `group`; it sees messages published from now on.
    pub(super) fn add_group(&mut self, group: ConsumerGroup) -> usize {
        self.queues.push(GroupQueue::new(group));
        self.queues.len() - 1
    }

    pub(super) fn queue_mut(&mut self, slot: usize) -> Option<&mut GroupQueue> {
        self.queues.get_mut(slot)
    }

    pub(super) fn group_queue_mut(&mut self, group: &ConsumerGroup) -> Option<&mut GroupQueue> {
        self.queues.iter_mut().find(|q| q.group() == group)
    }

    pub(super) fn queues(&self) -> &[GroupQueue] {
        &self.queues
    }
}
