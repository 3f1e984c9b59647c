//! The bus-wide record of recent publishes, for people rather than programs.
//!
//! Two views of the same sequence: a bounded ring of the last `history`
//! messages (what `onex tail` prints first, what the dashboard shows), and a
//! broadcast feed of new entries for live observers. Both exist for
//! inspection only. Observers never slow the bus down: the feed is a bounded
//! `broadcast` channel, and an observer that falls behind loses the oldest
//! entries (its `recv` returns `RecvError::Lagged(n)`) instead of making
//! publishers wait. Consumer-group deliveries are unaffected by any of this.

use std::collections::VecDeque;
use std::sync::Mutex;

use onex_core::TopicName;
use tokio::sync::broadcast;

use super::sync::lock;
use crate::bus::Message;

/// Entries buffered per live observer before it starts missing them.
///
/// Fixed rather than configured: it only bounds how far a slow terminal can
/// fall behind, and `broadcast` allocates every slot up front, so tying it to
/// `history` would make a large history expensive even with no observers.
pub const WATCH_CAPACITY: usize = 1024;

/// One published message as the history records it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HistoryEntry {
    /// Position in the bus-wide publish order: starts at 0 and increases by
    /// one per message, across all topics. A gap seen by an observer means it
    /// lagged and missed entries.
    pub sequence: u64,
    /// The partition the message was appended to.
    pub partition: u32,
    /// The message's offset within its topic and partition.
    pub offset: u64,
    /// The message as published; its topic is [`HistoryEntry::topic`].
    pub message: Message,
}

impl HistoryEntry {
    /// The topic the message was published to.
    pub fn topic(&self) -> &TopicName {
        &self.message.topic
    }
}

#[derive(Debug)]
pub(super) struct History {
    capacity: usize,
    ring: Mutex<Ring>,
    feed: broadcast::Sender<HistoryEntry>,
}

#[derive(Debug, Default)]
struct Ring {
    entries: VecDeque<HistoryEntry>,
    next_sequence: u64,
}

impl History {
    pub(super) fn new(capacity: usize) -> Self {
        let (feed, _) = broadcast::channel(WATCH_CAPACITY);
        Self { capacity, ring: Mutex::new(Ring::default()), feed }
    }

    /// Records one publish. Called under the partition lock, so within a
    /// partition sequence numbers follow offsets.
    pub(super) fn record(&self, message: &Message, partition: u32, offset: u64) {
        let mut ring = lock(&self.ring);
        let entry = HistoryEntry { sequence: ring.next_sequence, partition, offset, message: message.clone() };
        ring.next_sequence += 1;
        if self.capacity > 0 {
            if ring.entries.len() == self.capacity {
                ring.entries.pop_front();
            }
            ring.entries.push_back(entry.clone());
        }
        // Sent under the ring lock so observers see sequence order. An error
        // only means nobody is watching.
        let _ = self.feed.send(entry);
    }

    pub(super) fn snapshot(&self) -> Vec<HistoryEntry> {
        lock(&self.ring).entries.iter().cloned().collect()
    }

    pub(super) fn watch(&self) -> broadcast::Receiver<HistoryEntry> {
        self.feed.subscribe()
    }
}
